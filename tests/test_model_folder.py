"""asr.model_folder: the files of a model folder, found, read and written in one place."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from asr import model_folder
from asr.config import load_config, save_config
from asr.decoding import DecodingOptions
from asr.model_folder import (
    ModelError,
    locate,
    read_config,
    read_decoding_options,
    read_vad_options,
    write_config,
    write_decoding_options,
    write_vad_options,
)
from asr.vad import VadOptions
from tests.conftest import SHARED
from tests.test_api import fresh_python

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = [REPO / "asr" / "assets" / "default_model", REPO / "models" / "an4"]
CHARACTERS = " abcdefghijklmnopqrstuvwxyz'"


def test_reading_a_model_folder_does_not_load_tensorflow(tmp_path):
    result = fresh_python("import sys, asr.model_folder\n"
                          "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


# --- decoding.yaml and vad.yaml ------------------------------------------------------------------------------


def test_decoding_options_round_trip_with_the_lm_by_its_name(tmp_path):
    (tmp_path / "lm.arpa").write_text("\\data\\\n")
    options = DecodingOptions("beam_lm", beam_width=8, token_beam=6, lm_path=str(tmp_path / "lm.arpa"), alpha=0.7,
                              beta=1.5, vocabulary="closed", unk_offset=-3.0, confidence_temperature=1.25,
                              confidence_bias=-0.5)
    assert write_decoding_options(tmp_path, options) == tmp_path / "decoding.yaml"
    stored = yaml.safe_load((tmp_path / "decoding.yaml").read_text())
    assert stored["lm_path"] == "lm.arpa" and stored["beam_width"] == 8 and stored["confidence_bias"] == -0.5
    assert read_decoding_options(tmp_path) == options
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoding.yaml", "lm.arpa"]  # no temporary left


def test_decoding_yaml_naming_a_missing_lm_is_refused_naming_both(tmp_path):
    (tmp_path / "decoding.yaml").write_text("decoder: beam_lm\nlm_path: lm.arpa\n")
    with pytest.raises(ModelError, match=r"decoding.yaml: lm_path 'lm.arpa' does not exist"):
        read_decoding_options(tmp_path)


def test_vad_options_round_trip_storing_only_what_differs_from_the_defaults(tmp_path):
    options = VadOptions(method="off", context_seconds=0.5, pad_seconds=0.5)
    assert write_vad_options(tmp_path, options) == tmp_path / "vad.yaml"
    assert yaml.safe_load((tmp_path / "vad.yaml").read_text()) == {"method": "off", "pad_seconds": 0.5,
                                                                    "context_seconds": 0.5}
    assert read_vad_options(tmp_path) == options
    write_vad_options(tmp_path, VadOptions())
    assert yaml.safe_load((tmp_path / "vad.yaml").read_text()) in (None, {})
    assert read_vad_options(tmp_path) == VadOptions()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vad.yaml"]


def test_a_folder_without_settings_files_has_the_defaults(tmp_path):
    assert read_decoding_options(tmp_path) == DecodingOptions()
    assert read_vad_options(tmp_path) == VadOptions()


# --- locating the model and its config -----------------------------------------------------------------------


def test_locate_finds_the_model_and_config_of_a_run_dir_a_published_folder_and_a_bare_keras_file(tmp_path,
                                                                                                 trained_run):
    assert locate(trained_run) == (trained_run / "model.keras", trained_run / "config.yaml")
    for folder in PUBLISHED:
        assert locate(folder) == (folder / "model.keras", folder / "config.yaml")
    bare = tmp_path / "stage3.keras"
    shutil.copy(trained_run / "model.keras", bare)
    shutil.copy(trained_run / "config.yaml", tmp_path / "config.yaml")
    assert locate(bare) == (bare, tmp_path / "config.yaml")
    assert locate(str(bare)) == (bare, tmp_path / "config.yaml")


def test_locate_names_what_is_missing(tmp_path):
    with pytest.raises(ModelError, match="missing: model not found"):
        locate(tmp_path / "missing")
    with pytest.raises(ModelError, match="expected a run directory with model.keras"):
        locate(tmp_path)  # a folder without model.keras
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelError, match="expected a run directory"):
        locate(tmp_path / "notes.txt")
    (tmp_path / "model.keras").write_bytes(b"")
    with pytest.raises(ModelError, match="model.keras: no config.yaml beside it"):
        locate(tmp_path)


def test_paths_of_a_run_directory(tmp_path, trained_run):
    assert model_folder.state_file(tmp_path) == tmp_path / "checkpoints" / "state.json"
    assert model_folder.config_file(tmp_path) == tmp_path / "config.yaml"
    assert model_folder.model_file(tmp_path) == tmp_path / "model.keras"
    assert json.loads(model_folder.state_file(trained_run).read_text())["finished"] is True
    assert model_folder.model_source(None) == model_folder.BUNDLED_MODEL == PUBLISHED[0]
    assert model_folder.model_source("runs/x") == Path("runs/x")


# --- config.yaml and alphabet.json ---------------------------------------------------------------------------


def test_write_config_writes_the_alphabet_beside_the_config(tmp_path):
    config = load_config(None, ["features.sample_rate=8000"])
    write_config(tmp_path / "new", config)
    assert json.loads((tmp_path / "new" / "alphabet.json").read_text()) == {"blank_index": 0, "characters": CHARACTERS}
    assert read_config(tmp_path / "new" / "config.yaml") == config
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["alphabet.json", "config.yaml"]


def test_an_alphabet_json_that_disagrees_with_the_config_is_refused_by_name(tmp_path):
    config = load_config(None, ["alphabet_characters=abc"])
    write_config(tmp_path, config)
    (tmp_path / "alphabet.json").write_text(json.dumps({"blank_index": 0, "characters": "abcd"}))
    with pytest.raises(ModelError, match=r"alphabet.json: characters 'abcd' differ from config.yaml's alphabet "
                                         r"'abc'"):
        read_config(tmp_path / "config.yaml")
    (tmp_path / "alphabet.json").write_text("{not json")
    with pytest.raises(ModelError, match="alphabet.json: not a readable alphabet"):
        read_config(tmp_path / "config.yaml")
    (tmp_path / "alphabet.json").write_text(json.dumps({"blank_index": 3, "characters": "abc"}))
    with pytest.raises(ModelError, match="alphabet.json: not a readable alphabet.*blank must be index 0"):
        read_config(tmp_path / "config.yaml")
    (tmp_path / "alphabet.json").unlink()  # none at all: the config alone is the alphabet
    assert read_config(tmp_path / "config.yaml").alphabet_characters == "abc"


def test_published_folders_alphabets_agree_with_their_configs():
    for folder in PUBLISHED:
        assert read_config(folder / "config.yaml").alphabet_characters == CHARACTERS
        assert json.loads((folder / "alphabet.json").read_text())["characters"] == CHARACTERS


def test_a_config_that_does_not_load_is_a_model_error_naming_it(tmp_path):
    (tmp_path / "config.yaml").write_text("model: [1, 2]\n")
    with pytest.raises(ModelError, match="config.yaml: "):
        read_config(tmp_path / "config.yaml")


def test_loading_a_model_whose_alphabet_json_disagrees_fails_naming_it(tmp_path, trained_run):
    from asr.recognizer import load_model

    folder = tmp_path / "model"
    shutil.copytree(trained_run, folder, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    (folder / "alphabet.json").write_text(json.dumps({"blank_index": 0, "characters": CHARACTERS[::-1]}))
    with pytest.raises(ModelError, match=f"{folder / 'alphabet.json'}: characters"):
        load_model(folder)


# --- export needs the network and config only ----------------------------------------------------------------


def test_a_folder_whose_lm_is_missing_still_exports(tmp_path, trained_run):
    from asr import cli
    from asr.audio import load_audio
    from asr.export import export
    from asr.recognizer import load_keras_model, load_model

    folder = tmp_path / "model"
    shutil.copytree(trained_run, folder, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    (folder / "lm.arpa").write_text("\\data\\\n")
    write_decoding_options(folder, DecodingOptions("beam_lm", lm_path=str(folder / "lm.arpa")))
    (folder / "lm.arpa").unlink()
    with pytest.raises(ModelError, match="does not exist"):  # transcribing needs the LM decoding.yaml names
        load_model(folder)

    saved = export(folder, "savedmodel", tmp_path / "saved")
    assert {"saved_model.pb", "config.yaml", "alphabet.json"} <= {p.name for p in saved.iterdir()}
    assert load_config(saved / "config.yaml") == load_config(trained_run / "config.yaml")
    served = load_model(saved)
    assert served.keras_model is None and served.folder == saved and served.decoding == DecodingOptions()
    waveform = load_audio(SHARED / "fsdd" / "recordings" / "1_theo_0.wav", 8000)
    keras_model, _, _ = load_keras_model(folder)
    expected = keras_model({"waveform": waveform[None], "waveform_lengths": np.array([len(waveform)], np.int32)},
                           training=False)["logits"].numpy()[0]
    np.testing.assert_allclose(served.logits([waveform])[0], expected, atol=1e-5)
    assert served.transcribe(waveform, sample_rate=8000).text == "one"

    (folder / "decoding.yaml").unlink()  # and no decoding.yaml at all: the CLI exports the same way
    assert cli.main(["export", "--model", str(folder), "--format", "savedmodel", "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "saved_model.pb").is_file()


def test_export_refuses_an_exported_model_and_a_folder_without_a_model(tmp_path, trained_run):
    from asr.export import ExportError, export

    saved = export(trained_run, "savedmodel", tmp_path / "saved")
    with pytest.raises(ExportError, match="not from an already exported one"):
        export(saved, "savedmodel", tmp_path / "again")
    with pytest.raises(ModelError, match="model not found"):
        export(tmp_path / "missing", "savedmodel", tmp_path / "out")


def test_a_recognizers_folder_is_where_its_settings_are_read(tmp_path, trained_run):
    from asr.recognizer import load_model

    assert load_model(trained_run).folder == trained_run
    bare = tmp_path / "stage3.keras"
    shutil.copy(trained_run / "model.keras", bare)
    save_config(load_config(trained_run / "config.yaml"), tmp_path / "config.yaml")
    write_vad_options(tmp_path, VadOptions(context_seconds=0.4))
    model = load_model(bare)
    assert model.folder == tmp_path and model.source == bare and model.vad == VadOptions(context_seconds=0.4)
