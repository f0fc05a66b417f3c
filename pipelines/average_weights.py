"""Average the weights of several runs of one architecture into one model (checkpoint averaging, a "soup").

    python pipelines/average_weights.py runs/default_finetune6 runs/default_finetune7 --out runs/default_soup

Each input is a run folder (or its model.keras) from `asr train`: fine-tuning stages that started from one
another's weights lie in one basin, so their element-wise mean is a model too, and often a better one than
any of them (Izmailov et al. 2018, SWA; Wortsman et al. 2022, model soups). The output folder gets the mean
model.keras with the first run's config.yaml and alphabet.json, so `asr transcribe --model OUT` and the
recipe's post-training steps read it like any run. Inputs whose weight shapes differ are refused by name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from asr.model_folder import save_model
from asr.recognizer import load_keras_model


def average_weights(weight_sets: list[list[np.ndarray]], names: list[str]) -> list[np.ndarray]:
    """The element-wise mean of equally shaped weight lists (`names` label them in the error)."""
    shapes = [[w.shape for w in weights] for weights in weight_sets]
    for name, shape in zip(names[1:], shapes[1:], strict=True):
        if shape != shapes[0]:
            raise ValueError(f"{name}: its weights do not match {names[0]}'s (a different architecture)")
    return [np.mean(np.stack(group), axis=0).astype(group[0].dtype) for group in zip(*weight_sets, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (or model.keras files) to average")
    parser.add_argument("--out", type=Path, required=True, help="folder for the averaged model")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("average at least two runs")
    try:
        loaded = [load_keras_model(run) for run in args.runs]
        models = [model for model, _, _ in loaded]
        mean = average_weights([model.get_weights() for model in models], [str(run) for run in args.runs])
    except ValueError as error:  # ModelError included
        print(f"error: {error}", file=sys.stderr)
        return 2
    first = models[0]
    first.set_weights(mean)
    path = save_model(args.out, first, loaded[0][1])  # with the first run's config
    print(f"averaged {len(models)} models into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
