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

from asr.audio import SAMPLE_RATE
from asr.backend import keras, tf
from asr.frames import HOP_MS, LOG_FLOOR, MEL_SCALES, N_MELS, NORM_EPSILON, WINDOW_MS, FeatureConfig, subsampled_length

__all__ = ["HOP_MS", "LOG_FLOOR", "MEL_SCALES", "N_MELS", "NORM_EPSILON", "WINDOW_MS", "FeatureConfig",
           "LogMelSpectrogram", "UtteranceNormalization", "log_mel", "normalize_utterances", "subsampled_length"]

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
