"""The per-corpus results table of a model card, read from `asr evaluate` reports.

    python pipelines/results_table.py reports/default [--baseline reports/pocketsphinx] [--corpora fsdd an4 ...]

Expects REPORTS/<corpus>/greedy/report.json and REPORTS/<corpus>/beam_lm/report.json (as
pipelines/default_model.sh writes them) and, with --baseline, BASELINE/<corpus>/report.json. Prints one
Markdown row per corpus: utterances, WER and CER with 95% bootstrap intervals for greedy decoding and with
the shipped LM, and the baseline's WER on the same files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _summary(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8"))["summary"] if path.is_file() else None


def _rate(summary: dict | None, key: str) -> str:
    if summary is None:
        return "—"
    low, high = summary[f"{key}_ci"]
    return f"{summary[key]:.1%} ({low:.1%}–{high:.1%})"


def table(reports: Path, corpora: list[str], baseline: Path | None = None) -> str:
    lines = ["| test split | utterances | WER greedy (95% CI) | WER with LM (95% CI) | CER greedy | CER with LM "
             "| pocketsphinx WER |", "|---|---|---|---|---|---|---|"]
    for corpus in corpora:
        greedy = _summary(reports / corpus / "greedy" / "report.json")
        with_lm = _summary(reports / corpus / "beam_lm" / "report.json")
        other = _summary(baseline / corpus / "report.json") if baseline else None
        count = (greedy or with_lm or {}).get("utterances", 0)
        lines.append(f"| {corpus} | {count} | {_rate(greedy, 'wer')} | {_rate(with_lm, 'wer')} | "
                     f"{_rate(greedy, 'cer')} | {_rate(with_lm, 'cer')} | "
                     f"{'—' if other is None else format(other['wer'], '.1%')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", type=Path, help="folder of per-corpus report folders")
    parser.add_argument("--baseline", type=Path, help="folder of per-corpus baseline reports (pocketsphinx)")
    parser.add_argument("--corpora", nargs="+", help="corpora in order (default: every folder in REPORTS)")
    args = parser.parse_args(argv)
    corpora = args.corpora or sorted(p.name for p in args.reports.iterdir() if p.is_dir())
    print(table(args.reports, corpora, args.baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
