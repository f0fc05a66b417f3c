"""Non-speech training rows (silence, noise, tones with empty text) and the default recipe's manifest joining."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.backend import keras
from asr.ctc_trainer import CTCTrainer
from asr.data import NON_SPEECH, Utterance, ValidationRules, check, read_manifest, write_manifest
from asr.features import FeatureConfig
from asr.synthesis.degrade import mu_law, telephone

REPO = Path(__file__).resolve().parents[1]
RULES = ValidationRules(features=FeatureConfig(sample_rate=8000), subsampling=3)


def run_script(name: str, *args) -> str:
    done = subprocess.run([sys.executable, str(REPO / "pipelines" / name), *map(str, args)], capture_output=True,
                          text=True, check=True)
    return done.stdout


def quiet_clip(tmp_path: Path, name: str = "quiet.wav") -> str:
    path = tmp_path / name
    sf.write(path, np.zeros(8000, np.float32), 8000)
    return str(path)


def test_only_a_marked_non_speech_row_trains_with_empty_text(tmp_path):
    audio = quiet_clip(tmp_path)
    marked = Utterance(audio, 0.0, "", extra={NON_SPEECH: True})
    assert check(marked, RULES).reject is None and marked.duration == pytest.approx(1.0)
    unmarked = check(Utterance(audio, 0.0, ""), RULES).reject
    assert unmarked is not None and "empty text" in unmarked  # a missing transcript is not silence
    for_eval = ValidationRules(features=RULES.features, subsampling=3, purpose="eval")
    assert "empty text" in check(Utterance(audio, 0.0, "", extra={NON_SPEECH: True}), for_eval).reject


def test_an_empty_label_costs_minus_the_log_probability_of_all_blanks():
    features = keras.Input((None, 3), name="features")
    lengths = keras.Input((), dtype="int32", name="feature_lengths")
    network = keras.Model({"features": features, "feature_lengths": lengths},
                          {"logits": keras.layers.Dense(4, use_bias=False)(features), "output_lengths": lengths})
    rng = np.random.default_rng(0)
    batch = {"features": rng.standard_normal((2, 5, 3)).astype("float32"),
             "feature_lengths": np.array([5, 3], "int32"),
             "labels": np.array([[0, 0], [2, 1]], "int32"), "label_lengths": np.array([0, 2], "int32")}
    losses, unusable = CTCTrainer(network).ctc_losses(batch, training=False)
    logits = network.predict_on_batch({"features": batch["features"], "feature_lengths": batch["feature_lengths"]})
    log_blank = np.log(keras.ops.convert_to_numpy(keras.ops.softmax(logits["logits"]))[0, :, 0])
    assert float(unusable) == 0.0
    assert float(losses[0]) == pytest.approx(-log_blank.sum(), rel=1e-4)
    assert float(losses[1]) > 0


def test_non_speech_clips_are_deterministic_varied_and_marked(tmp_path):
    run_script("make_nonspeech.py", "--out", tmp_path / "a", "--count", 40)
    run_script("make_nonspeech.py", "--out", tmp_path / "b", "--count", 40)
    rows = read_manifest(tmp_path / "a" / "manifest.jsonl")
    assert len(rows) == 40 and all(r.text == "" and r.extra[NON_SPEECH] is True for r in rows)
    assert all(1.0 <= r.duration <= 4.0 for r in rows)
    assert len({r.speaker for r in rows}) >= 8  # silence, noises, hum, clicks and telephone tones
    for name in ("ns_000000.wav", "ns_000039.wav"):
        assert (tmp_path / "a" / "audio" / name).read_bytes() == (tmp_path / "b" / "audio" / name).read_bytes()
    peaks = [np.abs(sf.read(r.audio_filepath)[0]).max() for r in rows]
    assert max(peaks) <= 1.0 and len({round(float(p), 3) for p in peaks}) > 20  # levels vary


def test_combining_leaves_out_held_out_recordings_and_texts_and_samples_dev(tmp_path):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_manifest(first, [Utterance(quiet_clip(tmp_path, f"{name}.wav"), 1.0, text) for name, text in
                           [("3_jackson_7", "three"), ("keep", "Agent logged in."), ("other", "hello there")]])
    write_manifest(second, [Utterance(quiet_clip(tmp_path, f"n{i}.wav"), 1.0, "", extra={NON_SPEECH: True})
                            for i in range(10)])
    out = tmp_path / "joined.jsonl"
    printed = run_script("combine_manifests.py", out, first, second, "--exclude-audio",
                         REPO / "asr" / "samples" / "transcripts.tsv", "--exclude-text", REPO / "asr" / "samples" /
                         "transcripts.tsv", "--max-per-input", 4)
    rows = read_manifest(out)
    assert [r.text for r in rows[:1]] == ["hello there"]  # the demo's file and the demo's sentence are gone
    assert len(rows) == 5 and all(json.loads(line).get(NON_SPEECH) for line in out.read_text().splitlines()[1:])
    assert "kept 1 of 3 rows" in printed and "kept 4 of 10 rows" in printed


def test_telephone_copy_band_limits_and_mu_law_codes():
    levels = np.linspace(-1, 1, 10001, dtype=np.float32)
    coded = mu_law(levels)
    assert coded[0] == pytest.approx(-1.0) and coded[-1] == pytest.approx(1.0) and abs(coded[5000]) < 1e-4
    assert len(np.unique(coded)) == 255  # 8-bit codes, +0 and -0 alike
    quiet = np.abs(levels) < 0.01
    assert np.abs(coded - levels)[quiet].max() < 5e-4  # fine steps near zero, coarse ones near full scale
    t = np.arange(8000) / 8000
    hum, voice = np.sin(2 * np.pi * 60 * t) * 0.5, np.sin(2 * np.pi * 1000 * t) * 0.5
    assert np.sqrt(np.mean(telephone(hum)[800:] ** 2)) < 0.01  # below the 300 Hz edge
    assert np.sqrt(np.mean(telephone(voice)[800:] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_results_table_reads_greedy_lm_and_baseline_reports(tmp_path):
    def report(path: Path, wer: float, cer: float) -> None:
        path.mkdir(parents=True)
        summary = {"wer": wer, "wer_ci": [wer - 0.01, wer + 0.02], "cer": cer, "cer_ci": [cer - 0.01, cer + 0.01],
                   "utterances": 7}
        (path / "report.json").write_text(json.dumps({"summary": summary}))

    report(tmp_path / "runs" / "fsdd" / "greedy", 0.1, 0.05)
    report(tmp_path / "runs" / "fsdd" / "beam_lm", 0.04, 0.03)
    report(tmp_path / "ps" / "fsdd", 0.748, 0.6)
    report(tmp_path / "whisper" / "an4", 0.089, 0.05)
    (tmp_path / "whisper" / "an4" / "speed.json").write_text(json.dumps({"times_real_time": 12.4}))
    printed = run_script("results_table.py", tmp_path / "runs", "--baseline", tmp_path / "ps",
                         f"whisper-tiny.en={tmp_path / 'whisper'}", "--corpora", "fsdd", "an4")
    rows = printed.splitlines()
    assert rows[0].endswith("| ps WER | whisper-tiny.en WER |")
    assert rows[2] == ("| fsdd | 7 | 10.0% (9.0%–12.0%) | 4.0% (3.0%–6.0%) | 5.0% (4.0%–6.0%) | 3.0% (2.0%–4.0%) "
                       "| 74.8% | — |")
    assert rows[3] == "| an4 | 0 | — | — | — | — | — | 8.9% (12× RT) |"
