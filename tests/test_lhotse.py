"""`asr prepare lhotse`: lhotse manifests written as lhotse 1.x writes them (`to_dict` rows, JSONL or .jsonl.gz),
read without lhotse: a recordings + supervisions pair and a cuts file, one row per supervision."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr import cli
from asr.audio import read_audio
from asr.corpora import CorpusError, prepare
from asr.data import IMPORT_ERROR, read_manifest
from asr.lhotse_manifests import find_lhotse_manifests, import_lhotse
from tests.test_corpora import RATE, read_rejects, write_tone

URL = "https://example.com/far.wav"


def recording(rec_id: str, path: str | Path, seconds: float, kind: str = "file", **more) -> dict:
    """A lhotse `Recording.to_dict()`."""
    return {"id": rec_id, "sources": [{"type": kind, "channels": [0], "source": str(path)}],
            "sampling_rate": RATE, "num_samples": round(seconds * RATE), "duration": seconds, "channel_ids": [0],
            **more}


def supervision(sup_id: str, rec_id: str, start: float, duration: float, text: str | None = None, **more) -> dict:
    """A lhotse `SupervisionSegment.to_dict()` (None fields left out, as `asdict_nonull` leaves them)."""
    row = {"id": sup_id, "recording_id": rec_id, "start": start, "duration": duration, "channel": 0}
    return {**row, **({"text": text} if text is not None else {}), **more}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def audio(tmp_path) -> Path:
    """audio/rec1.wav (3 s) and audio/rec2.wav (2 s)."""
    write_tone(tmp_path / "audio" / "rec1.wav", 3.0, seed=0)
    write_tone(tmp_path / "audio" / "rec2.wav", 2.0, seed=1)
    return tmp_path / "audio"


@pytest.fixture
def pair(tmp_path, audio) -> Path:
    """lhotse/librispeech_{recordings,supervisions}_dev.jsonl.gz, as a lhotse recipe writes them; returns the folder."""
    folder = tmp_path / "lhotse"
    write_jsonl(folder / "librispeech_recordings_dev.jsonl.gz", [
        recording("rec1", audio / "rec1.wav", 3.0), recording("rec2", audio / "rec2.wav", 2.0),
        recording("far", URL, 1.0, kind="url"), recording("gone", audio / "gone.wav", 1.0)])
    write_jsonl(folder / "librispeech_supervisions_dev.jsonl.gz", [
        supervision("s1", "rec1", 0.5, 1.0, "HELLO WORLD", language="English", speaker="spk1", gender="f"),
        supervision("s2", "rec1", 1.75, 1.0, "GOOD MORNING", speaker="spk1"),
        supervision("s3", "rec2", 0.0, 2.0, "SECOND FILE", speaker="spk2"),
        supervision("s4", "rec2", 1.5, 1.0, "TOO LONG", speaker="spk2"),  # ends at 2.5 s of 2 s
        supervision("s5", "rec1", 2.0, 0.5, speaker="spk1"),  # no text
        supervision("s6", "rec9", 0.0, 1.0, "ORPHAN"),  # no such recording
        supervision("s7", "far", 0.0, 1.0, "FAR AWAY"),  # a URL
        supervision("s8", "gone", 0.0, 1.0, "GONE")])  # no such audio file
    return folder


def rows_of(path: Path) -> list[tuple]:
    return [(Path(r.audio_filepath), r.offset, r.duration, r.text, r.original_text, r.speaker, r.extra)
            for r in read_manifest(path)]


def test_a_recordings_and_supervisions_pair_becomes_one_row_per_supervision(pair, audio, tmp_path):
    out, rejects = tmp_path / "out" / "dev.jsonl", tmp_path / "out" / "dev.rejects.jsonl"
    summary = prepare("lhotse", pair, out, rejects, progress=False)
    assert rows_of(out) == [
        (audio / "rec1.wav", 0.5, 1.0, "hello world", "HELLO WORLD", "spk1", {"gender": "f", "language": "English"}),
        (audio / "rec1.wav", 1.75, 1.0, "good morning", "GOOD MORNING", "spk1", {}),
        (audio / "rec2.wav", 0.0, 2.0, "second file", "SECOND FILE", "spk2", {})]
    assert (summary.kept, summary.rejected, summary.speakers) == (3, 5, 2)
    supervisions = str(pair / "librispeech_supervisions_dev.jsonl.gz")
    assert read_rejects(rejects) == [
        {"source": str(audio / "rec2.wav"), "text": "TOO LONG",
         "reason": "segment 1.500-2.500 s ends past the end of the audio (2.000 s)"},
        {"source": str(audio / "rec1.wav"), "text": "", "reason": "supervision without text (s5)"},
        {"source": supervisions, "text": "ORPHAN", "reason": "supervision without recording (s6: recording 'rec9' "
                                                             "is not in librispeech_recordings_dev.jsonl.gz)"},
        {"source": supervisions, "text": "FAR AWAY",
         "reason": f"audio source is a url, not a file (s7: {URL!r}): not read here"},
        {"source": str(audio / "gone.wav"), "text": "GONE", "reason": "file does not exist"}]


def test_a_kept_row_reads_exactly_its_slice_of_the_recording(pair, audio, tmp_path):
    out = tmp_path / "out" / "dev.jsonl"
    prepare("lhotse", pair, out, progress=False)
    whole, rate = sf.read(str(audio / "rec1.wav"), dtype="float32")
    good_morning = read_manifest(out)[1]
    samples, file_rate = read_audio(good_morning.audio_filepath, *good_morning.segment)
    assert file_rate == rate == RATE
    assert np.array_equal(samples, whole[int(1.75 * RATE): int(2.75 * RATE)])


def test_either_file_of_the_pair_finds_the_other_beside_it(pair, tmp_path):
    recordings, supervisions = (pair / f"librispeech_{kind}_dev.jsonl.gz" for kind in ("recordings", "supervisions"))
    assert find_lhotse_manifests(recordings) == find_lhotse_manifests(supervisions) == (recordings, supervisions)
    assert find_lhotse_manifests(pair) == (recordings, supervisions)
    from_file = [(u.audio_filepath, u.offset, u.duration, u.text) for u in import_lhotse(recordings, tmp_path)]
    from_folder = [(u.audio_filepath, u.offset, u.duration, u.text) for u in import_lhotse(pair, tmp_path)]
    assert from_file == from_folder and len(from_file) == 8


def test_a_cuts_file_offsets_supervisions_by_the_cut_start(audio, tmp_path, monkeypatch):
    """A MonoCut's supervisions start relative to the cut; a relative source is read from the current folder,
    as lhotse reads it."""
    monkeypatch.chdir(tmp_path)
    rec1, rec2 = recording("rec1", "audio/rec1.wav", 3.0), recording("rec2", audio / "rec2.wav", 2.0)
    cuts = write_jsonl(tmp_path / "data" / "cuts.jsonl", [
        {"id": "rec1-1", "start": 1.0, "duration": 2.0, "channel": 0, "type": "MonoCut", "recording": rec1,
         "supervisions": [supervision("a", "rec1", 0.25, 1.0, "ONE", speaker="x"),
                          supervision("b", "rec1", 1.25, 0.5, "TWO", speaker="x")]},
        {"id": "rec2-0", "start": 0.0, "duration": 2.0, "channel": 0, "type": "MonoCut", "recording": rec2,
         "supervisions": [supervision("c", "rec2", 0.5, 1.0, "THREE", speaker="y", language="English"),
                          supervision("d", "rec2", 1.5, 1.0, "PAST THE END", speaker="y")]}])
    out, rejects = tmp_path / "out" / "cuts.jsonl", tmp_path / "out" / "cuts.rejects.jsonl"
    summary = prepare("lhotse", cuts, out, rejects, progress=False)
    assert rows_of(out) == [(audio / "rec1.wav", 1.25, 1.0, "one", "ONE", "x", {}),
                            (audio / "rec1.wav", 2.25, 0.5, "two", "TWO", "x", {}),
                            (audio / "rec2.wav", 0.5, 1.0, "three", "THREE", "y", {"language": "English"})]
    assert (summary.kept, summary.rejected) == (3, 1)
    assert read_rejects(rejects) == [{"source": str(audio / "rec2.wav"), "text": "PAST THE END",
                                      "reason": "segment 1.500-2.500 s ends past the end of the audio (2.000 s)"}]
    whole, _ = sf.read(str(audio / "rec1.wav"), dtype="float32")
    two = read_manifest(out)[1]
    assert np.array_equal(read_audio(two.audio_filepath, *two.segment)[0], whole[int(2.25 * RATE): int(2.75 * RATE)])


def test_a_gzipped_cuts_file_in_a_folder(audio, tmp_path):
    folder = tmp_path / "lhotse"
    write_jsonl(folder / "librispeech_cuts_dev.jsonl.gz", [
        {"id": "rec2", "start": 0.0, "duration": 2.0, "channel": 0, "type": "MonoCut",
         "recording": recording("rec2", audio / "rec2.wav", 2.0),
         "supervisions": [supervision("rec2", "rec2", 0.0, 2.0, "WHOLE", speaker="z")]}])
    assert find_lhotse_manifests(folder) == (folder / "librispeech_cuts_dev.jsonl.gz",)
    out = tmp_path / "out.jsonl"
    assert prepare("lhotse", folder, out, progress=False).kept == 1
    assert rows_of(out) == [(audio / "rec2.wav", 0.0, 2.0, "whole", "WHOLE", "z", {})]


def test_rows_lhotse_would_read_differently_are_rejected_by_name(audio, tmp_path):
    stereo = tmp_path / "audio" / "stereo.wav"
    sf.write(str(stereo), np.zeros((RATE, 2), dtype=np.float32), RATE)
    two_files = {**recording("split", audio / "rec1.wav", 3.0),
                 "sources": [{"type": "file", "channels": [0], "source": str(audio / "rec1.wav")},
                             {"type": "command", "channels": [1], "source": "sox in.wav -t wav - |"}]}
    write_jsonl(tmp_path / "m" / "recordings.jsonl", [
        recording("fast", audio / "rec1.wav", 3.0, transforms=[{"name": "Speed", "kwargs": {"factor": 1.1}}]),
        two_files, {**recording("stereo", stereo, 1.0), "sources": [
            {"type": "file", "channels": [0, 1], "source": str(stereo)}], "channel_ids": [0, 1]},
        recording("memory", "", 1.0, kind="memory")])
    write_jsonl(tmp_path / "m" / "supervisions.jsonl", [
        supervision("t", "fast", 0.0, 1.0, "SPED UP"),
        supervision("both", "split", 0.0, 1.0, "BOTH", channel=[0, 1]),
        supervision("first", "split", 0.0, 1.0, "FIRST", channel=[0]),
        supervision("second", "split", 0.0, 1.0, "SECOND", channel=1),
        supervision("third", "split", 0.0, 1.0, "THIRD", channel=2),
        supervision("left", "stereo", 0.0, 1.0, "LEFT"),
        supervision("mem", "memory", 0.0, 1.0, "IN MEMORY")])
    reasons = {u.text: u.extra.get(IMPORT_ERROR) for u in import_lhotse(tmp_path / "m", tmp_path)}
    assert reasons == {
        "SPED UP": "recording with transforms, not applied here (t: fast has Speed)",
        "BOTH": "multi-channel supervision (both: channels [0, 1]): a row is read from one channel",
        "FIRST": None,  # a list of one channel is that channel
        "SECOND": "audio source is a command, not a file (second: 'sox in.wav -t wav - |'): not read here",
        "THIRD": "supervision channel not in its recording (third: channel 2; split has [0, 1])",
        "LEFT": "one channel of a 2-channel file (left: channel 0): the audio is read mixed to mono here, "
                "not as that channel",
        "IN MEMORY": "audio source is a memory, not a file (mem): not read here"}


def test_mixed_cuts_and_cuts_without_a_recording_are_rejected_by_name(audio, tmp_path):
    cuts = write_jsonl(tmp_path / "cuts.jsonl.gz", [
        {"id": "mix", "tracks": [], "type": "MixedCut"},
        {"id": "feats", "start": 0.0, "duration": 1.0, "channel": 0, "supervisions": [], "type": "MonoCut",
         "features": {"num_features": 80}}])
    reasons = [u.extra[IMPORT_ERROR] for u in import_lhotse(cuts, tmp_path)]
    assert reasons == ["MixedCut (mix): lhotse mixes or pads its audio when it loads it; not read here",
                       "cut without recording (feats): only cuts of a recording's audio are read here"]


def test_malformed_manifests_name_the_file_and_line(pair, audio, tmp_path):
    supervisions = pair / "librispeech_supervisions_dev.jsonl.gz"
    with gzip.open(supervisions, "at", encoding="utf-8") as handle:
        handle.write("\n{not json\n")
    with pytest.raises(CorpusError, match=r"librispeech_supervisions_dev\.jsonl\.gz:10: not valid JSON"):
        prepare("lhotse", pair, tmp_path / "out.jsonl", progress=False)
    plain = write_jsonl(tmp_path / "plain" / "cuts.jsonl", [{"id": "c", "type": "MonoCut", "supervisions": [],
                                                             "recording": {"id": "r"}}])
    with pytest.raises(CorpusError, match=r"cuts\.jsonl:1: not a lhotse recording \(needs 'id' and a 'sources'"):
        list(import_lhotse(plain, tmp_path))
    unnamed = write_jsonl(tmp_path / "recs" / "mine.jsonl", [recording("r", audio / "rec1.wav", 3.0)])
    with pytest.raises(CorpusError, match=r"mine\.jsonl:1: not a lhotse cut .*named \*recordings\*"):
        list(import_lhotse(unnamed, tmp_path))  # read as cuts: only a *recordings* name says otherwise
    broken = tmp_path / "broken_cuts.jsonl.gz"
    whole = gzip.compress(b''.join(b'{"id": "m%d", "tracks": [], "type": "MixedCut"}\n' % n for n in range(5000)))
    broken.write_bytes(whole[: len(whole) // 2])  # a download cut off half way
    with pytest.raises(CorpusError, match=r"broken_cuts\.jsonl\.gz: cannot be read after line \d+ \(Compressed"):
        list(import_lhotse(broken, tmp_path))


def test_a_source_that_is_not_one_pair_says_what_it_found(pair, audio, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match=r"no lhotse manifests: expected \*recordings\*\.jsonl\[\.gz\]"):
        find_lhotse_manifests(empty)
    (pair / "librispeech_recordings_test.jsonl.gz").write_bytes((pair / "librispeech_recordings_dev.jsonl.gz")
                                                                .read_bytes())
    with pytest.raises(CorpusError, match=r"found librispeech_recordings_dev\.jsonl\.gz, librispeech_recordings_test"
                                          r"\.jsonl\.gz and librispeech_supervisions_dev\.jsonl\.gz; give one"):
        find_lhotse_manifests(pair)
    with pytest.raises(CorpusError, match=r"needs its supervisions file beside it: no .*"
                                          r"librispeech_supervisions_test\.jsonl\.gz"):
        find_lhotse_manifests(pair / "librispeech_recordings_test.jsonl.gz")
    with pytest.raises(CorpusError, match=r"not a lhotse manifest \(expected \.jsonl or \.jsonl\.gz\)"):
        find_lhotse_manifests(audio / "rec1.wav")
    write_jsonl(tmp_path / "dup" / "recordings.jsonl", [recording("r", audio / "rec1.wav", 3.0)] * 2)
    write_jsonl(tmp_path / "dup" / "supervisions.jsonl", [supervision("s", "r", 0.0, 1.0, "X")])
    with pytest.raises(CorpusError, match=r"recordings\.jsonl:2: recording id 'r' again \(first on line 1\)"):
        list(import_lhotse(tmp_path / "dup", tmp_path))


def test_cli_prepares_lhotse_manifests_and_reports_a_bad_source_cleanly(pair, tmp_path, capsys):
    out = tmp_path / "out" / "dev.jsonl"
    assert cli.main(["prepare", "lhotse", str(pair), "--out", str(out), "--quiet"]) == 1
    assert "kept 3 utterances" in capsys.readouterr().out and len(out.read_text().splitlines()) == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["prepare", "lhotse", str(empty), "--out", str(out), "--quiet"]) == 2
    assert "no lhotse manifests" in capsys.readouterr().err
