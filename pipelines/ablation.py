"""Cell and subsampling ablations on one corpus, same data, epochs and optimiser; resumable.

    python pipelines/ablation.py --config configs/tiny.yaml --out runs/ablation [--epochs 20] [key=value ...]
    python pipelines/ablation.py --config C --out OUT --variant "name: key=value key=value" [--variant ...]
    bash recipes/ablation/run.sh      # the FSDD data and the cell/subsampling sweep of BENCHMARKS.md, in stages

Cells: LSTM, GRU, tanh RNN and IRNN (ReLU, identity recurrence; Le et al. 2015) at an equal parameter budget
(each cell's width is chosen so the whole network is as close as possible to the LSTM's parameter count);
then the LSTM at subsampling ×1–×4. Each run lives in OUT/<name>; a finished run is skipped and an
interrupted one resumed, so re-running the command after a cut-off continues where it stopped.
Prints a Markdown table (best dev WER/CER, parameters, wall time) and writes it to OUT/results.md.
With `--variant`, only the named variants run (each: the config, the common overrides, then its own), e.g. to
measure what each step of a recipe buys.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from asr.config import CELLS, load_config
from asr.model import build_network
from asr.model_folder import config_file, state_file
from asr.train import train
from asr.utils import atomic_write

MAX_UNITS = 1024


def matched_units(config_path: Path, overrides: list[str], cell: str, budget: int) -> int:
    """Per-direction width for `cell` whose network has the parameter count closest to `budget`."""
    def params(units: int) -> int:
        return build_network(load_config(config_path, [*overrides, f"model.cell={cell}",
                                                       f"model.units={units}"])).count_params()

    low, high = 1, MAX_UNITS
    while low < high:  # parameter count grows with width: find the first width at or above the budget
        middle = (low + high) // 2
        low, high = (middle + 1, high) if params(middle) < budget else (low, middle)
    return min((low - 1, low), key=lambda u: abs(params(u) - budget) if u > 0 else float("inf"))


def run(name: str, config_path: Path, overrides: list[str], out: Path) -> dict:
    run_dir = out / name
    result_file = run_dir / "ablation.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    resume = state_file(run_dir).exists()
    config = load_config(config_file(run_dir)) if resume else load_config(config_path, overrides)
    start = time.perf_counter()
    state = train(config, run_dir, resume=resume, verbose=0).state
    result = {"name": name, "cell": config.model.cell, "units": config.model.units,
              "subsampling": config.model.subsampling, "params": build_network(config).count_params(),
              "epochs": state.epoch, "best_wer": state.best_wer, "best_cer": state.best_cer,
              "best_epoch": state.best_epoch, "wall_seconds": time.perf_counter() - start, "resumed": resume}
    with atomic_write(result_file) as handle:
        json.dump(result, handle, indent=2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--variant", action="append", default=[], metavar='"NAME: key=value ..."',
                        help="run this variant instead of the cell/subsampling sweep (repeatable)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    base = [*args.overrides, f"train.epochs={args.epochs}", "train.early_stopping_patience=null"]
    if args.variant:
        return write_table([run_variant(spec, args.config, base, args.out) for spec in args.variant], args.out)
    lstm = load_config(args.config, base)
    budget = build_network(lstm).count_params()
    results = []
    for cell in CELLS:
        units = lstm.model.units if cell == "lstm" else matched_units(args.config, base, cell, budget)
        results.append(run(f"cell-{cell}", args.config, [*base, f"model.cell={cell}", f"model.units={units}"],
                           args.out))
        print(json.dumps(results[-1]), flush=True)
    for factor in (1, 2, 3, 4):
        results.append(run(f"subsampling-{factor}", args.config, [*base, f"model.subsampling={factor}"], args.out))
        print(json.dumps(results[-1]), flush=True)
    return write_table(results, args.out)


def run_variant(spec: str, config_path: Path, base: list[str], out: Path) -> dict:
    name, sep, overrides = spec.partition(":")
    if not sep or not name.strip():
        raise SystemExit(f"--variant {spec!r}: expected 'NAME: key=value ...'")
    result = run(name.strip(), config_path, [*base, *overrides.split()], out)
    print(json.dumps(result), flush=True)
    return result


def write_table(results: list[dict], out: Path) -> int:
    lines = ["| run | cell | units | subsampling | parameters | best dev WER | best dev CER | epoch | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['cell']} | {r['units']} | ×{r['subsampling']} | {r['params']:,} | "
              f"{r['best_wer']:.1%} | {r['best_cer']:.1%} | {r['best_epoch']} | {r['wall_seconds']:.0f} |"
              for r in results]
    table = "\n".join(lines) + "\n"
    with atomic_write(out / "results.md") as handle:
        handle.write(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
