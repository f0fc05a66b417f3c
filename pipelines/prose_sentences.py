"""Sentences of varied English prose from the Debian `fortunes` collections, split train/dev/test by sentence.

    python pipelines/prose_sentences.py --out work/prose [--fortunes /usr/share/games/fortunes] [--seed 0]

Each fortune (quotations, jokes, definitions, verse, from 30-odd collections) is cut into sentences; a sentence
is kept when, after asr.text.normalize_text, it has MIN_WORDS..MAX_WORDS words written only in the model's
alphabet and no word longer than MAX_WORD_LETTERS (ASCII art, code and URLs fall out). Attribution lines
("-- Mark Twain"), collections of source code, ASCII art and non-English text are left out. Each distinct
normalised sentence goes to a part by a hash of its text (DEV_SHARE, TEST_SPLIT_SHARE), so the split does not
depend on the order or number of collections installed: a test sentence is never trained on by any engine.
Writes OUT/{train,dev,test}.txt, one sentence per line, sorted by the same hash (a seeded shuffle that is
stable across machines). Needs Debian's `fortunes` and `fortunes-min` packages.

Text source: the fortune-mod collections (Debian package `fortunes`, BSD licence for the collection). The
sentences are used as training text and LM text; no audio or text from them ships except the LM's n-gram counts.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from asr.text import Alphabet, normalize_text
from asr.utils import atomic_write

FORTUNES = Path("/usr/share/games/fortunes")
SKIPPED_COLLECTIONS = ("art", "ascii-art", "perl", "linux", "debian", "translate-me", "knghtbrd", "disclaimer")
MIN_WORDS, MAX_WORDS = 4, 30
MAX_WORD_LETTERS = 16
DEV_SHARE, TEST_SPLIT_SHARE = 0.03, 0.05
ALPHABET = Alphabet()
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_ATTRIBUTION = re.compile(r"^\s*(--|-- |\u2014)")
_PROSE_CHARACTERS = re.compile(r"^[A-Za-z0-9 .,;:!?'\"()\-$%&]+$")


def fortunes(path: Path) -> Iterator[str]:
    """The fortunes in one collection file, attributions dropped, lines joined."""
    text = path.read_text(encoding="utf-8", errors="replace")
    for entry in text.split("\n%\n"):
        lines = [line.strip() for line in entry.splitlines() if not _ATTRIBUTION.match(line)]
        joined = " ".join(line for line in lines if line and line != "%")
        if joined:
            yield joined


def speakable(sentence: str) -> str | None:
    """The normalised sentence when it is prose the recogniser could be asked to write, else None."""
    if not _PROSE_CHARACTERS.match(sentence):
        return None
    text = normalize_text(sentence)
    words = text.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or max(map(len, words)) > MAX_WORD_LETTERS:
        return None
    if any(character not in ALPHABET.characters for character in text):
        return None
    return text


def prose_sentences(collections: Iterable[Path]) -> list[str]:
    """Every distinct speakable sentence of `collections`, in their order."""
    kept: dict[str, None] = {}
    for path in collections:
        for fortune in fortunes(path):
            for sentence in _SENTENCE_END.split(fortune):
                text = speakable(sentence.strip())
                if text:
                    kept.setdefault(text)
    return list(kept)


def sentence_hash(text: str, seed: int) -> float:
    """A number in [0, 1) fixed by the text and seed alone."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_sentences(texts: list[str], seed: int = 0) -> dict[str, list[str]]:
    parts: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for text in sorted(texts, key=lambda text: sentence_hash(text, seed + 1)):
        share = sentence_hash(text, seed)
        part = "test" if share < TEST_SPLIT_SHARE else "dev" if share < TEST_SPLIT_SHARE + DEV_SHARE else "train"
        parts[part].append(text)
    return parts


def collection_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_file() and not path.suffix
                  and path.name not in SKIPPED_COLLECTIONS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for train.txt, dev.txt, test.txt")
    parser.add_argument("--fortunes", type=Path, default=FORTUNES, help="the fortune collections' folder")
    parser.add_argument("--seed", type=int, default=0, help="the split's and order's seed")
    args = parser.parse_args(argv)
    files = collection_files(args.fortunes) if args.fortunes.is_dir() else []
    if not files:
        print(f"error: no fortune collections in {args.fortunes}: install them with "
              "`apt-get install fortunes fortunes-min`", file=sys.stderr)
        return 2
    parts = split_sentences(prose_sentences(files), args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for part, texts in parts.items():
        with atomic_write(args.out / f"{part}.txt") as handle:
            handle.writelines(f"{text}\n" for text in texts)
    print(", ".join(f"{part} {len(texts)}" for part, texts in parts.items()), f"sentences from {len(files)} "
          f"collections: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
