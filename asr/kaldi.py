"""Writing a manifest as a Kaldi data directory (`asr export-data kaldi`), the reverse of `asr prepare kaldi`.

Kaldi's `utils/validate_data_dir.sh` wants `wav.scp`, `text`, `utt2spk` and `spk2utt` sorted in C-locale order,
with every utterance id starting with its speaker id (so that sorting by utterance also groups speakers). Ids are
built here as `SPEAKER-STEM` (the audio file's stem; a row without a speaker is its own speaker), made unique with
a counter when two rows share one; audio paths are written absolute, since Kaldi reads them from the recipe folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from asr.data import Utterance
from asr.utils import atomic_write

KALDI_TABLES = ("wav.scp", "text", "utt2spk", "spk2utt")
_NOT_ID = re.compile(r"[^A-Za-z0-9_.\-]+")  # Kaldi ids are whitespace-free; keep them shell- and sort-friendly


class KaldiExportError(ValueError):
    """A manifest row that a Kaldi data directory cannot hold."""


def kaldi_id(text: str) -> str:
    return _NOT_ID.sub("_", text).strip("_") or "x"


def utterance_ids(rows: Sequence[Utterance]) -> list[tuple[str, str]]:
    """(utterance id, speaker id) per row, each utterance id unique and prefixed by its speaker's."""
    taken: set[str] = set()
    ids = []
    for row in rows:
        stem = kaldi_id(Path(row.audio_filepath or "").stem)
        speaker = kaldi_id(row.speaker) if row.speaker else stem
        base = stem if stem.startswith(speaker) else f"{speaker}-{stem}"
        utt_id, number = base, 1
        while utt_id in taken:
            number += 1
            utt_id = f"{base}-{number}"
        taken.add(utt_id)
        ids.append((utt_id, speaker))
    return ids


def write_kaldi_dir(rows: Sequence[Utterance], out: str | Path) -> Path:
    """Write `rows` (audio files with transcripts) as the Kaldi data directory `out`; returns it."""
    for number, row in enumerate(rows, 1):
        if not row.audio_filepath:
            raise KaldiExportError(f"row {number}: no audio_filepath (a Kaldi data directory lists audio files)")
        if "\n" in row.text:
            raise KaldiExportError(f"row {number} ({row.audio_filepath}): the transcript spans lines")
    ids = utterance_ids(rows)
    order = sorted(range(len(rows)), key=lambda i: ids[i][0].encode())  # C-locale order: byte order
    speakers: dict[str, list[str]] = {}
    for i in order:
        speakers.setdefault(ids[i][1], []).append(ids[i][0])
    tables = {
        "wav.scp": [f"{ids[i][0]} {os.path.abspath(rows[i].audio_filepath)}" for i in order],
        "text": [f"{ids[i][0]} {' '.join(rows[i].text.split())}".rstrip() for i in order],
        "utt2spk": [f"{ids[i][0]} {ids[i][1]}" for i in order],
        "spk2utt": [f"{speaker} {' '.join(utts)}" for speaker, utts in sorted(speakers.items(),
                                                                                key=lambda item: item[0].encode())],
    }
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name in KALDI_TABLES:
        with atomic_write(folder / name) as handle:
            handle.writelines(f"{line}\n" for line in tables[name])
    return folder
