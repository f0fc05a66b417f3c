"""Join prepared manifests into one, leaving out held-out recordings and held-out sentences.

    python pipelines/combine_manifests.py OUT IN.jsonl... [--exclude-audio LIST...] [--exclude-text MANIFEST...]
        [--max-per-input N | --minutes M] [--seed 0]

--exclude-audio drops rows whose audio file has the same name (without folder and extension) as a file in a
manifest or `transcripts.tsv` (e.g. asr/samples: the demo must be scored on recordings the model never heard).
--exclude-text drops rows whose normalised text is the text of a row there (e.g. synthetic renderings of
the Asterisk test prompts). --max-per-input keeps a seeded random N rows of each input, for a dev set that
is quick to score every epoch. --minutes keeps seeded random rows of each input until they hold M minutes
of audio (the same seed gives nested subsets: the 2-minute rows are the first rows of the 5-minute ones),
for measuring what a few minutes of data buy. Prints what was kept and dropped per input; writes OUT atomically.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from asr.data import Utterance, read_manifest, write_manifest
from asr.synthesis.engines import held_out
from asr.text import normalize_text


def first_minutes(rows: list[Utterance], minutes: float, seed: int = 0) -> list[Utterance]:
    """Seeded random rows, in one fixed order per seed, until they hold `minutes` of audio (nested by size)."""
    order = random.Random(seed).sample(rows, len(rows))
    kept, seconds = [], 0.0
    for row in order:
        if seconds >= minutes * 60:
            break
        kept.append(row)
        seconds += row.duration
    return kept


def combine(inputs: list[Path], names: set[str], texts: set[str], max_per_input: int | None = None,
            seed: int = 0, minutes: float | None = None) -> tuple[list[Utterance], list[str]]:
    """The kept rows and one summary line per input."""
    kept: list[Utterance] = []
    lines = []
    for path in inputs:
        rows = read_manifest(path)
        usable = [r for r in rows if Path(r.audio_filepath or "").stem not in names
                  and (not r.text or normalize_text(r.text) not in texts)]
        if max_per_input is not None and len(usable) > max_per_input:
            usable = random.Random(seed).sample(usable, max_per_input)
        if minutes is not None:
            usable = first_minutes(usable, minutes, seed)
        kept.extend(usable)
        held = sum(r.duration for r in usable) / 60  # not `minutes`: that limit applies to every input
        lines.append(f"{path}: kept {len(usable)} of {len(rows)} rows ({held:.1f} min)")
    return kept, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="combined manifest to write")
    parser.add_argument("inputs", type=Path, nargs="+", help="prepared manifests")
    parser.add_argument("--exclude-audio", type=Path, nargs="*", default=[], help="manifests/TSVs of held-out files")
    parser.add_argument("--exclude-text", type=Path, nargs="*", default=[], help="manifests/TSVs of held-out texts")
    parser.add_argument("--max-per-input", type=int, help="keep at most N random rows of each input")
    parser.add_argument("--minutes", type=float, help="keep random rows of each input up to M minutes of audio")
    parser.add_argument("--seed", type=int, default=0, help="seed for --max-per-input and --minutes")
    args = parser.parse_args(argv)
    if args.max_per_input is not None and args.minutes is not None:
        parser.error("--max-per-input and --minutes choose rows two ways: give one")
    if args.minutes is not None and not args.minutes > 0:
        parser.error(f"--minutes: must be positive, got {args.minutes}")
    names, texts = held_out(args.exclude_audio, args.exclude_text)
    rows, lines = combine(args.inputs, names, texts, args.max_per_input, args.seed, args.minutes)
    write_manifest(args.out, rows)
    print("\n".join(lines))
    print(f"{args.out}: {len(rows)} rows ({sum(r.duration for r in rows) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
