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


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode `path`, mix to mono and resample to `sample_rate`. Returns float32 samples in [-1, 1]."""
    samples, file_rate = read_audio(path)
    return resample(samples, file_rate, sample_rate)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode the whole file, mixed to mono at its own rate, with every check. Returns (samples, rate)."""
    path = Path(path)
    info = _read_header(path)
    try:
        samples, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(path, _describe(error)) from None
    if samples.shape[0] < info.frames:
        raise AudioError(path, f"truncated: header promises {info.frames} samples, file holds {samples.shape[0]}")
    if not np.isfinite(samples).all():
        raise AudioError(path, "contains NaN or infinite samples")
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return mono, file_rate


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
