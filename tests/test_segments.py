"""Manifest rows with an offset (Kaldi segments, lhotse supervisions): only the slice is read, by training,
`asr transcribe` and `asr evaluate`, and each segment is matched, named and resumed on its own."""

import json

import numpy as np
import pytest

from asr import cli
from asr.audio import AudioError, read_audio, write_audio
from asr.config import load_config
from asr.data import ManifestError, Utterance, ValidationRules, check, read_manifest, write_manifest
from asr.dataset import make_dataset
from asr.decoders import make_decoder
from asr.frames import FeatureConfig
from asr.outputs import OutputWriter
from asr.scoring import read_hypotheses, score
from asr.transcribe import AudioSegment, TranscribeOptions, expand_inputs, manifest_sources, transcribe
from asr.vad import VAD_OFF
from tests.test_transcribe import FRAME, RATE, encode, fake_model

WORDS = ("one two", "three", "four five six")


@pytest.fixture
def recording(tmp_path):
    """One file holding three utterances back to back; (path, [(offset, duration, text)])."""
    pieces = [encode(text) for text in WORDS]
    path = tmp_path / "recording.wav"
    write_audio(path, np.concatenate(pieces), RATE)
    starts = np.cumsum([0] + [len(p) for p in pieces[:-1]])
    return path, [(start / RATE, len(p) / RATE, text) for start, p, text in zip(starts, pieces, WORDS, strict=True)]


@pytest.fixture
def manifest(recording, tmp_path):
    path, segments = recording
    out = tmp_path / "segments.jsonl"
    write_manifest(out, [Utterance(str(path), duration, text, speaker="s1", offset=offset)
                         for offset, duration, text in segments])
    return out


def test_read_audio_reads_only_the_segment_and_names_a_segment_past_the_end(tmp_path):
    samples = np.linspace(-0.5, 0.5, 16000, dtype=np.float32)
    path = tmp_path / "ramp.wav"
    write_audio(path, samples, 16000)
    whole, _ = read_audio(path)
    part, rate = read_audio(path, 0.25, 0.5)
    assert rate == 16000 and len(part) == 8000
    np.testing.assert_array_equal(part, whole[4000:12000])
    np.testing.assert_array_equal(read_audio(path, 0.75)[0], whole[12000:])  # no duration: to the end
    with pytest.raises(AudioError, match=r"ramp.wav: segment 0.800-1.300 s ends past the end of the audio"):
        read_audio(path, 0.8, 0.5)
    with pytest.raises(AudioError, match="duration positive"):
        read_audio(path, 0.2, 0.0)


def test_manifest_rows_keep_their_offset_and_a_bad_offset_is_named(manifest, recording, tmp_path):
    _, segments = recording
    rows = read_manifest(manifest)
    assert [row.offset for row in rows] == pytest.approx([s[0] for s in segments])
    assert [row.duration for row in rows] == pytest.approx([s[1] for s in segments])
    assert json.loads(manifest.read_text().splitlines()[1])["offset"] == pytest.approx(segments[1][0])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"audio_filepath": "a.wav", "text": "x", "offset": 1.0}) + "\n")
    with pytest.raises(ManifestError, match=r"bad.jsonl:1: a row with an 'offset' needs its segment's 'duration'"):
        read_manifest(bad)
    bad.write_text(json.dumps({"audio_filepath": "a.wav", "text": "x", "offset": -1, "duration": 1}) + "\n")
    with pytest.raises(ManifestError, match="field 'offset' must be seconds"):
        read_manifest(bad)


def test_validation_measures_the_segment_and_rejects_one_past_the_end(recording):
    path, segments = recording
    offset, duration, text = segments[1]
    rules = ValidationRules(features=FeatureConfig(sample_rate=RATE))
    row = Utterance(str(path), duration, text, offset=offset)
    assert check(row, rules).reject is None
    assert row.duration == pytest.approx(duration)
    late = Utterance(str(path), segments[2][1], text, offset=segments[2][0] + 0.5)
    assert "ends past the end of the audio" in check(late, rules).reject


def test_training_batches_hold_each_segments_own_frames(manifest, recording):
    path, segments = recording
    config = load_config(None, [f"features.sample_rate={RATE}", "data.bucketing=false", "data.batch_size=8"])
    batch = next(iter(make_dataset(read_manifest(manifest), config, training=False)))
    lengths = sorted(int(n) for n in batch["feature_lengths"])
    assert lengths == sorted(config.features.frames_for(duration) for _, duration, _ in segments)


def test_transcribe_and_score_segments_each_on_its_own(manifest, recording, tmp_path):
    path, segments = recording
    sources = expand_inputs([str(manifest)])
    assert sources == manifest_sources(read_manifest(manifest))
    assert all(isinstance(s, AudioSegment) for s in sources) and len(sources) == 3
    decoder = make_decoder(load_config(None).alphabet())
    out = tmp_path / "hyp.jsonl"
    writer = OutputWriter(out, "jsonl", [s.name for s in sources], relative_paths=True)
    for result in transcribe(sources, fake_model(), decoder, TranscribeOptions(vad=VAD_OFF), progress=False):
        writer.write(result.row())
    writer.close()
    rows = sorted((json.loads(line) for line in out.read_text().splitlines()), key=lambda r: r["offset"])
    assert [r["text"] for r in rows] == list(WORDS)
    assert [r["offset"] for r in rows] == pytest.approx([s[0] for s in segments])
    assert {r["audio_filepath"] for r in rows} == {"recording.wav"}  # relative to the transcript
    # Word times are the file's: the third segment's first word starts after its offset.
    assert segments[2][0] < rows[2]["words"][0]["start"] < segments[2][0] + 8 * FRAME / RATE
    result = score(read_manifest(manifest), read_hypotheses(out))
    assert result.words.errors == 0 and result.words.ref == 6 and not result.unmatched_hypotheses
    assert [u.utterance_id for u in result.utterances] == [f"recording_{o:.3f}-{o + d:.3f}" for o, d, _ in segments]


def test_cli_transcribes_segments_as_lines_and_resumes_each(manifest, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("asr.recognizer.load_model", lambda path: fake_model())
    out = tmp_path / "out.txt"
    assert cli.main(["transcribe", str(manifest), "--out", str(out), "--vad", "off", "--quiet"]) == 0
    lines = out.read_text().splitlines()
    assert sorted(line.split("\t")[1] for line in lines) == sorted(WORDS)
    assert all("recording.wav#t=" in line.split("\t")[0] for line in lines)
    out.write_text(lines[0] + "\n")
    assert cli.main(["transcribe", str(manifest), "--out", str(out), "--vad", "off", "--quiet", "--resume"]) == 0
    assert "2 transcribed, 0 failed, 1 already done (--resume)" in capsys.readouterr().err
    assert sorted(out.read_text().splitlines()) == sorted(lines)
