"""`asr evaluate`: transcribe a manifest with a model, then score it, in one command."""

import json
import subprocess
import sys

import pytest

from asr import cli
from asr.data import read_manifest, write_manifest
from tests.conftest import SHARED, fsdd_rows


def test_evaluate_transcribes_and_scores_a_manifest(trained_run, tmp_path):
    rows = fsdd_rows("theo")
    rows[3].text = "three point"  # one reference word the model cannot say: exactly one deletion
    manifest = tmp_path / "test.jsonl"
    write_manifest(manifest, rows)
    report = tmp_path / "report"
    command = [sys.executable, "-m", "asr", "evaluate", "--manifest", str(manifest), "--model", str(trained_run),
               "--report", str(report), "--quiet", "--bootstrap", "200"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    data = json.loads((report / "report.json").read_text())["summary"]
    assert data["wer"] == 1 / 5  # 5 reference words, 1 deleted
    assert data["words"]["deletions"] == 1 and data["words"]["substitutions"] == 0
    assert len((report / "transcripts.jsonl").read_text().splitlines()) == 4
    # Published reports hold no absolute path: transcripts name audio relative to their folder (matched exactly,
    # not by file name), reports relative to the current folder.
    rows = [json.loads(line) for line in (report / "transcripts.jsonl").read_text().splitlines()]
    assert not any(row["audio_filepath"].startswith("/") for row in rows)
    full = json.loads((report / "report.json").read_text())
    assert full["inputs"]["match_method"] != "file name (no resolved path matched)"
    assert not any(u["audio_filepath"].startswith("/") for u in full["utterances"])
    assert (report / "report.html").stat().st_size > 1000 and (report / "report.md").exists()
    assert "WER 20.00%" in result.stdout


LONG_TEXT = "zero one two three four five six seven eight nine"  # 49 characters: far more than ~0.5 s can emit


def test_eval_purpose_keeps_an_infeasible_reference_and_evaluate_scores_it(trained_run, tmp_path, capsys):
    rows = fsdd_rows("theo")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = ["path\ttext\tspeaker"] + [f"{row.audio_filepath}\t{row.text}\ttheo" for row in rows]
    unsayable = SHARED / "fsdd" / "recordings" / "0_theo_1.wav"  # about half a second
    lines.append(f"{unsayable}\t{LONG_TEXT}\ttheo")  # a held-out prompt the model cannot emit
    (corpus / "transcripts.tsv").write_text("\n".join(lines) + "\n")
    config = str(trained_run / "config.yaml")

    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    assert cli.main(["prepare", "tsv", str(corpus), "--out", str(train), "--config", config, "--quiet"]) == 1
    assert "label too long for its audio" in capsys.readouterr().out
    assert len(read_manifest(train)) == 4  # training refuses it, as before
    assert cli.main(["prepare", "tsv", str(corpus), "--out", str(test), "--config", config, "--quiet",
                     "--purpose", "eval"]) == 0
    out = capsys.readouterr().out
    assert "kept 5 utterances" in out and "rejected 0" in out
    assert "kept 1 the model cannot emit" in out and "label too long for its audio" in out
    assert [row.text for row in read_manifest(test)][-1] == LONG_TEXT

    report = tmp_path / "report"
    assert cli.main(["evaluate", "--manifest", str(test), "--model", str(trained_run), "--report", str(report),
                     "--quiet", "--bootstrap", "50"]) == 0
    assert "1 reference(s) the model cannot emit even in principle" in capsys.readouterr().out
    data = json.loads((report / "report.json").read_text())
    assert data["summary"]["utterances"] == len(read_manifest(test)) == 5  # every reference row scored
    assert data["summary"]["infeasible_references"] == 1
    infeasible = [u for u in data["utterances"] if u["infeasible"]]
    assert len(infeasible) == 1 and infeasible[0]["reference"] == LONG_TEXT
    assert infeasible[0]["infeasible"].startswith("label too long for its audio")
    assert data["summary"]["words"]["ref"] == 4 + 10 and data["summary"]["wer"] >= 9 / 14  # its words count
    assert any("cannot emit even in principle" in note for note in data["notes"])
    assert data["confidence"]["words"] > 0 and "auroc" in data["confidence"] and "ece" in data["confidence"]
    assert 'alt="Reliability diagram"' in (report / "report.html").read_text()

    # `asr score` alone does not know the model: the count is unknown unless --config names it.
    hyp = str(report / "transcripts.jsonl")
    assert cli.main(["score", "--ref", str(test), "--hyp", hyp, "--report", str(tmp_path / "s1")]) == 0
    assert json.loads((tmp_path / "s1" / "report.json").read_text())["summary"]["infeasible_references"] is None
    assert cli.main(["score", "--ref", str(test), "--hyp", hyp, "--report", str(tmp_path / "s2"),
                     "--config", config]) == 0
    assert json.loads((tmp_path / "s2" / "report.json").read_text())["summary"]["infeasible_references"] == 1


def test_evaluate_errors_name_the_evaluate_command(trained_run, tmp_path, capsys):
    manifest = tmp_path / "test.jsonl"
    write_manifest(manifest, fsdd_rows("theo")[:1])
    code = cli.main(["evaluate", "--manifest", str(manifest), "--model", str(trained_run), "--quiet",
                     "--report", str(tmp_path / "report"), "--compare", str(tmp_path / "missing.json")])
    assert code == 2
    error = capsys.readouterr().err
    assert "asr evaluate: error: " in error and "missing.json: report not found" in error  # not "asr score"
    with pytest.raises(SystemExit) as stopped:  # argparse refuses it before anything is transcribed
        cli.main(["evaluate", "--manifest", str(manifest), "--report", str(tmp_path / "r"), "--bootstrap", "-1"])
    assert stopped.value.code == 2
    assert "asr evaluate: error: argument --bootstrap: must be 0 or more" in capsys.readouterr().err
