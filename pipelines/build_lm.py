"""Build a word n-gram language model (ARPA) for the beam_lm decoder from transcripts.

    python pipelines/build_lm.py TEXT_OR_MANIFEST... [--order 3] [--background-words N] --out lm.arpa

TEXT_OR_MANIFEST: a text file with one sentence per line, or a JSONL manifest (.jsonl/.json) whose `text`
fields are used (usually the training manifest); the sentences of several are pooled. Text is normalised as
training targets are. The model is interpolated Kneser-Ney (see asr/lm.py); the file is written atomically.

--background-words N adds the N most common English words (the `wordfreq` package's word list, which ships its
data in the wheel: nothing is downloaded) to the vocabulary, weighted by their frequency, so that a closed
vocabulary search can still write a common word the transcripts never contain. Words that do not survive
text normalisation unchanged (digits, accents, other scripts) are left out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.lm import BOS, DEFAULT_ORDER, EOS, UNK, LMError, build_lm
from asr.text import normalize_text

BACKGROUND_LANGUAGE = "en"


def background_words(count: int) -> dict[str, float]:
    """The `count` most common English words that are their own normalised spelling -> relative frequency."""
    try:  # pipeline-only dependency: the bundled LM file carries the words, serving needs no wordfreq
        import wordfreq
    except ImportError:
        raise LMError("--background-words needs the wordfreq package: pip install -e '.[lm]'") from None

    words: dict[str, float] = {}
    for word in wordfreq.iter_wordlist(BACKGROUND_LANGUAGE, wordlist="large"):
        if len(words) == count:
            break
        if word.isascii() and normalize_text(word) == word and word not in (BOS, EOS, UNK):
            words[word] = wordfreq.word_frequency(word, BACKGROUND_LANGUAGE, wordlist="large")
    return words


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, nargs="+", help="text files (one sentence per line) or JSONL manifests")
    parser.add_argument("--order", type=int, default=DEFAULT_ORDER, help=f"n-gram order (default {DEFAULT_ORDER})")
    parser.add_argument("--background-words", type=int, default=0, metavar="N",
                        help="add the N most common English words (wordfreq) to the vocabulary (default 0: none)")
    parser.add_argument("--out", type=Path, required=True, help="ARPA file to write")
    args = parser.parse_args(argv)
    if args.background_words < 0:
        parser.error("--background-words must be 0 or more")
    try:
        background = background_words(args.background_words) if args.background_words else None
        model = build_lm(args.source, args.out, args.order, background)
    except LMError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n}-grams: {size}" for n, size in enumerate(model.counts(), 1))
    print(f"wrote {args.out} (order {model.order}; {counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
