"""A model folder's decoding.yaml (beam + its shipped LM) is the default; `--decoder greedy` opts out."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from asr import cli
from asr.audio import write_audio
from asr.backend import tf
from asr.config import load_config
from asr.decoding import DecoderError, DecodingOptions
from asr.lm import build_lm
from asr.recognizer import (
    DECODING_NAME,
    ModelError,
    Recognizer,
    load_model,
    read_decoding_options,
    write_decoding_options,
)
from tests.conftest import LM_TEXT
from tests.test_decoding import cat_or_cap

RATE = 8000


@pytest.fixture
def lm_folder(tmp_path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "text.txt").write_text(LM_TEXT)
    build_lm(tmp_path / "text.txt", folder / "lm.arpa", order=3)
    write_decoding_options(folder, DecodingOptions("beam_lm", beam_width=16, lm_path=str(folder / "lm.arpa"),
                                                   alpha=0.5, beta=1.0))
    return folder


def test_decoding_options_round_trip_with_the_lm_named_relative_to_the_folder(lm_folder):
    stored = (lm_folder / DECODING_NAME).read_text()
    assert "lm_path: lm.arpa" in stored and str(lm_folder) not in stored  # the folder can move
    moved = lm_folder.parent / "moved"
    shutil.move(lm_folder, moved)
    options = read_decoding_options(moved)
    assert options == DecodingOptions("beam_lm", beam_width=16, lm_path=str(moved / "lm.arpa"), alpha=0.5, beta=1.0)


def test_vocabulary_and_unseen_word_offset_round_trip(lm_folder):
    options = DecodingOptions("beam_lm", lm_path=str(lm_folder / "lm.arpa"), vocabulary="closed", unk_offset=-2.5)
    write_decoding_options(lm_folder, options)
    assert read_decoding_options(lm_folder) == options


def test_a_folder_without_decoding_options_decodes_greedily(tmp_path):
    assert read_decoding_options(tmp_path) == DecodingOptions()
    assert DecodingOptions().decoder == "greedy"


def test_bad_decoding_options_name_the_file_and_the_problem(lm_folder):
    path = lm_folder / DECODING_NAME
    path.write_text("decoder: beam_lm\nlm_path: missing.arpa\n")
    with pytest.raises(ModelError, match="decoding.yaml: lm_path 'missing.arpa' does not exist"):
        read_decoding_options(lm_folder)
    path.write_text("decoder: beam\nbeam_size: 8\n")
    with pytest.raises(ModelError, match=r"decoding.yaml: unknown key\(s\) beam_size"):
        read_decoding_options(lm_folder)
    path.write_text("decoder: beam\nalpha: .nan\n")
    with pytest.raises(ModelError, match="decoding.yaml: alpha must be a finite number"):
        read_decoding_options(lm_folder)
    with pytest.raises(DecoderError, match="needs an ARPA language model"):
        DecodingOptions("beam_lm")


def test_an_lm_outside_the_folder_is_refused(tmp_path, lm_folder):
    with pytest.raises(ModelError, match="copy the LM into"):
        write_decoding_options(tmp_path, DecodingOptions("beam_lm", lm_path=str(lm_folder / "lm.arpa")))


def test_a_real_model_folder_loads_its_decoding_options(trained_run, lm_folder):
    for name in ("model.keras", "config.yaml"):
        shutil.copy(trained_run / name, lm_folder / name)
    model = load_model(lm_folder)
    assert model.decoding.decoder == "beam_lm"
    assert model.decoding.lm_path == str(lm_folder / "lm.arpa")
    assert load_model(trained_run).decoding == DecodingOptions()


def fixed_logits_model(folder: Path) -> Recognizer:
    """Whatever the audio, the logits of "the cat sat" with cat's "t" leaning to "p" (greedy says "cap")."""
    config = load_config(None, [f"features.sample_rate={RATE}", "model.subsampling=3"])
    logits = cat_or_cap().astype(np.float32)

    def call(waveforms, lengths):
        batch = len(lengths)
        return tf.constant(np.repeat(logits[None], batch, axis=0)), tf.fill([batch], len(logits))

    return Recognizer(config, folder, call, decoding=read_decoding_options(folder))


@pytest.mark.parametrize(("extra", "expected"), [
    ([], "the cat sat"),  # the folder's LM, by default
    (["--decoder", "greedy"], "the cap sat"),  # opted out
    (["--decoder", "beam"], "the cap sat"),  # a beam without the LM changes nothing here
    (["--alpha", "0"], "the cap sat"),  # the folder's decoder with the LM weighed out
    (["--alpha", "0", "--unk-offset", "-3"], "the cat sat"),  # no LM weight, but "cap" is an unseen word
    (["--alpha", "0", "--vocabulary", "closed"], "the cat sat"),  # no LM weight, but only the LM's words
    (["--token-beam", "1"], "the cap sat"),  # only each frame's likeliest class: the LM has nothing to choose
])
def test_transcribe_uses_the_model_folders_lm_unless_told_otherwise(tmp_path, lm_folder, monkeypatch, capsys,
                                                                    extra, expected):
    monkeypatch.setattr("asr.recognizer.load_model", lambda path: fixed_logits_model(lm_folder))
    audio = tmp_path / "any.wav"
    write_audio(audio, np.zeros(RATE, np.float32), RATE)
    out = tmp_path / "out.jsonl"
    # --vad off: the stand-in audio is silence, which the VAD would rightly never decode
    assert cli.main(["transcribe", str(audio), "--model", str(lm_folder), "--out", str(out), "--quiet", "--vad", "off",
                     *extra]) == 0
    assert json.loads(out.read_text())["text"] == expected


def test_an_lm_on_the_command_line_implies_the_lm_decoder(tmp_path, lm_folder, monkeypatch):
    (lm_folder / DECODING_NAME).unlink()  # a model without decoding defaults: greedy
    monkeypatch.setattr("asr.recognizer.load_model", lambda path: fixed_logits_model(lm_folder))
    audio = tmp_path / "any.wav"
    write_audio(audio, np.zeros(RATE, np.float32), RATE)
    for extra, expected in [([], "the cap sat"), (["--lm", str(lm_folder / "lm.arpa")], "the cat sat")]:
        out = tmp_path / f"out{len(extra)}.jsonl"
        assert cli.main(["transcribe", str(audio), "--model", str(lm_folder), "--out", str(out), "--quiet",
                         "--vad", "off", *extra]) == 0
        assert json.loads(out.read_text())["text"] == expected
