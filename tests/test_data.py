"""asr.data: manifests (relative paths, extra keys, errors), atomic writes, validation and speaker splits."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.data import (
    IMPORT_ERROR,
    ManifestError,
    Utterance,
    ValidationRules,
    check,
    infeasible_references,
    load_features,
    read_manifest,
    speaker_disjoint_split,
    validate,
    write_manifest,
)
from asr.text import Alphabet
from asr.utils import atomic_path, atomic_write

RATE = 16_000


def write_tone(path: Path, seconds: float, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * rate))) / rate
    sf.write(str(path), (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), rate)
    return path


# --- manifests -----------------------------------------------------------------------------------------------

def test_round_trip_stores_relative_paths_that_survive_moving_the_folder(tmp_path):
    corpus = tmp_path / "corpus"
    audio = write_tone(corpus / "audio" / "a.wav", 0.5)
    features = corpus / "feats" / "b.npy"
    features.parent.mkdir()
    np.save(features, np.ones((20, 13), dtype=np.float32))
    rows = [
        Utterance(str(audio), 0.5, "hello world", speaker="s1", split="train", original_text="Hello, world!"),
        Utterance(None, 0.2, "yes", speaker="s2", feature_filepath=str(features)),
    ]
    manifest = corpus / "manifest.jsonl"
    write_manifest(manifest, rows)

    raw = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert raw[0]["audio_filepath"] == "audio/a.wav"
    assert raw[0] == {"audio_filepath": "audio/a.wav", "duration": 0.5, "text": "hello world", "speaker": "s1",
                      "split": "train", "original_text": "Hello, world!"}
    assert raw[1]["audio_filepath"] is None  # NeMo readers expect the key
    assert raw[1]["feature_filepath"] == "feats/b.npy"

    back = read_manifest(manifest)
    assert Path(back[0].audio_filepath).resolve() == audio.resolve()
    assert Path(back[1].feature_filepath).resolve() == features.resolve()
    assert back[1].audio_filepath is None
    assert back[1].source == back[1].feature_filepath
    assert [(r.text, r.speaker, r.duration, r.split, r.original_text) for r in back] == [
        ("hello world", "s1", 0.5, "train", "Hello, world!"), ("yes", "s2", 0.2, None, None)]

    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(str(corpus), str(moved))
    again = read_manifest(moved / "manifest.jsonl")
    assert Path(again[0].audio_filepath).resolve() == (moved / "audio" / "a.wav").resolve()
    assert Path(again[0].audio_filepath).is_file()
    assert load_features(again[1].feature_filepath).shape == (20, 13)


def test_paths_outside_the_manifest_folder_and_absolute_paths(tmp_path):
    audio = write_tone(tmp_path / "data" / "x.wav", 0.3)
    manifest = tmp_path / "manifests" / "m.jsonl"
    write_manifest(manifest, [Utterance(str(audio), 0.3, "x")])
    assert json.loads(manifest.read_text())["audio_filepath"] == "../data/x.wav"
    assert Path(read_manifest(manifest)[0].audio_filepath).resolve() == audio.resolve()

    absolute = tmp_path / "abs.jsonl"
    absolute.write_text(json.dumps({"audio_filepath": str(audio), "duration": 0.3, "text": "x"}) + "\n")
    assert read_manifest(absolute)[0].audio_filepath == str(audio)


def test_unknown_keys_are_preserved_through_read_and_write(tmp_path):
    manifest = tmp_path / "m.jsonl"
    row = {"audio_filepath": "a.wav", "duration": 1.25, "text": "hi", "lang": "en", "score": 0.5,
           "tags": ["read", "clean"]}
    manifest.write_text(json.dumps(row) + "\n\n")  # blank lines are ignored
    rows = read_manifest(manifest)
    assert len(rows) == 1
    assert rows[0].extra == {"lang": "en", "score": 0.5, "tags": ["read", "clean"]}

    copy = tmp_path / "copy.jsonl"
    write_manifest(copy, rows)
    written = json.loads(copy.read_text())
    assert written == row


def test_write_manifest_accepts_plain_dicts(tmp_path):
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, [{"audio_filepath": "a.wav", "duration": 1.0, "text": "naïve"}])
    assert "naïve" in manifest.read_text(encoding="utf-8")  # not \u-escaped
    assert read_manifest(manifest)[0].text == "naïve"


def test_bad_json_line_names_file_and_line(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"audio_filepath": "a.wav", "duration": 1, "text": "a"}\n{"audio_filepath": "b.wav",\n')
    with pytest.raises(ManifestError, match=rf"^{manifest}:2: not valid JSON"):
        read_manifest(manifest)


@pytest.mark.parametrize(("row", "message"), [
    ({"audio_filepath": "a.wav", "duration": 1.0}, "field 'text' is missing"),
    ({"audio_filepath": "a.wav", "duration": 1.0, "text": 5}, "field 'text' is missing or not a string"),
    ({"duration": 1.0, "text": "a"}, "needs 'audio_filepath' or 'feature_filepath'"),
    ({"audio_filepath": "a.wav", "duration": "long", "text": "a"}, "'duration' is not a number"),
    (["a.wav", 1.0, "a"], "must be a JSON object"),
])
def test_invalid_rows_name_file_line_and_problem(tmp_path, row, message):
    manifest = tmp_path / "m.jsonl"
    good = {"audio_filepath": "ok.wav", "duration": 1.0, "text": "ok"}
    manifest.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(ManifestError) as caught:
        read_manifest(manifest)
    assert str(caught.value).startswith(f"{manifest}:3: ")
    assert message in str(caught.value)


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")


def test_atomic_write_keeps_the_old_file_when_the_block_raises(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old contents\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as handle:
        handle.write("half-written new contents\n")
        raise RuntimeError("boom")
    assert target.read_text() == "old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # temporary file cleaned up

    with atomic_write(target) as handle:
        handle.write("new contents\n")
    assert target.read_text() == "new contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_atomic_path_for_writers_that_need_an_extension(tmp_path):
    target = tmp_path / "arrays" / "x.npy"
    with atomic_path(target, ".npy") as temporary:
        assert temporary.name.endswith(".npy") and temporary.parent == target.parent
        np.save(temporary, np.arange(3))
        assert not target.exists()  # not visible until the block succeeds
    assert np.load(target).tolist() == [0, 1, 2]
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target, ".npy") as temporary:
        np.save(temporary, np.arange(5))
        raise RuntimeError("boom")
    assert np.load(target).tolist() == [0, 1, 2]
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.npy"]  # no temporary left behind


def test_atomic_write_binary_and_new_folders(tmp_path):
    target = tmp_path / "a" / "b" / "blob.bin"
    with atomic_write(target, "wb") as handle:
        handle.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"


def test_write_manifest_failing_midway_leaves_the_previous_manifest(tmp_path):
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, [Utterance("a.wav", 1.0, "first")])
    before = manifest.read_text()

    def rows():
        yield Utterance("b.wav", 1.0, "second")
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        write_manifest(manifest, rows())
    assert manifest.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]


# --- validation ----------------------------------------------------------------------------------------------

def test_validate_fills_normalised_text_original_text_and_true_duration(tmp_path):
    audio = write_tone(tmp_path / "a.wav", 1.25)
    utterance = Utterance(str(audio), 0.0, "Press 5, then #!")
    assert validate(utterance, ValidationRules()) is None
    assert utterance.text == "press five then pound"
    assert utterance.original_text == "Press 5, then #!"
    assert utterance.duration == pytest.approx(1.25)


def test_validate_keeps_an_existing_original_text(tmp_path):
    audio = write_tone(tmp_path / "a.wav", 1.0)
    utterance = Utterance(str(audio), 0.0, "HELLO", original_text="Hello!")
    assert validate(utterance, ValidationRules()) is None
    assert (utterance.text, utterance.original_text) == ("hello", "Hello!")


def test_validate_reasons(tmp_path):
    rules = ValidationRules()
    short = write_tone(tmp_path / "short.wav", 0.1)
    long_enough = write_tone(tmp_path / "ok.wav", 1.0)

    too_long = validate(Utterance(str(short), 0.0, "this sentence is far too long for a tenth of a second"), rules)
    assert too_long.startswith("label too long for its audio")
    assert "at subsampling 2" in too_long

    empty = validate(Utterance(str(long_enough), 0.0, "?!"), rules)
    assert empty == "empty text after normalisation (was '?!')"

    no_apostrophe = ValidationRules(alphabet=Alphabet(" abcdefghijklmnopqrstuvwxyz"))
    assert validate(Utterance(str(long_enough), 0.0, "don't"), no_apostrophe) == \
        "characters outside the alphabet: \"'\""

    missing = validate(Utterance(str(tmp_path / "gone.wav"), 0.0, "hi"), rules)
    assert missing.endswith("file does not exist")

    assert validate(Utterance(None, 0.0, "hi"), rules) == "no audio_filepath or feature_filepath"

    flagged = Utterance(str(long_enough), 0.0, "hi", extra={IMPORT_ERROR: "could not convert"})
    assert validate(flagged, rules) == "could not convert"
    assert IMPORT_ERROR not in flagged.extra


def test_validate_subsampling_changes_what_fits(tmp_path):
    # 0.3 s at 16 kHz / 10 ms hop: 29 frames; 15 output frames at subsampling 2, 4 at subsampling 8.
    audio = write_tone(tmp_path / "a.wav", 0.3)
    text = "hello there"  # 11 symbols + 1 repeat = 12 CTC frames
    assert validate(Utterance(str(audio), 0.0, text), ValidationRules(subsampling=2)) is None
    reason = validate(Utterance(str(audio), 0.0, text), ValidationRules(subsampling=8))
    assert reason.startswith("label too long for its audio: 12 CTC frames needed, 4 available")


def test_validate_features_use_their_frame_rate(tmp_path):
    path = tmp_path / "f.npy"
    np.save(path, np.zeros((150, 13), dtype=np.float32))
    utterance = Utterance(None, 0.0, "TWO", feature_filepath=str(path))
    assert validate(utterance, ValidationRules(feature_frames_per_second=100.0)) is None
    assert utterance.duration == pytest.approx(1.5)
    assert utterance.text == "two"

    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((10, 13), np.nan, dtype=np.float32))
    assert "NaN" in validate(Utterance(None, 0.0, "a", feature_filepath=str(bad)), ValidationRules())
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros(10, dtype=np.float32))
    assert "[frames, dims]" in validate(Utterance(None, 0.0, "a", feature_filepath=str(flat)), ValidationRules())



def test_eval_purpose_keeps_what_the_model_cannot_emit_and_says_why(tmp_path):
    short = write_tone(tmp_path / "short.wav", 0.1)
    ok = write_tone(tmp_path / "ok.wav", 1.0)
    text = "this sentence is far too long for a tenth of a second"
    train, evaluation = ValidationRules(), ValidationRules(purpose="eval")
    assert check(Utterance(str(short), 0.0, text), train).reject.startswith("label too long")
    verdict = check(Utterance(str(short), 0.0, text), evaluation)
    assert verdict.reject is None and verdict.unemittable.startswith("label too long for its audio")
    assert validate(Utterance(str(short), 0.0, text), evaluation) is None
    greek = check(Utterance(str(ok), 0.0, "καλημέρα"), evaluation)
    assert greek.reject is None and greek.unemittable.startswith("characters outside the alphabet")
    # Still rejected for evaluation: nothing to score without audio or without a reference.
    assert check(Utterance(str(ok), 0.0, "?!"), evaluation).reject.startswith("empty text")
    assert check(Utterance(str(tmp_path / "gone.wav"), 0.0, "hi"), evaluation).reject.endswith("does not exist")
    with pytest.raises(ValueError, match="purpose must be one of train, eval"):
        ValidationRules(purpose="test")


def test_infeasible_references_per_row(tmp_path):
    short = write_tone(tmp_path / "short.wav", 0.1)
    rows = [Utterance(str(short), 0.1, "Hi!"), Utterance(str(short), 0.1, "far too long for a tenth of a second"),
            Utterance(str(tmp_path / "gone.wav"), 1.0, "hi"), Utterance(str(short), 0.1, "")]
    verdicts = infeasible_references(rows, ValidationRules())
    assert verdicts[0] is None and verdicts[1].startswith("label too long for its audio")
    assert verdicts[2:] == [None, None]  # unreadable audio fails transcription instead; an empty reference fits
    assert rows[0].text == "Hi!"  # the manifest rows are not rewritten


# --- speaker-disjoint splits ---------------------------------------------------------------------------------

FRACTIONS = {"train": 0.8, "dev": 0.1, "test": 0.1}


def many_speakers(count: int = 60, seed: int = 1) -> list[Utterance]:
    rng = random.Random(seed)
    rows = []
    for s in range(count):
        for u in range(rng.randint(2, 6)):
            rows.append(Utterance(f"/data/spk{s}/{u}.wav", rng.uniform(1.0, 8.0), "text", speaker=f"spk{s}"))
    return rows


def test_split_is_speaker_disjoint_complete_and_close_to_the_fractions():
    rows = many_speakers()
    splits = speaker_disjoint_split(rows, FRACTIONS, seed=3)

    assert set(splits) == set(FRACTIONS)
    speakers = {name: {r.speaker for r in part} for name, part in splits.items()}
    assert not speakers["train"] & speakers["dev"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["dev"] & speakers["test"]
    assert sorted(id(r) for part in splits.values() for r in part) == sorted(id(r) for r in rows)

    total = sum(r.duration for r in rows)
    for name, fraction in FRACTIONS.items():
        share = sum(r.duration for r in splits[name]) / total
        assert share == pytest.approx(fraction, abs=0.04), name


def test_split_is_deterministic_for_a_seed():
    rows = many_speakers()
    first = speaker_disjoint_split(rows, FRACTIONS, seed=7)
    second = speaker_disjoint_split(list(rows), FRACTIONS, seed=7)
    other = speaker_disjoint_split(rows, FRACTIONS, seed=8)
    as_speakers = lambda s: {n: sorted({r.speaker for r in p}) for n, p in s.items()}  # noqa: E731
    assert as_speakers(first) == as_speakers(second)
    assert as_speakers(first) != as_speakers(other)


def test_rows_without_speaker_are_split_one_file_at_a_time():
    rows = [Utterance(f"/d/{i}.wav", 1.0, "t") for i in range(20)]
    splits = speaker_disjoint_split(rows, FRACTIONS)
    assert [len(splits[n]) for n in ("train", "dev", "test")] == [16, 2, 2]


def test_split_with_few_speakers_still_gives_every_split_a_speaker():
    # FSDD has five speakers: an 80/10/10 split must not leave dev or test empty.
    rows = [Utterance(f"/d/{s}/{i}.wav", 1.0, "t", speaker=s)
            for s in ("george", "jackson", "lucas", "nicolas", "theo") for i in range(10)]
    for seed in range(3):
        splits = speaker_disjoint_split(rows, FRACTIONS, seed=seed)
        assert {name: len({r.speaker for r in part}) >= 1 for name, part in splits.items()} == \
            dict.fromkeys(FRACTIONS, True), seed


@pytest.mark.parametrize("fractions", [{}, {"train": 0.8, "dev": 0.1}, {"train": 1.2, "dev": -0.2}])
def test_split_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        speaker_disjoint_split(many_speakers(5), fractions)
