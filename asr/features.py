"""Log-mel front end as Keras layers, computed in the TensorFlow graph.

Because the features are part of the graph, a saved or exported model takes raw waveforms and the
training pipeline and the server run literally the same code.

Conventions (checked against librosa in tests/test_features.py):
- frames are not centred: frame i covers samples [i*hop, i*hop + win), so an utterance of n samples has
  `num_frames(n) = 1 + (max(n, win) - win) // hop` frames and none of them touches padding;
- a periodic Hann window of `win` samples, zero-padded to `n_fft`, power spectrum;
- Slaney mel scale and Slaney area normalisation (librosa's default), or HTK if configured;
- natural log of (mel power + LOG_FLOOR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import librosa
import numpy as np

from asr.audio import SAMPLE_RATE
from asr.backend import keras, tf

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


@keras.saving.register_keras_serializable(package="asr")
class LogMelSpectrogram(keras.layers.Layer):
    """(waveforms [B, T] float, lengths [B] int) -> (log-mel [B, F, n_mels], frame lengths [B])."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_mels: int = N_MELS, window_ms: float = WINDOW_MS,
                 hop_ms: float = HOP_MS, n_fft: int | None = None, fmin: float = 0.0,
                 fmax: float | None = None, mel_scale: str = "slaney", **kwargs):
        kwargs.setdefault("dtype", "float32")  # stays float32 under mixed precision: logs of tiny powers
        super().__init__(**kwargs)
        self.config = FeatureConfig(sample_rate, n_mels, window_ms, hop_ms, n_fft, fmin, fmax, mel_scale)
        self._mel = tf.constant(self.config.mel_matrix())

    @classmethod
    def from_config_object(cls, config: FeatureConfig, **kwargs) -> LogMelSpectrogram:
        return cls(**vars(config), **kwargs)

    def call(self, inputs):
        waveforms, lengths = inputs
        return log_mel(waveforms, lengths, self.config, self._mel)

    def compute_output_spec(self, inputs):
        waveforms, lengths = inputs
        batch = waveforms.shape[0]
        return (keras.KerasTensor((batch, None, self.config.n_mels), dtype="float32"),
                keras.KerasTensor((batch,), dtype="int32"))

    def get_config(self):
        return {**super().get_config(), **vars(self.config)}


@keras.saving.register_keras_serializable(package="asr")
class UtteranceNormalization(keras.layers.Layer):
    """Per-utterance mean/variance normalisation per feature bin over the real frames; padding -> 0."""

    def __init__(self, epsilon: float = NORM_EPSILON, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs):
        features, lengths = inputs
        return normalize_utterances(features, lengths, self.epsilon)

    def compute_output_spec(self, inputs):
        features, _ = inputs
        return keras.KerasTensor(features.shape, dtype="float32")

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def log_mel(waveforms: tf.Tensor, lengths: tf.Tensor, config: FeatureConfig,
            mel_matrix: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    waveforms = tf.cast(waveforms, tf.float32)
    lengths = tf.cast(lengths, tf.int32)
    win, hop = config.win_length, config.hop_length
    short_by = tf.maximum(win - tf.shape(waveforms)[1], 0)
    waveforms = tf.pad(waveforms, [[0, 0], [0, short_by]])  # every utterance yields at least one frame
    stft = tf.signal.stft(waveforms, frame_length=win, frame_step=hop, fft_length=config.fft_length,
                          window_fn=tf.signal.hann_window, pad_end=False)
    power = tf.math.square(tf.abs(stft))
    if mel_matrix is None:
        mel_matrix = tf.constant(config.mel_matrix())
    mel = tf.tensordot(power, mel_matrix, axes=1)
    frame_lengths = 1 + (tf.maximum(lengths, win) - win) // hop
    mask = tf.sequence_mask(frame_lengths, tf.shape(mel)[1], dtype=tf.float32)[:, :, None]
    return tf.math.log(mel + LOG_FLOOR) * mask, frame_lengths


def normalize_utterances(features: tf.Tensor, lengths: tf.Tensor,
                         epsilon: float = NORM_EPSILON) -> tf.Tensor:
    features = tf.cast(features, tf.float32)
    mask = tf.sequence_mask(lengths, tf.shape(features)[1], dtype=tf.float32)[:, :, None]
    count = tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
    mean = tf.reduce_sum(features * mask, axis=1, keepdims=True) / count
    variance = tf.reduce_sum(tf.square((features - mean) * mask), axis=1, keepdims=True) / count
    return (features - mean) * tf.math.rsqrt(variance + epsilon) * mask
