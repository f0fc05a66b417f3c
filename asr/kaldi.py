"""Kaldi data directories: read by `asr prepare kaldi` (`import_kaldi`), written by `asr export-data kaldi`
(`write_kaldi_dir`).

Kaldi's `utils/validate_data_dir.sh` wants `wav.scp`, `text`, `utt2spk` and `spk2utt` (and `segments`,
`spk2gender` where written) sorted in C-locale order, with every utterance id starting with its speaker id (so
that sorting by utterance also groups speakers). Ids are built here as `SPEAKER-STEM` (the audio file's stem; a
row without a speaker is its own speaker), made unique with a counter when two rows share one; audio paths are
written absolute, since Kaldi reads them from the recipe folder.

Rows with an `offset` (slices of a longer recording) are written as a `segments` file, wav.scp then listing each
audio file once under a recording id (its stem), and utterance ids `SPEAKER-STEM-START-END` (centiseconds, as
Kaldi recipes name segments). A manifest that mixes such rows with whole-file rows is written all as segments
(a whole-file row is the segment 0..duration of its own recording): Kaldi keys wav.scp one way or the other.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from asr.data import IMPORT_ERROR, CorpusError, Utterance
from asr.utils import atomic_write

KALDI_TABLES = ("wav.scp", "text", "utt2spk", "spk2utt")
OPTIONAL_TABLES = ("segments", "spk2gender")  # written only when the rows call for them
GENDERS = ("m", "f")  # what spk2gender may hold
KALDI_FILES = ("wav.scp", "text", "utt2spk")  # what a Kaldi data directory must hold (utils/validate_data_dir.sh)
KALDI_ARCHIVE = re.compile(r"\.ark:\d+$")  # wav.scp's "extended filename" into an archive: foo.ark:1234
_NOT_ID = re.compile(r"[^A-Za-z0-9_.\-]+")  # Kaldi ids are whitespace-free; keep them shell- and sort-friendly


class KaldiExportError(ValueError):
    """A manifest row that a Kaldi data directory cannot hold."""


def kaldi_id(text: str) -> str:
    return _NOT_ID.sub("_", text).strip("_") or "x"


def c_sorted(ids: Iterable[str]) -> list[str]:
    """`ids` in the order `LC_ALL=C sort` gives their lines: byte order (a space sorts before any id character,
    so sorting the ids sorts the lines)."""
    return sorted(ids, key=str.encode)


def segment_times(row: Utterance) -> tuple[float, float]:
    """(start, end) seconds of a row within its audio file; a whole-file row is 0..duration."""
    start = row.offset or 0.0
    return start, start + row.duration


def format_seconds(value: float) -> str:
    """Microseconds, trailing zeros dropped: finer than a sample at 16 kHz, so re-import finds the same samples."""
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def unique_ids(bases: Sequence[str]) -> list[str]:
    """`bases` with a counter (-2, -3, ...) after each repeat, so every id is listed once."""
    taken: set[str] = set()
    ids = []
    for base in bases:
        unique, number = base, 1
        while unique in taken:
            number += 1
            unique = f"{base}-{number}"
        taken.add(unique)
        ids.append(unique)
    return ids


def utterance_ids(rows: Sequence[Utterance], segmented: bool = False) -> list[tuple[str, str]]:
    """(utterance id, speaker id) per row, each utterance id unique and prefixed by its speaker's; with
    `segmented`, the id ends in the segment's start and end (centiseconds), as Kaldi recipes name segments."""
    bases, speakers = [], []
    for row in rows:
        stem = kaldi_id(Path(row.audio_filepath or "").stem)
        speaker = kaldi_id(row.speaker) if row.speaker else stem
        if segmented:
            start, end = segment_times(row)
            stem = f"{stem}-{round(start * 100):07d}-{round(end * 100):07d}"
        bases.append(stem if stem.startswith(speaker) else f"{speaker}-{stem}")
        speakers.append(speaker)
    return list(zip(unique_ids(bases), speakers, strict=True))


def recording_ids(rows: Sequence[Utterance]) -> dict[str, str]:
    """Absolute audio path -> recording id (its stem, made unique), one per distinct file."""
    paths = list(dict.fromkeys(os.path.abspath(row.audio_filepath) for row in rows))
    return dict(zip(paths, unique_ids([kaldi_id(Path(path).stem) for path in paths]), strict=True))


def write_kaldi_dir(rows: Sequence[Utterance], out: str | Path) -> Path:
    """Write `rows` (audio files or segments of them, with transcripts) as the Kaldi data directory `out`."""
    segmented = any(row.offset is not None for row in rows)
    _check_rows(rows, segmented)
    ids = utterance_ids(rows, segmented)
    order = sorted(range(len(rows)), key=lambda i: ids[i][0].encode())  # C-locale order: byte order
    speakers: dict[str, list[str]] = {}
    for i in order:
        speakers.setdefault(ids[i][1], []).append(ids[i][0])
    tables = {
        "text": [f"{ids[i][0]} {' '.join(rows[i].text.split())}".rstrip() for i in order],
        "utt2spk": [f"{ids[i][0]} {ids[i][1]}" for i in order],
        "spk2utt": [f"{speaker} {' '.join(speakers[speaker])}" for speaker in c_sorted(speakers)],
        **(_segment_tables(rows, ids, order) if segmented
           else {"wav.scp": [f"{ids[i][0]} {os.path.abspath(rows[i].audio_filepath)}" for i in order]}),
    }
    genders = _gender_table(rows, ids)
    if genders:
        tables["spk2gender"] = genders
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in tables.items():
        with atomic_write(folder / name) as handle:
            handle.writelines(f"{line}\n" for line in lines)
    for name in OPTIONAL_TABLES:  # a stale one from an earlier export would be read with these tables
        if name not in tables:
            (folder / name).unlink(missing_ok=True)
    return folder


def _check_rows(rows: Sequence[Utterance], segmented: bool) -> None:
    for number, row in enumerate(rows, 1):
        if not row.audio_filepath:
            raise KaldiExportError(f"row {number}: no audio_filepath (a Kaldi data directory lists audio files)")
        if "\n" in row.text:
            raise KaldiExportError(f"row {number} ({row.audio_filepath}): the transcript spans lines")
        if segmented and (not row.duration > 0 or (row.offset or 0.0) < 0):
            raise KaldiExportError(
                f"row {number} ({row.audio_filepath}): a segment needs an offset of at least 0 and a duration "
                f"(offset {row.offset}, duration {row.duration}); rows with offsets write every row as a segment")


def _segment_tables(rows: Sequence[Utterance], ids: list[tuple[str, str]], order: list[int]
                    ) -> dict[str, list[str]]:
    """`wav.scp` keyed by recording id and `segments` (utterance id, recording id, start, end)."""
    recordings = recording_ids(rows)
    segments = []
    for i in order:
        start, end = segment_times(rows[i])
        recording = recordings[os.path.abspath(rows[i].audio_filepath)]
        segments.append(f"{ids[i][0]} {recording} {format_seconds(start)} {format_seconds(end)}")
    by_id = {recording: path for path, recording in recordings.items()}
    return {"wav.scp": [f"{recording} {by_id[recording]}" for recording in c_sorted(by_id)], "segments": segments}


def _gender_table(rows: Sequence[Utterance], ids: list[tuple[str, str]]) -> list[str]:
    """`spk2gender` lines from the rows' `gender` (m/f), or none: validate_data_dir.sh wants the file to list
    every speaker of spk2utt, so it is written only when each speaker has one gender."""
    genders: dict[str, set] = {}
    for row, (_, speaker) in zip(rows, ids, strict=True):
        genders.setdefault(speaker, set()).add(row.extra.get("gender"))
    if not genders or any(len(values) != 1 or not values <= set(GENDERS) for values in genders.values()):
        return []
    return [f"{speaker} {next(iter(genders[speaker]))}" for speaker in c_sorted(genders)]


# --- reading: a Kaldi data directory -> raw utterances (validated by asr.corpora.prepare) ---------------

def import_kaldi(source: Path, out: Path) -> Iterator[Utterance]:
    """A Kaldi data directory (data/train): `wav.scp` (id -> audio file), `text` (utterance id -> transcript) and
    `utt2spk` (utterance id -> speaker), one row per utterance id found in any of them; optionally `segments`
    (`utterance-id recording-id start end`, seconds) and `spk2gender` (`speaker m|f`, kept as `gender`).

    Without `segments` each wav.scp entry is one utterance, keyed by its id. With it, wav.scp is keyed by
    recording id and each segment becomes a row of its recording's file with `offset` = start and
    `duration` = end - start; a segment past the end of its audio is rejected by the audio check.
    Relative wav.scp paths are taken from the current folder, as Kaldi's scripts take them (they run in the
    recipe folder that holds data/). An id missing from one of the files (or a segment's recording missing
    from wav.scp) is rejected, naming the file, and so is a `cmd |` entry (a command whose output is the audio:
    not run here) or an archive offset (foo.ark:12); a path to no file is rejected by the audio check like any
    other. A malformed `segments` or `spk2gender` line is a CorpusError naming file:line, as a repeated id is.
    """
    if not source.is_dir():
        raise CorpusError(f"{source}: not a folder (expected a Kaldi data directory: {', '.join(KALDI_FILES)})")
    missing = [name for name in KALDI_FILES if not (source / name).is_file()]
    if missing:
        raise CorpusError(f"{source}: not a Kaldi data directory: no {', '.join(missing)} (it needs "
                          f"{', '.join(KALDI_FILES)})")
    wav, text, speakers = (read_kaldi_table(source / name) for name in KALDI_FILES)
    genders = read_kaldi_genders(source / "spk2gender")
    if (source / "segments").exists():
        rows = _kaldi_segment_rows(source, read_kaldi_segments(source / "segments"), wav, text, speakers)
    else:
        rows = _kaldi_file_rows(source, wav, text, speakers)
    for row in rows:
        if row.speaker in genders:
            row.extra["gender"] = genders[row.speaker]
        yield row


def _kaldi_file_rows(source: Path, wav: dict[str, str], text: dict[str, str], speakers: dict[str, str]
                     ) -> Iterator[Utterance]:
    """Rows of a directory without `segments`: wav.scp is keyed by utterance id, one whole file each."""
    for utt_id in dict.fromkeys([*wav, *text, *speakers]):
        transcript = text.get(utt_id, "")
        if utt_id not in wav:
            listed = "text" if utt_id in text else "utt2spk"
            yield _kaldi_reject(source / listed, transcript, speakers.get(utt_id),
                                f"utterance without audio ({utt_id} is in {listed}, not in wav.scp)")
            continue
        entry = wav[utt_id]
        problem = _wav_entry_problem(utt_id, entry) or _kaldi_label_problem(utt_id, "wav.scp", text, speakers)
        if problem:
            yield _kaldi_reject(source / "wav.scp", transcript, speakers.get(utt_id), problem)
        else:
            yield Utterance(os.path.abspath(entry), 0.0, transcript, speaker=speakers[utt_id])  # from cwd


def _kaldi_segment_rows(source: Path, segments: dict[str, KaldiSegment], wav: dict[str, str],
                        text: dict[str, str], speakers: dict[str, str]) -> Iterator[Utterance]:
    """Rows of a directory with `segments`: one per utterance id, a slice of its recording's file."""
    for utt_id in dict.fromkeys([*segments, *text, *speakers]):
        transcript, speaker = text.get(utt_id, ""), speakers.get(utt_id)
        segment = segments.get(utt_id)
        if segment is None:
            listed = "text" if utt_id in text else "utt2spk"
            yield _kaldi_reject(source / listed, transcript, speaker,
                                f"utterance without segment ({utt_id} is in {listed}, not in segments)")
            continue
        entry = wav.get(segment.recording)
        if entry is None:
            problem = (f"segment's recording is not in wav.scp ({utt_id} is cut from {segment.recording!r}, which "
                       "wav.scp does not list)")
        else:
            problem = (_wav_entry_problem(segment.recording, entry)
                       or _kaldi_label_problem(utt_id, "segments", text, speakers))
        if problem:
            yield _kaldi_reject(source / "segments", transcript, speaker, problem)
        else:
            yield Utterance(os.path.abspath(entry), segment.end - segment.start, transcript, speaker=speaker,
                            offset=segment.start)


def _kaldi_reject(where: Path, transcript: str, speaker: str | None, problem: str) -> Utterance:
    """A row `check` rejects with `problem`; `where` (the table that lists it) stands in for its audio."""
    return Utterance(str(where), 0.0, transcript, speaker=speaker, extra={IMPORT_ERROR: problem})


def _wav_entry_problem(key: str, entry: str) -> str | None:
    """Why the wav.scp entry `key entry` is not an audio file this importer reads, or None."""
    if entry.endswith("|"):
        return (f"wav.scp entry is a command, not a file ({key}: {entry!r}): commands are not run; write "
                "their audio to files and list those")
    if KALDI_ARCHIVE.search(entry):
        return f"wav.scp entry is an archive offset, not a file ({key}: {entry!r})"
    if not entry:
        return f"wav.scp entry has no path ({key})"
    return None


def _kaldi_label_problem(utt_id: str, listed: str, text: dict[str, str], speakers: dict[str, str]) -> str | None:
    """Why the utterance `utt_id` (found in the table `listed`) lacks a transcript or a speaker, or None."""
    if utt_id not in text:
        return f"utterance without text ({utt_id} is in {listed}, not in text)"
    if utt_id not in speakers:
        return f"utterance without speaker ({utt_id} is not in utt2spk)"
    return None


class KaldiSegment(NamedTuple):
    recording: str  # a wav.scp id
    start: float  # seconds
    end: float


def read_kaldi_segments(path: Path) -> dict[str, KaldiSegment]:
    """Kaldi's `segments`: `utterance-id recording-id start end` per line, times in seconds.

    A bad line refuses the whole file, as Kaldi's validate_data_dir.sh does: its times are not to be guessed.
    An end of -1 (extract-segments' "to the end of the recording") is refused too: a row needs its length.
    """
    segments: dict[str, KaldiSegment] = {}
    for number, utt_id, value in _kaldi_lines(path):
        fields = value.split()
        if len(fields) != 3:
            raise CorpusError(f"{path}:{number}: expected 'utterance-id recording-id start end', got "
                              f"{f'{utt_id} {value}'.strip()!r}")
        try:
            start, end = float(fields[1]), float(fields[2])
        except ValueError:
            raise CorpusError(f"{path}:{number}: segment times are not numbers ({utt_id}: {fields[1]!r} "
                              f"{fields[2]!r})") from None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
            raise CorpusError(f"{path}:{number}: segment {utt_id} from {fields[1]} to {fields[2]} s: the start "
                              "must be at least 0 and the end after it")
        segments[utt_id] = KaldiSegment(fields[0], start, end)
    return segments


def read_kaldi_genders(path: Path) -> dict[str, str]:
    """Kaldi's optional `spk2gender` (`speaker m|f`); {} when the directory has none."""
    if not path.exists():
        return {}
    genders: dict[str, str] = {}
    for number, speaker, value in _kaldi_lines(path):
        if value not in ("m", "f"):
            raise CorpusError(f"{path}:{number}: gender {value!r} for speaker {speaker!r}: spk2gender holds m or f")
        genders[speaker] = value
    return genders


def read_kaldi_table(path: Path) -> dict[str, str]:
    """A Kaldi text table: `utterance-id value` per line, the value being the rest of the line (maybe empty).

    Read here rather than with a library: lhotse's Kaldi reader needs PyTorch and kaldiio runs `cmd |` entries,
    which this importer must name and reject instead; the format itself is one split per line.
    """
    return {key: value for _, key, value in _kaldi_lines(path)}


def _kaldi_lines(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line number, id, rest of the line) per non-blank line; an id listed twice is a CorpusError."""
    lines: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CorpusError(f"{path}: not UTF-8 text") from None
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.strip().split(maxsplit=1)
        if not fields:
            continue
        if fields[0] in lines:
            raise CorpusError(f"{path}:{number}: id {fields[0]!r} again (first on line "
                              f"{lines[fields[0]]}); Kaldi tables list each id once")
        lines[fields[0]] = number
        yield number, fields[0], fields[1] if len(fields) > 1 else ""
