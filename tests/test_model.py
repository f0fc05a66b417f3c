"""The acoustic model: cuDNN eligibility layer by layer, exact output lengths, masking, safe-mode saving."""

from pathlib import Path

import numpy as np
import pytest

from asr.backend import keras
from asr.config import CELLS, load_config
from asr.features import subsampled_length
from asr.model import build_inference_model, build_network, cudnn_violations

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def small(*overrides):
    return load_config(None, ["model.units=16", "model.layers=2", "model.conv_channels=8", "features.n_mels=20",
                              *overrides])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_meet_every_cudnn_condition(path):
    config = load_config(path)
    network = build_network(config)
    recurrent = [layer for layer in network.layers if isinstance(layer, keras.layers.Bidirectional)]
    assert len(recurrent) == config.model.layers
    for layer in recurrent:
        for rnn in (layer.forward_layer, layer.backward_layer):
            assert isinstance(rnn, {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[config.model.cell])
            assert config.model.cell == "lstm" or rnn.cell.reset_after is True
            assert rnn.cell.activation is keras.activations.tanh
            assert rnn.cell.recurrent_activation is keras.activations.sigmoid
            assert rnn.cell.recurrent_dropout == 0 and rnn.cell.dropout == 0
            assert rnn.unroll is False and rnn.cell.use_bias is True
    assert cudnn_violations(network) == []


@pytest.mark.parametrize("cell", CELLS)
def test_each_cell_builds_and_gated_cells_are_cudnn_eligible(cell):
    network = build_network(small(f"model.cell={cell}"))
    assert cudnn_violations(network) == []
    inner = network.get_layer(f"bi{cell}_0").forward_layer
    expected = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN,
                "irnn": keras.layers.SimpleRNN}[cell]
    assert isinstance(inner, expected)
    if cell == "gru":
        assert inner.cell.reset_after is True
    if cell == "irnn":
        assert inner.cell.activation is keras.activations.relu
        np.testing.assert_array_equal(inner.cell.recurrent_kernel.numpy(), np.eye(16))
        assert float(np.abs(inner.cell.bias.numpy()).max()) == 0.0


def test_violations_are_reported():
    network = build_network(small())
    network.get_layer("bilstm_0").forward_layer.cell.recurrent_dropout = 0.2
    assert cudnn_violations(network) == ["bilstm_0/forward_lstm_0: recurrent_dropout is 0 fails"]


@pytest.mark.parametrize(("kind", "factor"), [("conv", 1), ("conv", 2), ("conv", 3), ("conv", 4), ("stack", 2),
                                              ("stack", 3), ("stack", 4)])
def test_output_lengths_are_exact(kind, factor):
    network = build_network(small(f"model.subsampling_kind={kind}", f"model.subsampling={factor}"))
    lengths = np.array([37, 1, 20, 36])
    features = np.random.default_rng(0).normal(size=(4, 37, 20)).astype(np.float32)
    outputs = network({"features": features, "feature_lengths": lengths})
    assert outputs["output_lengths"].numpy().tolist() == [subsampled_length(int(n), factor) for n in lengths]
    assert outputs["logits"].shape == (4, subsampled_length(37, factor), 29)


@pytest.mark.parametrize("kind", ["conv", "stack"])
def test_padding_does_not_change_an_utterances_logits(kind):
    """Masks from true lengths: a short utterance gives the same logits alone and padded in a batch."""
    network = build_network(small(f"model.subsampling_kind={kind}", "model.subsampling=2"))
    rng = np.random.default_rng(1)
    short = rng.normal(size=(1, 21, 20)).astype(np.float32)
    batch = np.zeros((2, 40, 20), np.float32)
    batch[0, :21] = short[0]
    batch[1] = rng.normal(size=(40, 20))
    alone = network({"features": short, "feature_lengths": np.array([21])})["logits"].numpy()
    padded = network({"features": batch, "feature_lengths": np.array([21, 40])})["logits"].numpy()
    np.testing.assert_allclose(padded[0, :11], alone[0], atol=1e-5)


def test_inference_model_saves_and_reloads_in_safe_mode(tmp_path):
    config = small("features.sample_rate=8000")
    model = build_inference_model(build_network(config), config)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    waveform = np.random.default_rng(2).normal(size=(2, 8000)).astype(np.float32)
    inputs = {"waveform": waveform, "waveform_lengths": np.array([8000, 5000])}
    expected, actual = model(inputs), restored(inputs)
    np.testing.assert_array_equal(expected["logits"].numpy(), actual["logits"].numpy())
    frames = [config.features.num_frames(n) for n in (8000, 5000)]  # 98 and 61 at 8 kHz, 10 ms hop
    assert actual["output_lengths"].numpy().tolist() == [subsampled_length(n, 2) for n in frames] == [49, 31]
