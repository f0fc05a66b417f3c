"""The adaptation curve: dev WER against minutes of adaptation data and CPU minutes, adapted beside scratch.

    python pipelines/adaptation_curve.py --reports reports/adaptation/an4 --runs runs/adaptation/an4 \
        --sizes 2 5 10 all --manifests M2.jsonl M5.jsonl M10.jsonl MALL.jsonl [--plot curve.png] [--title T]

Reads REPORTS/bundle/greedy/report.json (the starting model), REPORTS/<adapt|scratch>_<size>/greedy/report.json
(`asr evaluate` reports) and RUNS/<adapt|scratch>_<size>/time.txt (lines of wall, user and system seconds that
/usr/bin/time appended, one per invocation, so a resumed run counts every part) and the kept epoch from each
run's checkpoints/state.json. Prints a Markdown table; --plot writes the figure (matplotlib, no timestamps in
the file so that a re-run leaves it byte-identical). "Gap closed" is the share of the distance from the
bundled model's WER to the model adapted on all the data that each size closes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asr.data import read_manifest

KINDS = ("adapt", "scratch")


def _wer(report: Path) -> tuple[float, tuple[float, float]]:
    summary = json.loads(report.read_text(encoding="utf-8"))["summary"]
    return summary["wer"], tuple(summary["wer_ci"])


def cpu_minutes(time_file: Path) -> tuple[float, float]:
    """(wall, CPU) minutes summed over the lines `/usr/bin/time -f "%e %U %S" -a` wrote."""
    wall = cpu = 0.0
    for line in time_file.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 3:  # time also appends "Command exited with non-zero status" lines
            wall += float(parts[0])
            cpu += float(parts[1]) + float(parts[2])
    return wall / 60, cpu / 60


def kept_epoch(run: Path) -> int | None:
    state = run / "checkpoints" / "state.json"
    return json.loads(state.read_text(encoding="utf-8")).get("best_epoch") if state.is_file() else None


def curve_rows(reports: Path, runs: Path, sizes: list[str], minutes: list[float]) -> list[dict]:
    bundle_wer, _ = _wer(reports / "bundle" / "greedy" / "report.json")
    full_wer, _ = _wer(reports / f"adapt_{sizes[-1]}" / "greedy" / "report.json")
    rows = []
    for size, data_minutes in zip(sizes, minutes, strict=True):
        for kind in KINDS:
            report = reports / f"{kind}_{size}" / "greedy" / "report.json"
            if not report.is_file():
                continue
            wer, ci = _wer(report)
            wall, cpu = cpu_minutes(runs / f"{kind}_{size}" / "time.txt")
            gap = bundle_wer - full_wer
            rows.append({"kind": kind, "size": size, "data_minutes": data_minutes, "wer": wer, "ci": ci,
                         "wall_minutes": wall, "cpu_minutes": cpu, "epoch": kept_epoch(runs / f"{kind}_{size}"),
                         "gap_closed": (bundle_wer - wer) / gap if kind == "adapt" and gap > 0 else None})
    return [{"kind": "bundle", "size": "0", "data_minutes": 0.0, "wer": bundle_wer, "ci": None,
             "wall_minutes": 0.0, "cpu_minutes": 0.0, "epoch": None, "gap_closed": 0.0}, *rows]


def markdown(rows: list[dict]) -> str:
    lines = ["| start | adaptation data | WER greedy (95% CI) | gap closed | kept epoch | wall min | CPU min |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        ci = f" ({100 * row['ci'][0]:.1f}–{100 * row['ci'][1]:.1f})" if row["ci"] else ""
        gap = "—" if row["gap_closed"] is None else f"{100 * row['gap_closed']:.0f}%"
        start = {"bundle": "bundled model, not adapted", "adapt": "bundled model", "scratch": "random"}[row["kind"]]
        lines.append(f"| {start} | {row['data_minutes']:.1f} min | {100 * row['wer']:.1f}%{ci} | {gap} | "
                     f"{row['epoch'] or '—'} | {row['wall_minutes']:.1f} | {row['cpu_minutes']:.1f} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for kind, style in (("adapt", "o-"), ("scratch", "s--")):
        chosen = [r for r in rows if r["kind"] == kind or (kind == "adapt" and r["kind"] == "bundle")]
        label = "from the bundled model" if kind == "adapt" else "from scratch"
        axes[0].plot([r["data_minutes"] for r in chosen], [100 * r["wer"] for r in chosen], style, label=label)
        axes[1].plot([r["cpu_minutes"] for r in chosen], [100 * r["wer"] for r in chosen], style[0], label=label)
        for r in chosen:  # CPU minutes do not grow with the data (small sets get more epochs): label each point
            if r["kind"] != "bundle":
                axes[1].annotate(f"{r['data_minutes']:.0f} min", (r["cpu_minutes"], 100 * r["wer"]), fontsize=7,
                                 xytext=(3, 3), textcoords="offset points")
    axes[0].set_xlabel("minutes of adaptation audio")
    axes[1].set_xlabel("CPU minutes of training (2 cores)")
    for ax in axes:
        ax.set_ylabel("WER, greedy (%)")
        ax.set_ylim(0, 105)
        ax.grid(alpha=0.3)
    axes[0].legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=Path, required=True)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--sizes", nargs="+", required=True, help="run name suffixes, smallest first")
    parser.add_argument("--manifests", type=Path, nargs="+", required=True, help="each size's training rows")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--title", default="", help="the plot's title (what was adapted to, scored where)")
    args = parser.parse_args(argv)
    if len(args.sizes) != len(args.manifests):
        parser.error(f"{len(args.sizes)} sizes but {len(args.manifests)} manifests: give one manifest per size")
    minutes = [sum(row.duration for row in read_manifest(path)) / 60 for path in args.manifests]
    rows = curve_rows(args.reports, args.runs, args.sizes, minutes)
    print(markdown(rows))
    if args.plot:
        plot(rows, args.plot, args.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
