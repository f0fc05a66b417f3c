"""CTC decoding: logits -> text."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from asr.text import BLANK_INDEX, Alphabet


def greedy_ids(logits: np.ndarray, length: int) -> list[int]:
    """Best class per frame, repeats merged, blanks dropped (the standard CTC best-path decode)."""
    best = np.asarray(logits)[:length].argmax(axis=-1)
    if best.size == 0:
        return []
    keep = np.ones_like(best, dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(i) for i in best[keep] if i != BLANK_INDEX]


def greedy_decode(logits: np.ndarray, lengths: Sequence[int], alphabet: Alphabet) -> list[str]:
    """Batch of logits [B, T, C] with true output lengths [B] -> one transcript per utterance."""
    return [" ".join(alphabet.decode(greedy_ids(row, int(n))).split()) for row, n in zip(logits, lengths, strict=True)]
