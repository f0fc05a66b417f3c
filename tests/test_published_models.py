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


BUNDLED = REPO / "asr" / "assets" / "default_model"
BUNDLED_MAX_MB = 25  # issue #11's limit
SAMPLES = REPO / "asr" / "samples"


def bundled_samples() -> dict[str, str]:
    """The demo's readable samples: file path -> reference text."""
    lines = (SAMPLES / "transcripts.tsv").read_text().splitlines()[1:]
    rows = [line.split("\t") for line in lines]
    return {str(SAMPLES / path): text for path, text, *_ in rows if "broken" not in path}


def test_bundled_folder_has_what_transcribe_needs_and_no_optimiser_state():
    names = {p.name for p in BUNDLED.iterdir()}
    assert {"model.keras", "config.yaml", "alphabet.json", "lm.arpa", DECODING_NAME, "vad.yaml", "MODEL_CARD.md",
            "AN4_LICENSE", "SPEECH_COMMANDS_LICENSE"} <= names
    assert not any(name.endswith(".weights.h5") or name == "checkpoints" for name in names)
    assert sum(p.stat().st_size for p in BUNDLED.iterdir()) < BUNDLED_MAX_MB * 2**20
    assert str(REPO) not in (BUNDLED / DECODING_NAME).read_text() + (BUNDLED / "config.yaml").read_text()


def test_bundled_model_decodes_with_its_lm_by_default():
    model = asr.load_model()
    assert model.decoding.decoder == "beam_lm" and model.decoding.lm_path == str(BUNDLED / "lm.arpa")
    assert model.sample_rate == 8000
    assert model.decoding.confidence_temperature != 1.0  # calibrated on dev
    assert model.vad.context_seconds == 0.5  # its vad.yaml: measured on dev against the 0.1 s default
    assert model.vad.pad_seconds == 0.5  # and every word decoded there is kept (first and last letters fire at edges)


def test_bundled_model_transcribes_the_bundled_digit_samples_at_8_and_16_khz():
    from asr.audio import load_audio, resample

    samples = bundled_samples()
    digits = {path: text for path, text in samples.items() if Path(path).name[0].isdigit()}
    model = asr.load_model()
    texts = {path: result.text for path, result in zip(samples, model.transcribe(list(samples)), strict=True)}
    assert len(digits) == 6 and {path: texts[path] for path in digits} == digits  # theo is an unseen speaker
    wideband = [resample(load_audio(path, 8000), 8000, 16000) for path in digits]
    assert [r.text for r in model.transcribe(wideband, sample_rate=16000)] == list(digits.values())
