"""`asr prepare kaldi`: a Kaldi data directory, laid out as a recipe has it (s5/data/train beside the audio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr import cli
from asr.audio import read_audio
from asr.corpora import CorpusError, prepare
from asr.data import Utterance, read_manifest, write_manifest
from asr.kaldi import KaldiExportError, read_kaldi_table, write_kaldi_dir
from tests.test_corpora import RATE, read_rejects, write_tone


@pytest.fixture
def recipe(tmp_path, monkeypatch) -> Path:
    """corpus/audio/SPEAKER/*.wav and s5/data/train/{wav.scp,text,utt2spk,spk2utt}, sorted as Kaldi sorts them
    (LC_ALL=C), one relative wav.scp path (Kaldi reads it from s5, where the scripts run); returns data/train."""
    audio = tmp_path / "corpus" / "audio"
    for seed, name in enumerate(["spk1/spk1-utt1", "spk1/spk1-utt3", "spk2/spk2-utt1", "spk2/spk2-utt2",
                                 "spk2/spk2-utt3"]):
        write_tone(audio / f"{name}.wav", 1.0, seed=seed)
    data = tmp_path / "s5" / "data" / "train"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text(
        f"spk1-utt1 {audio}/spk1/spk1-utt1.wav\n"
        f"spk1-utt2 {audio}/spk1/spk1-utt2.wav\n"  # no such file
        f"spk1-utt3 sox {audio}/spk1/spk1-utt3.wav -r 16000 -t wav - |\n"  # a command
        "spk2-utt1 ../corpus/audio/spk2/spk2-utt1.wav\n"  # relative to s5
        f"spk2-utt2 {audio}/spk2/spk2-utt2.wav\n"  # no transcript
        f"spk2-utt3 {audio}/spk2/spk2-utt3.wav\n")  # not in utt2spk
    (data / "text").write_text("spk1-utt1 YES\nspk1-utt2 NO\nspk1-utt3 ONE TWO\nspk2-utt1 GO LEFT\n"
                               "spk2-utt3 STOP\nspk3-utt1 ORPHAN\n")  # spk3-utt1: no audio
    (data / "utt2spk").write_text("spk1-utt1 spk1\nspk1-utt2 spk1\nspk1-utt3 spk1\nspk2-utt1 spk2\nspk2-utt2 spk2\n"
                                  "spk3-utt1 spk3\n")
    (data / "spk2utt").write_text("spk1 spk1-utt1 spk1-utt2 spk1-utt3\nspk2 spk2-utt1 spk2-utt2\nspk3 spk3-utt1\n")
    monkeypatch.chdir(tmp_path / "s5")
    return data


def test_kaldi_rows_and_rejects_with_reasons(recipe, tmp_path):
    out, rejects = tmp_path / "out" / "train.jsonl", tmp_path / "out" / "rejects.jsonl"
    summary = prepare("kaldi", recipe, out, rejects, progress=False)
    rows = read_manifest(out)
    audio = tmp_path / "corpus" / "audio"
    assert [(Path(r.audio_filepath), r.text, r.original_text, r.speaker, round(r.duration, 3)) for r in rows] == [
        (audio / "spk1" / "spk1-utt1.wav", "yes", "YES", "spk1", 1.0),
        (audio / "spk2" / "spk2-utt1.wav", "go left", "GO LEFT", "spk2", 1.0)]
    assert (summary.kept, summary.rejected, summary.speakers) == (2, 5, 2)
    by_text = {r["text"]: r for r in read_rejects(rejects)}
    assert by_text["NO"] == {"source": str(audio / "spk1" / "spk1-utt2.wav"), "text": "NO",
                             "reason": "file does not exist"}  # missing audio
    assert by_text["ONE TWO"]["reason"] == (
        f"wav.scp entry is a command, not a file (spk1-utt3: 'sox {audio}/spk1/spk1-utt3.wav -r 16000 -t wav - |'): "
        "commands are not run; write their audio to files and list those")
    assert by_text[""]["reason"] == "utterance without text (spk2-utt2 is in wav.scp, not in text)"
    assert by_text["STOP"]["reason"] == "utterance without speaker (spk2-utt3 is not in utt2spk)"
    assert by_text["ORPHAN"] == {"source": str(recipe / "text"), "text": "ORPHAN",
                                 "reason": "utterance without audio (spk3-utt1 is in text, not in wav.scp)"}
    assert dict(summary.reasons) == {"file does not exist": 1, "wav.scp entry is a command, not a file": 1,
                                     "utterance without text": 1, "utterance without speaker": 1,
                                     "utterance without audio": 1}


def test_cli_prepares_a_kaldi_directory_and_exits_1_for_rejects(recipe, tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    assert cli.main(["prepare", "kaldi", str(recipe), "--out", str(out), "--quiet"]) == 1
    assert "kept 2 utterances" in capsys.readouterr().out and len(out.read_text().splitlines()) == 2


def test_a_directory_without_the_kaldi_files_or_with_a_repeated_id_is_an_error(recipe, tmp_path):
    (recipe / "utt2spk").unlink()
    with pytest.raises(CorpusError, match=r"not a Kaldi data directory: no utt2spk \(it needs wav.scp, text, "
                                          r"utt2spk\)"):
        prepare("kaldi", recipe, tmp_path / "m.jsonl", progress=False)
    (recipe / "text").write_text("a-1 yes\n\na-2 no\na-1 again\n")
    with pytest.raises(CorpusError, match=r"text:4: id 'a-1' again \(first on line 1\)"):
        read_kaldi_table(recipe / "text")


def test_kaldi_tables_keep_the_rest_of_the_line(tmp_path):
    path = tmp_path / "text"
    path.write_text("u1   HELLO   THERE  world\nu2\n")
    assert read_kaldi_table(path) == {"u1": "HELLO   THERE  world", "u2": ""}
    path.write_bytes("u1 caf\xe9\n".encode("latin-1"))
    with pytest.raises(CorpusError, match="text: not UTF-8 text"):
        read_kaldi_table(path)


def test_a_manifest_written_as_a_kaldi_directory_reads_back_as_the_same_rows(tmp_path, monkeypatch):
    audio = [write_tone(tmp_path / "audio" / f"{name}.wav", 1.0, seed=n) for n, name in enumerate(["b", "a", "a2"])]
    rows = [Utterance(str(audio[0]), 1.0, "go  left", speaker="spk 2"), Utterance(str(audio[1]), 1.0, "yes",
            speaker="spk1"), Utterance(str(audio[2]), 1.0, "no")]  # a space in a speaker; a row without one
    write_manifest(tmp_path / "m.jsonl", rows)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["export-data", "kaldi", str(tmp_path / "m.jsonl"), str(tmp_path / "data")]) == 0
    data = tmp_path / "data"
    assert (data / "utt2spk").read_text() == "a2 a2\nspk1-a spk1\nspk_2-b spk_2\n"  # C-locale order
    assert (data / "spk2utt").read_text() == "a2 a2\nspk1 spk1-a\nspk_2 spk_2-b\n"
    assert (data / "text").read_text() == "a2 no\nspk1-a yes\nspk_2-b go left\n"
    assert (data / "wav.scp").read_text() == f"a2 {audio[2]}\nspk1-a {audio[1]}\nspk_2-b {audio[0]}\n"
    assert sorted(p.name for p in data.iterdir()) == ["spk2utt", "text", "utt2spk", "wav.scp"]  # no segments
    summary = prepare("kaldi", data, tmp_path / "back.jsonl")
    assert summary.rejected == 0
    back = {Path(r.audio_filepath).name: (r.text, r.speaker) for r in read_manifest(tmp_path / "back.jsonl")}
    assert back == {"b.wav": ("go left", "spk_2"), "a.wav": ("yes", "spk1"), "a2.wav": ("no", "a2")}
    with pytest.raises(ValueError, match="row 1: no audio_filepath"):
        write_kaldi_dir([Utterance("", 1.0, "x")], tmp_path / "bad")


def test_spk2gender_gives_each_row_of_a_speaker_its_gender(recipe, tmp_path):
    (recipe / "spk2gender").write_text("spk1 f\nspk2 m\n")
    out = tmp_path / "m.jsonl"
    prepare("kaldi", recipe, out, progress=False)
    assert [(r.speaker, r.extra) for r in read_manifest(out)] == [("spk1", {"gender": "f"}),
                                                                  ("spk2", {"gender": "m"})]
    (recipe / "spk2gender").write_text("spk1 f\nspk2 male\n")
    with pytest.raises(CorpusError, match=r"spk2gender:2: gender 'male' for speaker 'spk2': spk2gender holds m "
                                          r"or f"):
        prepare("kaldi", recipe, out, progress=False)


# --- segments: several utterances cut from one recording --------------------------------------------------

RECORDINGS = {"rec1": (3.0, 1), "rec2": (2.0, 2)}  # recording id: (seconds, seed)
SEGMENTS = {  # utterance id: (recording, start, end, text or None, speaker or None); sorted as Kaldi sorts
    "spk1-rec1-0000000-0000080": ("rec1", "0.00", "0.80", "YES", "spk1"),
    "spk1-rec1-0000100-0000250": ("rec1", "1.00", "2.50", "GO LEFT", "spk1"),
    "spk1-rec1-0000250-0000290": ("rec1", "2.50", "2.90", None, "spk1"),  # no transcript
    "spk2-rec2-0000000-0000020": ("rec2", "0.00", "0.20", "UP", None),  # not in utt2spk
    "spk2-rec2-0000025-0000150": ("rec2", "0.25", "1.50", "NO", "spk2"),
    "spk2-rec2-0000150-0000300": ("rec2", "1.50", "3.00", "STOP", "spk2"),  # past the end of rec2 (2 s)
    "spk2-rec3-0000000-0000100": ("rec3", "0.00", "1.00", "RIGHT", "spk2"),  # rec3: not in wav.scp
}


def write_recording(path: Path, seconds: float, seed: int) -> np.ndarray:
    """A tone plus noise, stored as 32-bit float so that reading it back gives exactly these samples."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * RATE))) / RATE
    samples = (0.3 * np.sin(2 * np.pi * (150 + 70 * seed) * t)
               + 0.05 * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)
    sf.write(str(path), samples, RATE, subtype="FLOAT")
    return samples


@pytest.fixture
def segmented(tmp_path, monkeypatch) -> tuple[Path, dict[str, np.ndarray]]:
    """corpus/wav/rec{1,2}.wav and s5/data/train with wav.scp keyed by recording (one path relative to s5),
    segments, text, utt2spk, spk2utt, spk2gender; text also holds an utterance that no segment lists.
    Returns (data/train, recording id -> its samples)."""
    wav = tmp_path / "corpus" / "wav"
    samples = {rec: write_recording(wav / f"{rec}.wav", seconds, seed) for rec, (seconds, seed) in RECORDINGS.items()}
    data = tmp_path / "s5" / "data" / "train"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text(f"rec1 {wav}/rec1.wav\nrec2 ../corpus/wav/rec2.wav\n")
    (data / "segments").write_text("".join(f"{utt} {rec} {start} {end}\n"
                                           for utt, (rec, start, end, _, _) in SEGMENTS.items()))
    texts = {utt: text for utt, (*_, text, _) in SEGMENTS.items() if text} | {"spk3-rec9-0000000-0000100": "ORPHAN"}
    (data / "text").write_text("".join(f"{utt} {text}\n" for utt, text in texts.items()))
    speakers = {utt: spk for utt, (*_, spk) in SEGMENTS.items() if spk} | {"spk3-rec9-0000000-0000100": "spk3"}
    (data / "utt2spk").write_text("".join(f"{utt} {spk}\n" for utt, spk in speakers.items()))
    (data / "spk2utt").write_text("".join(f"{spk} {' '.join(u for u, s in speakers.items() if s == spk)}\n"
                                          for spk in ("spk1", "spk2", "spk3")))
    (data / "spk2gender").write_text("spk1 f\nspk2 m\nspk3 f\n")
    monkeypatch.chdir(tmp_path / "s5")
    return data, samples


def test_segments_become_rows_with_offsets_and_each_bad_one_is_named(segmented, tmp_path):
    data, samples = segmented
    out, rejects = tmp_path / "out" / "train.jsonl", tmp_path / "out" / "rejects.jsonl"
    summary = prepare("kaldi", data, out, rejects, progress=False)
    wav = tmp_path / "corpus" / "wav"
    rows = read_manifest(out)
    assert [(Path(r.audio_filepath), r.offset, r.duration, r.text, r.original_text, r.speaker, r.extra)
            for r in rows] == [
        (wav / "rec1.wav", 0.0, 0.8, "yes", "YES", "spk1", {"gender": "f"}),
        (wav / "rec1.wav", 1.0, 1.5, "go left", "GO LEFT", "spk1", {"gender": "f"}),
        (wav / "rec2.wav", 0.25, 1.25, "no", "NO", "spk2", {"gender": "m"})]
    slices = [samples["rec1"][0:12_800], samples["rec1"][16_000:40_000], samples["rec2"][4_000:24_000]]
    for row, expected in zip(rows, slices, strict=True):
        read, rate = read_audio(row.audio_filepath, row.offset, row.duration)
        assert rate == RATE and read.dtype == np.float32 and np.array_equal(read, expected)
    assert (summary.kept, summary.rejected, summary.speakers) == (3, 5, 2)
    assert {r["text"]: (r["source"], r["reason"]) for r in read_rejects(rejects)} == {
        "STOP": (str(wav / "rec2.wav"), "segment 1.500-3.000 s ends past the end of the audio (2.000 s)"),
        "RIGHT": (str(data / "segments"), "segment's recording is not in wav.scp (spk2-rec3-0000000-0000100 is "
                                          "cut from 'rec3', which wav.scp does not list)"),
        "": (str(data / "segments"),
             "utterance without text (spk1-rec1-0000250-0000290 is in segments, not in text)"),
        "UP": (str(data / "segments"), "utterance without speaker (spk2-rec2-0000000-0000020 is not in utt2spk)"),
        "ORPHAN": (str(data / "text"),
                   "utterance without segment (spk3-rec9-0000000-0000100 is in text, not in segments)")}
    assert dict(summary.reasons) == {"segment 1.500-3.000 s ends past the end of the audio": 1,
                                     "segment's recording is not in wav.scp": 1, "utterance without text": 1,
                                     "utterance without speaker": 1, "utterance without segment": 1}


def test_a_segment_of_a_command_or_archive_recording_is_refused_by_name(segmented, tmp_path):
    data, _ = segmented
    (data / "wav.scp").write_text("rec1 sox rec1.sph -t wav - |\nrec2 raw.ark:1234\n")
    rejects = tmp_path / "rejects.jsonl"
    summary = prepare("kaldi", data, tmp_path / "m.jsonl", rejects, progress=False)
    assert summary.kept == 0
    reasons = {r["text"]: r["reason"] for r in read_rejects(rejects)}
    assert reasons["YES"] == reasons["GO LEFT"] == (
        "wav.scp entry is a command, not a file (rec1: 'sox rec1.sph -t wav - |'): commands are not run; write "
        "their audio to files and list those")
    assert reasons["NO"] == "wav.scp entry is an archive offset, not a file (rec2: 'raw.ark:1234')"


@pytest.mark.parametrize("line, message", [
    ("u2 rec1 0.5", r"segments:2: expected 'utterance-id recording-id start end', got 'u2 rec1 0.5'"),
    ("u2 rec1 0.5 1.0 x", r"segments:2: expected 'utterance-id recording-id start end', got 'u2 rec1 0.5 1.0 x'"),
    ("u2 rec1 zero 1.0", r"segments:2: segment times are not numbers \(u2: 'zero' '1.0'\)"),
    ("u2 rec1 1.0 1.0", r"segments:2: segment u2 from 1.0 to 1.0 s: the start must be at least 0 and the end "
                        r"after it"),
    ("u2 rec1 -0.5 1.0", r"segments:2: segment u2 from -0.5 to 1.0 s"),
    ("u2 rec1 0.5 -1", r"segments:2: segment u2 from 0.5 to -1 s"),  # Kaldi's "to the end": no length
    ("u2 rec1 nan 1.0", r"segments:2: segment u2 from nan to 1.0 s"),
    ("u1 rec1 0.5 1.0", r"segments:2: id 'u1' again \(first on line 1\)"),
])
def test_a_malformed_segments_line_names_the_file_and_line(segmented, tmp_path, line, message):
    data, _ = segmented
    (data / "segments").write_text(f"u1 rec1 0.00 0.50\n{line}\n")
    with pytest.raises(CorpusError, match=message):
        prepare("kaldi", data, tmp_path / "m.jsonl", progress=False)


def test_segments_export_and_import_back_as_the_same_rows(segmented, tmp_path):
    data, _ = segmented
    first = tmp_path / "first.jsonl"
    prepare("kaldi", data, first, progress=False)
    assert cli.main(["export-data", "kaldi", str(first), str(tmp_path / "exported")]) == 0
    exported, wav = tmp_path / "exported", tmp_path / "corpus" / "wav"
    assert (exported / "wav.scp").read_text() == f"rec1 {wav / 'rec1.wav'}\nrec2 {wav / 'rec2.wav'}\n"
    assert (exported / "segments").read_text() == ("spk1-rec1-0000000-0000080 rec1 0 0.8\n"
                                                   "spk1-rec1-0000100-0000250 rec1 1 2.5\n"
                                                   "spk2-rec2-0000025-0000150 rec2 0.25 1.5\n")
    assert (exported / "spk2gender").read_text() == "spk1 f\nspk2 m\n"
    assert (exported / "spk2utt").read_text() == ("spk1 spk1-rec1-0000000-0000080 spk1-rec1-0000100-0000250\n"
                                                  "spk2 spk2-rec2-0000025-0000150\n")
    back = tmp_path / "back.jsonl"
    assert prepare("kaldi", exported, back, progress=False).rejected == 0
    before, after = read_manifest(first), read_manifest(back)
    assert [(r.audio_filepath, r.text, r.speaker, r.extra) for r in after] == [
        (r.audio_filepath, r.text, r.speaker, r.extra) for r in before]
    for old, new in zip(before, after, strict=True):
        assert abs(new.offset - old.offset) < 1e-3 and abs(new.duration - old.duration) < 1e-3


def test_a_mixed_manifest_is_written_all_as_segments(tmp_path):
    whole = write_tone(tmp_path / "a" / "x.wav", 1.0)
    long = write_tone(tmp_path / "b" / "x.wav", 3.0, seed=1)  # the same stem: recording ids x and x-2
    rows = [Utterance(str(long), 0.5, "no", speaker="s2", offset=1.2345678),
            Utterance(str(whole), 1.0, "yes", speaker="s1", extra={"gender": "m"})]  # s2 has no gender
    data = tmp_path / "data"
    data.mkdir()
    (data / "spk2gender").write_text("stale 1\n")  # left by an earlier export
    write_kaldi_dir(rows, data)
    assert (data / "wav.scp").read_text() == f"x {long}\nx-2 {whole}\n"
    assert (data / "segments").read_text() == ("s1-x-0000000-0000100 x-2 0 1\n"
                                               "s2-x-0000123-0000173 x 1.234568 1.734568\n")
    assert (data / "utt2spk").read_text() == "s1-x-0000000-0000100 s1\ns2-x-0000123-0000173 s2\n"
    assert not (data / "spk2gender").exists()  # Kaldi wants every speaker in it, or no file
    assert prepare("kaldi", data, tmp_path / "back.jsonl", progress=False).rejected == 0
    assert [(Path(r.audio_filepath), r.offset, r.duration, r.speaker) for r in read_manifest(tmp_path / "back.jsonl")
            ] == [(whole, 0.0, 1.0, "s1"), (long, pytest.approx(1.234568, abs=1e-3), 0.5, "s2")]
    write_kaldi_dir(rows[1:], data)  # whole files only: today's layout, and no stale segments left behind
    assert sorted(p.name for p in data.iterdir()) == ["spk2gender", "spk2utt", "text", "utt2spk", "wav.scp"]
    assert (data / "wav.scp").read_text() == f"s1-x {whole}\n" and (data / "spk2gender").read_text() == "s1 m\n"
    with pytest.raises(KaldiExportError, match=r"row 2 \(.*x.wav\): a segment needs an offset of at least 0 and a "
                                               r"duration \(offset None, duration 0.0\)"):
        write_kaldi_dir([rows[0], Utterance(str(whole), 0.0, "yes")], tmp_path / "bad")
