"""Walking a word alignment (jiwer's chunks as `asr.scoring` stores them), for scoring and confidence."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def aligned_words(chunks: Iterable[dict]) -> Iterator[tuple[str, str | None, str | None]]:
    """(op, reference word, hypothesis word) per position of an alignment: the one walk over its chunks.

    op is "equal" or "substitute" (both words), "delete" (no hypothesis word) or "insert" (no reference word).
    """
    for chunk in chunks:
        op, ref, hyp = chunk["op"], chunk["ref"], chunk["hyp"]
        if op in ("equal", "substitute"):
            yield from ((op, r, h) for r, h in zip(ref, hyp, strict=True))
        elif op == "delete":
            yield from ((op, r, None) for r in ref)
        else:
            yield from ((op, None, h) for h in hyp)
