"""The per-corpus results table of a model card, read from `asr evaluate` reports.

    python pipelines/results_table.py reports/default [--baseline [NAME=]DIR ...] [--corpora fsdd an4 ...]

Expects REPORTS/<corpus>/greedy/report.json and REPORTS/<corpus>/beam_lm/report.json (as
recipes/default/run.sh writes them) and, for each --baseline, DIR/<corpus>/report.json (NAME defaults to the
folder's name: pocketsphinx, whisper-tiny.en, ...). Prints one Markdown row per corpus: utterances, WER and CER
with 95% bootstrap intervals for greedy decoding and with the shipped LM, and each peer's WER on the same
files ("—" where a peer was not run on that split), with its speed (× real time, from its speed.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _summary(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8"))["summary"] if path.is_file() else None


def _peer(folder: Path) -> str:
    """A peer's WER on a split, with its speed (× real time) when its speed.json is there."""
    summary = _summary(folder / "report.json")
    if summary is None:
        return "—"
    speed = folder / "speed.json"
    pace = f" ({json.loads(speed.read_text(encoding='utf-8'))['times_real_time']:.0f}× RT)" if speed.is_file() else ""
    return f"{summary['wer']:.1%}{pace}"


def _rate(summary: dict | None, key: str) -> str:
    if summary is None:
        return "—"
    low, high = summary[f"{key}_ci"]
    return f"{summary[key]:.1%} ({low:.1%}–{high:.1%})"


def baseline_argument(value: str) -> tuple[str, Path]:
    """NAME=DIR, or DIR (named by its folder)."""
    name, _, folder = value.rpartition("=")
    return (name or Path(folder).name), Path(folder)


def table(reports: Path, corpora: list[str], baselines: list[tuple[str, Path]] | None = None) -> str:
    baselines = baselines or []
    header = ["test split", "utterances", "WER greedy (95% CI)", "WER with LM (95% CI)", "CER greedy", "CER with LM",
              *(f"{name} WER" for name, _ in baselines)]
    rows = [header, ["---"] * len(header)]
    for corpus in corpora:
        greedy = _summary(reports / corpus / "greedy" / "report.json")
        with_lm = _summary(reports / corpus / "beam_lm" / "report.json")
        count = (greedy or with_lm or {}).get("utterances", 0)
        rows.append([corpus, str(count), _rate(greedy, "wer"), _rate(with_lm, "wer"), _rate(greedy, "cer"),
                     _rate(with_lm, "cer"), *(_peer(folder / corpus) for _, folder in baselines)])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", type=Path, help="folder of per-corpus report folders")
    parser.add_argument("--baseline", type=baseline_argument, nargs="*", default=[], metavar="[NAME=]DIR",
                        help="folders of per-corpus peer reports (pocketsphinx, Whisper)")
    parser.add_argument("--corpora", nargs="+", help="corpora in order (default: every folder in REPORTS)")
    args = parser.parse_args(argv)
    corpora = args.corpora or sorted(p.name for p in args.reports.iterdir() if p.is_dir())
    print(table(args.reports, corpora, args.baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
