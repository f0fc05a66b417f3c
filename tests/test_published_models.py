"""The model folders published in the repository: complete, self-contained, and decoding as their cards say."""

import json
from pathlib import Path

import pytest

import asr
from asr.recognizer import DECODING_NAME
from tests.conftest import SHARED

REPO = Path(__file__).resolve().parents[1]
AN4 = REPO / "models" / "an4"
MAX_MB = 20  # issue #10's limit for the AN4 folder
# Dev utterances (speakers never trained on): the shipped LM fixes the words greedy decoding gets wrong in the
# last two ("one five twoh five", "eightwo six ..."), and keeps the first, which greedy already gets right.
AN4_DEV = {"an51-mmaf-b": "v f o f h nine four", "cen6-mmap-b": "one five two oh five",
           "cen7-msjr-b": "eight two six eight six eight seven"}


def test_an4_folder_has_what_transcribe_needs_and_no_optimiser_state():
    names = {p.name for p in AN4.iterdir()}
    assert {"model.keras", "config.yaml", "alphabet.json", "lm.arpa", DECODING_NAME, "MODEL_CARD.md",
            "AN4_LICENSE"} <= names
    assert not any(name.endswith(".weights.h5") or name == "checkpoints" for name in names)
    assert sum(p.stat().st_size for p in AN4.iterdir()) < MAX_MB * 2**20
    assert str(REPO) not in (AN4 / DECODING_NAME).read_text() + (AN4 / "config.yaml").read_text()


def test_an4_folder_decodes_with_its_lm_by_default():
    model = asr.load_model(AN4)
    assert model.decoding.decoder == "beam_lm" and model.decoding.lm_path == str(AN4 / "lm.arpa")
    assert model.sample_rate == 16000


@pytest.fixture(scope="module")
def an4_dev_paths() -> list[str]:
    paths = {Path(line.split("\t")[0]).stem: str(SHARED / "an4_wav" / line.split("\t")[0])
             for line in (SHARED / "an4_wav" / "transcripts.tsv").read_text().splitlines()[1:]}
    return [paths[name] for name in AN4_DEV]


def test_an4_model_with_its_lm_fixes_words_greedy_gets_wrong(an4_dev_paths):
    model = asr.load_model(AN4)
    with_lm = [r.text for r in model.transcribe(an4_dev_paths)]
    greedy = [r.text for r in model.transcribe(an4_dev_paths, decoding=asr.DecodingOptions("greedy"))]
    assert with_lm == list(AN4_DEV.values())
    assert greedy[0] == with_lm[0] and greedy[1:] != with_lm[1:]  # the LM changed (and fixed) the others
    assert json.loads((AN4 / "alphabet.json").read_text())["characters"] == model.config.alphabet_characters
    assert "speaker-disjoint" in (AN4 / "MODEL_CARD.md").read_text()
