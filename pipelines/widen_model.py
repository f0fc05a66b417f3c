"""Widen a trained BiLSTM/GRU-CTC run's recurrent layers without changing what it computes (Net2Net-style growth).

    python pipelines/widen_model.py runs/default_finetune6 --units 224 --out runs/default_wide
    asr train --config configs/default.yaml --out runs/default_wide_ft train.init_from=runs/default_wide \
        model.units=224 ...

The surgery is `asr.weights.widen_network` (its docstring says why the widened model computes what the old one
did). Writes OUT/model.keras, config.yaml (model.units changed) and alphabet.json: a run folder that
`train.init_from` reads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.weights import widen_model_folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="trained run folder (or model.keras)")
    parser.add_argument("--units", type=int, required=True, help="new units per direction in every layer")
    parser.add_argument("--out", type=Path, required=True, help="run folder for the widened model")
    args = parser.parse_args(argv)
    try:
        config, _, old_weights, new_weights = widen_model_folder(args.run, args.units, args.out)
    except ValueError as error:  # ModelError included
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.run}: {config.model.units} -> {args.units} units, {old_weights:,} -> {new_weights:,} weights, "
          f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
