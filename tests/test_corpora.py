"""asr.corpora importers on tiny synthetic corpora in every layout, the shared real corpora, and `asr prepare/split`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio import write_audio
from asr.corpora import IMPORTERS, CorpusError, parse_an4_transcription, prepare, read_sphinx_mfc
from asr.data import ManifestError, Utterance, ValidationRules, read_manifest, write_manifest
from asr.features import FeatureConfig
from asr.text import Alphabet

RATE = 16_000
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# --- helpers -------------------------------------------------------------------------------------------------

def write_tone(path: Path, seconds: float, rate: int = RATE, seed: int = 0) -> Path:
    """A short tone plus a little noise, so lossy codecs have something to encode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    samples = 0.2 * np.sin(2 * np.pi * (220 + 40 * seed) * t) + 0.02 * rng.standard_normal(t.size)
    sf.write(str(path), samples.astype(np.float32), rate)
    return path


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_mfc(path: Path, frames: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = np.asarray(frames, dtype=">f4").ravel()
    path.write_bytes(np.array([flat.size], dtype=">i4").tobytes() + flat.tobytes())
    return path


def read_rejects(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_prepare(fmt: str, source: Path, tmp_path: Path, rules: ValidationRules | None = None):
    out = tmp_path / "out" / "manifest.jsonl"
    rejects = tmp_path / "out" / "rejects.jsonl"
    summary = prepare(fmt, source, out, rejects, rules=rules, progress=False)
    return summary, read_manifest(out), read_rejects(rejects)


def by_text(rows: list[Utterance]) -> dict[str, Utterance]:
    return {r.text: r for r in rows}


def assert_resolves_to(row: Utterance, expected: Path) -> None:
    assert Path(row.audio_filepath).resolve() == expected.resolve()


# --- LibriSpeech ---------------------------------------------------------------------------------------------

def test_librispeech(tmp_path):
    src = tmp_path / "LibriSpeech" / "dev-clean"
    chapter_a, chapter_b = src / "19" / "198", src / "26" / "495"
    files = {
        "hello world": write_tone(chapter_a / "19-198-0000.flac", 0.8, seed=1),
        "good morning": write_tone(chapter_a / "19-198-0001.flac", 1.2, seed=2),
        "the quick brown fox": write_tone(chapter_b / "26-495-0000.flac", 1.5, seed=3),
    }
    (chapter_a / "19-198.trans.txt").write_text("19-198-0000 HELLO WORLD\n19-198-0001 GOOD MORNING\n")
    (chapter_b / "26-495.trans.txt").write_text("26-495-0000 THE QUICK BROWN FOX\n\n26-495-0001 NO AUDIO HERE\n")

    summary, rows, rejects = run_prepare("librispeech", tmp_path / "LibriSpeech", tmp_path)

    assert (summary.kept, summary.rejected, summary.speakers) == (3, 1, 2)
    kept = by_text(rows)
    assert set(kept) == set(files)
    for text, path in files.items():
        assert_resolves_to(kept[text], path)
        assert kept[text].duration == pytest.approx(sf.info(str(path)).duration, abs=1e-3)
    assert kept["hello world"].speaker == "19"
    assert kept["the quick brown fox"].speaker == "26"
    assert kept["good morning"].original_text == "GOOD MORNING"
    assert len(rejects) == 1
    assert rejects[0]["source"].endswith("26-495-0001.flac")
    assert rejects[0]["text"] == "NO AUDIO HERE"
    assert "does not exist" in rejects[0]["reason"]


# --- Common Voice --------------------------------------------------------------------------------------------

CV_HEADER = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent\n"


def test_commonvoice(tmp_path):
    src = tmp_path / "cv-corpus" / "en"
    clips = src / "clips"
    write_tone(clips / "common_voice_en_1.mp3", 1.0, rate=48_000, seed=1)
    write_tone(clips / "common_voice_en_2.mp3", 1.5, rate=48_000, seed=2)
    write_tone(clips / "common_voice_en_3.mp3", 1.0, rate=48_000, seed=3)
    write_tone(clips / "common_voice_en_4.mp3", 1.0, rate=48_000, seed=4)
    (src / "validated.tsv").write_text(
        CV_HEADER
        + "aaa111\tcommon_voice_en_1.mp3\tI have 2 cats.\t2\t0\t\t\t\n"
        + "bbb222\tcommon_voice_en_2.mp3\tIt's naïve, isn't it?\t3\t0\tthirties\tmale\t\n"
        + "aaa111\tcommon_voice_en_3.mp3\t\t2\t0\t\t\t\n"
        + "ccc333\tcommon_voice_en_4.mp3\t你好\t2\t0\t\t\t\n",
        encoding="utf-8")
    # validated.tsv wins over the per-split tables when both exist.
    (src / "train.tsv").write_text(CV_HEADER + "zzz\tcommon_voice_en_1.mp3\tsomething else\t2\t0\t\t\t\n")

    summary, rows, rejects = run_prepare("commonvoice", src, tmp_path)

    assert (summary.kept, summary.rejected) == (2, 2)
    kept = by_text(rows)
    assert set(kept) == {"i have two cats", "it's naive isn't it"}
    cats = kept["i have two cats"]
    assert cats.speaker == "aaa111"
    assert cats.split is None
    assert cats.original_text == "I have 2 cats."
    assert cats.duration == pytest.approx(1.0, abs=0.06)  # mp3 frame padding
    assert kept["it's naive isn't it"].duration == pytest.approx(1.5, abs=0.06)
    assert_resolves_to(cats, clips / "common_voice_en_1.mp3")
    reasons = {r["source"].rsplit("/", 1)[-1]: r["reason"] for r in rejects}
    assert "empty text" in reasons["common_voice_en_3.mp3"]
    assert "你好" in reasons["common_voice_en_4.mp3"]


def test_commonvoice_split_tables_and_unquoted_sentences(tmp_path):
    # Common Voice TSVs are one row per line with no quoting: a sentence may start with an unmatched quote
    # (a fragment of a longer quotation). Such a row must not swallow the rows after it.
    src = tmp_path / "cv"
    for i in range(1, 4):
        write_tone(src / "clips" / f"c{i}.mp3", 1.0, rate=48_000, seed=i)
    (src / "train.tsv").write_text(
        "client_id\tpath\tsentence\n"
        "s1\tc1.mp3\t\"Wait for me\n"
        "s2\tc2.mp3\tHello there\n", encoding="utf-8")
    (src / "dev.tsv").write_text("client_id\tpath\tsentence\ns3\tc3.mp3\tGood day\n", encoding="utf-8")

    summary, rows, rejects = run_prepare("commonvoice", src, tmp_path)

    assert summary.kept + summary.rejected == 3
    assert rejects == []
    assert {(r.text, r.speaker, r.split) for r in rows} == {
        ("wait for me", "s1", "train"), ("hello there", "s2", "train"), ("good day", "s3", "dev")}


# --- LJSpeech ------------------------------------------------------------------------------------------------

def test_ljspeech(tmp_path):
    src = tmp_path / "LJSpeech-1.1"
    write_tone(src / "wavs" / "LJ001-0001.wav", 1.5, seed=1)
    write_tone(src / "wavs" / "LJ001-0002.wav", 1.0, seed=2)
    write_tone(src / "wavs" / "LJ001-0003.wav", 0.1, seed=3)  # far too short for its sentence
    (src / "metadata.csv").write_text(
        "LJ001-0001|Printing, in 1 sense|Printing, in one sense\n"
        "LJ001-0002|Dr. Smith's book||\n"  # empty normalised column: falls back to the text column
        "LJ001-0003|Printing, in the only sense with which we are at present concerned|Printing, in the only "
        "sense with which we are at present concerned\n", encoding="utf-8")

    summary, rows, rejects = run_prepare("ljspeech", src, tmp_path)

    assert (summary.kept, summary.rejected, summary.speakers) == (2, 1, 1)
    kept = by_text(rows)
    assert set(kept) == {"printing in one sense", "dr smith's book"}
    assert all(r.speaker == "LJ" for r in rows)
    assert kept["printing in one sense"].duration == pytest.approx(1.5, abs=1e-3)
    assert_resolves_to(kept["dr smith's book"], src / "wavs" / "LJ001-0002.wav")
    assert len(rejects) == 1
    assert rejects[0]["source"].endswith("LJ001-0003.wav")
    assert "label too long" in rejects[0]["reason"]


# --- FSDD ----------------------------------------------------------------------------------------------------

def test_fsdd_original_layout(tmp_path):
    src = tmp_path / "free-spoken-digit-dataset"
    rec = src / "recordings"
    write_tone(rec / "0_george_0.wav", 0.5, rate=8000, seed=1)
    write_tone(rec / "7_jackson_12.wav", 0.6, rate=8000, seed=2)
    write_tone(rec / "9_theo_4.wav", 0.7, rate=8000, seed=3)
    rules = ValidationRules(features=FeatureConfig(sample_rate=8000))

    summary, rows, rejects = run_prepare("fsdd", src, tmp_path, rules)

    assert (summary.kept, summary.rejected, summary.speakers) == (3, 0, 3)
    assert rejects == []
    found = {(r.text, r.speaker, r.split) for r in rows}
    assert found == {("zero", "george", "test"), ("seven", "jackson", "train"), ("nine", "theo", "test")}
    zero = by_text(rows)["zero"]
    assert zero.duration == pytest.approx(0.5, abs=1e-3)
    assert_resolves_to(zero, rec / "0_george_0.wav")


def test_fsdd_rejects_names_outside_its_convention(tmp_path):
    write_tone(tmp_path / "src" / "recordings" / "george_zero.wav", 0.5, rate=8000)
    with pytest.raises(CorpusError, match="DIGIT_SPEAKER_INDEX"):
        prepare("fsdd", tmp_path / "src", tmp_path / "m.jsonl", progress=False)


def test_fsdd_transcripts_tsv_layout(tmp_path):
    src = tmp_path / "fsdd"
    write_tone(src / "recordings" / "3_lucas_10.wav", 0.6, rate=8000, seed=1)
    write_tone(src / "recordings" / "5_nicolas_2.wav", 0.5, rate=8000, seed=2)
    (src / "transcripts.tsv").write_text(
        "path\ttext\tspeaker\tsplit\tduration_s\n"
        "recordings/3_lucas_10.wav\tthree\tlucas\ttrain\t0.6\n"
        "recordings/5_nicolas_2.wav\tfive\tnicolas\ttest\t0.5\n"
        "recordings/6_theo_1.wav\tsix\ttheo\ttest\t0.4\n")

    summary, rows, rejects = run_prepare("fsdd", src, tmp_path)

    assert (summary.kept, summary.rejected) == (2, 1)
    assert {(r.text, r.speaker, r.split) for r in rows} == {("three", "lucas", "train"), ("five", "nicolas", "test")}
    assert by_text(rows)["three"].duration == pytest.approx(0.6, abs=1e-3)
    assert rejects[0]["source"].endswith("6_theo_1.wav")
    assert "does not exist" in rejects[0]["reason"]


# --- generic TSV ---------------------------------------------------------------------------------------------

def test_tsv_with_quoted_fields_and_absolute_paths(tmp_path):
    src = tmp_path / "prompts"
    write_tone(src / "wav" / "enter.wav", 1.5, seed=1)
    outside = write_tone(tmp_path / "elsewhere" / "goodbye.wav", 0.8, seed=2)
    write_tone(src / "wav" / "options.wav", 1.5, seed=3)
    (src / "transcripts.tsv").write_text(
        "path\ttext\tduration_s\n"
        "wav/enter.wav\tPress * then # to finish.\t1.5\n"
        f"{outside}\tGoodbye!\t0.8\n"
        'wav/options.wav\t"Dial 4 for a ""polite"" menu."\t1.5\n', encoding="utf-8")

    summary, rows, rejects = run_prepare("tsv", src / "transcripts.tsv", tmp_path)

    assert (summary.kept, summary.rejected, summary.speakers) == (3, 0, 0)
    assert rejects == []
    kept = by_text(rows)
    assert set(kept) == {"press star then pound to finish", "goodbye", "dial four for a polite menu"}
    assert kept["dial four for a polite menu"].original_text == 'Dial 4 for a "polite" menu.'
    assert kept["goodbye"].speaker is None
    assert_resolves_to(kept["goodbye"], outside)
    assert_resolves_to(kept["press star then pound to finish"], src / "wav" / "enter.wav")


def test_tsv_needs_path_and_text_columns(tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text("file\tlabel\na.wav\thello\n")
    with pytest.raises(CorpusError, match="no column named any of .*text"):
        prepare("tsv", table, tmp_path / "m.jsonl", progress=False)


# --- folder of audio + .txt ----------------------------------------------------------------------------------

def test_folder_with_per_speaker_subfolders(tmp_path):
    src = tmp_path / "recordings"
    alice1 = write_tone(src / "alice" / "a1.wav", 0.9, seed=1)
    (src / "alice" / "a1.txt").write_text("Open the door.\n")
    write_tone(src / "alice" / "session2" / "a2.flac", 1.1, seed=2)
    (src / "alice" / "session2" / "a2.txt").write_text("close it")
    bob = write_tone(src / "bob" / "b1.ogg", 1.0, seed=3)
    (src / "bob" / "b1.txt").write_text("HELLO BOB")
    write_tone(src / "loose.wav", 0.7, seed=4)
    (src / "loose.txt").write_text("top level")
    write_tone(src / "bob" / "untranscribed.wav", 0.7, seed=5)  # no .txt beside it
    (src / "notes.md").write_text("not audio, ignored")

    summary, rows, rejects = run_prepare("folder", src, tmp_path)

    assert (summary.kept, summary.rejected) == (4, 1)
    kept = by_text(rows)
    assert {t: r.speaker for t, r in kept.items()} == {
        "open the door": "alice", "close it": "session2", "hello bob": "bob", "top level": None}
    assert_resolves_to(kept["open the door"], alice1)
    assert_resolves_to(kept["hello bob"], bob)
    assert kept["close it"].duration == pytest.approx(1.1, abs=1e-3)
    assert rejects[0]["source"].endswith("untranscribed.wav")
    assert "empty text" in rejects[0]["reason"]


# --- AN4 (Sphinx MFCC) ---------------------------------------------------------------------------------------

def make_an4(root: Path, entries: list[tuple[str, str, np.ndarray | None]]) -> None:
    """entries: (speaker/utt-id, TEXT, frames or None for no file)."""
    (root / "etc").mkdir(parents=True)
    transcription, fileids = [], []
    for file_id, text, frames in entries:
        transcription.append(f"{text} ({file_id.split('/')[-1]})")
        fileids.append(f"an4_clstk/{file_id}")
        if frames is not None:
            write_mfc(root / "feat" / "an4_clstk" / f"{file_id}.mfc", frames)
    (root / "etc" / "an4_train.transcription").write_text("\n".join(transcription) + "\n")
    (root / "etc" / "an4_train.fileids").write_text("\n".join(fileids) + "\n")


def test_an4(tmp_path):
    rng = np.random.default_rng(0)
    yes = rng.standard_normal((120, 13)).astype(np.float32)
    spelled = rng.standard_normal((250, 13)).astype(np.float32)
    src = tmp_path / "an4"
    make_an4(src, [
        ("fash/an251-fash-b", "YES", yes),
        ("mblw/an10-mblw-b", "R U B O U T", spelled),
        ("mblw/an11-mblw-b", "TWO SIX", rng.standard_normal((90, 13))),
        ("mblw/an12-mblw-b", "NO FILE", None),
    ])
    # A corrupt feature file: the header count does not match the data.
    bad = src / "feat" / "an4_clstk" / "fash" / "an252-fash-b.mfc"
    bad.write_bytes(np.array([26], dtype=">i4").tobytes() + np.zeros(7, dtype=">f4").tobytes())
    with (src / "etc" / "an4_train.transcription").open("a") as handle:
        handle.write("ENTER (an252-fash-b)\n")
    with (src / "etc" / "an4_train.fileids").open("a") as handle:
        handle.write("an4_clstk/fash/an252-fash-b\n")

    summary, rows, rejects = run_prepare("an4", src, tmp_path)

    assert (summary.kept, summary.rejected, summary.speakers) == (3, 2, 2)
    kept = by_text(rows)
    assert set(kept) == {"yes", "r u b o u t", "two six"}
    assert kept["yes"].speaker == "fash"
    assert kept["yes"].audio_filepath is None
    assert kept["yes"].duration == pytest.approx(1.2)  # 100 frames per second
    assert kept["r u b o u t"].duration == pytest.approx(2.5)
    features = np.load(kept["yes"].feature_filepath)
    assert features.shape == (120, 13)
    assert features.dtype == np.float32
    np.testing.assert_array_equal(features, yes)
    assert np.load(kept["r u b o u t"].feature_filepath).shape == (250, 13)
    raw = json.loads((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()[0])
    assert not Path(raw["feature_filepath"]).is_absolute()
    assert (tmp_path / "out" / raw["feature_filepath"]).is_file()

    reasons = {Path(r["source"]).stem: r for r in rejects}
    assert set(reasons) == {"an12-mblw-b", "an252-fash-b"}
    assert "does not exist" in reasons["an12-mblw-b"]["reason"]
    assert "header says 26 floats, file holds 7" in reasons["an252-fash-b"]["reason"]
    assert reasons["an252-fash-b"]["text"] == "ENTER"


def test_read_sphinx_mfc(tmp_path):
    frames = np.arange(39, dtype=np.float32).reshape(3, 13)
    assert np.array_equal(read_sphinx_mfc(write_mfc(tmp_path / "a.mfc", frames)), frames)
    with pytest.raises(ManifestError, match="need a non-zero multiple of 13"):
        read_sphinx_mfc(write_mfc(tmp_path / "b.mfc", np.zeros(12)))
    with pytest.raises(ManifestError, match="need a non-zero multiple of 13"):
        read_sphinx_mfc(write_mfc(tmp_path / "c.mfc", np.zeros(0)))
    cut = write_mfc(tmp_path / "cut.mfc", frames)
    cut.write_bytes(cut.read_bytes()[:-2])  # an interrupted copy ends inside a float
    with pytest.raises(ManifestError, match="truncated: 154 data bytes"):
        read_sphinx_mfc(cut)
    (tmp_path / "d.mfc").write_bytes(b"\x00\x01")
    with pytest.raises(ManifestError, match="too short"):
        read_sphinx_mfc(tmp_path / "d.mfc")
    with pytest.raises(ManifestError, match="does not exist"):
        read_sphinx_mfc(tmp_path / "missing.mfc")


def test_an4_transcription_and_fileids_must_match(tmp_path):
    src = tmp_path / "an4"
    make_an4(src, [("fash/an251-fash-b", "YES", np.zeros((50, 13)))])
    (src / "etc" / "an4_train.fileids").write_text("an4_clstk/fash/an251-fash-b\nan4_clstk/fash/extra\n")
    with pytest.raises(CorpusError, match="1 transcriptions in .*an4_train.transcription but 2 file ids in "
                                          ".*an4_train.fileids"):
        prepare("an4", src, tmp_path / "m.jsonl", progress=False)


# --- AN4 as published: train and test lists, MFCC features or waveforms --------------------------------------

# (speaker, utterance id, transcription text, seconds); the test list is named as in CMU's distribution.
AN4_LISTS = {
    "train": ("an4_clstk", [("fash", "an251-fash-b", "YES", 1.0), ("fash", "an253-fash-b", "GO", 0.7),
                            ("mblw", "an10-mblw-b", "R U B O U T", 2.0)]),
    "test": ("an4test_clstk", [("fcaw", "cen1-fcaw-b", "ENTER SIX", 1.2), ("mmxg", "cen2-mmxg-b", "P I T T", 1.5)]),
}
AN4_EXPECTED = {"train": {("yes", "fash"), ("go", "fash"), ("r u b o u t", "mblw")},
                "test": {("enter six", "fcaw"), ("p i t t", "mmxg")}}
# Waveform formats per list: RIFF wav for train; FLAC and NIST SPHERE (CMU's .sph) for test.
AN4_AUDIO_SUFFIXES = {"an251-fash-b": ".wav", "an253-fash-b": ".wav", "an10-mblw-b": ".wav",
                      "cen1-fcaw-b": ".flac", "cen2-mmxg-b": ".sph"}


def make_sphinx_an4(root: Path, features: bool = True, audio: bool = True) -> dict[str, tuple[np.ndarray, Path]]:
    """Both AN4 lists in the Sphinx layout; returns utterance id -> (MFCC frames, waveform path)."""
    (root / "etc").mkdir(parents=True)
    files = {}
    for seed, (subset, (folder, entries)) in enumerate(AN4_LISTS.items()):
        transcription, fileids = [], []
        for n, (speaker, utt_id, text, seconds) in enumerate(entries):
            file_id = f"{folder}/{speaker}/{utt_id}"
            # CMU's test transcription wraps each line in sentence markers; the training one does not.
            transcription.append(f"<s> {text} </s> ({utt_id})" if subset == "test" else f"{text} ({utt_id})")
            fileids.append(file_id)
            frames = np.random.default_rng(10 * seed + n).standard_normal((round(seconds * 100), 13))
            wav = root / "wav" / f"{file_id}{AN4_AUDIO_SUFFIXES[utt_id]}"
            if features:
                write_mfc(root / "feat" / f"{file_id}.mfc", frames)
            if audio:
                write_sphere(wav, seconds, seed=n) if wav.suffix == ".sph" else write_tone(wav, seconds, seed=n)
            files[utt_id] = (frames.astype(np.float32), wav)
        (root / "etc" / f"an4_{subset}.transcription").write_text("\n".join(transcription) + "\n")
        (root / "etc" / f"an4_{subset}.fileids").write_text("\n".join(fileids) + "\n")
    return files


def write_sphere(path: Path, seconds: float, seed: int = 0) -> Path:
    tone = write_tone(path.with_suffix(".tmp.wav"), seconds, seed=seed)
    samples, rate = sf.read(str(tone))
    sf.write(str(path), samples, rate, format="NIST", subtype="PCM_16")
    tone.unlink()
    return path


@pytest.mark.parametrize("subset", ["train", "test"])
@pytest.mark.parametrize("form", ["features", "audio"])
def test_an4_sphinx_layout_each_subset_and_form(tmp_path, subset, form):
    src = tmp_path / "an4"
    files = make_sphinx_an4(src)

    out = tmp_path / "out" / f"{subset}.jsonl"
    summary = prepare("an4", src, out, subset=subset, an4_form=form, progress=False)
    rows = read_manifest(out)

    entries = AN4_LISTS[subset][1]
    assert (summary.kept, summary.rejected, summary.speakers) == (len(entries), 0, 2)
    assert read_rejects(out.with_name(f"{subset}.rejects.jsonl")) == []
    assert {(r.text, r.speaker) for r in rows} == AN4_EXPECTED[subset]
    assert f"AN4 {subset} (etc/an4_{subset}.fileids" in summary.describe()
    assert ("Sphinx MFCC features" if form == "features" else "as waveforms") in summary.describe()
    for row, (_, utt_id, text, seconds) in zip(rows, entries, strict=True):
        frames, wav = files[utt_id]
        assert row.original_text == text  # markers and the (utterance id) stripped, nothing else
        if form == "features":
            assert row.audio_filepath is None
            assert Path(row.feature_filepath) == out.parent / f"{subset}_features" / f"{utt_id}.npy"
            np.testing.assert_array_equal(np.load(row.feature_filepath), frames)
            assert row.duration == pytest.approx(len(frames) / 100)
        else:
            assert row.feature_filepath is None
            assert_resolves_to(row, wav)
            assert row.duration == pytest.approx(seconds, abs=1e-3)


def test_an4_auto_form_needs_every_waveform(tmp_path):
    # Like the shared an4_mfcc: features for every file id, waveforms for only a few of them.
    partial = tmp_path / "partial"
    files = make_sphinx_an4(partial)
    files["an253-fash-b"][1].unlink()
    summary = prepare("an4", partial, tmp_path / "p.jsonl", progress=False)
    assert "Sphinx MFCC features" in summary.source_form
    assert all(r.feature_filepath and r.audio_filepath is None for r in read_manifest(tmp_path / "p.jsonl"))

    complete = tmp_path / "complete"
    make_sphinx_an4(complete)
    summary = prepare("an4", complete, tmp_path / "c.jsonl", subset="test", progress=False)
    assert "as waveforms" in summary.source_form
    assert all(r.audio_filepath and r.feature_filepath is None for r in read_manifest(tmp_path / "c.jsonl"))

    waveforms_only = tmp_path / "waveforms_only"
    make_sphinx_an4(waveforms_only, features=False)
    summary = prepare("an4", waveforms_only, tmp_path / "w.jsonl", progress=False)
    assert ("as waveforms" in summary.source_form, summary.kept) == (True, 3)

    lists_only = tmp_path / "lists_only"
    make_sphinx_an4(lists_only, features=False, audio=False)
    with pytest.raises(CorpusError, match="none of the 3 file ids .*an4_train.fileids"):
        prepare("an4", lists_only, tmp_path / "n.jsonl", progress=False)


def test_an4_features_use_sphinx_rate_and_waveforms_the_model_front_end(tmp_path):
    # A 20 frames/s front end at subsampling 2 gives 2 s of audio 20 output frames: too few for
    # "r u b o u t" (11) only if the waveform went through it; the MFCC file keeps Sphinx's 100 frames/s.
    src = tmp_path / "an4"
    make_sphinx_an4(src)
    coarse = ValidationRules(features=FeatureConfig(window_ms=100, hop_ms=100), subsampling=2)
    features = prepare("an4", src, tmp_path / "f.jsonl", rules=coarse, an4_form="features", progress=False)
    audio = prepare("an4", src, tmp_path / "a.jsonl", rules=coarse, an4_form="audio", progress=False)
    assert (features.kept, features.rejected) == (3, 0)
    assert (audio.kept, audio.rejected) == (2, 1)
    (rejected,) = read_rejects(tmp_path / "a.rejects.jsonl")
    assert rejected["source"].endswith("an10-mblw-b.wav")
    assert "label too long" in rejected["reason"]


def test_an4_rejects_name_the_file_and_the_problem(tmp_path):
    src = tmp_path / "an4"
    files = make_sphinx_an4(src)
    feat = src / "feat" / "an4_clstk"
    (feat / "fash" / "an253-fash-b.mfc").unlink()  # missing feature file
    truncate(feat / "mblw" / "an10-mblw-b.mfc")  # unreadable: the header promises more floats than there are
    files["an253-fash-b"][1].unlink()  # transcript without audio
    truncate(files["an10-mblw-b"][1])  # a waveform cut short
    transcription = src / "etc" / "an4_train.transcription"  # YES's line names another utterance
    transcription.write_text(transcription.read_text().replace("YES (an251-fash-b)", "YES (an999-fash-b)"))

    features = prepare("an4", src, tmp_path / "f.jsonl", an4_form="features", progress=False)
    audio = prepare("an4", src, tmp_path / "a.jsonl", an4_form="audio", progress=False)

    assert (features.kept, features.rejected, audio.kept, audio.rejected) == (0, 3, 0, 3)
    by_file = {Path(r["source"]).name: r for r in read_rejects(tmp_path / "f.rejects.jsonl")}
    assert set(by_file) == {"an251-fash-b.mfc", "an253-fash-b.mfc", "an10-mblw-b.mfc"}
    assert str(feat / "fash" / "an253-fash-b.mfc") in by_file["an253-fash-b.mfc"]["reason"]
    assert "feature file does not exist" in by_file["an253-fash-b.mfc"]["reason"]
    assert str(feat / "mblw" / "an10-mblw-b.mfc") in by_file["an10-mblw-b.mfc"]["reason"]
    assert "header says" in by_file["an10-mblw-b.mfc"]["reason"]
    assert "transcription id does not match file id" in by_file["an251-fash-b.mfc"]["reason"]
    assert "(an999-fash-b)" in by_file["an251-fash-b.mfc"]["reason"]
    assert by_file["an251-fash-b.mfc"]["text"] == "YES"

    by_file = {Path(r["source"]).name: r for r in read_rejects(tmp_path / "a.rejects.jsonl")}
    assert set(by_file) == {"an251-fash-b.wav", "an253-fash-b.wav", "an10-mblw-b.wav"}
    missing = by_file["an253-fash-b.wav"]
    assert missing["reason"].startswith("transcript without audio")
    assert str(src / "wav" / "an4_clstk" / "fash" / "an253-fash-b") in missing["reason"]
    assert missing["source"] == str(files["an253-fash-b"][1])
    assert "truncated" in by_file["an10-mblw-b.wav"]["reason"]
    assert "transcription id does not match" in by_file["an251-fash-b.wav"]["reason"]
    assert audio.reasons["transcript without audio"] == 1


def test_an4_subset_or_form_that_the_folder_lacks(tmp_path):
    src = tmp_path / "an4"
    make_sphinx_an4(src)
    for name in ("an4_test.transcription", "an4_test.fileids"):
        (src / "etc" / name).unlink()
    with pytest.raises(CorpusError, match="not found: .*etc/an4_test.transcription"):
        prepare("an4", src, tmp_path / "m.jsonl", subset="test", progress=False)
    with pytest.raises(CorpusError, match="subset must be one of train, test"):
        prepare("an4", src, tmp_path / "m.jsonl", subset="dev", progress=False)
    with pytest.raises(CorpusError, match="apply to format 'an4' only"):
        prepare("tsv", src, tmp_path / "m.jsonl", subset="train", progress=False)
    assert not (tmp_path / "m.jsonl").exists()


def test_parse_an4_transcription():
    assert parse_an4_transcription("<s> YES </s> (an251-fash-b)") == ("YES", "an251-fash-b")
    assert parse_an4_transcription("R U B O U T (an10-mblw-b)") == ("R U B O U T", "an10-mblw-b")
    assert parse_an4_transcription("<s> ENTER SIX </s>") == ("ENTER SIX", None)


# --- rejects: every kind of bad row, nothing dropped silently -------------------------------------------------

def test_every_bad_row_is_rejected_with_its_reason(tmp_path):
    src = tmp_path / "corpus"
    write_tone(src / "good1.wav", 1.0, seed=1)
    write_tone(src / "good2.flac", 1.2, seed=2)
    write_tone(src / "blank.wav", 1.0, seed=3)
    write_tone(src / "chinese.wav", 1.0, seed=4)
    write_tone(src / "short.wav", 0.1, seed=5)
    (src / "text_as_audio.wav").write_text("definitely not a RIFF file\n" * 10)
    truncate(write_tone(src / "cut.wav", 1.0, seed=6))
    (src / "empty.wav").write_bytes(b"")
    (src / "odd.xyz").write_bytes(write_tone(tmp_path / "odd.wav", 1.0, seed=7).read_bytes())
    (src / "transcripts.tsv").write_text(
        "path\ttext\tspeaker\n"
        "good1.wav\tThe first one.\tann\n"
        "good2.flac\tAnd the 2nd.\tben\n"
        "gone.wav\tMissing audio\tann\n"
        "blank.wav\t\tann\n"
        "chinese.wav\t你好\tben\n"
        "short.wav\tA sentence much too long for one tenth of a second.\tben\n"
        "text_as_audio.wav\tnot audio\tann\n"
        "cut.wav\ttruncated file\tann\n"
        "empty.wav\tempty file\tben\n"
        "odd.xyz\tstrange extension\tben\n", encoding="utf-8")
    source_rows = 10

    summary, rows, rejects = run_prepare("tsv", src, tmp_path)

    assert (summary.kept, summary.rejected) == (2, 8)
    assert summary.kept + summary.rejected == source_rows == len(rows) + len(rejects)
    assert {r.text for r in rows} == {"the first one", "and the second"}
    assert summary.speakers == 2
    reasons = {Path(r["source"]).name: r["reason"] for r in rejects}
    assert len(reasons) == 8
    assert "does not exist" in reasons["gone.wav"]
    assert "empty text" in reasons["blank.wav"]
    assert "你好" in reasons["chinese.wav"]
    assert "label too long" in reasons["short.wav"]
    assert "not an audio file" in reasons["text_as_audio.wav"]
    assert "truncated" in reasons["cut.wav"]
    assert "empty (0 bytes)" in reasons["empty.wav"]
    assert "unsupported format" in reasons["odd.xyz"]
    texts = {Path(r["source"]).name: r["text"] for r in rejects}
    assert texts["chinese.wav"] == "你好"
    assert texts["gone.wav"] == "Missing audio"
    assert sum(summary.reasons.values()) == 8


def test_text_in_another_script_is_rejected_not_silently_dropped(tmp_path):
    # "hello 你好" must not become the label "hello": half the transcript would vanish without a trace.
    src = tmp_path / "corpus"
    write_tone(src / "mixed.wav", 1.5)
    write_tone(src / "cyrillic.wav", 1.5, seed=1)
    (src / "transcripts.tsv").write_text(
        "path\ttext\nmixed.wav\thello 你好\ncyrillic.wav\tcall привет now\n", encoding="utf-8")

    summary, rows, rejects = run_prepare("tsv", src, tmp_path)

    assert [r.text for r in rows] == []
    assert (summary.kept, summary.rejected) == (0, 2)
    reasons = {Path(r["source"]).name: r["reason"] for r in rejects}
    assert "outside the alphabet" in reasons["mixed.wav"]
    assert "outside the alphabet" in reasons["cyrillic.wav"]


def test_custom_alphabet_rejects_characters_it_lacks(tmp_path):
    src = tmp_path / "corpus"
    write_tone(src / "a.wav", 1.0)
    write_tone(src / "b.wav", 1.0, seed=1)
    (src / "transcripts.tsv").write_text("path\ttext\na.wav\tdon't go\nb.wav\tdo go\n")
    rules = ValidationRules(alphabet=Alphabet(" abcdefghijklmnopqrstuvwxyz"))

    summary, rows, rejects = run_prepare("tsv", src, tmp_path, rules)

    assert [r.text for r in rows] == ["do go"]
    assert summary.rejected == 1
    assert rejects[0]["reason"] == "characters outside the alphabet: \"'\""


def _truncated_flac(folder: Path) -> Path:
    return truncate(write_tone(folder / "cut.flac", 1.0))


def _truncated_mp3(folder: Path) -> Path:
    return truncate(write_tone(folder / "cut.mp3", 1.0))


def _nan_wav(folder: Path) -> Path:
    samples = np.full(RATE, 0.1, dtype=np.float32)
    samples[500] = np.nan
    path = folder / "nan.wav"
    sf.write(str(path), samples, RATE, subtype="FLOAT")
    return path


@pytest.mark.parametrize("make", [_truncated_flac, _truncated_mp3, _nan_wav], ids=["flac", "mp3", "nan"])
def test_audio_that_cannot_be_decoded_is_rejected(tmp_path, make):
    # load_audio raises AudioError for these; a manifest that keeps them makes training crash mid-epoch.
    src = tmp_path / "corpus"
    src.mkdir()
    bad = make(src)
    write_tone(src / "fine.wav", 1.0)
    (src / "transcripts.tsv").write_text(f"path\ttext\nfine.wav\tfine\n{bad.name}\tbroken\n")

    summary, rows, rejects = run_prepare("tsv", src, tmp_path)

    assert [r.text for r in rows] == ["fine"]
    assert (summary.kept, summary.rejected) == (1, 1)
    assert Path(rejects[0]["source"]).name == bad.name


# --- wrong layouts -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "message"), [
    ("librispeech", "no \\*.trans.txt"),
    ("commonvoice", "no validated.tsv"),
    ("ljspeech", "no metadata.csv"),
    ("fsdd", "neither transcripts.tsv nor recordings"),
    ("tsv", "no such TSV"),
    ("an4", "expected etc/an4_train.transcription"),
])
def test_wrong_layout_raises_corpus_error(tmp_path, fmt, message):
    src = tmp_path / "just_audio"
    write_tone(src / "clip.flac", 0.5)
    (src / "clip.txt").write_text("hello")
    with pytest.raises(CorpusError, match=message):
        prepare(fmt, src, tmp_path / "m.jsonl", progress=False)
    assert not (tmp_path / "m.jsonl").exists()


def test_folder_without_audio_and_unknown_format_and_missing_source(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no utterances found"):
        prepare("folder", tmp_path / "empty", tmp_path / "m.jsonl", progress=False)
    with pytest.raises(CorpusError, match="unknown format 'timit'"):
        prepare("timit", tmp_path, tmp_path / "m.jsonl", progress=False)
    with pytest.raises(CorpusError, match="does not exist"):
        prepare("tsv", tmp_path / "nowhere", tmp_path / "m.jsonl", progress=False)
    assert set(IMPORTERS) == {"librispeech", "commonvoice", "ljspeech", "fsdd", "tsv", "folder", "an4", "kaldi",
                              "manifest", "lhotse"}


def test_manifest_import_rechecks_rows_and_reroots_paths(tmp_path):
    audio = tmp_path / "corpus" / "a.wav"
    audio.parent.mkdir()
    write_audio(audio, np.zeros(8000, np.float32), 8000)
    source = tmp_path / "corpus" / "manifest.jsonl"
    source.write_text(json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "Press 5"}) + "\n"
                      + json.dumps({"audio_filepath": "gone.wav", "duration": 1.0, "text": "hello"}) + "\n")
    out = tmp_path / "elsewhere" / "checked.jsonl"
    summary = prepare("manifest", source, out, progress=False)
    assert (summary.kept, summary.rejected) == (1, 1)
    (row,) = read_manifest(out)
    assert row.text == "press five" and Path(row.audio_filepath) == audio
    assert json.loads(out.read_text())["audio_filepath"] == "../corpus/a.wav"
    assert "does not exist" in (tmp_path / "elsewhere" / "checked.rejects.jsonl").read_text()


# --- the shared real corpora ---------------------------------------------------------------------------------

def test_real_fsdd(tmp_path):
    rules = ValidationRules(features=FeatureConfig(sample_rate=8000))
    summary, rows, rejects = run_prepare("fsdd", SHARED_DATA / "fsdd", tmp_path, rules)
    assert (summary.kept, summary.rejected, summary.speakers) == (2500, 0, 5)
    assert rejects == []
    assert {r.speaker for r in rows} == {"george", "jackson", "lucas", "nicolas", "theo"}
    assert sum(r.split == "test" for r in rows) == 250  # recordings 0-4 of each digit and speaker
    assert {r.text for r in rows} == {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
    assert 15 < summary.hours * 60 < 21  # README: ~18 min
    assert Path(rows[0].audio_filepath).is_file()


def test_real_asterisk(tmp_path):
    summary, rows, rejects = run_prepare("tsv", SHARED_DATA / "asterisk", tmp_path)
    assert (summary.kept, summary.rejected) == (453, 0)
    assert rejects == []
    assert 17 < summary.hours * 60 < 23  # README: ~20 min
    texts = {Path(r.audio_filepath).name: r.text for r in rows}
    assert texts["both_help.wav"] == "press star to toggle pause press pound to enter a new dictation filename"
    assert "a polite don't call menu" in texts["priv-callee-options.wav"]  # "" escape inside a quoted field
    assert all(r.text == r.text.lower() and not any(c.isdigit() for c in r.text) for r in rows)


def test_real_an4(tmp_path):
    summary, rows, rejects = run_prepare("an4", SHARED_DATA / "an4_mfcc", tmp_path)
    assert (summary.kept, summary.rejected, summary.speakers) == (948, 0, 74)
    assert rejects == []
    assert 38 < summary.hours * 60 < 46  # README: ~42 min
    assert len(list((tmp_path / "out" / "manifest_features").glob("*.npy"))) == 948
    assert "AN4 train" in summary.source_form and "Sphinx MFCC features" in summary.source_form  # wav/ has 30
    first = rows[0]
    assert (first.text, first.speaker) == ("yes", "fash")
    features = np.load(first.feature_filepath)
    assert features.shape[1] == 13
    assert first.duration == pytest.approx(features.shape[0] / 100)


def test_real_an4_waveform_folder_gives_the_tsv_importers_rows(tmp_path):
    # Our an4_wav copy is a transcripts.tsv folder: `prepare an4` must read it exactly as `prepare tsv` does.
    out = tmp_path / "out"
    an4 = prepare("an4", SHARED_DATA / "an4_wav", out / "an4.jsonl", progress=False, workers=2)
    tsv = prepare("tsv", SHARED_DATA / "an4_wav", out / "tsv.jsonl", progress=False, workers=2)
    assert (an4.kept, an4.rejected, an4.speakers) == (tsv.kept, tsv.rejected, tsv.speakers) == (948, 0, 74)
    assert (out / "an4.jsonl").read_text() == (out / "tsv.jsonl").read_text()
    assert "transcripts.tsv" in an4.source_form
    with pytest.raises(CorpusError, match="not found: .*an4_wav/etc/an4_test.transcription"):
        prepare("an4", SHARED_DATA / "an4_wav", out / "test.jsonl", subset="test", progress=False)
    with pytest.raises(CorpusError, match="waveforms only"):
        prepare("an4", SHARED_DATA / "an4_wav", out / "f.jsonl", an4_form="features", progress=False)


# --- the command line ----------------------------------------------------------------------------------------

def run_asr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asr", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO)


def small_tsv_corpus(root: Path, bad_rows: bool) -> Path:
    write_tone(root / "a.wav", 1.0, seed=1)
    write_tone(root / "b.wav", 1.0, seed=2)
    lines = ["path\ttext\tspeaker", "a.wav\tHello\ts1", "b.wav\tWorld\ts2"]
    if bad_rows:
        lines += ["missing.wav\tGone\ts1", "b.wav\t\ts2"]
    (root / "transcripts.tsv").write_text("\n".join(lines) + "\n")
    return root


def test_cli_prepare_clean_corpus_exits_0(tmp_path):
    src = small_tsv_corpus(tmp_path / "clean", bad_rows=False)
    out = tmp_path / "m.jsonl"
    result = run_asr("prepare", "tsv", str(src), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "kept 2 utterances" in result.stdout
    assert "rejected 0" in result.stdout
    assert [r.text for r in read_manifest(out)] == ["hello", "world"]
    assert read_rejects(tmp_path / "m.rejects.jsonl") == []


def test_cli_prepare_with_rejects_exits_1_and_reports_them(tmp_path):
    src = small_tsv_corpus(tmp_path / "dirty", bad_rows=True)
    out, rejects = tmp_path / "m.jsonl", tmp_path / "bad.jsonl"
    result = run_asr("prepare", "tsv", str(src), "--out", str(out), "--rejects", str(rejects), "--quiet",
                     "--sample-rate", "16000", "--subsampling", "2")
    assert result.returncode == 1, result.stderr
    assert "kept 2 utterances" in result.stdout
    assert "rejected 2" in result.stdout
    assert str(rejects) in result.stdout
    assert "does not exist" in result.stdout and "empty text" in result.stdout
    assert len(read_rejects(rejects)) == 2
    accepted = run_asr("prepare", "tsv", str(src), "--out", str(out), "--rejects", str(rejects), "--quiet",
                       "--sample-rate", "16000", "--subsampling", "2", "--rejects-ok")
    assert accepted.returncode == 0 and "rejected 2" in accepted.stdout  # still reported, not a failure


def test_cli_prepare_missing_source_exits_2_with_one_line(tmp_path):
    missing = tmp_path / "no_such_corpus"
    result = run_asr("prepare", "librispeech", str(missing), "--out", str(tmp_path / "m.jsonl"), "--quiet")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("asr prepare: error:")
    assert str(missing) in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m.jsonl").exists()


def test_cli_split_writes_three_speaker_disjoint_manifests(tmp_path):
    rows = []
    for s in range(10):
        for u in range(3):
            audio = write_tone(tmp_path / "audio" / f"spk{s}" / f"{u}.wav", 0.5 + 0.1 * u, seed=s)
            rows.append(Utterance(str(audio), 0.5 + 0.1 * u, f"utterance {u}", speaker=f"spk{s}"))
    manifest = tmp_path / "all.jsonl"
    write_manifest(manifest, rows)

    result = run_asr("split", str(manifest), "--dev", "0.1", "--test", "0.1", "--seed", "1")

    assert result.returncode == 0, result.stderr
    parts = {name: read_manifest(tmp_path / f"all.{name}.jsonl") for name in ("train", "dev", "test")}
    speakers = {name: {r.speaker for r in part} for name, part in parts.items()}
    assert all(speakers.values()), speakers
    assert not speakers["train"] & speakers["dev"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["dev"] & speakers["test"]
    assert sum(len(p) for p in parts.values()) == len(rows)
    assert len(speakers["train"]) == 8
    assert all(Path(r.audio_filepath).is_file() for part in parts.values() for r in part)
    assert result.stdout.count("utterances") == 3


def test_cli_split_fixes_test_speakers_and_draws_dev_from_the_rest(tmp_path):
    rows = [Utterance(str(tmp_path / f"{s}_{u}.wav"), 1.0, "words", speaker=f"spk{s}") for s in range(10)
            for u in range(2)]
    manifest = tmp_path / "all.jsonl"
    write_manifest(manifest, rows)

    result = run_asr("split", str(manifest), "--test-speakers", "spk3,spk7", "--dev", "0.1")

    assert result.returncode == 0, result.stderr
    speakers = {name: {r.speaker for r in read_manifest(tmp_path / f"all.{name}.jsonl")}
                for name in ("train", "dev", "test")}
    assert speakers["test"] == {"spk3", "spk7"}
    assert len(speakers["dev"]) == 1 and not speakers["dev"] & (speakers["train"] | speakers["test"])
    assert len(speakers["train"]) == 7
    clash = run_asr("split", str(manifest), "--test-speakers", "spk3", "--dev-speakers", "spk3,spk4")
    assert clash.returncode == 2 and "share spk3" in clash.stderr


def test_cli_split_by_text_keeps_each_sentence_of_one_reader_in_one_split(tmp_path):
    rows = [Utterance(str(tmp_path / f"{n}_{take}.wav"), 1.0, f"Sentence number {n}.", speaker="reader")
            for n in range(20) for take in range(2)]  # two takes of each sentence by one speaker
    manifest = tmp_path / "lj.jsonl"
    write_manifest(manifest, rows)

    result = run_asr("split", str(manifest), "--dev", "0.1", "--test", "0.2", "--by-text")

    assert result.returncode == 0, result.stderr
    parts = {name: read_manifest(tmp_path / f"lj.{name}.jsonl") for name in ("train", "dev", "test")}
    texts = {name: {r.text for r in part} for name, part in parts.items()}
    assert [len(texts[name]) for name in ("train", "dev", "test")] == [14, 2, 4]
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["dev"]
    assert {r.speaker for part in parts.values() for r in part} == {"reader"}  # rows come back unchanged
    assert sum(len(p) for p in parts.values()) == len(rows)


def test_cli_prepare_an4_test_subset(tmp_path):
    src = tmp_path / "an4"
    make_sphinx_an4(src)
    out = tmp_path / "an4_test.jsonl"
    result = run_asr("prepare", "an4", str(src), "--subset", "test", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "kept 2 utterances" in result.stdout
    assert "AN4 test (etc/an4_test.fileids, 2 file ids) as waveforms" in result.stdout
    assert {(r.text, r.speaker) for r in read_manifest(out)} == AN4_EXPECTED["test"]

    result = run_asr("prepare", "an4", str(src), "--subset", "test", "--an4-form", "features", "--out", str(out),
                     "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Sphinx MFCC features" in result.stdout
    assert all(r.feature_filepath for r in read_manifest(out))

    result = run_asr("prepare", "tsv", str(src), "--subset", "test", "--out", str(tmp_path / "x.jsonl"))
    assert result.returncode == 2
    assert "apply to format 'an4' only" in result.stderr
