"""Manifests: NeMo-compatible JSONL, one utterance per line, plus validation and speaker-disjoint splits.

A row is `{"audio_filepath", "duration", "text"}` with optional `speaker`, `feature_filepath` (a `.npy`
array [frames, dims] used instead of audio), `split` and `original_text`. A training row with empty text
must say `"non_speech": true` (silence or noise the model should learn to say nothing for); any other
empty transcript is taken for a missing one and rejected. Relative paths resolve against
the manifest's folder, so a corpus folder with its manifest can be moved as a whole.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from asr.audio import AudioError, read_audio
from asr.config import ModelConfig
from asr.frames import FeatureConfig, subsampled_length
from asr.text import Alphabet, ctc_min_frames, normalize_text
from asr.utils import atomic_write

IMPORT_ERROR = "import_error"
NON_SPEECH = "non_speech"  # a row marked `"non_speech": true` is silence or noise, trained on with empty text
PURPOSES = ("train", "eval")  # what a prepared manifest is for: see ValidationRules


class ManifestError(ValueError):
    pass


class CorpusError(ValueError):
    """The corpus folder itself is not in the expected layout (as opposed to one bad row); `asr.corpora`'s."""


@dataclass
class Utterance:
    audio_filepath: str | None
    duration: float
    text: str
    speaker: str | None = None
    feature_filepath: str | None = None
    split: str | None = None
    original_text: str | None = None
    extra: dict = field(default_factory=dict)
    # Seconds into audio_filepath where this utterance starts (NeMo's "offset"; a Kaldi segment, a lhotse
    # supervision); `duration` is then the segment's length and only that slice is ever read.
    offset: float | None = None

    @property
    def source(self) -> str:
        """The file this utterance is read from: precomputed features win over audio."""
        return self.feature_filepath or self.audio_filepath or ""

    def to_json(self, relative_to: Path | None = None) -> dict:
        row = {k: v for k, v in asdict(self).items() if k != "extra" and v is not None}
        for key in ("audio_filepath", "feature_filepath"):
            if key in row and relative_to is not None:
                row[key] = _relative(row[key], relative_to)
        if "audio_filepath" not in row:
            row["audio_filepath"] = None  # NeMo readers expect the key
        row["duration"] = round(float(row["duration"]), 4)
        if "offset" in row:
            row["offset"] = round(float(row["offset"]), 4)
        return {**row, **self.extra}

    @property
    def segment(self) -> tuple[float | None, float | None]:
        """(offset, duration) to read from the audio file: (None, None) for the whole file."""
        return (None, None) if self.offset is None else (self.offset, self.duration)


# np.load parses each .npy header with ast.literal_eval, and CPython 3.11's AST builder keeps its recursion depth
# in shared state: threads parsing at once fail with "SystemError: AST constructor recursion depth mismatch"
# (python/cpython#106905), seen in `asr prepare`'s thread pool. Loads take turns; a header is microseconds.
_NPY_LOAD_LOCK = threading.Lock()
SEGMENT_MARK = "#t="  # W3C Media Fragments: a time range of the file named before it
KNOWN_FIELDS = {"audio_filepath", "duration", "text", "speaker", "feature_filepath", "split", "original_text",
                "offset"}


def segment_key(path: str, offset: float | None = None, duration: float | None = None) -> str:
    """How an input is told apart from the others: its path, and for a segment the W3C Media Fragments time
    range after it (`a.wav#t=12.500,15.250`), so the segments of one recording are matched, resumed and named
    each on its own."""
    if offset is None:
        return path
    return f"{path}{SEGMENT_MARK}{offset:.3f},{offset + (duration or 0.0):.3f}"


def split_segment_key(key: str) -> tuple[str, str]:
    """(path, "start,end" or "") of a `segment_key`."""
    path, _, times = key.partition(SEGMENT_MARK)
    return path, times


def read_manifest(path: str | Path) -> list[Utterance]:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    return [_utterance_from_row(data, path.parent, f"{path}:{number}") for number, data in iter_jsonl(path)]


def iter_jsonl(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) for each non-blank line; a bad line raises ManifestError naming file:line."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                raise ManifestError(f"{path}:{number}: not valid JSON ({error.msg})") from None


def _utterance_from_row(data: dict, base: Path, where: str) -> Utterance:
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: a row must be a JSON object")
    if not data.get("audio_filepath") and not data.get("feature_filepath"):
        raise ManifestError(f"{where}: needs 'audio_filepath' or 'feature_filepath'")
    if "text" not in data or not isinstance(data["text"], str):
        raise ManifestError(f"{where}: field 'text' is missing or not a string")
    try:
        duration = float(data.get("duration", 0.0))
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: field 'duration' is not a number: {data['duration']!r}") from None
    offset = data.get("offset")
    if offset is not None:
        if isinstance(offset, bool) or not isinstance(offset, int | float) or offset < 0:
            raise ManifestError(f"{where}: field 'offset' must be seconds (a number, at least 0), got {offset!r}")
        if not duration > 0:
            raise ManifestError(f"{where}: a row with an 'offset' needs its segment's 'duration' (seconds, > 0)")
    resolve = lambda p: os.path.normpath(p if Path(p).is_absolute() else (base.resolve() / p))  # noqa: E731
    return Utterance(
        audio_filepath=resolve(data["audio_filepath"]) if data.get("audio_filepath") else None,
        duration=duration,
        text=data["text"],
        speaker=data.get("speaker"),
        feature_filepath=resolve(data["feature_filepath"]) if data.get("feature_filepath") else None,
        split=data.get("split"),
        original_text=data.get("original_text"),
        extra={k: v for k, v in data.items() if k not in KNOWN_FIELDS},
        offset=None if offset is None else float(offset),
    )


def write_manifest(path: str | Path, rows: Iterable[Utterance | dict]) -> None:
    """Write atomically; audio/feature paths are stored relative to the manifest's folder."""
    path = Path(path)
    base = path.parent.resolve()
    with atomic_write(path) as handle:
        for row in rows:
            data = row.to_json(base) if isinstance(row, Utterance) else row
            handle.write(json.dumps(data, ensure_ascii=False) + "\n")


def _relative(filepath: str, base: Path) -> str:
    try:
        return os.path.relpath(Path(filepath).resolve(), base)
    except ValueError:  # another drive on Windows
        return str(Path(filepath).resolve())


@dataclass(frozen=True)
class ValidationRules:
    """What makes an utterance usable for a model with this front end, alphabet and subsampling.

    `purpose` "train" (the default) rejects rows the model cannot learn from; "eval" keeps every row whose
    audio decodes and whose text is non-empty, because a test set must score every reference it was given:
    a reference the model cannot emit (characters outside its alphabet, or a label needing more CTC frames
    than its audio gives) is kept, and counted, rather than dropped from the WER.
    """

    alphabet: Alphabet = Alphabet()
    features: FeatureConfig = FeatureConfig()
    subsampling: int = ModelConfig.subsampling
    feature_frames_per_second: float | None = None  # for precomputed features; default: the front end's
    purpose: str = "train"  # one of PURPOSES

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, got {self.purpose!r}")

    @classmethod
    def for_model(cls, config, purpose: str = "train") -> ValidationRules:
        """The rules of a model's `asr.config.Config`: its alphabet, front end and time subsampling."""
        return cls(config.alphabet(), config.features, config.model.subsampling, purpose=purpose)


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one row: `reject` drops it; `unemittable` says the model cannot output its text."""

    reject: str | None = None
    unemittable: str | None = None


def validate(utterance: Utterance, rules: ValidationRules) -> str | None:
    """Check one utterance and fill in its normalised text and true duration. Returns a reason to reject it."""
    return check(utterance, rules).reject


def check(utterance: Utterance, rules: ValidationRules) -> Verdict:
    """`validate` with the reason a kept row cannot be emitted (only ever set for purpose "eval")."""
    if IMPORT_ERROR in utterance.extra:  # an importer could not even convert this row
        return Verdict(str(utterance.extra.pop(IMPORT_ERROR)))
    try:
        frames, utterance.duration = read_length(utterance, rules)
    except AudioError as error:
        return Verdict(error.reason)  # the rejects row names the file already
    except ManifestError as error:
        return Verdict(str(error).removeprefix(f"{utterance.source}: "))
    if utterance.original_text is None:
        utterance.original_text = utterance.text
    utterance.text = normalize_text(utterance.text)
    if not utterance.text:
        if utterance.extra.get(NON_SPEECH) is True and rules.purpose == "train":
            return Verdict()
        return Verdict(f"empty text after normalisation (was {utterance.original_text!r})")
    problem = emission_problem(utterance.text, frames, rules)
    if problem is None:
        return Verdict()
    return Verdict(unemittable=problem) if rules.purpose == "eval" else Verdict(problem)


def emission_problem(text: str, frames: int, rules: ValidationRules) -> str | None:
    """Why a model under `rules` cannot output normalised `text` from `frames` feature frames, or None.

    Training cannot use such a row (its CTC loss is infinite); a test set keeps it, as a certain error.
    """
    unknown = rules.alphabet.unknown_characters(text)
    if unknown:
        return f"characters outside the alphabet: {''.join(sorted(unknown))!r}"
    output_frames = subsampled_length(frames, rules.subsampling)
    needed = ctc_min_frames(text)
    if needed > output_frames:
        return (f"label too long for its audio: {needed} CTC frames needed, {output_frames} available "
                f"({frames} feature frames at subsampling {rules.subsampling})")
    return None


def infeasible_references(rows: Iterable[Utterance], rules: ValidationRules) -> list[str | None]:
    """Per row, why a model under `rules` cannot emit its normalised text even in principle, or None.

    A row whose audio cannot be read gets None: transcribing it fails, and the report counts it as failed.
    """
    verdicts: list[str | None] = []
    for row in rows:
        text = normalize_text(row.text)
        try:
            frames, _ = read_length(row, rules)
        except (AudioError, ManifestError):
            frames = None
        verdicts.append(emission_problem(text, frames, rules) if text and frames is not None else None)
    return verdicts


def read_length(utterance: Utterance, rules: ValidationRules) -> tuple[int, float]:
    """(feature frames, seconds) of the utterance's audio or features; a full decode, so it checks them too."""
    if utterance.feature_filepath:
        array = load_features(utterance.feature_filepath)
        rate = rules.feature_frames_per_second or rules.features.frames_per_second
        return array.shape[0], array.shape[0] / rate
    if not utterance.audio_filepath:
        raise ManifestError("no audio_filepath or feature_filepath")
    # A full decode (of the segment, for a row with an offset): headers hide truncated bodies.
    samples, file_rate = read_audio(utterance.audio_filepath, *utterance.segment)
    duration = len(samples) / file_rate
    return rules.features.frames_for(duration), duration


def load_features(path: str | Path) -> np.ndarray:
    """A precomputed feature array [frames, dims], checked."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: feature file does not exist")
    try:
        with _NPY_LOAD_LOCK:
            array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ManifestError(f"{path}: not a readable .npy array ({error})") from None
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ManifestError(f"{path}: features must be a non-empty [frames, dims] array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ManifestError(f"{path}: features contain NaN or infinite values")
    return array.astype(np.float32, copy=False)


def speaker_disjoint_split(rows: list[Utterance], fractions: dict[str, float], seed: int = 0,
                           ) -> dict[str, list[Utterance]]:
    """Assign whole speakers to splits so each split gets about its fraction of the *audio duration*.

    `fractions` e.g. {"train": 0.8, "dev": 0.1, "test": 0.1}. Rows without a speaker count as one speaker
    each (keyed by file), which is the honest assumption when nothing is known.
    """
    if not fractions or any(f < 0 for f in fractions.values()) or abs(sum(fractions.values()) - 1) > 1e-6:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    by_speaker: dict[str, list[Utterance]] = {}
    for row in rows:
        by_speaker.setdefault(row.speaker or f"file:{row.source}", []).append(row)
    speakers = sorted(by_speaker)
    random.Random(seed).shuffle(speakers)
    total = sum(r.duration for r in rows) or 1.0
    splits: dict[str, list[Utterance]] = {name: [] for name in fractions}
    taken = dict.fromkeys(fractions, 0.0)

    def assign(speaker: str, name: str) -> None:
        splits[name].extend(by_speaker[speaker])
        taken[name] += sum(r.duration for r in by_speaker[speaker])

    wanted = sorted((n for n in fractions if fractions[n] > 0), key=lambda n: fractions[n])
    if len(speakers) >= len(wanted):  # every requested split gets a speaker, the smallest first
        for name in wanted:
            assign(speakers.pop(), name)
    for speaker in speakers:  # then each speaker goes to the split furthest below its share of the audio
        assign(speaker, min(wanted, key=lambda n: taken[n] / total - fractions[n]))
    return splits
