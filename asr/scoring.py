"""Scoring transcripts against a reference manifest: WER/CER with bootstrap intervals, error analysis.

Alignments come from jiwer; this module matches rows, normalises text and aggregates counts.

Matching: a hypothesis row belongs to the reference whose resolved absolute `audio_filepath` equals
the row's (relative hypothesis paths resolve against the hypothesis file's folder). Only when that
matches nothing at all, and file names are unique on both sides, rows are matched by file name, so a
transcript made on a copy of the corpus elsewhere still scores.

References with no hypothesis and failed inputs are scored as empty hypotheses (all deletions), so a
system cannot improve its score by skipping hard files; hypothesis rows with no reference are listed.
(NIST sclite instead leaves a reference with no hypothesis out of its counts altogether, and stops at a
hypothesis with no reference; `write_trn` writes a missing hypothesis as an empty line, so that sclite on
its files counts what this module counts.)

Either side may instead be an sclite `trn` file (`.trn`: `text (utterance_id)` per line). Then rows are
matched by utterance id: a trn line's id, or a JSONL row's audio file stem (`asr.outputs.utterance_ids`, the
ids `asr transcribe --format ctm` and `write_trn` write).
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path

import jiwer
import numpy as np

from asr.alignment import aligned_words
from asr.bootstrap import DEFAULT_BOOTSTRAP, DEFAULT_SEED, Interval, bootstrap_interval
from asr.confidence import token_confidences, word_confidence_pairs
from asr.data import ManifestError, Utterance, iter_jsonl, read_manifest, segment_key
from asr.outputs import utterance_ids
from asr.text import normalize_text
from asr.utils import atomic_write

NORMALIZERS = ("default", "none")
TOP_ERRORS = 20
WORST_UTTERANCES = 20
DURATION_BINS = (0.0, 2.0, 5.0, 10.0, 20.0, 30.0, math.inf)
STATUS_OK, STATUS_FAILED, STATUS_MISSING = "ok", "failed", "missing"
MATCH_PATH, MATCH_BASENAME = "resolved path", "file name (no resolved path matched)"
MATCH_ID = "utterance id (a trn line's id; a JSONL row's audio file stem)"
TRN_SUFFIX = ".trn"
TRN_NAMES = ("ref.trn", "hyp.trn")
# Where a reference read from a trn file keeps its id (in Utterance.extra): a name no manifest field has, so that
# a manifest row with fields of its own (which read_manifest keeps in extra) is never taken for a trn line.
UTTERANCE_ID = "_trn_utterance_id"
# sclite's trn line: the transcript, then the utterance id in parentheses at the end (the text may be empty).
# Parsed here: no maintained PyPI package reads trn files, and a regular expression keeps file:line errors ours.
TRN_LINE = re.compile(r"^(?P<text>.*?)\s*\((?P<id>[^()\s]+)\)\s*$")
_SPACES = re.compile(r"\s+")


@dataclass
class Counts:
    """Alignment counts against `ref` reference tokens (words or characters)."""

    ref: int = 0
    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float | None:
        """errors / ref; None (undefined, "infinite") when there is no reference but there are errors."""
        if self.ref:
            return self.errors / self.ref
        return 0.0 if self.errors == 0 else None

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def to_json(self) -> dict:
        return {**asdict(self), "errors": self.errors, "rate": self.rate}


@dataclass
class Hypothesis:
    audio_filepath: str
    text: str | None
    error: str | None = None
    line: int = 0
    words: list[tuple[str, float]] | None = None  # (word, confidence) from an `asr transcribe` JSONL row
    utterance_id: str | None = None  # a trn line's id (its audio_filepath is the id too)


@dataclass
class UtteranceScore:
    audio_filepath: str  # a trn reference's utterance id: it names no file
    reference: str
    hypothesis: str
    duration: float | None  # None: not known (a trn reference)
    speaker: str | None
    status: str
    words: Counts
    chars: Counts
    alignment: list[dict] = field(default_factory=list)
    error: str | None = None
    word_confidences: list[float] | None = None  # one per hypothesis word, when the transcript had them
    infeasible: str | None = None  # why the model cannot emit this reference at all (if that was checked)
    utterance_id: str = ""  # its id in trn files: the trn reference's own, else its audio file stem

    def to_json(self, with_alignment: bool = False) -> dict:
        row = {
            "audio_filepath": self.audio_filepath, "utterance_id": self.utterance_id, "status": self.status,
            "reference": self.reference,
            "hypothesis": self.hypothesis, "duration": self.duration, "speaker": self.speaker,
            "wer": self.words.rate, "cer": self.chars.rate,
            "words": self.words.to_json(), "chars": self.chars.to_json(), "error": self.error,
            "infeasible": self.infeasible,
        }
        if with_alignment:
            row["alignment"] = self.alignment
        return row




@dataclass
class ScoreResult:
    normalizer: str
    utterances: list[UtteranceScore]
    words: Counts
    chars: Counts
    wer_ci: Interval | None
    cer_ci: Interval | None
    n_resamples: int
    seed: int
    match_method: str
    unmatched_hypotheses: list[dict]
    notes: list[str]
    ref_path: str | None = None
    hyp_path: str | None = None
    feasibility_checked: bool = False  # whether references were checked against the model (`asr evaluate`)

    @property
    def infeasible(self) -> list[UtteranceScore] | None:
        """References the model could not emit even in principle; None when that is unknown."""
        return [u for u in self.utterances if u.infeasible] if self.feasibility_checked else None

    @property
    def wer(self) -> float | None:
        return self.words.rate

    @property
    def cer(self) -> float | None:
        return self.chars.rate

    @property
    def sentence_errors(self) -> int:
        return sum(1 for u in self.utterances if u.words.errors)

    @property
    def ser(self) -> float | None:
        return self.sentence_errors / len(self.utterances) if self.utterances else None

    @property
    def failed(self) -> list[UtteranceScore]:
        return [u for u in self.utterances if u.status == STATUS_FAILED]

    @property
    def missing(self) -> list[UtteranceScore]:
        return [u for u in self.utterances if u.status == STATUS_MISSING]

    @property
    def complete(self) -> bool:
        return not (self.failed or self.missing or self.unmatched_hypotheses)

    def frequent_errors(self, limit: int = TOP_ERRORS) -> dict[str, list[tuple]]:
        """Most frequent (ref, hyp, count) substitutions and (word, count) insertions and deletions."""
        subs, ins, dels = error_counters(self.utterances)
        return {"substitutions": [(r, h, n) for (r, h), n in subs.most_common(limit)],
                "insertions": ins.most_common(limit), "deletions": dels.most_common(limit)}

    def worst(self, limit: int = WORST_UTTERANCES) -> list[UtteranceScore]:
        scored = [u for u in self.utterances if u.words.errors]
        return sorted(scored, key=lambda u: (-u.words.errors, -(u.words.rate or math.inf)))[:limit]


def make_normalizer(name: str) -> Callable[[str], str]:
    if name == "default":
        return normalize_text
    if name == "none":
        return lambda text: _SPACES.sub(" ", text).strip()
    raise ValueError(f"unknown normalizer {name!r}; choose one of {', '.join(NORMALIZERS)}")


def is_trn(path: str | Path) -> bool:
    return Path(path).suffix.lower() == TRN_SUFFIX


def read_trn(path: str | Path) -> list[tuple[int, str, str]]:
    """(line number, utterance id, text) per line of an sclite trn file; `;;` comment lines and blank lines are
    skipped. Errors name the file and line."""
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip() or line.startswith(";;"):
                continue
            match = TRN_LINE.match(line.rstrip("\r\n"))
            if match is None:
                raise ManifestError(f"{path}:{number}: not a trn line: expected 'text (utterance_id)', got "
                                    f"{line.strip()[:60]!r}")
            rows.append((number, match["id"], match["text"].strip()))
    return rows


def read_references(path: str | Path) -> list[Utterance]:
    """A reference manifest (JSONL), or a trn file (`.trn`) whose lines become rows without audio."""
    path = Path(path)
    if not is_trn(path):
        return read_manifest(path)
    if not path.is_file():
        raise ManifestError(f"{path}: reference file not found")
    rows, seen = [], {}
    for number, utterance_id, text in read_trn(path):
        if utterance_id in seen:
            raise ManifestError(f"{path}:{number}: utterance id ({utterance_id}) already on line {seen[utterance_id]}")
        seen[utterance_id] = number
        rows.append(Utterance(None, 0.0, text, extra={UTTERANCE_ID: utterance_id}))
    return rows


def read_hypotheses(path: str | Path) -> list[Hypothesis]:
    """Rows of an `asr transcribe` JSONL, or the lines of a trn file (`.trn`); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: hypothesis file not found")
    if is_trn(path):
        return [Hypothesis(utterance_id, text, line=number, utterance_id=utterance_id)
                for number, utterance_id, text in read_trn(path)]
    return [hypothesis_from_row(data, path.parent, f"{path}:{number}", number) for number, data in iter_jsonl(path)]


def hypothesis_from_row(data: object, base: Path, where: str, line: int = 0) -> Hypothesis:
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: a row must be a JSON object")
    if not isinstance(data.get("audio_filepath"), str) or not data["audio_filepath"]:
        raise ManifestError(f"{where}: field 'audio_filepath' is missing or not a string")
    text, error = data.get("text"), data.get("error")
    if error is None and not isinstance(text, str):
        raise ManifestError(f"{where}: needs a string 'text' (or an 'error' for a failed input)")
    audio = Path(data["audio_filepath"])
    resolved = audio if audio.is_absolute() else base / audio
    key = segment_key(_resolve(str(resolved)), data.get("offset"), data.get("duration"))  # a segment: its range
    return Hypothesis(key, text if error is None else None,
                      None if error is None else str(error), line, word_confidence_pairs(data.get("words")))


def _resolve(path: str) -> str:
    return str(Path(path).resolve())


def _shown(path: str) -> str:
    """A reference's path as reports show it: relative to the current folder, so a report written by a
    pipeline holds no path of the machine that ran it (and reads the same on another checkout)."""
    return os.path.relpath(_resolve(path))


def reference_ids(refs: Sequence[Utterance]) -> list[str]:
    """Each reference's utterance id: a trn reference's own, else its audio (or feature) file's stem."""
    stems = utterance_ids([_reference_key(r) for r in refs if UTTERANCE_ID not in r.extra])
    return [r.extra[UTTERANCE_ID] if UTTERANCE_ID in r.extra else stems[_reference_key(r)] for r in refs]


def _reference_key(ref: Utterance) -> str:
    """A reference's resolved file, and for a segment (a row with an offset) its time range after it."""
    return segment_key(_resolve(ref.audio_filepath or ref.source), ref.offset, ref.duration)


def _shown_reference(ref: Utterance) -> str:
    """How a report names a reference: its file (see `_shown`), or a trn reference's utterance id."""
    if UTTERANCE_ID in ref.extra:
        return ref.extra[UTTERANCE_ID]
    return segment_key(_shown(ref.audio_filepath or ref.source), ref.offset, ref.duration)


def match_rows(refs: Sequence[Utterance], hyps: Sequence[Hypothesis]
               ) -> tuple[list[Hypothesis | None], list[dict], str]:
    """Pair each reference with its hypothesis; returns (per-reference hypothesis, unmatched rows, method)."""
    if any(UTTERANCE_ID in r.extra for r in refs) or any(h.utterance_id is not None for h in hyps):
        ref_keys = reference_ids(refs)
        stems = utterance_ids([h.audio_filepath for h in hyps if h.utterance_id is None])
        hyp_key = {id(h): h.utterance_id if h.utterance_id is not None else stems[h.audio_filepath] for h in hyps}
        method, key, what = MATCH_ID, (lambda p: p), "utterance"
    else:
        ref_keys = [_reference_key(r) for r in refs]
        hyp_key = {id(h): h.audio_filepath for h in hyps}
        method, key, what = MATCH_PATH, (lambda p: p), "file"
        if not set(ref_keys) & set(hyp_key.values()) and _unique_names(ref_keys, hyps):
            method, key = MATCH_BASENAME, (lambda p: Path(p).name)
    by_key: dict[str, Hypothesis] = {}
    unmatched = []
    for hyp in hyps:
        if key(hyp_key[id(hyp)]) in by_key:
            unmatched.append(_unmatched(hyp, f"duplicate row for this {what}; the first one was scored"))
        else:
            by_key[key(hyp_key[id(hyp)])] = hyp
    wanted = {key(k) for k in ref_keys}
    unmatched += [_unmatched(h, f"no reference for this {what}") for h in by_key.values()
                  if key(hyp_key[id(h)]) not in wanted]
    return [by_key.get(key(k)) for k in ref_keys], sorted(unmatched, key=lambda u: u["line"]), method


def _unique_names(ref_keys: list[str], hyps: Sequence[Hypothesis]) -> bool:
    ref_names = [Path(k).name for k in set(ref_keys)]
    hyp_names = [Path(h.audio_filepath).name for h in hyps]
    return bool(hyps) and len(set(ref_names)) == len(ref_names) and len(set(hyp_names)) == len(hyp_names)


def _unmatched(hyp: Hypothesis, reason: str) -> dict:
    return {"audio_filepath": hyp.audio_filepath, "line": hyp.line, "reason": reason}


def align(refs: list[str], hyps: list[str], words: bool) -> list[tuple[Counts, list[dict]]]:
    """Counts and alignment chunks per pair, from jiwer (word or character level)."""
    tokenize = str.split if words else list
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    results: list[tuple[Counts, list[dict]]] = []
    for hyp in hyps:
        hyp_tokens = tokenize(hyp)
        # jiwer 3 rejects empty references; every hypothesis token there is an insertion.
        chunks = [{"op": "insert", "ref": [], "hyp": hyp_tokens}] if hyp_tokens else []
        results.append((Counts(insertions=len(hyp_tokens)), chunks))
    nonempty = [i for i, ref in enumerate(refs) if ref]
    if not nonempty:
        return results
    process = jiwer.process_words if words else jiwer.process_characters
    out = process([refs[i] for i in nonempty], [hyps[i] for i in nonempty])
    for i, ref_tokens, hyp_tokens, chunks in zip(nonempty, out.references, out.hypotheses, out.alignments,
                                                 strict=True):
        results[i] = _from_chunks(ref_tokens, hyp_tokens, chunks)
    return results


def error_rate(references: Sequence[str], hypotheses: Sequence[str], words: bool = True) -> float:
    """Corpus WER (or CER): edits over reference words (characters), with jiwer's alignment; an empty reference
    counts its hypothesis's tokens as insertions. The one corpus rate training, tuning and reports share."""
    counts = [c for c, _ in align(list(references), list(hypotheses), words=words)]
    errors = sum(c.errors for c in counts)
    total = sum(c.ref for c in counts)
    return errors / total if total else float(errors > 0)


def _from_chunks(ref: list[str], hyp: list[str], chunks: Iterable) -> tuple[Counts, list[dict]]:
    counts = Counts(ref=len(ref))
    aligned = []
    for chunk in chunks:
        ref_part = ref[chunk.ref_start_idx:chunk.ref_end_idx]
        hyp_part = hyp[chunk.hyp_start_idx:chunk.hyp_end_idx]
        aligned.append({"op": chunk.type, "ref": ref_part, "hyp": hyp_part})
        if chunk.type == "equal":
            counts.hits += len(ref_part)
        elif chunk.type == "substitute":
            counts.substitutions += len(ref_part)
        elif chunk.type == "delete":
            counts.deletions += len(ref_part)
        elif chunk.type == "insert":
            counts.insertions += len(hyp_part)
    return counts, aligned


def score(refs: Sequence[Utterance], hyps: Sequence[Hypothesis | dict], normalizer: str = "default", *,
          n_resamples: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED, hyp_base: Path | None = None,
          ref_path: str | None = None, hyp_path: str | None = None,
          infeasible: Sequence[str | None] | None = None) -> ScoreResult:
    """Score hypotheses (rows of `asr transcribe` output) against reference utterances.

    `infeasible`, one per reference, says why the model cannot emit it (None: it can); leave it out when
    the model is not known, and the report says the count is unknown.
    """
    if infeasible is not None and len(infeasible) != len(refs):
        raise ValueError(f"{len(refs)} references but {len(infeasible)} feasibility verdicts")
    normalize = make_normalizer(normalizer)
    base = Path(hyp_base or ".")
    hyps = [h if isinstance(h, Hypothesis) else hypothesis_from_row(h, base, f"hypothesis row {i}", i)
            for i, h in enumerate(hyps, 1)]
    matched, unmatched, method = match_rows(refs, hyps)
    ref_texts = [normalize(r.text) for r in refs]
    hyp_texts = [normalize(h.text) if h is not None and h.text is not None else "" for h in matched]
    word_scores = align(ref_texts, hyp_texts, words=True)
    char_scores = align(ref_texts, hyp_texts, words=False)
    utterances = [
        UtteranceScore(
            audio_filepath=_shown_reference(ref),
            reference=rt, hypothesis=ht, duration=float(ref.duration) if ref.source else None,
            speaker=ref.speaker, status=_status(hyp), words=w[0], chars=c[0],
            alignment=w[1], error=hyp.error if hyp is not None else None,
            word_confidences=token_confidences(hyp.words, ht.split(), normalize) if hyp is not None else None,
            infeasible=infeasible[i] if infeasible is not None else None, utterance_id=uid)
        for i, (ref, hyp, rt, ht, w, c, uid) in enumerate(zip(refs, matched, ref_texts, hyp_texts, word_scores,
                                                              char_scores, reference_ids(refs), strict=True))
    ]
    words, chars = [u.words for u in utterances], [u.chars for u in utterances]
    result = ScoreResult(
        normalizer=normalizer, utterances=utterances, words=sum(words, Counts()), chars=sum(chars, Counts()),
        wer_ci=bootstrap_interval(*counts_arrays(words), n_resamples, seed),
        cer_ci=bootstrap_interval(*counts_arrays(chars), n_resamples, seed),
        n_resamples=n_resamples, seed=seed, match_method=method, unmatched_hypotheses=unmatched,
        notes=[], ref_path=ref_path, hyp_path=hyp_path, feasibility_checked=infeasible is not None)
    result.notes = _notes(result)
    return result


def _status(hyp: Hypothesis | None) -> str:
    if hyp is None:
        return STATUS_MISSING
    return STATUS_FAILED if hyp.error is not None else STATUS_OK


def counts_arrays(counts: Sequence[Counts]) -> tuple[np.ndarray, np.ndarray]:
    """(errors, reference tokens) per utterance, the inputs of the bootstrap."""
    return np.array([c.errors for c in counts], np.int64), np.array([c.ref for c in counts], np.int64)


def error_counters(utterances: Iterable[UtteranceScore]) -> tuple[Counter, Counter, Counter]:
    """Word substitution pairs, inserted words and deleted words over all alignments."""
    subs, ins, dels = Counter(), Counter(), Counter()
    for utterance in utterances:
        for op, ref, hyp in aligned_words(utterance.alignment):
            if op == "substitute":
                subs[(ref, hyp)] += 1
            elif op == "insert":
                ins[hyp] += 1
            elif op == "delete":
                dels[ref] += 1
    return subs, ins, dels


def _notes(result: ScoreResult) -> list[str]:
    notes = [f"Text normaliser: {result.normalizer}."]
    if result.words.ref == 0:
        notes.append("The references contain no words: WER is undefined (null) with insertions, else 0.")
    if result.missing:
        notes.append(f"{len(result.missing)} reference(s) without hypothesis, scored as empty (deletions).")
    if result.failed:
        notes.append(f"{len(result.failed)} failed input(s), scored as empty hypotheses (deletions).")
    if result.unmatched_hypotheses:
        notes.append(f"{len(result.unmatched_hypotheses)} hypothesis row(s) without reference, not scored.")
    if result.infeasible:
        notes.append(f"{len(result.infeasible)} reference(s) the model cannot emit even in principle (outside "
                     "its alphabet, or more CTC frames needed than the audio gives); scored like the others.")
    elif result.infeasible is None:
        notes.append("References were not checked against a model, so infeasible ones are not counted "
                     "(`asr evaluate`, or `asr score --config`, counts them).")
    if result.match_method == MATCH_BASENAME:
        notes.append("No hypothesis path matched a reference path, so rows were matched by file name.")
    if result.match_method == MATCH_ID:
        notes.append("Rows were matched by utterance id (a trn line's id; a JSONL row's audio file stem).")
    return notes


def write_trn(result: ScoreResult, folder: str | Path) -> tuple[Path, Path]:
    """ref.trn and hyp.trn in `folder` (atomically): both sides of every scored utterance, normalised as they
    were scored, a missing or failed hypothesis as an empty line. sclite on them counts what `score` counted:

        sclite -r ref.trn trn -h hyp.trn trn -i rm -o sum stdout

    Ids are `UtteranceScore.utterance_id`, with -2, -3... after the first where rows share one (rows of one
    recording in a manifest), so that each line is an utterance of its own for sclite too.
    """
    folder = Path(folder)
    seen: Counter = Counter()
    ids = []
    for utterance in result.utterances:
        seen[utterance.utterance_id] += 1
        count = seen[utterance.utterance_id]
        ids.append(utterance.utterance_id if count == 1 else f"{utterance.utterance_id}-{count}")
    paths = folder / TRN_NAMES[0], folder / TRN_NAMES[1]
    for path, side in zip(paths, ("reference", "hypothesis"), strict=True):
        with atomic_write(path) as handle:
            for utterance, utterance_id in zip(result.utterances, ids, strict=True):
                text = getattr(utterance, side)
                handle.write(f"{text} ({utterance_id})\n" if text else f"({utterance_id})\n")
    return paths


def breakdown(utterances: Iterable[UtteranceScore], key: Callable[[UtteranceScore], str | None]
              ) -> dict[str, dict]:
    """Corpus WER per group (groups in first-seen order; utterances whose key is None are left out)."""
    groups: dict[str, Counts] = {}
    sizes: Counter = Counter()
    for utterance in utterances:
        name = key(utterance)
        if name is not None:
            groups[name] = groups.get(name, Counts()) + utterance.words
            sizes[name] += 1
    return {name: {"utterances": sizes[name], "ref_words": c.ref, "errors": c.errors, "wer": c.rate}
            for name, c in groups.items()}


def duration_bin(duration: float, edges: Sequence[float] = DURATION_BINS) -> str:
    for low, high in zip(edges, edges[1:], strict=False):
        if duration < high:
            return f"{low:g}-{high:g} s" if math.isfinite(high) else f">= {low:g} s"
    return f">= {edges[-1]:g} s"


def by_duration(result: ScoreResult) -> dict[str, dict]:
    """Corpus WER per duration bin; utterances of unknown duration (trn references) are left out."""
    timed = [u for u in result.utterances if u.duration is not None]
    return breakdown(sorted(timed, key=lambda u: u.duration), lambda u: duration_bin(u.duration))


def by_speaker(result: ScoreResult) -> dict[str, dict]:
    return breakdown(result.utterances, lambda u: None if u.speaker in (None, "") else str(u.speaker))
