"""`asr prepare lhotse`: lhotse manifests (a CutSet, or a RecordingSet with its SupervisionSet) as manifest rows.

lhotse is not a dependency: `import lhotse` imports PyTorch when it loads (lhotse/audio/backend.py), a
multi-gigabyte install for reading JSON lines, so its manifest format is read here directly, as lhotse 1.x
writes it (`to_dict` of its Recording, SupervisionSegment and MonoCut; JSONL, optionally gzipped):

- a recording: {id, sources: [{type, channels, source}], sampling_rate, num_samples, duration, channel_ids?,
  transforms?}; a source's type is file, url, command, memory or shar;
- a supervision: {id, recording_id, start, duration, channel, text?, speaker?, gender?, language?, custom?,
  alignment?}, its start in seconds into its recording;
- a cut: {id, start, duration, channel, supervisions, recording, features?, type: "MonoCut"}, its supervisions'
  start relative to the cut (so the row's offset is the cut's start plus the supervision's).

SOURCE is a cuts file; or a recordings file (`<prefix>_recordings_<part>.jsonl.gz`) or supervisions file, the
other found beside it under lhotse's naming; or a folder holding one recordings and one supervisions file (else
one cuts file). There is one row per supervision: its recording's audio file, the supervision's offset and
duration, its text and speaker, and its gender and language when given.

A relative `file` source is taken from the current folder, as lhotse takes it (it hands the path to its audio
backend as written), so run `asr prepare` where the lhotse recipe ran. Rejected, naming the supervision (or cut):
a supervision whose recording is not in the recordings file; a url, command, memory or shar source (not read
here); a supervision without text; a recording with transforms (lhotse applies resampling or speed perturbation
when it loads the audio; here they would be silently dropped); a supervision on several channels, on a channel
none of its recording's sources holds, or on one channel of a multi-channel file (the audio reader mixes a file
to mono, which is not that channel); a mixed or padding cut, and a cut without a recording. Audio that is
missing, unreadable or shorter than the segment is rejected by the checks every importer's rows go through.
A manifest that is not lhotse's JSONL at all (bad JSON, a row without its required fields) is a CorpusError
naming file:line.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from asr.data import IMPORT_ERROR, CorpusError, Utterance

SUFFIXES = (".jsonl", ".jsonl.gz")
RECORDINGS, SUPERVISIONS, CUTS = "recordings", "supervisions", "cuts"
CUT_TYPES = frozenset({"MonoCut", "MultiCut", "Cut"})  # "Cut": MonoCut's name before lhotse 0.8
FILE_SOURCE = "file"
SUPERVISION_EXTRA = ("gender", "language")  # optional supervision fields kept on the row


class At(NamedTuple):
    """A line of a manifest file, for messages (`path:line`)."""

    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def import_lhotse(source: Path, out: Path) -> Iterator[Utterance]:
    manifests = find_lhotse_manifests(source)
    if len(manifests) == 1:
        yield from cut_utterances(manifests[0])
    else:
        yield from pair_utterances(*manifests)


# --- which files --------------------------------------------------------------------------------------------

def find_lhotse_manifests(source: Path) -> tuple[Path] | tuple[Path, Path]:
    """(cuts file,) or (recordings file, supervisions file) for SOURCE, a file or a folder."""
    if source.is_file():
        return _manifests_of_file(source)
    found = {kind: _listed(source, kind) for kind in (RECORDINGS, SUPERVISIONS, CUTS)}
    recordings, supervisions, cuts = found[RECORDINGS], found[SUPERVISIONS], found[CUTS]
    if len(recordings) == 1 and len(supervisions) == 1:
        return recordings[0], supervisions[0]
    if recordings or supervisions:
        raise CorpusError(f"{source}: expected one lhotse recordings file and one supervisions file, found "
                          f"{_names(recordings)} and {_names(supervisions)}; give one recordings file as SOURCE "
                          "(its supervisions file is found beside it) or a folder holding one pair")
    if len(cuts) == 1:
        return (cuts[0],)
    if cuts:
        raise CorpusError(f"{source}: several lhotse cuts files ({_names(cuts)}); give one of them as SOURCE")
    raise CorpusError(f"{source}: no lhotse manifests: expected *{RECORDINGS}*.jsonl[.gz] with "
                      f"*{SUPERVISIONS}*.jsonl[.gz], or a *{CUTS}*.jsonl[.gz]")


def _manifests_of_file(path: Path) -> tuple[Path] | tuple[Path, Path]:
    if not path.name.endswith(SUFFIXES):
        raise CorpusError(f"{path}: not a lhotse manifest (expected {' or '.join(SUFFIXES)})")
    if RECORDINGS in path.name:
        return path, _partner(path, RECORDINGS, SUPERVISIONS)
    if SUPERVISIONS in path.name:
        return _partner(path, SUPERVISIONS, RECORDINGS), path
    return (path,)


def _partner(path: Path, kind: str, other: str) -> Path:
    """The file beside `path` named as lhotse names it: librispeech_recordings_dev-clean.jsonl.gz has
    librispeech_supervisions_dev-clean.jsonl.gz."""
    head, _, tail = path.name.rpartition(kind)
    partner = path.with_name(f"{head}{other}{tail}")
    if not partner.is_file():
        raise CorpusError(f"{path}: a lhotse {kind} file needs its {other} file beside it: no {partner}")
    return partner


def _listed(folder: Path, kind: str) -> list[Path]:
    return sorted(p for p in folder.glob(f"*{kind}*") if p.is_file() and p.name.endswith(SUFFIXES))


def _names(paths: list[Path]) -> str:
    return ", ".join(p.name for p in paths) or "none"


# --- reading ------------------------------------------------------------------------------------------------

def read_lhotse_rows(path: Path) -> Iterator[tuple[At, dict]]:
    """(where, JSON object) for each non-blank line of a JSONL file, gzipped when its name ends in .gz."""
    number = 0
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield At(path, number), _parse(line, At(path, number))
    except UnicodeDecodeError:
        raise CorpusError(f"{path}: not UTF-8 text (after line {number})") from None
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError; a cut-off gzip an EOFError
        after = f" after line {number}" if number else ""
        raise CorpusError(f"{path}: cannot be read{after} ({error})") from None


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else path.open(encoding="utf-8")


def _parse(line: str, at: At) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise CorpusError(f"{at}: not valid JSON ({error.msg})") from None
    if not isinstance(row, dict):
        raise CorpusError(f"{at}: a lhotse manifest row must be a JSON object")
    return row


def read_recordings(path: Path) -> dict[str, dict]:
    """A recordings file by recording id; an id listed twice is an error, naming both lines."""
    recordings: dict[str, dict] = {}
    lines: dict[str, int] = {}
    for at, row in read_lhotse_rows(path):
        recording_id = _recording(row, at)["id"]
        if recording_id in recordings:
            raise CorpusError(f"{at}: recording id {recording_id!r} again (first on line {lines[recording_id]})")
        recordings[recording_id], lines[recording_id] = row, at.line
    return recordings


def _recording(row: object, at: At) -> dict:
    """`row`, checked to be a lhotse recording."""
    if not isinstance(row, dict) or not isinstance(row.get("sources"), list) or not isinstance(row.get("id"), str):
        raise CorpusError(f"{at}: not a lhotse recording (needs 'id' and a 'sources' list)")
    for source in row["sources"]:
        if (not isinstance(source, dict) or not isinstance(source.get("type"), str) or "source" not in source
                or not _channel_list(source.get("channels"))):
            raise CorpusError(f"{at}: recording {row['id']!r} has a source without 'type', 'channels' (a list of "
                              f"channel numbers) and 'source': {source!r}")
    return row


def _supervision(row: object, at: At) -> dict:
    """`row`, checked to be a lhotse supervision segment."""
    if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not isinstance(row.get("recording_id"), str):
        raise CorpusError(f"{at}: not a lhotse supervision (needs 'id' and 'recording_id')")
    _seconds(row, "start", at)
    _seconds(row, "duration", at)
    channel = row.get("channel", 0)
    if not (_channel_list(channel) or _is_channel(channel)):
        raise CorpusError(f"{at}: supervision {row['id']!r}: 'channel' must be a channel number or a list of them, "
                          f"got {channel!r}")
    return row


def _seconds(row: dict, key: str, at: At) -> float:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CorpusError(f"{at}: {row.get('id')!r}: {key!r} must be seconds (a number), got {value!r}")
    return float(value)


def _is_channel(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _channel_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_channel(c) for c in value)


# --- rows ---------------------------------------------------------------------------------------------------

def pair_utterances(recordings_path: Path, supervisions_path: Path) -> Iterator[Utterance]:
    recordings = read_recordings(recordings_path)
    for at, row in read_lhotse_rows(supervisions_path):
        supervision = _supervision(row, at)
        recording = recordings.get(supervision["recording_id"])
        if recording is None:
            problem = (f"supervision without recording ({supervision['id']}: recording "
                       f"{supervision['recording_id']!r} is not in {recordings_path.name})")
            yield _rejected(supervision_path=supervisions_path, supervision=supervision, problem=problem)
            continue
        yield supervision_utterance(supervision, recording, supervisions_path)


def cut_utterances(path: Path) -> Iterator[Utterance]:
    for at, row in read_lhotse_rows(path):
        yield from _cut_rows(row, at)


def _cut_rows(cut: dict, at: At) -> Iterator[Utterance]:
    kind = cut.get("type")
    if kind is None or "sources" in cut or not isinstance(cut.get("id"), str):
        raise CorpusError(f"{at}: not a lhotse cut (a cut row has an 'id' and a 'type'); a recordings file goes with "
                          f"its supervisions file, named *{RECORDINGS}* and *{SUPERVISIONS}*")
    problem = None
    if kind not in CUT_TYPES:
        problem = f"{kind} ({cut['id']}): lhotse mixes or pads its audio when it loads it; not read here"
    elif not isinstance(cut.get("recording"), dict):
        problem = f"cut without recording ({cut['id']}): only cuts of a recording's audio are read here"
    if problem:
        yield Utterance(str(at.path), 0.0, "", extra={IMPORT_ERROR: problem})
        return
    if not isinstance(cut.get("supervisions"), list):
        raise CorpusError(f"{at}: cut {cut['id']!r} has no 'supervisions' list")
    recording, start = _recording(cut["recording"], at), _seconds(cut, "start", at)
    for row in cut["supervisions"]:
        yield supervision_utterance(_supervision(row, at), recording, at.path, start)


def supervision_utterance(supervision: dict, recording: dict, manifest: Path, cut_start: float = 0.0
                          ) -> Utterance:
    """One row: the slice of the recording's file the supervision covers (its start is relative to the cut,
    if it is in one), or a reject naming the supervision."""
    path, problem = _audio_file(supervision, recording)
    text = supervision.get("text")
    if problem is None and not (isinstance(text, str) and text.strip()):
        problem = f"supervision without text ({supervision['id']})"
    extra = {key: supervision[key] for key in SUPERVISION_EXTRA if supervision.get(key) is not None}
    if problem:
        extra[IMPORT_ERROR] = problem
    return Utterance(path or str(manifest), float(supervision["duration"]), text if isinstance(text, str) else "",
                     speaker=supervision.get("speaker"), extra=extra,
                     offset=round(cut_start + float(supervision["start"]), 6))


def _audio_file(supervision: dict, recording: dict) -> tuple[str | None, str | None]:
    """(absolute path of the audio file to read, None) or (that path if there is one, why it cannot be read)."""
    sid, rid = supervision["id"], recording["id"]
    channel = supervision.get("channel", 0)
    if isinstance(channel, list) and len(channel) > 1:
        return None, f"multi-channel supervision ({sid}: channels {channel}): a row is read from one channel"
    channel = channel[0] if isinstance(channel, list) else channel
    sources = [s for s in recording["sources"] if channel in s["channels"]]
    if not sources:
        held = sorted({c for s in recording["sources"] for c in s["channels"]})
        return None, f"supervision channel not in its recording ({sid}: channel {channel}; {rid} has {held})"
    source = sources[0]
    if source["type"] != FILE_SOURCE:
        shown = f": {source['source']!r}" if source["type"] in ("url", "command") else ""
        return None, f"audio source is a {source['type']}, not a file ({sid}{shown}): not read here"
    path = os.path.abspath(str(source["source"]))  # from the current folder, as lhotse reads it
    if recording.get("transforms"):
        names = ", ".join(str(t.get("name", t) if isinstance(t, dict) else t) for t in recording["transforms"])
        return path, f"recording with transforms, not applied here ({sid}: {rid} has {names})"
    if len(source["channels"]) > 1:
        return path, (f"one channel of a {len(source['channels'])}-channel file ({sid}: channel {channel}): the "
                      "audio is read mixed to mono here, not as that channel")
    return path, None


def _rejected(supervision_path: Path, supervision: dict, problem: str) -> Utterance:
    text = supervision.get("text")
    return Utterance(str(supervision_path), float(supervision["duration"]), text if isinstance(text, str) else "",
                     speaker=supervision.get("speaker"), extra={IMPORT_ERROR: problem})
