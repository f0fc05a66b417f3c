"""Importers: turn a corpus in its own layout into a validated manifest plus a rejects file.

Each importer yields raw `Utterance`s (absolute paths, the corpus's own text); `prepare` validates them
in parallel against the model's rules and writes the manifest and the rejects atomically.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from num2words import num2words
from tqdm import tqdm

from asr.audio import AUDIO_EXTENSIONS
from asr.data import (
    IMPORT_ERROR,
    CorpusError,
    ManifestError,
    Utterance,
    ValidationRules,
    atomic_write,
    check,
    read_manifest,
    write_manifest,
)
from asr.kaldi import import_kaldi
from asr.lhotse_manifests import import_lhotse

SPHINX_FRAMES_PER_SECOND = 100.0
SPHINX_CEPSTRA = 13
AN4_SUBSETS = ("train", "test")
AN4_FORMS = ("auto", "features", "audio")
# Looked for at wav/<file id><ext>, in this order: cmusphinx/an4 ships RIFF .wav, CMU's own tarball NIST .sph,
# and FLAC is what a converted copy (like ours) holds.
AN4_AUDIO_EXTENSIONS = (".wav", ".flac", ".sph")
AN4_SENTENCE_MARKERS = frozenset({"<s>", "</s>", "<sil>"})
AN4_UTTERANCE_ID = re.compile(r"\(([^()\s]+)\)\s*$")  # the trailing "(an251-fash-b)" of a transcription line
PATH_COLUMNS = ("path", "audio_filepath", "audio", "file", "filename", "wav")
TEXT_COLUMNS = ("text", "transcript", "transcription", "sentence", "normalized_text")
SPEAKER_COLUMNS = ("speaker", "client_id", "speaker_id")
SPLIT_COLUMNS = ("split", "subset")


@dataclass
class PrepareSummary:
    kept: int
    rejected: int
    hours: float
    speakers: int
    reasons: Counter
    source_form: str = ""  # what was read, where a format offers a choice (AN4: features or waveforms)
    unemittable: Counter = field(default_factory=Counter)  # kept rows the model cannot output (purpose eval)

    def describe(self) -> str:
        audio = f"{self.hours:.2f} h" if self.hours >= 1 else f"{self.hours * 60:.1f} min"
        lines = [f"kept {self.kept} utterances ({audio}, {self.speakers} speakers), "
                 f"rejected {self.rejected}"]
        if self.source_form:
            lines.append(f"  read {self.source_form}")
        lines += [f"  {count:6d} × {reason}" for reason, count in self.reasons.most_common(10)]
        if self.unemittable:
            lines.append(f"kept {sum(self.unemittable.values())} the model cannot emit even in principle "
                         "(scored as errors by `asr evaluate`):")
            lines += [f"  {count:6d} × {reason}" for reason, count in self.unemittable.most_common(10)]
        return "\n".join(lines)


def prepare(format_name: str, source: str | Path, out: str | Path, rejects: str | Path | None = None,
            rules: ValidationRules | None = None, workers: int = 8, progress: bool = True, *,
            subset: str | None = None, an4_form: str | None = None) -> PrepareSummary:
    """`subset` and `an4_form` choose the AN4 list and what to read for it (see `plan_an4`)."""
    if format_name not in IMPORTERS:
        raise CorpusError(f"unknown format {format_name!r}; choose from {', '.join(IMPORTERS)}")
    if format_name != "an4" and (subset or an4_form):
        raise CorpusError(f"--subset and --an4-form apply to format 'an4' only, not {format_name!r}")
    source, out = Path(source), Path(out)
    if not source.exists():
        raise CorpusError(f"{source}: corpus source does not exist")
    rules = rules or ValidationRules()
    rejects = Path(rejects) if rejects else out.with_name(out.stem + ".rejects.jsonl")
    source_form = ""
    if format_name == "an4":
        plan = plan_an4(source, subset or "train", an4_form or "auto")
        if plan.form == "features":  # Sphinx frames are 10 ms whatever the model's front end would make
            rules = dataclasses.replace(rules, feature_frames_per_second=SPHINX_FRAMES_PER_SECOND)
        candidates, source_form = list(plan.utterances(out)), plan.describe()
    else:
        candidates = list(IMPORTERS[format_name](source, out))
    if not candidates:
        raise CorpusError(f"{source}: no utterances found for format {format_name!r}")
    with ThreadPoolExecutor(max_workers=workers) as pool:  # libsndfile releases the GIL while it reads
        verdicts = list(tqdm(pool.map(lambda u: check(u, rules), candidates), total=len(candidates),
                             desc=f"checking {source.name}", unit="utt", disable=not progress, file=sys.stderr))
    kept = [u for u, verdict in zip(candidates, verdicts, strict=True) if verdict.reject is None]
    rejected = [(u, v.reject) for u, v in zip(candidates, verdicts, strict=True) if v.reject is not None]
    write_manifest(out, kept)
    with atomic_write(rejects) as handle:
        for utterance, reason in rejected:
            row = {"source": utterance.source, "text": utterance.original_text or utterance.text,
                   "reason": reason}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return PrepareSummary(
        kept=len(kept), rejected=len(rejected), hours=sum(u.duration for u in kept) / 3600,
        speakers=len({u.speaker for u in kept if u.speaker}),
        reasons=Counter(_reason_kind(r) for _, r in rejected), source_form=source_form,
        unemittable=Counter(_reason_kind(v.unemittable) for v in verdicts if v.reject is None and v.unemittable),
    )


def _reason_kind(reason: str) -> str:
    """Group rejects by the kind of problem, without the per-file detail."""
    return reason.split(" (")[0].split(":")[0]


# --- importers: (source, out manifest path) -> raw utterances ---------------------------------------------

def import_librispeech(source: Path, out: Path) -> Iterator[Utterance]:
    transcripts = sorted(source.rglob("*.trans.txt"))
    if not transcripts:
        raise CorpusError(f"{source}: no *.trans.txt files (expected LibriSpeech SPEAKER/CHAPTER folders)")
    for transcript in transcripts:
        for line in transcript.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            utt_id, _, text = line.partition(" ")
            yield Utterance(str(transcript.parent / f"{utt_id}.flac"), 0.0, text, speaker=utt_id.split("-")[0])


def import_commonvoice(source: Path, out: Path) -> Iterator[Utterance]:
    if source.is_file():
        tables = [source]
    else:
        preferred = [source / name for name in ("validated.tsv", "train.tsv", "dev.tsv", "test.tsv")]
        tables = [preferred[0]] if preferred[0].exists() else [t for t in preferred[1:] if t.exists()]
    if not tables:
        raise CorpusError(f"{source}: no validated.tsv/train.tsv/dev.tsv/test.tsv (expected a Common Voice folder)")
    for table in tables:
        clips = table.parent / "clips"
        split = None if table.stem == "validated" else table.stem
        for row in _read_table(table, "\t", quoted=False):  # Common Voice TSVs are unquoted
            yield Utterance(str(clips / row["path"]), 0.0, row.get("sentence", ""),
                            speaker=row.get("client_id"), split=split)


def import_ljspeech(source: Path, out: Path) -> Iterator[Utterance]:
    metadata = source / "metadata.csv" if source.is_dir() else source
    if not metadata.is_file():
        raise CorpusError(f"{source}: no metadata.csv (expected an LJSpeech folder)")
    for number, line in enumerate(metadata.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("|")
        if len(fields) < 2:
            raise CorpusError(f"{metadata}:{number}: expected 'id|text|normalized text'")
        text = fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]
        yield Utterance(str(metadata.parent / "wavs" / f"{fields[0]}.wav"), 0.0, text, speaker="LJ")


def import_fsdd(source: Path, out: Path) -> Iterator[Utterance]:
    """The shared layout (transcripts.tsv) or the original repository (recordings/D_SPEAKER_N.wav)."""
    table = source / "transcripts.tsv"
    if table.is_file():
        yield from import_tsv(table, out)
        return
    recordings = source / "recordings" if (source / "recordings").is_dir() else source
    files = sorted(recordings.glob("*.wav"))
    if not files:
        raise CorpusError(f"{source}: neither transcripts.tsv nor recordings/*.wav found")
    for wav in files:
        parts = wav.stem.split("_")
        if len(parts) != 3 or not parts[0].isdigit():
            raise CorpusError(f"{wav}: FSDD names are DIGIT_SPEAKER_INDEX.wav")
        digit, speaker, index = parts
        split = "test" if int(index) < 5 else "train"  # the dataset's own convention
        yield Utterance(str(wav), 0.0, num2words(int(digit)), speaker=speaker, split=split)


def import_tsv(source: Path, out: Path) -> Iterator[Utterance]:
    table = source / "transcripts.tsv" if source.is_dir() else source
    if not table.is_file():
        raise CorpusError(f"{source}: no such TSV file (or folder with transcripts.tsv)")
    rows = _read_table(table, "\t")
    if not rows:
        return
    header = set(rows[0])
    path_key = _pick_column(header, PATH_COLUMNS, table)
    text_key = _pick_column(header, TEXT_COLUMNS, table)
    speaker_key = next((c for c in SPEAKER_COLUMNS if c in header), None)
    split_key = next((c for c in SPLIT_COLUMNS if c in header), None)
    for row in rows:
        path = Path(row[path_key])
        yield Utterance(str(path if path.is_absolute() else table.parent / path), 0.0, row[text_key] or "",
                        speaker=row.get(speaker_key) if speaker_key else None,
                        split=row.get(split_key) if split_key else None)


def import_folder(source: Path, out: Path) -> Iterator[Utterance]:
    if not source.is_dir():
        raise CorpusError(f"{source}: not a folder")
    for audio in sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS):
        transcript = audio.with_suffix(".txt")
        text = transcript.read_text(encoding="utf-8") if transcript.is_file() else ""
        # The parent folder names the speaker when the corpus is laid out by speaker.
        speaker = audio.parent.name if audio.parent != source else None
        yield Utterance(str(audio), 0.0, text, speaker=speaker)


def import_manifest(source: Path, out: Path) -> Iterator[Utterance]:
    """An existing NeMo-style manifest, re-checked against this model's rules (and re-rooted at OUT)."""
    if not source.is_file():
        raise CorpusError(f"{source}: expected a manifest file (JSONL)")
    try:
        yield from read_manifest(source)
    except ManifestError as error:
        raise CorpusError(str(error)) from None


def import_an4(source: Path, out: Path) -> Iterator[Utterance]:
    """CMU AN4's training list, in whichever form `plan_an4` picks by default."""
    yield from plan_an4(source).utterances(out)


@dataclass(frozen=True)
class An4Entry:
    file_id: str  # e.g. an4test_clstk/fcaw/cen1-fcaw-b: the speaker is its folder
    text: str
    mismatch: str | None = None  # why this line cannot be trusted to belong to its file id


@dataclass(frozen=True)
class An4Plan:
    """One AN4 list and the form it is read in, settled before any file is converted."""

    source: Path
    subset: str
    form: str  # "features" (feat/<id>.mfc) or "audio" (wav/<id>.<ext>, or the paths in transcripts.tsv)
    entries: tuple[An4Entry, ...] = ()
    table: Path | None = None  # our waveform folder: a transcripts.tsv instead of the etc/ lists

    def describe(self) -> str:
        if self.table is not None:
            return f"AN4 waveforms listed in {self.table}"
        listed = f"AN4 {self.subset} (etc/an4_{self.subset}.fileids, {len(self.entries)} file ids)"
        if self.form == "features":
            return f"{listed} as Sphinx MFCC features: feat/<file id>.mfc at {SPHINX_FRAMES_PER_SECOND:g} frames/s"
        return f"{listed} as waveforms: wav/<file id>{{{','.join(AN4_AUDIO_EXTENSIONS)}}}"

    def utterances(self, out: Path) -> Iterator[Utterance]:
        if self.table is not None:
            yield from import_tsv(self.table, out)  # the same rows `asr prepare tsv` gives
        elif self.form == "features":
            yield from self._feature_rows(out.parent / f"{out.stem}_features")
        else:
            yield from self._audio_rows()

    def _feature_rows(self, feature_dir: Path) -> Iterator[Utterance]:
        """Converts each .mfc to .npy [frames, 13] in a folder beside the manifest."""
        feature_dir.mkdir(parents=True, exist_ok=True)
        for entry in self.entries:
            speaker = PurePosixPath(entry.file_id).parent.name
            mfc = self.source / "feat" / f"{entry.file_id}.mfc"
            if entry.mismatch:
                yield Utterance(str(mfc), 0.0, entry.text, speaker=speaker, extra={IMPORT_ERROR: entry.mismatch})
                continue
            # Named by utterance id alone (AN4's ids carry the speaker), as earlier manifests were.
            npy = feature_dir / f"{PurePosixPath(entry.file_id).name}.npy"
            try:
                np.save(npy, read_sphinx_mfc(mfc))
            except ManifestError as error:
                yield Utterance(str(mfc), 0.0, entry.text, speaker=speaker, extra={IMPORT_ERROR: str(error)})
                continue
            yield Utterance(None, 0.0, entry.text, speaker=speaker, feature_filepath=str(npy))

    def _audio_rows(self) -> Iterator[Utterance]:
        for entry in self.entries:
            speaker = PurePosixPath(entry.file_id).parent.name
            audio = find_an4_waveform(self.source, entry.file_id)
            problem = entry.mismatch
            if audio is None:
                stem = self.source / "wav" / entry.file_id
                audio = stem.with_name(stem.name + AN4_AUDIO_EXTENSIONS[0])
                problem = problem or f"transcript without audio: no {stem}{{{','.join(AN4_AUDIO_EXTENSIONS)}}}"
            extra = {IMPORT_ERROR: problem} if problem else {}
            yield Utterance(str(audio), 0.0, entry.text, speaker=speaker, extra=extra)


def plan_an4(source: Path, subset: str = "train", form: str = "auto") -> An4Plan:
    """AN4 as published: the Sphinx layout (etc/an4_SUBSET.transcription + .fileids, with feat/<id>.mfc
    and/or wav/<id>.<ext>), or a folder of waveforms with a transcripts.tsv (the training set only).

    `form` auto reads waveforms when every listed file id has one, else features (an MFCC copy may carry a few
    sample waveforms, which must not win); only where no feature file exists at all does it read the waveforms
    there are.
    """
    if subset not in AN4_SUBSETS:
        raise CorpusError(f"AN4 subset must be one of {', '.join(AN4_SUBSETS)}, got {subset!r}")
    if form not in AN4_FORMS:
        raise CorpusError(f"AN4 form must be one of {', '.join(AN4_FORMS)}, got {form!r}")
    transcription = source / "etc" / f"an4_{subset}.transcription"
    fileids = source / "etc" / f"an4_{subset}.fileids"
    table = source / "transcripts.tsv"
    missing = [str(path) for path in (transcription, fileids) if not path.is_file()]
    if missing and subset == "train" and table.is_file() and not (source / "etc").is_dir():
        if form == "features":
            raise CorpusError(f"{source}: a transcripts.tsv folder holds waveforms only; there is no feat/ to read "
                              "(use --an4-form audio or auto)")
        return An4Plan(source, subset, "audio", table=table)
    if missing:
        raise CorpusError(f"{source}: expected etc/an4_{subset}.transcription and etc/an4_{subset}.fileids "
                          f"(the Sphinx AN4 layout); not found: {', '.join(missing)}")
    entries = read_an4_lists(transcription, fileids)
    return An4Plan(source, subset, _pick_an4_form(source, entries, form, fileids), entries)


def read_an4_lists(transcription: Path, fileids: Path) -> tuple[An4Entry, ...]:
    """Pair line N of the transcription with line N of the file ids, as SphinxTrain does."""
    lines = [line.strip() for line in transcription.read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = [line.strip() for line in fileids.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) != len(ids):
        raise CorpusError(f"{len(lines)} transcriptions in {transcription} but {len(ids)} file ids in {fileids}: "
                          "the lists must pair line by line")
    entries = []
    for number, (line, file_id) in enumerate(zip(lines, ids, strict=True), 1):
        text, utt_id = parse_an4_transcription(line)
        # A line whose id names another file is rejected, not fatal: one slip should not block the corpus, and
        # a list that is off by a line shows up as every following row rejected for this one reason.
        mismatch = None
        if utt_id is not None and utt_id != PurePosixPath(file_id).name:
            mismatch = (f"transcription id does not match file id (line {number}: ({utt_id}) in "
                        f"{transcription.name}, {file_id} in {fileids.name})")
        entries.append(An4Entry(file_id, text, mismatch))
    return tuple(entries)


def parse_an4_transcription(line: str) -> tuple[str, str | None]:
    """'<s> YES </s> (an251-fash-b)' -> ('YES', 'an251-fash-b'); lines without the id give None."""
    match = AN4_UTTERANCE_ID.search(line)
    body = line[: match.start()] if match else line
    words = [word for word in body.split() if word.lower() not in AN4_SENTENCE_MARKERS]
    return " ".join(words), match[1] if match else None


def find_an4_waveform(source: Path, file_id: str) -> Path | None:
    for extension in AN4_AUDIO_EXTENSIONS:
        path = source / "wav" / f"{file_id}{extension}"
        if path.is_file():
            return path
    return None


def _pick_an4_form(source: Path, entries: tuple[An4Entry, ...], form: str, fileids: Path) -> str:
    if form != "auto":
        return form
    waveforms = sum(find_an4_waveform(source, e.file_id) is not None for e in entries)
    if waveforms == len(entries):
        return "audio"
    if any((source / "feat" / f"{e.file_id}.mfc").is_file() for e in entries):
        return "features"
    if waveforms:  # no features at all: the waveforms there are, with the rest rejected as missing
        return "audio"
    raise CorpusError(f"{source}: none of the {len(entries)} file ids in {fileids} has a feature file "
                      f"(feat/<id>.mfc) or a waveform (wav/<id> with any of {', '.join(AN4_AUDIO_EXTENSIONS)})")


def read_sphinx_mfc(path: Path, dims: int = SPHINX_CEPSTRA) -> np.ndarray:
    """Sphinx feature file: big-endian int32 count of floats, then that many big-endian float32."""
    if not path.is_file():
        raise ManifestError(f"{path}: feature file does not exist")
    raw = path.read_bytes()
    if len(raw) < 4:
        raise ManifestError(f"{path}: too short for a Sphinx MFCC header")
    count = int(np.frombuffer(raw[:4], dtype=">i4")[0])
    if (len(raw) - 4) % 4:  # cut off inside a float: a copy interrupted part way
        raise ManifestError(f"{path}: truncated: {len(raw) - 4} data bytes is not a whole number of floats "
                            f"(header says {count} floats)")
    values = np.frombuffer(raw[4:], dtype=">f4")
    if count != values.size or count % dims or count == 0:
        raise ManifestError(f"{path}: header says {count} floats, file holds {values.size} "
                            f"(need a non-zero multiple of {dims})")
    return values.reshape(-1, dims).astype(np.float32)


def _read_table(path: Path, delimiter: str, quoted: bool = True) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        quoting = csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE
        return list(csv.DictReader(handle, delimiter=delimiter, quoting=quoting))


def _pick_column(header: set[str], choices: tuple[str, ...], table: Path) -> str:
    for column in choices:
        if column in header:
            return column
    raise CorpusError(f"{table}: no column named any of {', '.join(choices)} (found {', '.join(sorted(header))})")


IMPORTERS: dict[str, Callable[[Path, Path], Iterator[Utterance]]] = {
    "librispeech": import_librispeech,
    "commonvoice": import_commonvoice,
    "ljspeech": import_ljspeech,
    "fsdd": import_fsdd,
    "tsv": import_tsv,
    "folder": import_folder,
    "an4": import_an4,
    "kaldi": import_kaldi,
    "manifest": import_manifest,
    "lhotse": import_lhotse,
}
