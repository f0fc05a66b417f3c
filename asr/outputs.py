"""Transcript writers: txt, jsonl, srt, vtt, to stdout, one file, or a folder of per-input files.

One output file grows by whole lines, flushed and fsynced as each input finishes, so an interrupted batch
keeps every finished transcript; `--resume` drops a torn last line and failed rows, then continues.
Per-input files in a folder are each written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from pathlib import Path

from asr.utils import atomic_write

FORMATS = ("txt", "jsonl", "srt", "vtt")
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
        self.folder = out is not None and (out.is_dir() or str(out).endswith(os.sep) or
                                           (fmt in ("srt", "vtt") and len(inputs) > 1))
        if out is None and fmt in ("srt", "vtt"):
            raise OutputError(f"--format {fmt} needs --out (a file for one input, a folder for several)")
        if out is not None and not self.folder and fmt in ("srt", "vtt") and len(inputs) > 1:
            raise OutputError(f"--format {fmt} with several inputs needs --out to be a folder")
        self.names = _output_names(inputs, fmt)
        self.done: set[str] = set()
        self.handle = None
        if self.folder:
            out.mkdir(parents=True, exist_ok=True)
            if resume:
                self.done = {p for p, name in self.names.items() if (out / name).exists()}
        elif out is not None and fmt in ("srt", "vtt"):  # one input, one subtitle file
            self.done = set(inputs) if resume and out.exists() else set()
        elif out is not None:
            rows = _read_finished(out, fmt) if resume and out.exists() else []
            self.done = {self._key(row["audio_filepath"]) for row in rows}
            with atomic_write(out) as handle:  # drop torn and failed rows before appending again
                for row in rows:
                    handle.write(render_line(row, fmt))
            self.handle = out.open("a", encoding="utf-8")

    def _key(self, path: str) -> str:
        """How a finished row is recognised: its path, resolved when the rows hold relative ones."""
        return str((self.relative_to / path).resolve()) if self.relative_to is not None else path

    def is_done(self, path: str) -> bool:
        return (str(Path(path).resolve()) if self.relative_to is not None else path) in self.done

    def write(self, row: dict) -> None:
        if self.min_confidence is not None:
            row = flag_low_confidence(row, self.min_confidence)
        if self.relative_to is not None:
            row = {**row, "audio_filepath": os.path.relpath(Path(row["audio_filepath"]).resolve(), self.relative_to)}
        if self.folder:
            self._write_to_folder(row)
        elif self.out is None:
            sys.stdout.write(render_line(row, self.fmt))
            sys.stdout.flush()
        elif self.fmt in ("srt", "vtt"):
            if "error" not in row:
                with atomic_write(self.out) as handle:
                    handle.write(render_subtitles(row["words"], self.fmt))
        else:
            self.handle.write(render_line(row, self.fmt))
            self.handle.flush()
            os.fsync(self.handle.fileno())

    def _write_to_folder(self, row: dict) -> None:
        if "error" in row:
            with (self.out / ERRORS_FILE).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        name = self.names[row["audio_filepath"]]
        with atomic_write(self.out / name) as handle:
            if self.fmt in ("srt", "vtt"):
                handle.write(render_subtitles(row["words"], self.fmt))
            elif self.fmt == "txt":
                handle.write(row["text"] + "\n")
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


def render_line(row: dict, fmt: str) -> str:
    if fmt == "jsonl":
        return json.dumps(row, ensure_ascii=False) + "\n"
    text = row["text"] if "error" not in row else f"ERROR: {row['error']}"
    return f"{row['audio_filepath']}\t{text}\n"


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
    """`stem.fmt` per input; inputs sharing a stem get a short hash of their path so none overwrites another."""
    stems = Counter(Path(p).stem for p in inputs)
    names = {}
    for path in inputs:
        stem = Path(path).stem
        if stems[stem] > 1:
            stem += "-" + hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:8]
        names[path] = f"{stem}.{fmt}"
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
