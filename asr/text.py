"""Text side of the recogniser: one normaliser used everywhere, and the character alphabet.

The same `normalize_text` produces training targets and scores hypotheses, so a model is never
penalised for a spelling convention the references do not share.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from num2words import num2words

BLANK = "<blank>"
BLANK_INDEX = 0  # keras.ops.ctc_loss / ctc_decode default mask_index
DEFAULT_CHARACTERS = " abcdefghijklmnopqrstuvwxyz'"

# Symbols people read aloud. "#" and "*" are the telephone keys (the Asterisk prompts say "press #").
SPOKEN_SYMBOLS = {
    "&": " and ",
    "%": " percent ",
    "+": " plus ",
    "@": " at ",
    "#": " pound ",
    "*": " star ",
    "=": " equals ",
}
# Characters that NFKD does not decompose into ASCII but that have an obvious spelling.
FOLDED_LETTERS = str.maketrans(
    {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "þ": "th", "ð": "d", "ı": "i"}
)
APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})

_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
_THOUSANDS = re.compile(r"\b(\d{1,3}(?:,\d{3})+)\b")
_CURRENCY = re.compile(r"\$(\d+)")
_NUMBER = re.compile(r"\d+")
# Not a letter of any script: letters the alphabet lacks must survive to be *rejected*, not silently dropped.
_NOT_WORD = re.compile(r"[^\w' ]+|_+")
_SPACES = re.compile(r"\s+")
_STRAY_APOSTROPHE = re.compile(r"(?<![a-z])'|'(?![a-z])")


def _spell_number(digits: str) -> str:
    value = int(digits)
    # Four-digit numbers in the calendar range are read as years ("1990" -> "nineteen ninety").
    if len(digits) == 4 and 1100 <= value <= 2099 and value % 1000 != 0:
        words = num2words(value, lang="en", to="year")
    elif len(digits) > 1 and digits.startswith("0"):
        words = " ".join(num2words(int(d), lang="en") for d in digits)  # "007" -> "zero zero seven"
    else:
        words = num2words(value, lang="en")
    return f" {words} "


def _spell_numerals(text: str) -> str:
    text = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _CURRENCY.sub(lambda m: f"{m.group(1)} dollars", text)
    text = _ORDINAL.sub(lambda m: " " + num2words(int(m.group(1)), lang="en", to="ordinal") + " ", text)
    text = _DECIMAL.sub(
        lambda m: _spell_number(m.group(1)) + " point " + " ".join(num2words(int(d)) for d in m.group(2)),
        text,
    )
    return _NUMBER.sub(lambda m: _spell_number(m.group(0)), text)


def normalize_text(text: str) -> str:
    """Lowercase, fold Unicode to ASCII letters, spell out numerals, drop punctuation, collapse spaces.

    Apostrophes inside words survive ("don't"); everything else that is not a letter becomes a space.
    Letters of other scripts are kept, so a check against the alphabet can reject the utterance.
    """
    text = unicodedata.normalize("NFKC", text).translate(APOSTROPHES).lower().translate(FOLDED_LETTERS)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _spell_numerals(text)
    for symbol, spoken in SPOKEN_SYMBOLS.items():
        text = text.replace(symbol, spoken)
    text = text.replace("-", " ")  # num2words writes "twenty-one"; hyphenated words are two words
    text = _NOT_WORD.sub(" ", text)
    text = _STRAY_APOSTROPHE.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


class AlphabetError(ValueError):
    pass


@dataclass(frozen=True)
class Alphabet:
    """Characters the model emits. Index 0 is the CTC blank; character i is class i + 1."""

    characters: str = DEFAULT_CHARACTERS

    def __post_init__(self) -> None:
        if not self.characters:
            raise AlphabetError("alphabet is empty")
        if len(set(self.characters)) != len(self.characters):
            raise AlphabetError(f"alphabet has repeated characters: {self.characters!r}")

    @property
    def num_classes(self) -> int:
        return len(self.characters) + 1

    @property
    def labels(self) -> list[str]:
        return [BLANK, *self.characters]

    def unknown_characters(self, text: str) -> set[str]:
        return set(text) - set(self.characters)

    def encode(self, text: str) -> list[int]:
        unknown = self.unknown_characters(text)
        if unknown:
            raise AlphabetError(f"characters not in the alphabet: {''.join(sorted(unknown))!r} in {text!r}")
        lookup = self._index
        return [lookup[c] for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        """Map class ids back to text, ignoring blanks (ids are assumed already CTC-collapsed)."""
        return "".join(self.characters[i - 1] for i in ids if i != BLANK_INDEX)

    @property
    def _index(self) -> dict[str, int]:
        return {c: i + 1 for i, c in enumerate(self.characters)}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"blank_index": BLANK_INDEX, "characters": self.characters}) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Alphabet:
        data = json.loads(Path(path).read_text())
        if data.get("blank_index", BLANK_INDEX) != BLANK_INDEX:
            raise AlphabetError(f"{path}: blank must be index {BLANK_INDEX}")
        return cls(data["characters"])


def ctc_min_frames(label: Sequence[int] | str) -> int:
    """Fewest output frames CTC needs for `label`: one per symbol plus a blank between repeats."""
    repeats = sum(1 for a, b in zip(label, label[1:], strict=False) if a == b)
    return len(label) + repeats
