"""Transcript writers: txt, jsonl, ctm, srt, vtt, textgrid, to stdout, one file, or a folder of per-input files.

One output file grows by whole lines, flushed and fsynced as each input finishes, so an interrupted batch
keeps every finished transcript; `--resume` drops a torn last line (a ctm file: a torn last block) and
failed rows, then continues. Per-input files in a folder are each written atomically.

ctm is NIST's time-marked conversation format, one word a line: `utterance channel start duration word
confidence`, the utterance id being the input's file stem (see `utterance_ids`), the channel always
`CTM_CHANNEL`, times in seconds. Each input's words follow a `;;` comment line (NIST's comment marker, which
sclite and ctmValidator skip) naming its file and word count, so an input without words is still on record
and `--resume` can tell a finished block from a torn one. textgrid is a Praat TextGrid with one "words"
interval tier, written by `praatio` (the `formats` extra).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

from asr.data import segment_key, split_segment_key
from asr.utils import atomic_path, atomic_write

FORMATS = ("txt", "jsonl", "ctm", "srt", "vtt", "textgrid")
LINE_FORMATS = ("txt", "jsonl", "ctm")  # one stream for every input: stdout or one file (or a folder)
DOCUMENT_FORMATS = ("srt", "vtt", "textgrid")  # one document per input: a file for one input, a folder for several
EXTENSIONS = {"textgrid": "TextGrid"}  # a file's extension where it is not the format's name (Praat's spelling)
CTM_CHANNEL = "1"
CTM_HEADER = re.compile(r"^;; (\S+) (\d+) words? from (.+)$")  # the comment line before each input's words
TEXTGRID_TIER = "words"
PRAATIO_MISSING = "--format textgrid needs the praatio package: pip install -e '.[formats]' (the 'formats' extra)"
CUE_MAX_WORDS = 8
CUE_MAX_SECONDS = 4.0
CUE_MAX_GAP = 0.8  # a longer pause starts a new subtitle
ERRORS_FILE = "errors.jsonl"


class OutputError(ValueError):
    pass


class OutputWriter:
    def __init__(self, out: Path | None, fmt: str, inputs: list[str], resume: bool = False,
                 min_confidence: float | None = None, relative_paths: bool = False):
        """`relative_paths`: a JSONL file's rows name their audio relative to its folder, as manifests do (so
        the file can move with the audio, and holds no path of the machine that wrote it)."""
        if fmt not in FORMATS:
            raise OutputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.fmt, self.out, self.min_confidence = fmt, out, min_confidence
        self.relative_to = out.parent if relative_paths and out is not None and fmt == "jsonl" else None
        if fmt == "textgrid":
            _praatio()  # before any audio is decoded
        self.folder = out is not None and (out.is_dir() or str(out).endswith(os.sep) or
                                           (fmt in DOCUMENT_FORMATS and len(inputs) > 1))
        if out is None and fmt in DOCUMENT_FORMATS:
            raise OutputError(f"--format {fmt} needs --out (a file for one input, a folder for several)")
        if out is not None and not self.folder and fmt in DOCUMENT_FORMATS and len(inputs) > 1:
            raise OutputError(f"--format {fmt} with several inputs needs --out to be a folder")
        self.names = _output_names(inputs, fmt)
        self.ids = utterance_ids(inputs)
        self.done: set[str] = set()
        self.handle = None
        if self.folder:
            out.mkdir(parents=True, exist_ok=True)
            if resume:
                self.done = {p for p, name in self.names.items() if (out / name).exists()}
        elif out is not None and fmt in DOCUMENT_FORMATS:  # one input, one document
            self.done = set(inputs) if resume and out.exists() else set()
        elif out is not None:
            blocks = _read_finished_ctm(out) if fmt == "ctm" and resume and out.exists() else []
            rows = _read_finished(out, fmt) if fmt != "ctm" and resume and out.exists() else []
            self.done = {self._key(row_key(row)) for row in rows} | {key for key, _ in blocks}
            with atomic_write(out) as handle:  # drop torn and failed rows before appending again
                for row in rows:
                    handle.write(render_line(row, fmt))
                for _, block in blocks:
                    handle.write(block)
            self.handle = out.open("a", encoding="utf-8")

    def _key(self, key: str) -> str:
        """How a finished row is recognised: its `row_key`, resolved when the rows hold relative paths."""
        return str((self.relative_to / key).resolve()) if self.relative_to is not None else key

    def is_done(self, key: str) -> bool:
        """Whether the input with this key (`asr.transcribe.source_key`) was finished by a previous run."""
        return (str(Path(key).resolve()) if self.relative_to is not None else key) in self.done

    def write(self, row: dict) -> None:
        if self.min_confidence is not None:
            row = flag_low_confidence(row, self.min_confidence)
        if self.relative_to is not None:
            row = {**row, "audio_filepath": os.path.relpath(Path(row["audio_filepath"]).resolve(), self.relative_to)}
        if self.folder:
            self._write_to_folder(row)
        elif self.out is None:
            sys.stdout.write(self._render_line(row))
            sys.stdout.flush()
        elif self.fmt in DOCUMENT_FORMATS:
            if "error" not in row:
                self._write_document(self.out, row)
        else:
            self.handle.write(self._render_line(row))  # one write per input: a ctm block is not interleaved
            self.handle.flush()
            os.fsync(self.handle.fileno())

    def _render_line(self, row: dict) -> str:
        if self.fmt == "ctm":
            return render_ctm(row, self.ids[row_key(row)])
        return render_line(row, self.fmt)

    def _write_document(self, path: Path, row: dict) -> None:
        if self.fmt == "textgrid":
            write_textgrid(path, row["words"], row["duration"])
        else:
            with atomic_write(path) as handle:
                handle.write(render_subtitles(row["words"], self.fmt))

    def _write_to_folder(self, row: dict) -> None:
        if "error" in row:
            with (self.out / ERRORS_FILE).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        name = self.names[row_key(row)]
        if self.fmt in DOCUMENT_FORMATS:
            self._write_document(self.out / name, row)
            return
        with atomic_write(self.out / name) as handle:
            if self.fmt == "txt":
                handle.write(row["text"] + "\n")
            elif self.fmt == "ctm":
                handle.write(self._render_line(row))
            else:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def flag_low_confidence(row: dict, threshold: float) -> dict:
    """The row with `low_confidence` on each word (confidence < threshold) and their count on the row.

    A flag, not a filter: every word stays, so the transcript and its timings are unchanged.
    """
    if "words" not in row:
        return row  # a failed input
    words = [{**word, "low_confidence": word["confidence"] < threshold} for word in row["words"]]
    return {**row, "words": words, "low_confidence_words": sum(word["low_confidence"] for word in words)}


def row_key(row: dict) -> str:
    """The input an output row is of: its audio file, and for a segment (a row with an offset) its time range
    (`asr.data.segment_key`)."""
    return segment_key(row["audio_filepath"], row.get("offset"), row.get("duration"))


def render_line(row: dict, fmt: str) -> str:
    if fmt == "jsonl":
        return json.dumps(row, ensure_ascii=False) + "\n"
    text = row["text"] if "error" not in row else f"ERROR: {row['error']}"
    return f"{row_key(row)}\t{text}\n"


def render_ctm(row: dict, utterance_id: str) -> str:
    """One input's ctm block: its comment line, then `utterance channel start duration word confidence` per word.

    A failed input is a comment line only (`;; error: …`), which `--resume` drops so the input is retried.
    """
    if "error" in row:
        return f";; error: {row_key(row)}: {' '.join(str(row['error']).split())}\n"
    words = row["words"]
    lines = [f";; {utterance_id} {len(words)} word{'' if len(words) == 1 else 's'} from {row_key(row)}"]
    lines += [f"{utterance_id} {CTM_CHANNEL} {w['start']:.3f} {max(w['end'] - w['start'], 0.0):.3f} {w['word']} "
              f"{w['confidence']:.4f}" for w in words]
    return "\n".join(lines) + "\n"


def textgrid_intervals(words: list[dict]) -> list[tuple[float, float, str]]:
    """(start, end, word) per word, made valid for a TextGrid tier: intervals may neither overlap nor be empty.

    Words come sorted and apart from one decoding window, but the last word of one window can reach past the
    first of the next: such a word starts where the one before it ends (a millisecond long at least).
    """
    intervals: list[tuple[float, float, str]] = []
    for word in sorted(words, key=lambda w: w["start"]):
        start = max(word["start"], intervals[-1][1]) if intervals else max(word["start"], 0.0)
        intervals.append((start, max(word["end"], round(start + 0.001, 6)), word["word"]))
    return intervals


def write_textgrid(path: str | Path, words: list[dict], duration: float) -> None:
    """A Praat TextGrid (long text format) with one "words" interval tier over [0, duration], written atomically;
    the gaps between words are empty intervals, as Praat itself writes them."""
    textgrid = _praatio()
    intervals = textgrid_intervals(words)
    end = max([duration, *(i[1] for i in intervals)])
    grid = textgrid.Textgrid()
    grid.addTier(textgrid.IntervalTier(TEXTGRID_TIER, intervals, 0.0, end))
    with atomic_path(path, suffix=".TextGrid") as temporary:
        grid.save(str(temporary), format="long_textgrid", includeBlankSpaces=True)


def _praatio():
    """praatio's textgrid module; an OutputError naming the extra when the package is missing."""
    try:
        from praatio import textgrid
    except ImportError:
        raise OutputError(PRAATIO_MISSING) from None
    return textgrid


def utterance_ids(paths: list[str]) -> dict[str, str]:
    """The utterance id of each input in ctm and trn files: its file stem (and a segment's time range,
    `rec_12.500-15.250`), with whitespace and parentheses (which those formats use as separators) turned into
    "_"; inputs sharing an id get a short hash of their path."""
    ids = {path: re.sub(r"[\s()]", "_", input_stem(path)) or "_" for path in paths}
    shared = Counter(ids.values())
    return {path: f"{uid}-{_path_hash(path)}" if shared[uid] > 1 else uid for path, uid in ids.items()}


def input_stem(key: str) -> str:
    """A file's stem, and for a segment's key (`asr.data.segment_key`) its time range after it."""
    path, times = split_segment_key(key)
    return f"{Path(path).stem}_{times.replace(',', '-')}" if times else Path(path).stem


def _path_hash(path: str) -> str:
    return hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:8]


def render_subtitles(words: list[dict], fmt: str) -> str:
    cues = _cues(words)
    lines = ["WEBVTT", ""] if fmt == "vtt" else []
    separator = "." if fmt == "vtt" else ","
    for number, cue in enumerate(cues, 1):
        if fmt == "srt":
            lines.append(str(number))
        lines.append(f"{_timestamp(cue[0]['start'], separator)} --> {_timestamp(cue[-1]['end'], separator)}")
        lines += [" ".join(w["word"] for w in cue), ""]
    return "\n".join(lines)


def _cues(words: list[dict]) -> list[list[dict]]:
    cues: list[list[dict]] = []
    for word in words:
        current = cues[-1] if cues else None
        if (current is None or len(current) >= CUE_MAX_WORDS or word["end"] - current[0]["start"] > CUE_MAX_SECONDS
                or word["start"] - current[-1]["end"] > CUE_MAX_GAP):
            cues.append([word])
        else:
            current.append(word)
    return cues


def _timestamp(seconds: float, separator: str) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"


def _output_names(inputs: list[str], fmt: str) -> dict[str, str]:
    """`stem.EXT` per input; inputs sharing a stem get a short hash of their path so none overwrites another."""
    stems = Counter(input_stem(p) for p in inputs)
    names = {}
    for path in inputs:
        stem = input_stem(path)
        if stems[stem] > 1:
            stem += "-" + _path_hash(path)
        names[path] = f"{stem}.{EXTENSIONS.get(fmt, fmt)}"
    return names


def _read_finished(path: Path, fmt: str) -> list[dict]:
    """Rows of a previous run that finished: parseable, complete lines that are not errors."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # torn by the interruption
        if fmt == "jsonl":
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "text" in row and "audio_filepath" in row:
                rows.append(row)
        elif fmt == "txt":
            filepath, _, text = line.rstrip("\n").partition("\t")
            if not text.startswith("ERROR: "):
                rows.append({"audio_filepath": filepath, "text": text})
    return rows


def _read_finished_ctm(path: Path) -> list[tuple[str, str]]:
    """(input path, its block's text) for each input a previous run finished: a comment line followed by the
    number of word lines it announces, every one complete and of its utterance. Error lines are dropped."""
    finished: list[tuple[str, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    index = 0
    while index < len(lines):
        header = CTM_HEADER.match(lines[index].rstrip("\n")) if lines[index].endswith("\n") else None
        index += 1
        if header is None:
            continue  # an error line, or a stray or torn one
        utterance, count, source = header[1], int(header[2]), header[3]
        block = lines[index:index + count]
        if len(block) == count and all(line.endswith("\n") and line.split(" ", 1)[0] == utterance
                                       for line in block):
            finished.append((source, lines[index - 1] + "".join(block)))
            index += count
    return finished
