"""The in-graph front end against librosa, and its length and normalisation conventions."""

import librosa
import numpy as np
import pytest

from asr.audio import load_audio
from asr.backend import keras
from asr.features import (
    LOG_FLOOR,
    FeatureConfig,
    LogMelSpectrogram,
    UtteranceNormalization,
    log_mel,
    normalize_utterances,
    subsampled_length,
)
from tests.test_text import SHARED

# Tolerance on natural-log mel power. Measured max difference is ~1e-4 (float32 graph vs float64 librosa);
# 2e-3 leaves room for other BLAS/FFT builds and still catches a wrong window, hop, scale or norm (> 0.1).
LOG_MEL_ATOL = 2e-3


def librosa_log_mel(samples: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """librosa with our conventions: no centring; its window sits in the middle of the n_fft frame."""
    offset = (config.fft_length - config.win_length) // 2
    mel = librosa.feature.melspectrogram(
        y=np.pad(samples, (offset, 0)), sr=config.sample_rate, n_fft=config.fft_length,
        hop_length=config.hop_length, win_length=config.win_length, window="hann", center=False, power=2.0,
        n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax, htk=config.mel_scale == "htk",
        norm="slaney" if config.mel_scale == "slaney" else None)
    return np.log(mel + LOG_FLOOR).T


@pytest.mark.parametrize(("sample_rate", "mel_scale", "n_mels"), [(16000, "slaney", 80), (8000, "htk", 40)])
def test_log_mel_matches_librosa_on_speech(sample_rate, mel_scale, n_mels):
    samples = load_audio(SHARED / "asterisk" / "wav8k" / "agent-loginok.wav", sample_rate)
    config = FeatureConfig(sample_rate=sample_rate, n_mels=n_mels, mel_scale=mel_scale)
    ours, lengths = log_mel(samples[None], np.array([len(samples)]), config)
    reference = librosa_log_mel(samples, config)
    assert int(lengths[0]) == config.num_frames(len(samples))
    # librosa's padded copy can end with one extra frame; ours never reads past the real samples.
    ours = ours.numpy()[0]
    frames = min(len(ours), len(reference))
    assert abs(len(ours) - len(reference)) <= 1
    np.testing.assert_allclose(ours[:frames], reference[:frames], atol=LOG_MEL_ATOL, rtol=0)


def test_slaney_and_htk_differ_so_the_choice_matters():
    slaney = FeatureConfig(mel_scale="slaney").mel_matrix()
    htk = FeatureConfig(mel_scale="htk").mel_matrix()
    assert np.abs(slaney - htk).max() > 1e-3


def test_frame_count_and_padding_do_not_change_features():
    config = FeatureConfig()
    rng = np.random.default_rng(0)
    short, long = rng.normal(size=4000).astype(np.float32), rng.normal(size=9000).astype(np.float32)
    batch = np.zeros((2, 9000), np.float32)
    batch[0, :4000], batch[1] = short, long
    together, lengths = log_mel(batch, np.array([4000, 9000]), config)
    alone, _ = log_mel(short[None], np.array([4000]), config)
    assert lengths.numpy().tolist() == [config.num_frames(4000), config.num_frames(9000)] == [23, 54]
    np.testing.assert_allclose(together[0, :23], alone[0], atol=1e-5)
    assert np.all(together.numpy()[0, 23:] == 0)  # padded frames are zeroed, not log(floor)


def test_audio_shorter_than_one_window_gives_one_frame():
    config = FeatureConfig()
    features, lengths = log_mel(np.ones((1, 100), np.float32), np.array([100]), config)
    assert features.shape[1] == 1 and int(lengths[0]) == 1


def test_normalisation_uses_only_real_frames():
    rng = np.random.default_rng(1)
    features = rng.normal(5.0, 3.0, size=(2, 50, 4)).astype(np.float32)
    features[0, 30:] = 1000.0  # padding garbage must not leak into the statistics
    normalized = normalize_utterances(features, np.array([30, 50])).numpy()
    real = normalized[0, :30]
    np.testing.assert_allclose(real.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(real.std(axis=0), 1, atol=1e-3)
    assert np.all(normalized[0, 30:] == 0)
    np.testing.assert_allclose(normalized[1].mean(axis=0), 0, atol=1e-5)


def test_silence_normalises_to_zeros_not_nan():
    features, lengths = log_mel(np.zeros((1, 16000), np.float32), np.array([16000]), FeatureConfig())
    assert np.all(np.isfinite(normalize_utterances(features, lengths).numpy()))


def test_subsampled_length_is_ceiling_for_ints_and_tensors():
    assert [subsampled_length(n, 3) for n in (1, 3, 4, 6, 7)] == [1, 1, 2, 2, 3]
    assert subsampled_length(np.array([1, 3, 4, 7]), 2).tolist() == [1, 2, 2, 4]


def test_front_end_layers_save_and_load_in_safe_mode(tmp_path):
    waveform = keras.Input(shape=(None,), name="waveform")
    lengths = keras.Input(shape=(), dtype="int32", name="lengths")
    features, frames = LogMelSpectrogram(sample_rate=8000, n_mels=40, mel_scale="htk")((waveform, lengths))
    model = keras.Model([waveform, lengths], [UtteranceNormalization()((features, frames)), frames])
    path = tmp_path / "front_end.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    samples = np.random.default_rng(2).normal(size=(1, 8000)).astype(np.float32)
    expected, restored_out = model([samples, np.array([8000])]), restored([samples, np.array([8000])])
    np.testing.assert_allclose(expected[0], restored_out[0], atol=1e-6)
    assert restored.layers[2].config == FeatureConfig(sample_rate=8000, n_mels=40, mel_scale="htk")


def test_bad_feature_settings_are_named():
    with pytest.raises(ValueError, match="features.mel_scale"):
        FeatureConfig(mel_scale="bark")
    with pytest.raises(ValueError, match="features.n_fft"):
        FeatureConfig(n_fft=128)
