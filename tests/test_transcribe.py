"""Batch transcription: inputs, broken files, formats, resume, long-audio windows, export round trips."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr import cli
from asr.audio import write_audio
from asr.backend import tf
from asr.config import load_config
from asr.decoders import make_decoder
from asr.export import export, run_tflite
from asr.outputs import OutputWriter, render_subtitles
from asr.recognizer import Recognizer, load_model
from asr.transcribe import TranscribeOptions, expand_inputs, read_segments, transcribe
from asr.vad import VAD_OFF
from tests.conftest import DIGITS, SHARED

RATE = 8000
FRAME = 240  # samples per output frame of the fake model: 10 ms hop × subsampling 3 at 8 kHz


def fake_model() -> Recognizer:
    """Reads class ids written into the waveform (one value per 30 ms frame): exact, so any error is ours.

    Its "audio" is steps of DC, which no voice activity detector calls speech, so the tests that use it
    transcribe with the VAD off (`VAD_OFF`): they test windows, batching and outputs, which do not change.
    """
    config = load_config(None, [f"features.sample_rate={RATE}", "model.subsampling=3"])
    classes = config.alphabet().num_classes

    def call(waveforms, lengths):
        frames = lengths // FRAME
        usable = tf.shape(waveforms)[1] // FRAME * FRAME
        values = tf.reshape(waveforms[:, :usable], [tf.shape(waveforms)[0], -1, FRAME])
        ids = tf.cast(tf.round(tf.reduce_mean(values, axis=2) * 100), tf.int32)
        return tf.one_hot(ids, classes) * 10.0, frames

    return Recognizer(config, Path("fake"), call)


def encode(text: str, frames_per_char: int = 3) -> np.ndarray:
    """Each character held for a few frames and followed by a blank frame; words separated by silence."""
    alphabet = load_config(None).alphabet()
    values = [0.0] * 4
    for char in text:
        values += [alphabet.encode(char)[0] / 100] * frames_per_char + [0.0]
    values += [0.0] * 4
    return np.repeat(np.array(values, np.float32), FRAME)


SENTENCE = " ".join(["one two three four five six seven eight nine ten"] * 4)


def test_long_audio_in_windows_matches_whole_file_decoding(tmp_path):
    path = tmp_path / "long.wav"
    write_audio(path, encode(SENTENCE), RATE)  # about 27 s
    model, decoder = fake_model(), make_decoder(load_config(None).alphabet())
    whole = _transcribe_rows([str(path)], model, decoder, tmp_path / "whole.jsonl", window=600.0, overlap=0.0)
    for window, overlap in [(4.8, 1.5), (3.3, 1.2), (6.0, 1.8)]:  # multiples of the fake 30 ms frame
        windowed = _transcribe_rows([str(path)], model, decoder, tmp_path / f"w{window}.jsonl",
                                    window=window, overlap=overlap)
        assert windowed[0]["text"] == whole[0]["text"] == SENTENCE
        starts = [w["start"] for w in windowed[0]["words"]]
        assert starts == sorted(starts)
        np.testing.assert_allclose(starts, [w["start"] for w in whole[0]["words"]], atol=1e-6)


def test_windows_keep_memory_bounded(tmp_path):
    path = tmp_path / "five_minutes.wav"
    write_audio(path, np.zeros(RATE * 300, np.float32), RATE)
    segments = list(read_segments(str(path), 0, RATE, window=20.0, overlap=2.0, vad=VAD_OFF))
    assert max(len(s.samples) for s in segments) == 20 * RATE
    assert len(segments) == 17 and segments[-1].last and not segments[0].last


def _transcribe_rows(paths, model, decoder, out, vad=VAD_OFF, **kwargs):
    """Rows as `asr transcribe` writes them to JSONL (`out` is where the file would go)."""
    writer = OutputWriter(out, "jsonl", paths)
    for result in transcribe(paths, model, decoder, TranscribeOptions(vad=vad, **kwargs), progress=False):
        writer.write(result.row())
    writer.close()
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.fixture
def batch_folder(tmp_path):
    folder = tmp_path / "inputs"
    (folder / "nested").mkdir(parents=True)
    for index, word in enumerate(["one two", "three", "four five six"]):
        write_audio(folder / ("nested" if index == 2 else "") / f"good{index}.wav", encode(word), RATE)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("not audio at all " * 20)
    good = (folder / "good0.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(good[: len(good) // 2])
    return folder


def test_broken_files_are_reported_and_the_batch_goes_on(batch_folder, tmp_path):
    paths = expand_inputs([str(batch_folder)])
    assert len(paths) == 6
    rows = _transcribe_rows(paths, fake_model(), make_decoder(load_config(None).alphabet()),
                            tmp_path / "out.jsonl")
    by_name = {Path(r["audio_filepath"]).name: r for r in rows}
    assert by_name["good0.wav"]["text"] == "one two" and by_name["good2.wav"]["text"] == "four five six"
    assert "empty" in by_name["empty.wav"]["error"]
    assert "not an audio file" in by_name["text.wav"]["error"]
    assert "truncated" in by_name["truncated.wav"]["error"]
    words = by_name["good2.wav"]["words"]
    assert [w["word"] for w in words] == ["four", "five", "six"]
    assert all(0 <= w["confidence"] <= 1 and w["start"] < w["end"] for w in words)


def test_resume_skips_finished_inputs_and_drops_a_torn_line(batch_folder, tmp_path, monkeypatch, capsys):
    paths = expand_inputs([str(batch_folder)])
    decoder = make_decoder(load_config(None).alphabet())
    out = tmp_path / "out.jsonl"
    first = _transcribe_rows(paths, fake_model(), decoder, out)
    finished = [r for r in first if "text" in r][:2]
    out.write_text("".join(json.dumps(r) + "\n" for r in finished) + '{"audio_filepath": "torn')
    monkeypatch.setattr("asr.recognizer.load_model", lambda path: fake_model())
    assert cli.main(["transcribe", str(batch_folder), "--out", str(out), "--resume", "--vad", "off", "--quiet"]) == 1
    assert "1 transcribed, 3 failed, 2 already done (--resume)" in capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["audio_filepath"] for r in rows) == sorted(paths)


def test_expand_inputs_files_globs_manifests_and_missing(batch_folder, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": str(batch_folder / "good1.wav"), "text": "x",
                                    "duration": 1}) + "\n")
    paths = expand_inputs([str(batch_folder / "good*.wav"), str(manifest), str(tmp_path / "missing.wav")])
    assert [Path(p).name for p in paths] == ["good0.wav", "good1.wav", "missing.wav"]


def test_subtitle_formats():
    words = [{"word": "hello", "start": 0.5, "end": 0.9, "confidence": 0.9},
             {"word": "world", "start": 1.0, "end": 1.4, "confidence": 0.8},
             {"word": "again", "start": 3.5, "end": 3.9, "confidence": 0.7}]  # a long pause: a new cue
    assert render_subtitles(words, "srt") == ("1\n00:00:00,500 --> 00:00:01,400\nhello world\n\n"
                                              "2\n00:00:03,500 --> 00:00:03,900\nagain\n")
    assert render_subtitles(words, "vtt").startswith("WEBVTT\n\n00:00:00.500 --> 00:00:01.400\nhello world\n")


def test_cli_formats_exit_status_and_folder_output(trained_run, batch_folder, tmp_path):
    digits = [str(SHARED / "fsdd" / "recordings" / f"{d}_theo_0.wav") for d in range(4)]
    run = lambda *args: subprocess.run([sys.executable, "-m", "asr", "transcribe", *args, "--model",  # noqa: E731
                                        str(trained_run), "--quiet"], capture_output=True, text=True)
    result = run(*digits, "--out", str(tmp_path / "digits.txt"))
    assert result.returncode == 0, result.stderr
    rows = dict(line.split("\t") for line in (tmp_path / "digits.txt").read_text().splitlines())
    assert [rows[path] for path in digits] == DIGITS  # rows come as files finish (shortest first), keyed by path
    assert "4 transcribed, 0 failed" in result.stderr

    result = run(*digits[:2], str(batch_folder / "empty.wav"), "--out", str(tmp_path / "subs") + "/",
                 "--format", "vtt")
    assert result.returncode == 1 and "is empty (0 bytes)" in result.stderr
    assert (tmp_path / "subs" / "0_theo_0.vtt").read_text().startswith("WEBVTT")
    assert "empty.wav" in (tmp_path / "subs" / "errors.jsonl").read_text()


def test_export_savedmodel_and_tflite_match_keras(trained_run, tmp_path):
    keras_model = load_model(trained_run)
    from asr.audio import load_audio

    waveform = load_audio(SHARED / "fsdd" / "recordings" / "2_theo_0.wav", RATE)
    expected = keras_model.logits([waveform])[0]
    saved = load_model(export(trained_run, "savedmodel", tmp_path / "saved"))
    np.testing.assert_allclose(saved.logits([waveform])[0], expected, atol=1e-5)
    pcm = tf.saved_model.load(str(tmp_path / "saved")).signatures["serve_int16"](
        pcm16=tf.constant((waveform * 32767)[None].astype(np.int16)), waveform_lengths=tf.constant([len(waveform)]))
    np.testing.assert_allclose(pcm["logits"].numpy()[0], expected, atol=0.05)
    tflite = run_tflite(export(trained_run, "tflite", tmp_path / "model.tflite"), waveform)[0]
    np.testing.assert_allclose(tflite, expected, atol=1e-4)
    decoder = make_decoder(keras_model.config.alphabet())
    assert decoder.decode(tflite, keras_model.frame_seconds).text == "two"


def test_a_word_is_kept_when_any_of_it_meets_speech_not_only_its_middle():
    from asr.decoding import Transcript, Word
    from asr.transcribe import FileResult, Segment, _keep_words

    # "stop": the voiced "o" (the VAD's speech, 0.64-1.0 s of the file) comes late; the decoder's "s" fired at
    # the segment's first frame, so the word's middle (0.615 s) lies in the silent "st" before it.
    segment = Segment(0, offset=0.24, owned=(0.0, np.inf), samples=np.zeros(6080, np.float32), last=True,
                      window_end=1.0, speech=((0.64, 1.0),))
    words = [Word("stop", 0.0, 0.75, 0.9), Word("noise", 0.0, 0.3, 0.9)]  # "noise": 0.24-0.54 s, before speech
    result = FileResult("stop.wav")
    _keep_words(segment, Transcript("stop noise", words), result)
    assert [(w.word, w.start, w.end) for w in result.words] == [("stop", 0.24, 0.99)]
