"""Comparing two systems on the same utterances: a paired bootstrap test of the WER and CER difference."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from asr.bootstrap import PAIRED_METHOD, Interval, paired_bootstrap
from asr.data import ManifestError
from asr.scoring import Counts, ScoreResult, UtteranceScore, counts_arrays

COUNT_FIELDS = ("ref", "hits", "substitutions", "deletions", "insertions")
TOP_DIFFERENCES = 20


@dataclass
class Paired:
    """One level (words or characters) of two systems on their common utterances."""

    this: Counts
    other: Counts
    ci: Interval | None
    p_value: float | None

    @property
    def delta(self) -> float | None:
        a, b = self.this.rate, self.other.rate
        return None if a is None or b is None else a - b

    def to_json(self) -> dict:
        return {"this": self.this.rate, "other": self.other.rate, "delta": self.delta, "delta_ci": self.ci,
                "p_value": self.p_value, "this_counts": self.this.to_json(),
                "other_counts": self.other.to_json()}


@dataclass
class Comparison:
    this_name: str
    other_name: str
    common: int
    only_this: int
    only_other: int
    words: Paired
    chars: Paired
    n_resamples: int
    differences: list[dict]
    notes: list[str]

    def to_json(self) -> dict:
        return {"this": self.this_name, "other": self.other_name, "common_utterances": self.common,
                "only_this": self.only_this, "only_other": self.only_other, "wer": self.words.to_json(),
                "cer": self.chars.to_json(), "resamples": self.n_resamples, "method": PAIRED_METHOD,
                "differences": self.differences, "notes": self.notes}


def load_report(path: str | Path) -> dict:
    """A report.json written by `asr score`; errors name the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: report not found") from None
    except json.JSONDecodeError as error:
        raise ManifestError(f"{path}:{error.lineno}: not valid JSON ({error.msg}); "
                            "expected a report.json written by `asr score`") from None
    rows = data.get("utterances") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(_valid_row(row) for row in rows):
        raise ManifestError(f"{path}: not an `asr score` report.json "
                            "(needs 'utterances' rows with 'audio_filepath', 'words' and 'chars' counts)")
    return data


def _valid_row(row: object) -> bool:
    if not isinstance(row, dict) or not isinstance(row.get("audio_filepath"), str):
        return False
    levels = [row.get("words"), row.get("chars")]
    return all(isinstance(c, dict) and all(isinstance(c.get(k), int) for k in COUNT_FIELDS) for c in levels)


def _row_counts(row: dict, level: str) -> Counts:
    return Counts(*(row[level][k] for k in COUNT_FIELDS))


def compare(result: ScoreResult, other: dict, other_name: str | None = None) -> Comparison:
    """Both systems on the utterances they share (by audio_filepath), with a paired bootstrap test."""
    ours = {u.audio_filepath: u for u in reversed(result.utterances)}  # reversed: the first row wins
    theirs = {row["audio_filepath"]: row for row in reversed(other["utterances"])}
    common = [key for key in dict.fromkeys(u.audio_filepath for u in result.utterances) if key in theirs]
    mine, rows = [ours[k] for k in common], [theirs[k] for k in common]
    paired = {}
    for level in ("words", "chars"):
        a, b = [getattr(u, level) for u in mine], [_row_counts(row, level) for row in rows]
        ci, p_value = paired_bootstrap(counts_arrays(a), counts_arrays(b), result.n_resamples, result.seed)
        paired[level] = Paired(sum(a, Counts()), sum(b, Counts()), ci, p_value)
    inputs = other.get("inputs") if isinstance(other.get("inputs"), dict) else {}
    notes = []
    if inputs.get("normalizer") not in (None, result.normalizer):
        notes.append(f"The reports use different normalisers ({result.normalizer} vs "
                     f"{inputs['normalizer']}); the difference mixes system and normalisation.")
    mismatched = sum(1 for u, row in zip(mine, rows, strict=True) if u.reference != row.get("reference"))
    if mismatched:
        notes.append(f"{mismatched} common utterance(s) have different reference text in the two reports.")
    return Comparison(
        this_name=result.hyp_path or "this system",
        other_name=other_name or inputs.get("hypotheses") or "other",
        common=len(common), only_this=len(ours) - len(common), only_other=len(theirs) - len(common),
        words=paired["words"], chars=paired["chars"], n_resamples=result.n_resamples,
        differences=_differences(mine, rows), notes=notes)


def _differences(mine: list[UtteranceScore], rows: list[dict]) -> list[dict]:
    """Utterances where the two systems' word error counts differ most."""
    pairs = [(u, row, _row_counts(row, "words").errors) for u, row in zip(mine, rows, strict=True)]
    pairs = sorted((p for p in pairs if p[0].words.errors != p[2]),
                   key=lambda p: -abs(p[0].words.errors - p[2]))
    return [{"audio_filepath": u.audio_filepath, "reference": u.reference, "this_hypothesis": u.hypothesis,
             "other_hypothesis": row.get("hypothesis", ""), "this_errors": u.words.errors,
             "other_errors": errors} for u, row, errors in pairs[:TOP_DIFFERENCES]]
