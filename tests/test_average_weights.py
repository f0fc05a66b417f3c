"""asr.weights.average_weights (pipelines/average_weights.py): the element-wise mean of runs of one architecture."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr.recognizer import load_keras_model
from asr.weights import average_weights

REPO = Path(__file__).resolve().parents[1]


def test_the_mean_is_element_wise_and_keeps_the_dtype():
    first = [np.array([[1.0, 2.0]], np.float32), np.array([4.0], np.float32)]
    second = [np.array([[3.0, 6.0]], np.float32), np.array([0.0], np.float32)]
    mean = average_weights([first, second], ["a", "b"])
    np.testing.assert_array_equal(mean[0], [[2.0, 4.0]])
    np.testing.assert_array_equal(mean[1], [2.0])
    assert mean[0].dtype == np.float32


def test_runs_of_different_architectures_are_refused_by_name():
    with pytest.raises(ValueError, match="wider: its weights do not match base"):
        average_weights([[np.zeros((2, 3))], [np.zeros((2, 4))]], ["base", "wider"])


def test_averaging_a_run_with_its_zeroed_copy_halves_every_weight(trained_run, tmp_path):
    zeroed = tmp_path / "zeroed"
    shutil.copytree(trained_run, zeroed)
    model = load_keras_model(zeroed)[0]
    original = model.get_weights()
    model.set_weights([np.zeros_like(w) for w in original])
    model.save(zeroed / "model.keras")

    out = tmp_path / "soup"
    subprocess.run([sys.executable, str(REPO / "pipelines" / "average_weights.py"), str(trained_run), str(zeroed),
                    "--out", str(out)], check=True, capture_output=True)
    averaged = load_keras_model(out)[0].get_weights()
    for before, after in zip(original, averaged, strict=True):
        np.testing.assert_allclose(after, before / 2, rtol=1e-6)
    assert (out / "config.yaml").is_file() and (out / "alphabet.json").is_file()
