"""`asr transcribe --engine ray` on a local Ray cluster gives the same rows as the in-process engine."""

import json
import subprocess
import sys

from tests.conftest import SHARED


def test_ray_engine_matches_the_local_engine(trained_run, tmp_path):
    inputs = [str(SHARED / "fsdd" / "recordings" / f"{digit}_theo_{take}.wav") for digit in range(4)
              for take in range(3)]
    inputs.append(str(tmp_path / "missing.wav"))  # a failed input is reported the same way by both
    outputs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.jsonl"
        result = subprocess.run([sys.executable, "-m", "asr", "transcribe", *inputs, "--model", str(trained_run),
                                 "--out", str(out), "--engine", engine, "--actors", "1", "--quiet"],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 1, result.stderr[-3000:]  # 1: the missing file
        assert "12 transcribed, 1 failed" in result.stderr
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        outputs[engine] = sorted(rows, key=lambda row: row["audio_filepath"])
    assert outputs["ray"] == outputs["local"]
    assert sum("error" in row for row in outputs["ray"]) == 1
