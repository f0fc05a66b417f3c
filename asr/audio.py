"""Reading audio: any file libsndfile understands (wav, flac, ogg, mp3, NIST .sph) -> mono float32 at the model rate."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16_000
RESAMPLE_QUALITY = "HQ"  # soxr's high-quality setting: flat to ~0.9 Nyquist, >100 dB stop band
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".sph")  # .sph: NIST SPHERE (uncompressed)
# Segment times in seconds (Kaldi `segments`, lhotse supervisions) are rounded by their writers: an end this
# little past the audio is rounding (lhotse's default duration-mismatch tolerance), not a segment outside it.
SEGMENT_END_TOLERANCE_SECONDS = 0.025
_TRUNCATED_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


class AudioError(ValueError):
    """An audio file that cannot be used, with the file and the reason in the message."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def audio_info(path: str | Path) -> tuple[float, int]:
    """(duration in seconds, sample rate) from the header alone: cheap, but a corrupt body goes unnoticed.

    Use `read_audio` to know that a file really decodes.
    """
    path = Path(path)
    _check_file(path)
    info = _read_header(path)
    return info.frames / info.samplerate, info.samplerate


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, offset: float | None = None,
               duration: float | None = None) -> np.ndarray:
    """Decode `path` (or only its `offset`..`offset + duration` seconds), mix to mono and resample to
    `sample_rate`. Returns float32 samples in [-1, 1]."""
    samples, file_rate = read_audio(path, offset, duration)
    return resample(samples, file_rate, sample_rate)


def read_audio(path: str | Path, offset: float | None = None, duration: float | None = None
               ) -> tuple[np.ndarray, int]:
    """Decode the whole file, mixed to mono at its own rate, with every check. Returns (samples, rate).

    With `offset` (seconds), only the segment from there (`duration` seconds long, or to the end) is read:
    one seek, not a decode of what comes before. A segment that ends past the end of the audio is an error.
    """
    path = Path(path)
    info = _read_header(path)
    start, frames = segment_frames(path, info.frames, info.samplerate, offset, duration)
    try:
        samples, file_rate = sf.read(str(path), frames=frames, start=start, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(path, _describe(error)) from None
    if samples.shape[0] < frames:
        promised = "header promises" if offset is None else "the segment needs"
        raise AudioError(path, f"truncated: {promised} {frames} samples, file holds {samples.shape[0]}")
    if not np.isfinite(samples).all():
        raise AudioError(path, "contains NaN or infinite samples")
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return mono, file_rate


def segment_frames(path: str | Path, total: int, rate: int, offset: float | None, duration: float | None
                   ) -> tuple[int, int]:
    """(first sample, sample count) of a segment of a file holding `total` samples at `rate`; the whole file
    when `offset` is None. Raises AudioError naming the file for a segment outside the audio."""
    if offset is None:
        return 0, total
    length = total / rate
    if offset < 0 or (duration is not None and duration <= 0):
        raise AudioError(path, f"segment at {offset:.3f} s lasting {duration} s: the offset must be at least 0 "
                               "and the duration positive")
    start = round(offset * rate)
    end = total if duration is None else round((offset + duration) * rate)
    if start >= total or end > total + SEGMENT_END_TOLERANCE_SECONDS * rate:
        stop = length if duration is None else offset + duration
        raise AudioError(path, f"segment {offset:.3f}-{stop:.3f} s ends past the end of the audio "
                               f"({length:.3f} s)")
    return start, min(end, total) - start


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate:
        return np.ascontiguousarray(samples, dtype=np.float32)
    return soxr.resample(samples, from_rate, to_rate, quality=RESAMPLE_QUALITY).astype(np.float32)


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    sf.write(str(path), samples, sample_rate)


def _read_header(path: Path) -> sf._SoundFileInfo:
    _check_file(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(path, _describe(error)) from None
    _check_header(path, info.extra_info, info.frames)
    return info


def open_audio(path: str | Path) -> sf.SoundFile:
    """`path` open for reading, after the checks `audio_info` makes: one open of the file instead of two.

    The caller closes it (it is a context manager).
    """
    path = Path(path)
    _check_file(path)
    try:
        handle = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(path, _describe(error)) from None
    try:
        _check_header(path, handle.extra_info, handle.frames)
    except AudioError:
        handle.close()
        raise
    return handle


def _check_header(path: Path, extra_info: str, frames: int) -> None:
    # libsndfile quietly shortens a WAV whose data chunk runs past the end of the file; it notes it here.
    short = _TRUNCATED_DATA_CHUNK.search(extra_info)
    if short:
        raise AudioError(path, f"truncated: data chunk declares {short[1]} bytes, file holds {short[2]}")
    if frames <= 0:
        raise AudioError(path, "contains zero samples")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "file does not exist")
    if not path.is_file():
        raise AudioError(path, "is not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(path, "is empty (0 bytes)")
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise AudioError(path, f"unsupported format {path.suffix or '(no extension)'!r}; "
                               f"expected one of {', '.join(AUDIO_EXTENSIONS)}")


def _describe(error: Exception) -> str:
    message = str(error)
    if "Format not recognised" in message or "unknown format" in message.lower():
        return "not an audio file (format not recognised)"
    if "unimplemented format" in message.lower() or "not supported" in message.lower():
        return f"unsupported audio encoding ({message})"
    return f"corrupt or truncated audio ({message})"
