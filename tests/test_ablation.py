"""pipelines/ablation.py: each cell gets the width that matches the LSTM's parameter budget."""

import importlib.util
from pathlib import Path

import pytest

from asr.config import load_config
from asr.model import build_network

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("ablation", ROOT / "pipelines" / "ablation.py")
ablation = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ablation)


@pytest.mark.parametrize("cell", ["gru", "rnn", "irnn"])
def test_matched_units_give_an_equal_parameter_budget(cell):
    config = ROOT / "configs" / "tiny.yaml"
    budget = build_network(load_config(config)).count_params()
    units = ablation.matched_units(config, [], cell, budget)
    params = lambda u: build_network(load_config(config, [f"model.cell={cell}", f"model.units={u}"])).count_params()  # noqa: E731
    assert abs(params(units) - budget) / budget < 0.02
    assert abs(params(units) - budget) <= min(abs(params(units - 1) - budget), abs(params(units + 1) - budget))
