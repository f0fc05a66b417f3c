"""Build a word n-gram language model (ARPA) for the beam_lm decoder from transcripts.

    python pipelines/build_lm.py TEXT_OR_MANIFEST... [--order 3] --out lm.arpa

TEXT_OR_MANIFEST: a text file with one sentence per line, or a JSONL manifest (.jsonl/.json) whose `text`
fields are used (usually the training manifest); the sentences of several are pooled. Text is normalised as
training targets are. The model is interpolated Kneser-Ney (see asr/lm.py); the file is written atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.lm import DEFAULT_ORDER, LMError, build_lm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, nargs="+", help="text files (one sentence per line) or JSONL manifests")
    parser.add_argument("--order", type=int, default=DEFAULT_ORDER, help=f"n-gram order (default {DEFAULT_ORDER})")
    parser.add_argument("--out", type=Path, required=True, help="ARPA file to write")
    args = parser.parse_args(argv)
    try:
        model = build_lm(args.source, args.out, args.order)
    except LMError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n}-grams: {size}" for n, size in enumerate(model.counts(), 1))
    print(f"wrote {args.out} (order {model.order}; {counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
