"""Shared fixtures: a tiny model trained once per test session on four FSDD digits (about 15 s on 2 cores)."""

import importlib.util
import sys
from pathlib import Path

import pytest

from asr.audio import load_audio
from asr.config import load_config
from asr.data import Utterance, write_manifest
from asr.lm import build_lm

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DIGITS = ["zero", "one", "two", "three"]
LM_TEXT = "the cat sat on the mat\nthe cat sat down\na cat sat there\nthe dog sat on a log\n"


def fsdd_rows(speaker: str, takes=range(1)) -> list[Utterance]:
    rows = []
    for digit, word in enumerate(DIGITS):
        for take in takes:
            path = SHARED / "fsdd" / "recordings" / f"{digit}_{speaker}_{take}.wav"
            rows.append(Utterance(str(path), len(load_audio(path, 8000)) / 8000, word, speaker=speaker))
    return rows


@pytest.fixture
def pipeline_script(monkeypatch):
    """Import pipelines/NAME.py as the module NAME, registered in sys.modules for the test (dataclasses look
    their module up there)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, REPO / "pipelines" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory) -> Path:
    """A word 3-gram ARPA LM of LM_TEXT (KenLM's lmplz through asr.lm)."""
    folder = tmp_path_factory.mktemp("lm")
    (folder / "text.txt").write_text(LM_TEXT)
    build_lm(folder / "text.txt", folder / "lm.arpa", order=3)
    return folder / "lm.arpa"


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A run directory whose model.keras transcribes theo's "zero".."three" (take 0) exactly."""
    from asr.train import train

    folder = tmp_path_factory.mktemp("trained")
    manifest = folder / "theo.jsonl"
    write_manifest(manifest, fsdd_rows("theo") * 8)
    config = load_config(None, [
        f"data.train_manifest={manifest}", f"data.dev_manifest={manifest}", "data.batch_size=4",
        "features.sample_rate=8000", "features.n_mels=40", "model.units=64", "model.layers=1",
        "model.conv_channels=64", "model.dropout=0.0", "augment.freq_masks=0", "augment.time_masks=0",
        "optim.learning_rate=0.005", "optim.warmup_steps=10", "optim.schedule=constant", "optim.weight_decay=0",
        "train.early_stopping_patience=null", "train.epochs=12"])
    state = train(config, folder / "run", verbose=0).state
    assert state.best_cer == 0.0, "the session model did not learn its four digits"
    return folder / "run"
