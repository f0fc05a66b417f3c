"""recipes/<name>/run.sh: each parses, lists its numbered stages at the top as it runs them, and selects stages
through the shared recipes/stages.sh (--stage N --stop-stage M). Nothing here runs a recipe."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").glob("*/run.sh"))
WITH_RESULTS = ("an4", "an4_wav", "baselines", "ablation", "default", "adaptation", "an4_transfer")


def header_stages(script: Path) -> list[tuple[int, str]]:
    """The stages the comment block at the top names: lines like `#   2  train:  ...`."""
    header = script.read_text().split("\nset -euo pipefail", 1)[0]
    return [(int(n), name) for n, name in re.findall(r"^#\s+(\d+)\s+([\w-]+):", header, re.MULTILINE)]


def run_stages(script: Path) -> list[tuple[int, str]]:
    return [(int(n), name) for n, name in re.findall(r"\brun_stage (\d+) ([\w-]+)", script.read_text())]


def test_the_recipes_are_there():
    assert {p.parent.name for p in RECIPES} >= {"default", *WITH_RESULTS}


@pytest.mark.parametrize("script", RECIPES, ids=lambda p: p.parent.name)
def test_a_recipe_parses_and_its_header_names_the_stages_it_runs(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    stages = run_stages(script)
    assert stages, f"{script} runs no stage"
    assert [n for n, _ in stages] == list(range(1, len(stages) + 1))  # numbered 1, 2, ... in order
    assert header_stages(script) == stages
    assert '\n. recipes/stages.sh "$@"' in script.read_text()  # after its cd to the repository root


@pytest.mark.parametrize("name", WITH_RESULTS)
def test_a_recipe_has_its_results_beside_it(name):
    results = (REPO / "recipes" / name / "RESULTS.md").read_text()
    assert f"recipes/{name}/run.sh" in results  # the command that made the figures


def select(*args: str) -> subprocess.CompletedProcess:
    loop = "for i in 1 2 3 4 5; do run_stage $i s$i || true; done"
    return subprocess.run(["bash", "-c", f'set -euo pipefail; . recipes/stages.sh "$@"; {loop}', "run.sh", *args],
                          cwd=REPO, capture_output=True, text=True)


def test_stage_and_stop_stage_choose_the_stages_that_run():
    assert select().stdout.splitlines() == [f"== stage {i}: s{i}" for i in range(1, 6)]
    assert select("--stage", "2", "--stop-stage", "3").stdout.splitlines() == ["== stage 2: s2", "== stage 3: s3"]
    assert select("--stage", "4").stdout.splitlines() == ["== stage 4: s4", "== stage 5: s5"]
    assert select("--stop-stage", "1").stdout.splitlines() == ["== stage 1: s1"]
    wrong = select("--stages", "2")
    assert wrong.returncode == 2 and "usage: run.sh [--stage N] [--stop-stage M]" in wrong.stderr
