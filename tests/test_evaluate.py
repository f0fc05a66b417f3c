"""`asr evaluate`: transcribe a manifest with a model, then score it, in one command."""

import json
import subprocess
import sys

from asr.data import write_manifest
from tests.conftest import fsdd_rows


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
    assert (report / "report.html").stat().st_size > 1000 and (report / "report.md").exists()
    assert "WER 20.00%" in result.stdout
