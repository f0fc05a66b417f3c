"""Hotwords: a user's list of words the beam decoders are biased towards (`asr transcribe --hotwords/--boost`).

A hotword's boost is in nats, added to a hypothesis's score each time the search completes that word, on top of
its LM score (a word the LM lacks is scored as <unk>): a word the LM gives p = 1e-4 costs 0.5 · ln(1e4) = 4.6 nats
at alpha 0.5, and the bundled LM's <unk> 7.5, so a boost of about that size lets a rare or unseen domain word win
where the acoustics are close to it, without outvoting clear acoustics. Words are normalised as training
targets and references are (`asr.text.normalize_text`), so "Klaatu" boosts "klaatu".

This module checks and parses; `asr.beam_search` applies the boosts (see its docstring).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from asr.text import Alphabet, normalize_text

# A hotword's boost when none is given. On the bundled model (closed vocabulary) with 7 telephony words boosted,
# 2 to 8 nats fixed one word of the Asterisk prompts' test set ("unmuted"), 10 to 30 two ("thousandth"); AN4,
# LJ Speech, Speech Commands and Flite prose, none of them saying those words, gave the same outputs up to 20 nats,
# and at 30 a Speech Commands "five" became "ivr" (README, "Hotwords"). 10 is the smallest that caught both.
DEFAULT_BOOST = 10.0
COMMENT = "#"

Hotwords = tuple[tuple[str, float], ...]  # (normalised word, boost in nats), in the order given


class HotwordError(ValueError):
    pass


def hotword(text: str) -> str:
    """`text` normalised as references are; one word, or HotwordError."""
    word = normalize_text(str(text))
    if not word:
        raise HotwordError(f"{text!r} is not a word (nothing left after normalisation)")
    if " " in word:
        raise HotwordError(f"{text!r} is several words after normalisation ({word!r}): give one word per entry")
    return word


def boost_value(value: object, word: str) -> float:
    """A boost as a finite float, or HotwordError."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise HotwordError(f"boost of {word!r} must be a number, got {value!r}")
    try:
        boost = float(value)
    except ValueError:
        raise HotwordError(f"boost of {word!r} must be a number, got {value!r}") from None
    if not math.isfinite(boost):
        raise HotwordError(f"boost of {word!r} must be finite, got {value!r}")
    return boost


def hotword_pairs(value: Mapping | Iterable | None) -> Hotwords:
    """Hotwords as (word, boost) pairs, from a mapping word -> boost or a list of words and (word, boost) pairs (a
    bare word takes DEFAULT_BOOST): what DecodingOptions holds, and a decoding.yaml may write either way."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise HotwordError(f"expected a list of words or a mapping word: boost, got the string {value!r}")
    items = value.items() if isinstance(value, Mapping) else (_entry(item) for item in value)
    pairs: dict[str, float] = {}
    for text, boost in items:
        word = hotword(text)
        if word in pairs:  # "Klaatu" and "klaatu" are one word: which boost was meant is unclear
            raise HotwordError(f"{word!r} is listed twice")
        pairs[word] = boost_value(boost, word)
    return tuple(pairs.items())


def _entry(item: object) -> tuple[object, object]:
    if isinstance(item, str):
        return item, DEFAULT_BOOST
    if isinstance(item, list | tuple) and len(item) == 2:
        return item[0], item[1]
    raise HotwordError(f"expected a word or a (word, boost) pair, got {item!r}")


def check_alphabet(hotwords: Hotwords, alphabet: Alphabet) -> None:
    """HotwordError naming the first hotword the model cannot spell."""
    for word, _ in hotwords:
        unknown = alphabet.unknown_characters(word)
        if unknown:
            raise HotwordError(f"{word!r} has characters the model's alphabet lacks: {''.join(sorted(unknown))!r}")


def parse_boost(text: str) -> tuple[str, float]:
    """`WORD:WEIGHT` (or a bare `WORD`, with DEFAULT_BOOST) as a normalised (word, boost)."""
    word, colon, weight = text.rpartition(":")
    if not colon:
        return hotword(text), DEFAULT_BOOST
    return hotword(word), boost_value(weight.strip(), word)


def read_hotword_file(path: str | Path) -> dict[str, float]:
    """One hotword a line, optionally followed by its boost (`klaatu 4.5`); blank lines and # comments skipped.
    Errors name the file and line; a word listed twice keeps its last boost."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise HotwordError(f"{path}: cannot read the hotword list ({error})") from None
    words: dict[str, float] = {}
    for number, line in enumerate(lines, 1):
        fields = line.split(COMMENT, 1)[0].split()
        if not fields:
            continue
        try:
            if len(fields) > 2:
                raise HotwordError(f"expected 'WORD' or 'WORD BOOST', got {line.strip()!r}")
            word = hotword(fields[0])
            words[word] = boost_value(fields[1], word) if len(fields) == 2 else DEFAULT_BOOST
        except HotwordError as error:
            raise HotwordError(f"{path}:{number}: {error}") from None
    return words
