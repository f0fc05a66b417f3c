"""Iterate the training input pipeline over a manifest and print what the model would be fed.

    python pipelines/inspect_batches.py MANIFEST.jsonl [--config CONFIG.yaml] [--train] [key=value ...]
"""

from __future__ import annotations

import argparse
import sys
import time

from asr.config import ConfigError, load_config
from asr.data import ManifestError, read_manifest
from asr.dataset import PipelineError, make_dataset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest")
    parser.add_argument("--config", help="training config (default: built-in defaults)")
    parser.add_argument("--train", action="store_true", help="training mode: shuffled and augmented")
    parser.add_argument("--show", type=int, default=5, help="batches to print (default 5)")
    parser.add_argument("overrides", nargs="*", help="config overrides such as features.sample_rate=8000")
    args = parser.parse_intermixed_args()
    try:
        config = load_config(args.config, args.overrides)
        rows = read_manifest(args.manifest)
        dataset = make_dataset(rows, config, training=args.train)
    except (ConfigError, ManifestError, PipelineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    batches = utterances = real = padded = 0
    for batch in dataset:
        shape = batch["features"].shape
        lengths = batch["feature_lengths"].numpy()
        if batches < args.show:
            print(f"batch {batches}: features {tuple(shape)}, frames {lengths.tolist()}, "
                  f"label lengths {batch['label_lengths'].numpy().tolist()}")
        batches += 1
        utterances += shape[0]
        real += int(lengths.sum())
        padded += shape[0] * shape[1] - int(lengths.sum())
    seconds = time.perf_counter() - start
    print(f"{batches} batches, {utterances} utterances, {real} real frames, "
          f"padding {padded / (real + padded):.1%}, {utterances / seconds:.0f} utterances/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
