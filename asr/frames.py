"""The front end's settings and frame arithmetic, without TensorFlow: reading a config, a manifest or a report
(asr.config, asr.data) needs these and must not load TensorFlow. The layers that compute the features are in
asr.features.

Conventions (checked against librosa in tests/test_features.py): frames are not centred: frame i covers
samples [i*hop, i*hop + win), so an utterance of n samples has `num_frames(n) = 1 + (max(n, win) - win) // hop`
frames and none of them touches padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import librosa
import numpy as np

from asr.audio import SAMPLE_RATE

N_MELS = 80
WINDOW_MS = 25.0
HOP_MS = 10.0
LOG_FLOOR = 1e-6
NORM_EPSILON = 1e-5
MEL_SCALES = ("slaney", "htk")


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = SAMPLE_RATE
    n_mels: int = N_MELS
    window_ms: float = WINDOW_MS
    hop_ms: float = HOP_MS
    n_fft: int | None = None  # default: next power of two >= window
    fmin: float = 0.0
    fmax: float | None = None  # default: Nyquist
    mel_scale: str = "slaney"

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"features.sample_rate must be positive, got {self.sample_rate}")
        if self.n_mels <= 0:
            raise ValueError(f"features.n_mels must be positive, got {self.n_mels}")
        if not 0 < self.hop_ms <= self.window_ms:
            raise ValueError(f"features.hop_ms must be in (0, window_ms], got {self.hop_ms}")
        if self.mel_scale not in MEL_SCALES:
            raise ValueError(f"features.mel_scale must be one of {MEL_SCALES}, got {self.mel_scale!r}")
        if self.n_fft is not None and self.n_fft < self.win_length:
            raise ValueError(f"features.n_fft={self.n_fft} is shorter than the window ({self.win_length})")

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.window_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def fft_length(self) -> int:
        return self.n_fft or 2 ** math.ceil(math.log2(self.win_length))

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        return 1 + (max(num_samples, self.win_length) - self.win_length) // self.hop_length

    def frames_for(self, seconds: float, precomputed: bool = False) -> int:
        """Feature frames in `seconds` of audio through this front end, or of precomputed features at its rate.

        The one place a duration becomes frames: validation, batch planning and the trainer's label check.
        """
        if precomputed:  # a precomputed row's duration was set from its frame count at this rate
            return max(1, round(seconds * self.frames_per_second))
        return self.num_frames(round(seconds * self.sample_rate))

    def mel_matrix(self) -> np.ndarray:
        """[fft_length // 2 + 1, n_mels] filterbank."""
        filters = librosa.filters.mel(
            sr=self.sample_rate,
            n_fft=self.fft_length,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            htk=self.mel_scale == "htk",
            norm="slaney" if self.mel_scale == "slaney" else None,
        )
        return filters.T.astype(np.float32)


def subsampled_length(frames, factor: int):
    """Output frames after time subsampling by `factor` ('same' padding): ceil(frames / factor).

    Works on Python ints and on tensors; the model's subsampling layers produce exactly this length.
    """
    if isinstance(frames, int):
        return -(-frames // factor)
    return (frames + factor - 1) // factor
