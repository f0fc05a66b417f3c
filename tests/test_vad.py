"""Voice activity detection: no words from silence or noise, speech found where it was put, long files cut at
pauses with bounded reads."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import sosfiltfilt

from asr.audio import load_audio, write_audio
from asr.decoders import make_decoder
from asr.recognizer import load_model
from asr.transcribe import TranscribeOptions, pause_cut, read_segments, transcribe
from asr.vad import VAD_OFF, VadError, VadOptions, band_pass, detect
from tests.conftest import SHARED

RATE = 8000


def level(signal: np.ndarray, db: float) -> np.ndarray:
    return (signal / np.sqrt(np.mean(signal ** 2)) * 10 ** (db / 20)).astype(np.float32)


def non_speech(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(2 * RATE) / RATE
    spectrum = np.fft.rfft(rng.standard_normal(2 * RATE))
    pink = np.fft.irfft(spectrum / np.sqrt(np.maximum(np.arange(len(spectrum)), 1)), 2 * RATE)
    clicks = np.zeros(2 * RATE, np.float32)
    for position in rng.integers(0, 2 * RATE - 8, 16):
        clicks[position:position + 8] += 0.5 * np.hanning(8)
    return {"silence": np.zeros(3 * RATE, np.float32), "white": level(rng.standard_normal(RATE), -10),
            "pink": level(pink, -20), "clicks": clicks,
            "hum50": level(sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3)), -20),
            "hum60": level(sum(np.sin(2 * np.pi * 60 * k * t) / k for k in (1, 2, 3)), -20)}


def voice(seconds: float, pitch: float = 120.0) -> np.ndarray:
    """A steady vowel-like harmonic complex at -20 dBFS."""
    t = np.arange(int(seconds * RATE)) / RATE
    return level(sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 25)), -20)


def fsdd(name: str) -> np.ndarray:
    return load_audio(SHARED / "fsdd" / "recordings" / f"{name}.wav", RATE)


def place(pieces: list[np.ndarray], gap: float, noise_db: float | None = None) -> tuple[np.ndarray, list[tuple]]:
    """Pieces with `gap` seconds of silence (or white noise at noise_db) around each; their (start, end) seconds."""
    rng = np.random.default_rng(1)
    filler = (lambda n: np.zeros(n, np.float32)) if noise_db is None else (
        lambda n: level(rng.standard_normal(n), noise_db))
    out, spans, position = [filler(int(gap * RATE))], [], int(gap * RATE)
    for piece in pieces:
        spans.append((position / RATE, (position + len(piece)) / RATE))
        out += [piece, filler(int(gap * RATE))]
        position += len(piece) + int(gap * RATE)
    return np.concatenate(out), spans


def test_generated_silence_noise_and_hum_give_empty_text_through_the_cli(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name, clip in non_speech().items():
        write_audio(folder / f"{name}.wav", clip, RATE)
    command = [sys.executable, "-m", "asr", "transcribe", str(folder), "--quiet", "--out"]
    result = subprocess.run([*command, str(tmp_path / "vad.jsonl")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "vad.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(row["text"] == "" and row["words"] == [] and row["duration"] > 0 for row in rows)

    # the same clips without the VAD: the bundled model, trained on silence and noise with empty transcripts
    # (issue #11), says nothing by itself too (the VAD's own tests are the detect() ones below)
    result = subprocess.run([*command, str(tmp_path / "off.jsonl"), "--vad", "off", "--decoder", "greedy"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    texts = [json.loads(line)["text"] for line in (tmp_path / "off.jsonl").read_text().splitlines()]
    assert texts == [""] * 6


@pytest.mark.parametrize("method", ["voicing", "webrtc"])
def test_silence_and_quiet_noise_are_not_speech(method):
    options = VadOptions(method=method)
    rng = np.random.default_rng(0)
    for clip in (np.zeros(RATE, np.float32), level(rng.standard_normal(2 * RATE), -65)):
        assert detect(clip, RATE, options).spans == []


def test_steady_noise_hum_and_clicks_are_not_speech():
    for seed in range(3):
        for name, clip in non_speech(seed).items():
            assert detect(clip, RATE, VadOptions()).spans == [], name


def test_voiced_bursts_are_found_where_they_were_put():
    audio, truth = place([voice(0.4), voice(0.8, pitch=200.0), voice(0.25)], gap=1.0, noise_db=-60)
    spans = [(a / RATE, b / RATE) for a, b in detect(audio, RATE, VadOptions()).spans]
    assert len(spans) == len(truth)
    np.testing.assert_allclose(spans, truth, atol=0.03)


def test_fsdd_words_in_silence_and_noise_are_found_where_they_were_put():
    words = [fsdd(name) for name in ("0_jackson_0", "5_george_1", "7_nicolas_2", "3_lucas_3")]
    for noise_db in (None, -55):
        audio, truth = place(words, gap=1.2, noise_db=noise_db)
        spans = [(a / RATE, b / RATE) for a, b in detect(audio, RATE, VadOptions()).spans]
        assert len(spans) == len(truth), (noise_db, spans, truth)
        for (start, end), (true_start, true_end) in zip(spans, truth, strict=True):
            assert true_start - 0.03 <= start < end <= true_end + 0.03  # inside the word ...
            assert end - start >= 0.5 * (true_end - true_start)  # ... and most of it


def test_off_means_everything_is_speech():
    assert detect(np.zeros(RATE, np.float32), RATE, VAD_OFF).spans == [(0, RATE)]
    with pytest.raises(VadError, match="unknown method"):
        VadOptions(method="loud")
    with pytest.raises(VadError, match="periodicity must be a number from 0 to 1"):
        VadOptions(periodicity=1.5)


def test_pause_cut_takes_the_latest_long_pause_in_the_last_quarter():
    options = VadOptions(min_pause_seconds=0.3, pad_seconds=0.1)
    second = RATE
    pauses = [(0, second), (5 * second, 5 * second + 4000), (8 * second, 8 * second + 4000),
              (9 * second, 9 * second + 1000)]  # the last is too short
    assert pause_cut(pauses, 10 * second, RATE, options) == 8 * second + 2000
    assert pause_cut(pauses[:2], 10 * second, RATE, options) is None  # 5 s is not in the last quarter
    trailing = [(int(8.5 * second), 10 * second)]  # still running at the end: cut at least pad before it
    assert pause_cut(trailing, 10 * second, RATE, options) == 10 * second - 800
    assert pause_cut(pauses, 10 * second, RATE, VAD_OFF) is None


def long_file(tmp_path):
    """About 45 s of FSDD words with 0.7 s pauses between them; the words' (start, end) in seconds."""
    names = [f"{digit}_{speaker}_{take}" for take in range(2) for speaker in ("jackson", "george")
             for digit in range(10)]
    audio, truth = place([fsdd(name) for name in names], gap=0.7)
    path = tmp_path / "long.wav"
    write_audio(path, audio, RATE)
    return path, truth


def test_long_file_is_cut_at_pauses_with_bounded_reads(tmp_path, monkeypatch):
    path, truth = long_file(tmp_path)
    reads = []
    original = sf.SoundFile.read

    def recording_read(self, frames=-1, *args, **kwargs):
        reads.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", recording_read)
    window = 8.0
    segments = list(read_segments(str(path), 0, RATE, window=window, overlap=1.0))
    assert max(reads) <= window * RATE and len(reads) >= len(truth) * 1.2 / window  # one window at a time
    cuts = sorted({s.owned[1] for s in segments if np.isfinite(s.owned[1])})  # the last window owns to the end
    assert len(cuts) >= 5
    for cut in cuts:  # every seam is in a pause, none inside a word
        assert not any(start - 0.02 < cut < end + 0.02 for start, end in truth), cut
    starts = [0.0, *cuts]
    assert all(0.75 * window <= b - a <= window for a, b in zip(starts, starts[1:], strict=False))
    for start, end in truth:  # every word is decoded in exactly one segment, whole but for its quiet edges
        holders = [s for s in segments if s.offset <= start + 0.05 and end - 0.05 <= s.offset + len(s.samples) / RATE]
        assert len(holders) == 1, (start, end)
        assert holders[0].owned[0] <= (start + end) / 2 < holders[0].owned[1]
    assert segments[-1].last and sum(s.last for s in segments) == 1


def test_words_come_only_from_speech(tmp_path):
    path, truth = long_file(tmp_path)
    model = load_model()
    [result] = transcribe([str(path)], model, make_decoder(model.config.alphabet()),
                          TranscribeOptions(window=8.0, overlap=1.0), progress=False)
    words = result.row()["words"]
    assert len(words) >= len(truth) * 0.8
    for word in words:
        middle = (word["start"] + word["end"]) / 2
        assert any(start - 0.1 <= middle <= end + 0.1 for start, end in truth), word


def test_context_decodes_audio_around_speech_but_keeps_words_only_near_it(tmp_path):
    audio, [(start, end)] = place([voice(0.6)], gap=2.0)
    path = tmp_path / "one.wav"
    write_audio(path, audio, RATE)
    tight, wide = VadOptions(), VadOptions(context_seconds=0.5)
    [narrow] = read_segments(str(path), 0, RATE, vad=tight)
    [broad] = read_segments(str(path), 0, RATE, vad=wide)
    assert narrow.speech == broad.speech  # the same place where words may be
    (low, high), = broad.speech
    assert low == pytest.approx(start - tight.pad_seconds, abs=0.05) and high == pytest.approx(end + 0.1, abs=0.05)
    assert len(narrow.samples) / RATE == pytest.approx(end - start + 2 * tight.pad_seconds, abs=0.05)
    assert len(broad.samples) / RATE == pytest.approx(end - start + 2 * 0.5, abs=0.05)  # more audio decoded
    assert broad.offset == pytest.approx(start - 0.5, abs=0.05)
    with pytest.raises(VadError, match="context_seconds .* must be at least pad_seconds"):
        VadOptions(pad_seconds=0.3, context_seconds=0.1)


def test_a_model_folders_vad_yaml_is_its_default_and_flags_override_it(tmp_path, trained_run):
    import shutil

    from asr import cli
    from asr.recognizer import ModelError, read_vad_options

    folder = tmp_path / "model"
    shutil.copytree(trained_run, folder, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    assert load_model(folder).vad == VadOptions()
    (folder / "vad.yaml").write_text("context_seconds: 0.5\n")
    assert load_model(folder).vad == VadOptions(context_seconds=0.5)
    (folder / "vad.yaml").write_text("context: 0.5\n")
    with pytest.raises(ModelError, match="vad.yaml: .*context"):
        read_vad_options(folder)
    (folder / "vad.yaml").write_text("context_seconds: 0.5\nmethod: off\n")
    silence = tmp_path / "silence.wav"
    write_audio(silence, np.zeros(RATE, np.float32), RATE)
    out = tmp_path / "out.jsonl"
    assert cli.main(["transcribe", str(silence), "--model", str(folder), "--out", str(out), "--quiet"]) == 0
    assert cli.main(["transcribe", str(silence), "--model", str(folder), "--out", str(out), "--quiet",
                     "--vad", "voicing"]) == 0
    assert json.loads(out.read_text())["text"] == ""  # the flag's method over the folder's "off"


@pytest.mark.parametrize("rate", [8000, 16000, 22050])
def test_band_pass_gives_the_same_samples_as_scipy_sosfiltfilt(rate):
    from asr.vad import _band_filter

    rng = np.random.default_rng(rate)
    for length in (28, 200, rate):  # 27 = the edge extension: the shortest sosfiltfilt takes is 28
        samples = rng.standard_normal(length)
        np.testing.assert_allclose(band_pass(samples, rate), sosfiltfilt(_band_filter(rate)[0], samples),
                                   rtol=0, atol=1e-12)
    assert not band_pass(rng.standard_normal(27), rate).any()  # shorter than the edge extension: no band power
