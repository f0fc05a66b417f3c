"""Word confidence: AUROC and ECE on hand-made sets with known answers, Platt calibration, the report section,
the calibration applied by the decoder and shipped with the bundled model, and `--min-confidence` flags."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from asr import cli
from asr.confidence import (
    CalibrationError,
    WordOutcomes,
    auroc,
    expected_calibration_error,
    fit_platt,
    platt,
    reliability_bins,
    summarize,
    token_confidences,
)
from asr.data import Utterance
from asr.decoders import make_decoder
from asr.decoding import DecoderError, DecodingOptions
from asr.outputs import OutputWriter, flag_low_confidence
from asr.recognizer import BUNDLED_MODEL, read_decoding_options
from asr.report import write_reports
from asr.scoring import score
from asr.text import Alphabet, normalize_text

ALPHABET = Alphabet()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SAMPLES = Path(__file__).resolve().parents[1] / "asr" / "samples" / "audio"


# --- AUROC ---------------------------------------------------------------------------------------------------


def test_auroc_known_answers():
    assert auroc([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 1.0  # perfectly separated
    assert auroc([0.1, 0.3, 0.8, 0.9], [True, True, False, False]) == 0.0  # perfectly backwards
    assert auroc([0.5] * 4, [True, False, True, False]) == 0.5  # all tied: ties count half
    # Pairs (correct, wrong): (0.9, 0.8) yes, (0.9, 0.6) yes, (0.7, 0.8) no, (0.7, 0.6) yes -> 3 of 4.
    assert auroc([0.9, 0.8, 0.7, 0.6], [True, False, True, False]) == 0.75
    # One tie among the four pairs: (0.5, 0.5) counts half, (0.5, 0.2) yes, (0.9, 0.5) yes, (0.9, 0.2) yes.
    assert auroc([0.9, 0.5, 0.5, 0.2], [True, True, False, False]) == pytest.approx(3.5 / 4)
    assert auroc([0.9, 0.4], [True, True]) is None and auroc([], []) is None  # one class: undefined


def test_auroc_matches_the_pairwise_definition_on_random_data():
    rng = np.random.default_rng(1)
    scores, labels = rng.integers(0, 5, 60) / 4, rng.random(60) < 0.4  # many ties
    pos, neg = scores[labels], scores[~labels]
    pairwise = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert auroc(scores, labels) == pytest.approx(pairwise)


# --- ECE and bins --------------------------------------------------------------------------------------------


def test_ece_is_zero_when_confidence_equals_accuracy_in_every_bin():
    confidence = [0.8] * 10 + [0.25] * 4  # 8 of the ten 0.8 words right, 1 of the four 0.25 words
    correct = [True] * 8 + [False] * 2 + [True] + [False] * 3
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0)


def test_ece_hand_computed_case():
    # Bin 0.9-1.0: 4 words, confidence 0.9, all right: gap 0.1. Bin 0.3-0.4: 6 words at 0.35, half right:
    # gap 0.15. ECE = 4/10 · 0.1 + 6/10 · 0.15 = 0.13.
    confidence = [0.9] * 4 + [0.35] * 6
    correct = [True] * 4 + [True, False] * 3
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.13)
    assert expected_calibration_error([], []) is None


def test_reliability_bins_cover_zero_to_one_with_the_last_bin_closed():
    bins = reliability_bins([0.0, 0.05, 0.95, 1.0], [False, False, True, True])
    assert len(bins) == 10 and bins[0]["low"] == 0.0 and bins[-1]["high"] == 1.0
    assert (bins[0]["words"], bins[0]["accuracy"]) == (2, 0.0)
    assert (bins[-1]["words"], bins[-1]["mean_confidence"]) == (2, pytest.approx(0.975))
    assert bins[5] == {"low": 0.5, "high": 0.6, "words": 0, "mean_confidence": None, "accuracy": None}


# --- Platt calibration ---------------------------------------------------------------------------------------


def test_fit_platt_recovers_a_known_temperature_and_bias():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.01, 0.99, 40_000)
    truth = (0.5, -1.0)  # overconfident raw scores: the true log-odds are twice theirs, shifted down
    correct = rng.random(raw.size) < platt(raw, *truth)
    temperature, bias = fit_platt(raw, correct)
    assert temperature == pytest.approx(truth[0], rel=0.05) and bias == pytest.approx(truth[1], abs=0.05)
    assert expected_calibration_error(raw, correct) > 0.1
    assert expected_calibration_error(platt(raw, temperature, bias), correct) < 0.02
    assert auroc(platt(raw, temperature, bias), correct) == pytest.approx(auroc(raw, correct))  # monotone


def test_platt_identity_and_fit_refusals():
    values = np.array([0.1, 0.5, 0.93])
    assert platt(values, 1.0, 0.0) == pytest.approx(values)
    with pytest.raises(CalibrationError, match="both correct and wrong"):
        fit_platt([0.2, 0.9], [True, True])
    with pytest.raises(CalibrationError, match="does not rise"):
        fit_platt([0.9, 0.8, 0.2, 0.1] * 5, [False, False, True, True] * 5)


# --- words of a transcript to scored tokens ------------------------------------------------------------------


def test_token_confidences_follow_the_scoring_normaliser():
    words = [("Press", 0.9), ("5", 0.4), ("now", 0.7)]
    assert token_confidences(words, ["press", "five", "now"], normalize_text) == [0.9, 0.4, 0.7]
    assert token_confidences([("21", 0.3)], ["twenty", "one"], normalize_text) == [0.3, 0.3]
    assert token_confidences(words, ["press", "now"], normalize_text) is None  # do not spell the text: unused
    assert token_confidences(None, ["a"], normalize_text) is None


# --- the report ----------------------------------------------------------------------------------------------


def confident_corpus(tmp_path: Path) -> tuple[list[Utterance], list[dict]]:
    """Right words at 0.9, wrong ones at 0.2 (AUROC 1), an insertion, and a row without confidences."""
    refs = [Utterance(str(tmp_path / f"{i}.wav"), 1.0, text) for i, text in
            enumerate(["one two three", "four five", "six", "seven eight"])]
    word = lambda text, confidence: {"word": text, "start": 0, "end": 0.1, "confidence": confidence}  # noqa: E731
    hyps = [
        {"audio_filepath": refs[0].audio_filepath, "text": "one to three",
         "words": [word("one", 0.9), word("to", 0.2), word("three", 0.9)]},
        {"audio_filepath": refs[1].audio_filepath, "text": "four five hive",
         "words": [word("four", 0.9), word("five", 0.9), word("hive", 0.2)]},
        {"audio_filepath": refs[2].audio_filepath, "text": "sex", "words": [word("sex", 0.2)]},
        {"audio_filepath": refs[3].audio_filepath, "text": "seven eight"},  # another system: no words
    ]
    return refs, hyps


def test_report_has_a_confidence_section_and_a_reliability_diagram(tmp_path):
    refs, hyps = confident_corpus(tmp_path)
    paths = write_reports(score(refs, hyps, n_resamples=50), tmp_path / "report")
    section = json.loads(paths["json"].read_text())["confidence"]
    assert (section["words"], section["correct"], section["words_without_confidence"]) == (7, 4, 2)
    assert section["auroc"] == 1.0
    # Bins 0.2-0.3 (3 words at 0.2, none right) and 0.9-1.0 (4 at 0.9, all right): 3/7 · 0.2 + 4/7 · 0.1.
    assert section["ece"] == pytest.approx(3 / 7 * 0.2 + 4 / 7 * 0.1)
    low, high = section["auroc_ci"]
    assert low <= section["auroc"] <= high
    page = paths["html"].read_text()
    diagram = re.search(r'alt="Reliability diagram" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert diagram and base64.b64decode(diagram.group(1)).startswith(PNG_MAGIC)
    markdown = paths["md"].read_text()
    assert "## Word confidence" in markdown and "| AUROC (correct vs wrong words) | 1.000" in markdown


def test_report_without_any_confidences_has_no_section(tmp_path):
    refs = [Utterance(str(tmp_path / "a.wav"), 1.0, "a b")]
    paths = write_reports(score(refs, [{"audio_filepath": refs[0].audio_filepath, "text": "a c"}],
                                n_resamples=0), tmp_path / "r")
    assert json.loads(paths["json"].read_text())["confidence"] is None
    assert "Reliability diagram" not in paths["html"].read_text()


def test_summary_of_an_empty_set_is_none():
    empty = WordOutcomes(np.zeros(0), np.zeros(0, bool), np.zeros(0, np.int64))
    assert summarize(empty) is None


# --- the decoder applies the calibration; the bundled model ships one ----------------------------------------


def test_decoder_applies_the_calibration_to_raw_confidences():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(40, ALPHABET.num_classes)) * 3
    raw = make_decoder(ALPHABET).decode(logits, 0.03)
    calibrated = make_decoder(ALPHABET, DecodingOptions(confidence_temperature=0.6, confidence_bias=-2.0))
    result = calibrated.decode(logits, 0.03)
    assert result.text == raw.text and raw.words
    expected = platt(np.array([w.confidence for w in raw.words]), 0.6, -2.0)
    assert [w.confidence for w in result.words] == pytest.approx(expected.tolist())
    assert all(0.0 <= w.confidence <= 1.0 for w in result.words)


def test_calibration_options_are_checked():
    with pytest.raises(DecoderError, match="confidence_temperature must be positive"):
        DecodingOptions(confidence_temperature=0.0)
    with pytest.raises(DecoderError, match="confidence_bias must be a finite number"):
        DecodingOptions(confidence_bias=float("inf"))


def test_bundled_model_ships_a_calibration_for_its_lm_decoder():
    options = read_decoding_options(BUNDLED_MODEL)
    assert options.decoder == "beam_lm" and options.lm_path.endswith("lm.arpa")
    assert options.calibration != (1.0, 0.0)  # fitted on the dev rows of every corpus, with the LM decoder


# --- --min-confidence ----------------------------------------------------------------------------------------


def test_flag_low_confidence_marks_words_without_removing_any():
    row = {"audio_filepath": "a.wav", "duration": 1.0, "text": "yes no",
           "words": [{"word": "yes", "start": 0, "end": 0.3, "confidence": 0.9},
                     {"word": "no", "start": 0.4, "end": 0.6, "confidence": 0.3}]}
    flagged = flag_low_confidence(row, 0.5)
    assert flagged["text"] == "yes no" and [w["word"] for w in flagged["words"]] == ["yes", "no"]
    assert [w["low_confidence"] for w in flagged["words"]] == [False, True]
    assert flagged["low_confidence_words"] == 1
    assert "low_confidence" not in row["words"][0]  # the caller's row is not modified
    failed = {"audio_filepath": "b.wav", "error": "unreadable"}
    assert flag_low_confidence(failed, 0.5) == failed


def test_output_writer_flags_jsonl_rows(tmp_path):
    out = tmp_path / "t.jsonl"
    writer = OutputWriter(out, "jsonl", ["a.wav"], min_confidence=0.95)
    writer.write({"audio_filepath": "a.wav", "text": "hi", "words": [
        {"word": "hi", "start": 0, "end": 0.2, "confidence": 0.94}]})
    writer.close()
    assert json.loads(out.read_text())["words"][0]["low_confidence"] is True


def test_cli_min_confidence_flags_words_of_the_bundled_model(tmp_path, capsys):
    inputs = [str(SAMPLES / "2_theo_3.wav"), str(SAMPLES / "conf-onlyperson.wav")]
    plain, flagged = tmp_path / "plain.jsonl", tmp_path / "flagged.jsonl"
    assert cli.main(["transcribe", *inputs, "--out", str(plain), "--quiet"]) == 0
    plain_rows = {r["audio_filepath"]: r for r in map(json.loads, plain.read_text().splitlines())}
    threshold = max(w["confidence"] for row in plain_rows.values() for w in row["words"])  # flags all but the best
    assert cli.main(["transcribe", *inputs, "--out", str(flagged), "--quiet", "--min-confidence", str(threshold)]) == 0
    flagged_rows = [json.loads(line) for line in flagged.read_text().splitlines()]
    assert len(flagged_rows) == 2
    for row in flagged_rows:
        before = plain_rows[row["audio_filepath"]]
        assert row["text"] == before["text"] and row["words"] == [  # same words, one key added
            {**w, "low_confidence": w["confidence"] < threshold} for w in before["words"]]
        assert row["low_confidence_words"] == sum(w["low_confidence"] for w in row["words"])
    flags = [w["low_confidence"] for row in flagged_rows for w in row["words"]]
    assert True in flags and False in flags
    assert cli.main(["transcribe", inputs[0], "--min-confidence", "0.5"]) == 2  # txt to stdout: refused
    assert "marks words in jsonl output" in capsys.readouterr().err
    assert cli.main(["transcribe", inputs[0], "--out", str(tmp_path / "x.jsonl"), "--min-confidence", "2"]) == 2


def test_cli_raw_confidence_undoes_the_calibration(tmp_path):
    audio = str(SAMPLES / "conf-onlyperson.wav")
    raw, calibrated = tmp_path / "raw.jsonl", tmp_path / "calibrated.jsonl"
    assert cli.main(["transcribe", audio, "--out", str(raw), "--quiet", "--raw-confidence"]) == 0
    assert cli.main(["transcribe", audio, "--out", str(calibrated), "--quiet"]) == 0
    raw_words = json.loads(raw.read_text())["words"]
    calibrated_words = json.loads(calibrated.read_text())["words"]
    assert raw_words, "the bundled model heard no words in a sample prompt"
    expected = platt(np.array([w["confidence"] for w in raw_words]), *read_decoding_options(BUNDLED_MODEL).calibration)
    assert [w["confidence"] for w in calibrated_words] == pytest.approx(expected.tolist(), abs=2e-4)
