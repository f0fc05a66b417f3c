"""Synthesise a deterministic speech corpus with espeak-ng, shaped like 8 kHz telephone audio.

    python pipelines/synthesize_corpus.py --text pipelines/sentences.txt --out work/synth --count 3000 --seed 0 \\
        [--sample-rate 8000] [--voices N] [--jobs 2]

Writes OUT/audio/utt_NNNNNN.wav, OUT/manifest.jsonl and OUT/synthesis.json; the same seed gives the same files,
and a re-run keeps those already there. --voices N limits the speaker pool to N voice+variant pairs (default:
every pair installed). How and why: `asr.synthesis.espeak`. Needs espeak-ng: apt-get install espeak-ng.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from asr.synthesis.degrade import TELEPHONE_BAND_HZ
from asr.synthesis.espeak import DEFAULT_SAMPLE_RATE, MANIFEST, SynthesisError, synthesize_corpus

DEFAULT_TEXT = Path(__file__).resolve().parent / "sentences.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="sentences, one per line ('#' comments)")
    parser.add_argument("--out", type=Path, required=True, help="corpus folder (audio/ and manifest.jsonl)")
    parser.add_argument("--count", type=int, required=True, help="number of utterances")
    parser.add_argument("--seed", type=int, default=0, help="non-negative; the same seed gives the same files")
    parser.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE, help="output rate in Hz")
    parser.add_argument("--voices", type=int, default=0, help="speaker pool size in voice+variant pairs (0: all)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.count < 1 or args.seed < 0 or args.sample_rate < 2 * TELEPHONE_BAND_HZ[0] or args.voices < 0:
        parser.error("need --count >= 1, --seed >= 0, --voices >= 0 and a --sample-rate above 600 Hz")
    start = time.perf_counter()
    try:
        summary = synthesize_corpus(args.text, args.out, args.count, args.seed, args.sample_rate, args.voices,
                                    args.jobs, progress=not args.quiet)
    except SynthesisError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{summary['utterances']} utterances ({summary['generated']} synthesised, {summary['kept']} kept), "
          f"{summary['hours']:.2f} h, {summary['speakers']} speakers from {summary['voices']} voices "
          f"(pool {summary['pool']} voice+variant pairs), {time.perf_counter() - start:.1f} s "
          f"-> {args.out / MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
