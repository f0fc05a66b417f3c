"""asr.audio: decoding every supported container, mono mixing, resampling, and clear errors for bad files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from asr.audio import RESAMPLE_QUALITY, SAMPLE_RATE, AudioError, audio_info, load_audio, write_audio


def sine(freq: float = 440.0, seconds: float = 1.0, rate: int = SAMPLE_RATE, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


# --- decoding ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("extension", ["wav", "flac", "ogg", "mp3"])
def test_reads_every_container_as_mono_float32(tmp_path, extension):
    original = sine()
    path = tmp_path / f"tone.{extension}"
    sf.write(str(path), original, SAMPLE_RATE)

    samples = load_audio(path)

    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert abs(len(samples) - len(original)) <= 0.01 * SAMPLE_RATE  # lossy codecs may pad a little
    assert abs(peak_frequency(samples, SAMPLE_RATE) - 440.0) < 2.0
    assert rms(samples) == pytest.approx(rms(original), rel=0.1)
    assert np.abs(samples).max() <= 1.0


@pytest.mark.parametrize("extension", ["wav", "flac"])
def test_lossless_containers_round_trip_to_16_bit_precision(tmp_path, extension):
    original = sine(seconds=0.5)
    path = tmp_path / f"tone.{extension}"
    sf.write(str(path), original, SAMPLE_RATE)  # PCM_16 by default
    np.testing.assert_allclose(load_audio(path), original, atol=2 / 32768)


def test_uppercase_extension_is_accepted(tmp_path):
    path = tmp_path / "TONE.WAV"
    sf.write(str(path), sine(seconds=0.25), SAMPLE_RATE)
    assert len(load_audio(path)) == SAMPLE_RATE // 4


def test_stereo_is_mixed_to_the_mean_of_its_channels(tmp_path):
    left = sine(440.0, seconds=0.5)
    right = np.random.default_rng(0).uniform(-0.2, 0.2, size=left.shape).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")

    mono = load_audio(path)

    assert mono.shape == left.shape
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-6)
    assert audio_info(path) == (0.5, SAMPLE_RATE)


def test_resampling_8k_to_16k_keeps_frequency_length_and_energy(tmp_path):
    original = sine(440.0, seconds=1.0, rate=8000)
    path = tmp_path / "tone8k.wav"
    sf.write(str(path), original, 8000, subtype="FLOAT")

    samples = load_audio(path, sample_rate=16_000)

    assert samples.dtype == np.float32
    assert len(samples) == 16_000
    assert abs(peak_frequency(samples, 16_000) - 440.0) < 1.5
    # Same as soxr's high-quality resampler applied directly, and the energy survives (no droop at 440 Hz).
    expected = soxr.resample(original, 8000, 16_000, quality=RESAMPLE_QUALITY)
    np.testing.assert_allclose(samples, expected, atol=1e-6)
    middle = slice(1000, -1000)  # away from the filter's edge transients
    assert rms(samples[middle]) == pytest.approx(0.3 / np.sqrt(2), rel=0.01)


def test_resampling_down_removes_content_above_the_new_nyquist(tmp_path):
    # 440 Hz + 6 kHz at 16 kHz, read at 8 kHz: the 6 kHz part must be filtered out, not aliased to 2 kHz.
    mixed = sine(440.0) + sine(6000.0)
    path = tmp_path / "mixed.wav"
    sf.write(str(path), mixed, SAMPLE_RATE, subtype="FLOAT")

    samples = load_audio(path, sample_rate=8000)

    assert len(samples) == 8000
    spectrum = np.abs(np.fft.rfft(samples[500:-500] * np.hanning(7000)))
    freqs = np.fft.rfftfreq(7000, 1 / 8000)
    at_440 = spectrum[np.argmin(np.abs(freqs - 440))]
    at_alias = spectrum[np.argmin(np.abs(freqs - 2000))]
    assert at_alias < at_440 * 1e-3


def test_same_rate_is_returned_unchanged(tmp_path):
    original = sine(seconds=0.3)
    path = tmp_path / "float.wav"
    sf.write(str(path), original, SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path), original)


def test_silent_audio_is_valid(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(str(path), np.zeros(8000, dtype=np.float32), SAMPLE_RATE)
    samples = load_audio(path)
    assert samples.shape == (8000,)
    assert not samples.any()
    assert audio_info(path) == (0.5, SAMPLE_RATE)


def test_audio_info_reports_duration_and_rate(tmp_path):
    path = tmp_path / "short.flac"
    sf.write(str(path), sine(seconds=0.75, rate=8000), 8000)
    duration, rate = audio_info(path)
    assert rate == 8000
    assert duration == pytest.approx(0.75)


def test_write_audio_round_trip(tmp_path):
    path = tmp_path / "written.wav"
    write_audio(path, sine(seconds=0.2), SAMPLE_RATE)
    assert audio_info(path) == pytest.approx((0.2, SAMPLE_RATE))
    np.testing.assert_allclose(load_audio(path), sine(seconds=0.2), atol=2 / 32768)


# --- bad inputs ----------------------------------------------------------------------------------------------

def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.wav"


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    return path


def _not_audio(tmp_path: Path) -> Path:
    path = tmp_path / "notes.wav"
    path.write_text("this is a text file, not a recording\n" * 20)
    return path


def _first_half(tmp_path: Path, suffix: str) -> Path:
    whole = tmp_path / f"whole{suffix}"
    sf.write(str(whole), sine(), SAMPLE_RATE)
    data = whole.read_bytes()
    path = tmp_path / f"truncated{suffix}"
    path.write_bytes(data[: len(data) // 2])
    return path


def _truncated_wav(tmp_path: Path) -> Path:
    return _first_half(tmp_path, ".wav")


def _corrupt_flac(tmp_path: Path) -> Path:
    return _first_half(tmp_path, ".flac")


def _zero_samples(tmp_path: Path) -> Path:
    path = tmp_path / "header_only.wav"
    sf.write(str(path), np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    assert path.stat().st_size == 44
    return path


def _unsupported_extension(tmp_path: Path) -> Path:
    path = tmp_path / "tone.xyz"
    sf.write(str(path), sine(seconds=0.1), SAMPLE_RATE, format="WAV")
    return path


def _nan_samples(tmp_path: Path) -> Path:
    samples = sine(seconds=0.2)
    samples[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(str(path), samples, SAMPLE_RATE, subtype="FLOAT")
    return path


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "folder.wav"
    path.mkdir()
    return path


BAD_INPUTS = {
    "missing": (_missing, "does not exist"),
    "empty": (_empty, "empty (0 bytes)"),
    "not_audio": (_not_audio, "not an audio file"),
    "truncated_wav": (_truncated_wav, "truncated"),
    "corrupt_flac": (_corrupt_flac, "corrupt or truncated"),
    "zero_samples": (_zero_samples, "zero samples"),
    "unsupported_extension": (_unsupported_extension, "unsupported format '.xyz'"),
    "nan_samples": (_nan_samples, "NaN"),
    "directory": (_directory, "not a regular file"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_load_audio_names_the_file_and_the_reason(tmp_path, case):
    make, reason = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.path == str(path)
    assert str(error).startswith(f"{path}: ")
    assert reason in error.reason


# Problems visible without decoding: audio_info (used to validate whole corpora quickly) must catch them too.
@pytest.mark.parametrize("case", ["missing", "empty", "not_audio", "truncated_wav", "zero_samples",
                                  "unsupported_extension", "directory"])
def test_audio_info_rejects_header_level_problems(tmp_path, case):
    make, reason = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(AudioError, match="^" + re.escape(str(path))) as caught:
        audio_info(path)
    assert reason in caught.value.reason
