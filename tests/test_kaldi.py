"""`asr prepare kaldi`: a Kaldi data directory, laid out as a recipe has it (s5/data/train beside the audio)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr import cli
from asr.corpora import CorpusError, prepare, read_kaldi_table
from asr.data import read_manifest
from tests.test_corpora import read_rejects, write_tone


@pytest.fixture
def recipe(tmp_path, monkeypatch) -> Path:
    """corpus/audio/SPEAKER/*.wav and s5/data/train/{wav.scp,text,utt2spk,spk2utt}, sorted as Kaldi sorts them
    (LC_ALL=C), one relative wav.scp path (Kaldi reads it from s5, where the scripts run); returns data/train."""
    audio = tmp_path / "corpus" / "audio"
    for seed, name in enumerate(["spk1/spk1-utt1", "spk1/spk1-utt3", "spk2/spk2-utt1", "spk2/spk2-utt2",
                                 "spk2/spk2-utt3"]):
        write_tone(audio / f"{name}.wav", 1.0, seed=seed)
    data = tmp_path / "s5" / "data" / "train"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text(
        f"spk1-utt1 {audio}/spk1/spk1-utt1.wav\n"
        f"spk1-utt2 {audio}/spk1/spk1-utt2.wav\n"  # no such file
        f"spk1-utt3 sox {audio}/spk1/spk1-utt3.wav -r 16000 -t wav - |\n"  # a command
        "spk2-utt1 ../corpus/audio/spk2/spk2-utt1.wav\n"  # relative to s5
        f"spk2-utt2 {audio}/spk2/spk2-utt2.wav\n"  # no transcript
        f"spk2-utt3 {audio}/spk2/spk2-utt3.wav\n")  # not in utt2spk
    (data / "text").write_text("spk1-utt1 YES\nspk1-utt2 NO\nspk1-utt3 ONE TWO\nspk2-utt1 GO LEFT\n"
                               "spk2-utt3 STOP\nspk3-utt1 ORPHAN\n")  # spk3-utt1: no audio
    (data / "utt2spk").write_text("spk1-utt1 spk1\nspk1-utt2 spk1\nspk1-utt3 spk1\nspk2-utt1 spk2\nspk2-utt2 spk2\n"
                                  "spk3-utt1 spk3\n")
    (data / "spk2utt").write_text("spk1 spk1-utt1 spk1-utt2 spk1-utt3\nspk2 spk2-utt1 spk2-utt2\nspk3 spk3-utt1\n")
    monkeypatch.chdir(tmp_path / "s5")
    return data


def test_kaldi_rows_and_rejects_with_reasons(recipe, tmp_path):
    out, rejects = tmp_path / "out" / "train.jsonl", tmp_path / "out" / "rejects.jsonl"
    summary = prepare("kaldi", recipe, out, rejects, progress=False)
    rows = read_manifest(out)
    audio = tmp_path / "corpus" / "audio"
    assert [(Path(r.audio_filepath), r.text, r.original_text, r.speaker, round(r.duration, 3)) for r in rows] == [
        (audio / "spk1" / "spk1-utt1.wav", "yes", "YES", "spk1", 1.0),
        (audio / "spk2" / "spk2-utt1.wav", "go left", "GO LEFT", "spk2", 1.0)]
    assert (summary.kept, summary.rejected, summary.speakers) == (2, 5, 2)
    by_text = {r["text"]: r for r in read_rejects(rejects)}
    assert by_text["NO"] == {"source": str(audio / "spk1" / "spk1-utt2.wav"), "text": "NO",
                             "reason": "file does not exist"}  # missing audio
    assert by_text["ONE TWO"]["reason"] == (
        f"wav.scp entry is a command, not a file (spk1-utt3: 'sox {audio}/spk1/spk1-utt3.wav -r 16000 -t wav - |'): "
        "commands are not run; write their audio to files and list those")
    assert by_text[""]["reason"] == "utterance without text (spk2-utt2 is in wav.scp, not in text)"
    assert by_text["STOP"]["reason"] == "utterance without speaker (spk2-utt3 is not in utt2spk)"
    assert by_text["ORPHAN"] == {"source": str(recipe / "text"), "text": "ORPHAN",
                                 "reason": "utterance without audio (spk3-utt1 is in text, not in wav.scp)"}
    assert dict(summary.reasons) == {"file does not exist": 1, "wav.scp entry is a command, not a file": 1,
                                     "utterance without text": 1, "utterance without speaker": 1,
                                     "utterance without audio": 1}


def test_segmented_directories_are_refused_by_the_cli(recipe, tmp_path, capsys):
    (recipe / "segments").write_text("spk1-utt1 rec1 0.00 0.50\n")
    assert cli.main(["prepare", "kaldi", str(recipe), "--out", str(tmp_path / "m.jsonl"), "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"asr prepare: error: {recipe / 'segments'}: segments are not supported yet: a manifest row is a whole "
        "audio file (it has no start offset), so each wav.scp entry must be one utterance\n")
    assert not (tmp_path / "m.jsonl").exists()


def test_cli_prepares_a_kaldi_directory_and_exits_1_for_rejects(recipe, tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    assert cli.main(["prepare", "kaldi", str(recipe), "--out", str(out), "--quiet"]) == 1
    assert "kept 2 utterances" in capsys.readouterr().out and len(out.read_text().splitlines()) == 2


def test_a_directory_without_the_kaldi_files_or_with_a_repeated_id_is_an_error(recipe, tmp_path):
    (recipe / "utt2spk").unlink()
    with pytest.raises(CorpusError, match=r"not a Kaldi data directory: no utt2spk \(it needs wav.scp, text, "
                                          r"utt2spk\)"):
        prepare("kaldi", recipe, tmp_path / "m.jsonl", progress=False)
    (recipe / "text").write_text("a-1 yes\n\na-2 no\na-1 again\n")
    with pytest.raises(CorpusError, match=r"text:4: utterance id 'a-1' again \(first on line 1\)"):
        read_kaldi_table(recipe / "text")


def test_kaldi_tables_keep_the_rest_of_the_line(tmp_path):
    path = tmp_path / "text"
    path.write_text("u1   HELLO   THERE  world\nu2\n")
    assert read_kaldi_table(path) == {"u1": "HELLO   THERE  world", "u2": ""}
    path.write_bytes("u1 caf\xe9\n".encode("latin-1"))
    with pytest.raises(CorpusError, match="text: not UTF-8 text"):
        read_kaldi_table(path)


def test_a_manifest_written_as_a_kaldi_directory_reads_back_as_the_same_rows(tmp_path, monkeypatch):
    from asr.data import Utterance, write_manifest
    from asr.kaldi import write_kaldi_dir

    audio = [write_tone(tmp_path / "audio" / f"{name}.wav", 1.0, seed=n) for n, name in enumerate(["b", "a", "a2"])]
    rows = [Utterance(str(audio[0]), 1.0, "go  left", speaker="spk 2"), Utterance(str(audio[1]), 1.0, "yes",
            speaker="spk1"), Utterance(str(audio[2]), 1.0, "no")]  # a space in a speaker; a row without one
    write_manifest(tmp_path / "m.jsonl", rows)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["export-data", "kaldi", str(tmp_path / "m.jsonl"), str(tmp_path / "data")]) == 0
    data = tmp_path / "data"
    assert (data / "utt2spk").read_text() == "a2 a2\nspk1-a spk1\nspk_2-b spk_2\n"  # C-locale order
    assert (data / "spk2utt").read_text() == "a2 a2\nspk1 spk1-a\nspk_2 spk_2-b\n"
    assert (data / "text").read_text() == "a2 no\nspk1-a yes\nspk_2-b go left\n"
    summary = prepare("kaldi", data, tmp_path / "back.jsonl")
    assert summary.rejected == 0
    back = {Path(r.audio_filepath).name: (r.text, r.speaker) for r in read_manifest(tmp_path / "back.jsonl")}
    assert back == {"b.wav": ("go left", "spk_2"), "a.wav": ("yes", "spk1"), "a2.wav": ("no", "a2")}
    with pytest.raises(ValueError, match="row 1: no audio_filepath"):
        write_kaldi_dir([Utterance("", 1.0, "x")], tmp_path / "bad")
