"""recipes/adaptation's tools: nested minute-sized subsets (combine_manifests --minutes) and the curve table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from asr.data import Utterance, read_manifest, write_manifest
from tests.conftest import REPO


def run_script(name: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "pipelines" / name), *map(str, args)], capture_output=True,
                          text=True, check=True)


def rows(prefix: str, count: int, seconds: float) -> list[Utterance]:
    return [Utterance(f"/audio/{prefix}{i}.wav", seconds, f"word {i}") for i in range(count)]


def test_minutes_subsets_are_nested_and_the_limit_holds_for_every_input(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_manifest(first, rows("a", 60, 6.0))  # 6 minutes
    write_manifest(second, rows("b", 30, 2.0))  # 1 minute
    kept = {}
    for minutes in (1, 2, 3):
        out = tmp_path / f"{minutes}.jsonl"
        run_script("combine_manifests.py", out, first, second, "--minutes", minutes, "--seed", 3)
        kept[minutes] = [row.audio_filepath for row in read_manifest(out)]
    of_a = {m: [p for p in paths if Path(p).stem.startswith("a")] for m, paths in kept.items()}
    assert [len(of_a[m]) for m in (1, 2, 3)] == [10, 20, 30]  # 6-second rows up to 1, 2, 3 minutes
    assert of_a[2][:10] == of_a[1] and of_a[3][:20] == of_a[2]  # nested: one seeded order, cut at each size
    # b holds only 1 minute: all of it is kept at every size
    assert all(len([p for p in paths if Path(p).stem.startswith("b")]) == 30 for paths in kept.values())
    assert of_a[1] != [f"/audio/a{i}.wav" for i in range(10)]  # random, not the first rows
    done = subprocess.run([sys.executable, str(REPO / "pipelines" / "combine_manifests.py"), tmp_path / "x.jsonl",
                           first, "--minutes", "0"], capture_output=True, text=True)
    assert done.returncode == 2 and "--minutes: must be positive" in done.stderr


def report(folder: Path, wer: float) -> None:
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"summary": {"wer": wer, "wer_ci": [wer - 0.01, wer + 0.01]}}))


def test_the_curve_table_sums_every_timed_part_and_measures_the_gap_closed(tmp_path):
    reports, runs = tmp_path / "reports", tmp_path / "runs"
    report(reports / "bundle" / "greedy", 0.30)
    for kind, size, wer in (("adapt", "10", 0.25), ("adapt", "all", 0.20), ("scratch", "10", 0.90)):
        report(reports / f"{kind}_{size}" / "greedy", wer)
        (runs / f"{kind}_{size}" / "checkpoints").mkdir(parents=True)
        (runs / f"{kind}_{size}" / "checkpoints" / "state.json").write_text(json.dumps({"best_epoch": 7}))
        # a run cut off and resumed: two timed parts, and the note /usr/bin/time adds for a non-zero exit
        (runs / f"{kind}_{size}" / "time.txt").write_text(
            "Command exited with non-zero status 1\n60.0 90.0 10.0\n30.0 50.0 10.0\n")
    manifests = []
    for size, count in (("10", 100), ("all", 400)):
        manifests.append(tmp_path / f"{size}.jsonl")
        write_manifest(manifests[-1], rows(size, count, 6.0))
    done = run_script("adaptation_curve.py", "--reports", reports, "--runs", runs, "--sizes", "10", "all",
                      "--manifests", *manifests, "--plot", tmp_path / "curve.png")
    lines = done.stdout.splitlines()
    assert lines[2] == "| bundled model, not adapted | 0.0 min | 30.0% | 0% | — | 0.0 | 0.0 |"
    assert lines[3] == "| bundled model | 10.0 min | 25.0% (24.0–26.0) | 50% | 7 | 1.5 | 2.7 |"  # (30-25)/(30-20)
    assert lines[4] == "| random | 10.0 min | 90.0% (89.0–91.0) | — | 7 | 1.5 | 2.7 |"
    assert lines[5].startswith("| bundled model | 40.0 min | 20.0% (19.0–21.0) | 100% |")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
