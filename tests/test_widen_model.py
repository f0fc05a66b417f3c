"""asr.weights.widen_network (pipelines/widen_model.py): wider layers that compute what the trained ones did."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr.config import load_config
from asr.model import build_network
from asr.recognizer import load_keras_model
from asr.weights import widen_network

REPO = Path(__file__).resolve().parents[1]


def small_config(cell: str = "lstm", **model):
    overrides = [f"model.cell={cell}", "model.units=8", "model.layers=3", "model.conv_channels=16",
                 "features.n_mels=20", *[f"model.{key}={value}" for key, value in model.items()]]
    return load_config(None, overrides)


def logits(network, features: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return np.asarray(network({"features": features, "feature_lengths": lengths}, training=False)["logits"])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_widened_network_gives_the_same_logits_with_more_units(cell):
    config = small_config(cell)
    trained = build_network(config)  # random weights: every one of them matters to the logits
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 30, config.input_dim)).astype(np.float32)
    lengths = np.array([30, 17], np.int32)
    wider, wider_config = widen_network(trained, config, units=13)
    assert wider_config.model.units == 13 and config.model.units == 8
    assert wider.get_layer(f"bi{cell}_1").forward_layer.units == 13
    assert wider.count_params() > trained.count_params()
    before, after = logits(trained, features, lengths), logits(wider, features, lengths)
    np.testing.assert_allclose(after, before, atol=1e-5)
    # The new units compute something (they are initialised, not dead), so training can grow them.
    recurrent = wider.get_layer(f"bi{cell}_0").forward_layer.cell.kernel.numpy()
    assert np.abs(recurrent[:, 8:13]).sum() > 0


def test_widening_is_refused_for_a_narrower_width_or_layer_norm():
    config = small_config()
    with pytest.raises(ValueError, match="--units 8: must exceed the model's 8"):
        widen_network(build_network(config), config, units=8)
    normed = small_config(layer_norm="true")
    with pytest.raises(ValueError, match="model.layer_norm"):
        widen_network(build_network(normed), normed, units=12)


def test_a_widened_run_transcribes_like_the_original(trained_run, tmp_path):
    out = tmp_path / "wide"
    done = subprocess.run([sys.executable, str(REPO / "pipelines" / "widen_model.py"), str(trained_run),
                           "--units", "80", "--out", str(out)], capture_output=True, text=True, check=True)
    assert "64 -> 80 units" in done.stdout
    original, config, _ = load_keras_model(trained_run)
    widened, wider_config, _ = load_keras_model(out)
    assert wider_config.model.units == 80 and wider_config.features == config.features
    waveform = np.random.default_rng(1).normal(scale=0.1, size=(1, 8000)).astype(np.float32)
    inputs = {"waveform": waveform, "waveform_lengths": np.array([8000], np.int32)}
    np.testing.assert_allclose(np.asarray(widened(inputs)["logits"]), np.asarray(original(inputs)["logits"]),
                               atol=1e-4)
