"""Average the weights of several runs of one architecture into one model (checkpoint averaging, a "soup").

    python pipelines/average_weights.py runs/default_finetune6 runs/default_finetune7 --out runs/default_soup

Each input is a run folder (or its model.keras) from `asr train`; the mean (`asr.weights.average_weights`, which
says when a mean of runs is a model) goes to OUT/model.keras with the first run's config.yaml and alphabet.json,
so `asr transcribe --model OUT` and a recipe's post-training steps read it like any run. Inputs whose weight
shapes differ are refused by name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.weights import average_model_folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (or model.keras files) to average")
    parser.add_argument("--out", type=Path, required=True, help="folder for the averaged model")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("average at least two runs")
    try:
        path = average_model_folders(args.runs, args.out)
    except ValueError as error:  # ModelError included
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"averaged {len(args.runs)} models into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
