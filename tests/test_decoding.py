"""asr.decoding: greedy and beam decoders, the word-LM beam search, forced alignment and word timings."""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr import tuning
from asr.data import write_manifest
from asr.decoders import make_decoder
from asr.decoding import (
    DECODERS,
    DecoderError,
    DecodingOptions,
    Transcript,
    forced_align,
    greedy_decode,
    greedy_ids,
    log_softmax,
)
from asr.lm import build_lm
from asr.model_folder import read_decoding_options
from asr.recognizer import load_model
from asr.text import Alphabet
from asr.transcribe import transcribe
from tests.conftest import LM_TEXT, REPO, fsdd_rows

ALPHABET = Alphabet()
SHARP = 10.0


def peaked(frames: str, sharp: float = SHARP, alphabet: Alphabet = ALPHABET) -> np.ndarray:
    """Logits with one frame per character of `frames` ("_" is the blank), `sharp` nats above the rest."""
    logits = np.zeros((len(frames), alphabet.num_classes))
    for t, char in enumerate(frames):
        logits[t, 0 if char == "_" else alphabet.encode(char)[0]] = sharp
    return logits


def spelled(text: str) -> str:
    """A frame string saying `text`: each character on two frames, then a blank (so repeats survive)."""
    return "".join(char * 2 + "_" for char in text)


def labelling_probabilities(log_probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """Exact CTC probability of every labelling, by summing all C^T paths (tiny T and C only)."""
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(log_probs.shape[1]), repeat=len(log_probs)):
        labels = tuple(k for k, _ in itertools.groupby(path) if k != 0)
        totals[labels] = totals.get(labels, 0.0) + math.exp(sum(log_probs[t, k] for t, k in enumerate(path)))
    return totals


def decoders(lm_path: Path):
    return [make_decoder(ALPHABET), make_decoder(ALPHABET, DecodingOptions("beam", beam_width=8)),
            make_decoder(ALPHABET, DecodingOptions("beam_lm", beam_width=8, lm_path=lm_path))]


# --- greedy and beam -----------------------------------------------------------------------------------------


def test_greedy_merges_repeats_and_drops_blanks():
    logits = peaked("_hh_e_ll_lo__ _w_oo_rld_")
    transcript = make_decoder(ALPHABET).decode(logits, 0.03)
    assert transcript.text == "hello world"
    assert [w.word for w in transcript.words] == ["hello", "world"]
    assert greedy_decode(logits[None], [len(logits)], ALPHABET) == ["hello world"]  # asr.train's entry points
    assert greedy_ids(logits, 3) == ALPHABET.encode("h")


def test_text_has_single_spaces_and_no_edges():
    transcript = make_decoder(ALPHABET).decode(peaked("  _a_  _ _b_  "), 0.03)
    assert transcript.text == "a b"


@pytest.mark.parametrize("text", ["the cat sat", "hello", "a  b", "don't stop"])
def test_beam_equals_greedy_on_peaked_logits(text):
    logits = peaked(spelled(text))
    greedy = make_decoder(ALPHABET).decode(logits, 0.03)
    assert make_decoder(ALPHABET, DecodingOptions("beam", beam_width=4)).decode(logits, 0.03) == greedy


def test_beam_finds_the_most_probable_labelling_that_no_single_path_shows():
    # Two frames, p(blank) = 0.6 and p(a) = 0.4 in each. The best path is blank-blank (0.36), so greedy says "".
    # The labelling "a" collects three paths: a-a 0.16 + a-blank 0.24 + blank-a 0.24 = 0.64 > 0.36.
    probs = np.full((2, ALPHABET.num_classes), 1e-9)
    probs[:, 0], probs[:, ALPHABET.encode("a")[0]] = 0.6, 0.4
    logits = np.log(probs)
    assert make_decoder(ALPHABET).decode(logits, 0.03).text == ""
    assert make_decoder(ALPHABET, DecodingOptions("beam", beam_width=4)).decode(logits, 0.03).text == "a"



def test_token_beam_bounds_the_classes_tried_per_frame():
    probs = np.full((2, ALPHABET.num_classes), 1e-9)  # the two-path case above: "a" needs blank and a tried
    probs[:, 0], probs[:, ALPHABET.encode("a")[0]] = 0.6, 0.4

    def decode(logits: np.ndarray, token_beam: int) -> str:
        options = DecodingOptions("beam", beam_width=8, token_beam=token_beam)
        return make_decoder(ALPHABET, options).decode(logits, 0.03).text

    assert decode(np.log(probs), 1) == "" and decode(np.log(probs), 2) == "a"
    rng = np.random.default_rng(3)
    for _ in range(20):  # one class per frame leaves one path: the greedy one
        logits = rng.normal(size=(int(rng.integers(1, 30)), ALPHABET.num_classes)) * 3
        assert decode(logits, 1) == make_decoder(ALPHABET).decode(logits, 0.03).text


def test_beam_matches_exhaustive_search_on_small_random_cases():
    alphabet = Alphabet("ab")
    beam = make_decoder(alphabet, DecodingOptions("beam", beam_width=32))
    rng = np.random.default_rng(0)
    for _ in range(40):
        logits = rng.normal(size=(int(rng.integers(1, 6)), alphabet.num_classes)) * 2
        totals = labelling_probabilities(log_softmax(logits))
        found = tuple(alphabet.encode(beam.decode(logits, 0.01).text))
        assert totals.get(found, 0.0) == pytest.approx(max(totals.values()), rel=1e-6)


def test_beam_lm_without_weights_is_plain_beam(lm_path):
    rng = np.random.default_rng(1)
    beam = make_decoder(ALPHABET, DecodingOptions("beam", beam_width=8))
    neutral = make_decoder(ALPHABET, DecodingOptions("beam_lm", beam_width=8, lm_path=lm_path, alpha=0.0, beta=0.0))
    for _ in range(5):
        logits = rng.normal(size=(30, ALPHABET.num_classes)) * 3
        assert neutral.decode(logits, 0.03) == beam.decode(logits, 0.03)


# --- the language model ------------------------------------------------------------------------------------


def misheard(text: str, position: int, heard: str) -> np.ndarray:
    """`text` spelled out, but the acoustics of its letter at `position` lean (4.5 vs 4.0 nats) towards `heard`."""
    logits = peaked(spelled(text))
    frames = slice(3 * position, 3 * position + 2)
    logits[frames] = 0.0
    logits[frames, ALPHABET.encode(text[position])[0]] = 4.0
    logits[frames, ALPHABET.encode(heard)[0]] = 4.5
    return logits


def cat_or_cap() -> np.ndarray:
    """ "the cat sat", but the acoustics of cat's "t" lean towards "p"."""
    return misheard("the cat sat", len("the ca"), "p")


def test_lm_fixes_a_word_the_acoustics_get_wrong(lm_path):
    logits = cat_or_cap()
    assert make_decoder(ALPHABET).decode(logits, 0.03).text == "the cap sat"
    assert make_decoder(ALPHABET, DecodingOptions("beam")).decode(logits, 0.03).text == "the cap sat"
    no_lm = make_decoder(ALPHABET, DecodingOptions("beam_lm", lm_path=lm_path, alpha=0.0, beta=1.0))
    assert no_lm.decode(logits, 0.03).text == "the cap sat"
    with_lm = make_decoder(ALPHABET, DecodingOptions("beam_lm", lm_path=lm_path, alpha=0.5, beta=1.0))
    assert with_lm.decode(logits, 0.03).text == "the cat sat"


def test_lm_decoder_keeps_words_it_has_never_seen(lm_path):
    logits = peaked(spelled("the zebu sat"))  # "zebu" is not in the LM: open vocabulary, scored as <unk>
    decoder = make_decoder(ALPHABET, DecodingOptions("beam_lm", lm_path=lm_path, alpha=0.5, beta=1.0))
    assert decoder.decode(logits, 0.03).text == "the zebu sat"


def test_unk_offset_makes_unseen_words_yield_to_known_ones(lm_path):
    def decode(logits: np.ndarray, unk_offset: float) -> str:  # alpha 0: the offset alone weighs against "cap"
        options = DecodingOptions("beam_lm", lm_path=lm_path, alpha=0.0, beta=1.0, unk_offset=unk_offset)
        return make_decoder(ALPHABET, options).decode(logits, 0.03).text

    # "cap" leads "cat" by about 1 nat (0.5 on each of two frames): a smaller penalty keeps it, a larger one not.
    assert decode(cat_or_cap(), 0.0) == decode(cat_or_cap(), -0.5) == "the cap sat"
    assert decode(cat_or_cap(), -3.0) == "the cat sat"
    assert decode(peaked(spelled("the zebu sat")), -3.0) == "the zebu sat"  # a clearly spoken new word stays
    with pytest.raises(DecoderError, match="unk_offset must be <= 0"):
        DecodingOptions("beam_lm", lm_path=lm_path, unk_offset=1.0)


def closed(lm_path: Path, alpha: float = 0.5, beta: float = 1.0, **options):
    return make_decoder(ALPHABET, DecodingOptions("beam_lm", lm_path=lm_path, alpha=alpha, beta=beta,
                                                  vocabulary="closed", **options))


def test_closed_vocabulary_outputs_only_the_lms_words(lm_path):
    lm_words = set(LM_TEXT.split())
    # alpha 0: no LM weight, yet "cap" is not a word of the LM, so the search has to say "cat".
    assert closed(lm_path, alpha=0.0).decode(cat_or_cap(), 0.03).text == "the cat sat"  # "sat": closed at the end
    zebu = closed(lm_path).decode(peaked(spelled("the zebu sat")), 0.03)
    assert set(zebu.text.split()) <= lm_words and "zebu" not in zebu.text
    # Words and their timings are those of the forced alignment, as for the open search.
    logits = peaked(spelled("the dog sat"))
    closed_words = closed(lm_path).decode(logits, 0.03).words
    open_words = make_decoder(ALPHABET, DecodingOptions("beam_lm", lm_path=lm_path)).decode(logits, 0.03).words
    assert closed_words == open_words and [w.word for w in closed_words] == ["the", "dog", "sat"]


def test_closed_vocabulary_edge_cases(lm_path):
    decoder = closed(lm_path)
    assert decoder.decode(np.zeros((0, ALPHABET.num_classes)), 0.03) == Transcript("", [])
    assert decoder.decode(peaked("____"), 0.03).text == ""
    first = decoder.decode(cat_or_cap(), 0.03)
    decoder.decode(peaked(spelled("a dog")), 0.03)
    assert decoder.decode(cat_or_cap(), 0.03) == first  # reusable across utterances
    with pytest.raises(DecoderError, match="vocabulary: unknown kind 'small'"):
        DecodingOptions("beam_lm", lm_path=lm_path, vocabulary="small")


def test_lm_decoder_is_reusable_across_utterances(lm_path):
    decoder = make_decoder(ALPHABET, DecodingOptions("beam_lm", lm_path=lm_path, alpha=0.5, beta=1.0))
    first = decoder.decode(cat_or_cap(), 0.03)
    decoder.decode(peaked(spelled("a dog")), 0.03)
    assert decoder.decode(cat_or_cap(), 0.03) == first


# --- timings, alignment, edge cases ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", DECODERS)
def test_word_times_and_confidences(kind, lm_path):
    logits = peaked("___hhi_ _yoo__")  # "hi" on frames 3-5, "yo" on frames 9-11
    logits[9:12] /= 3.0  # "yo" less peaked
    transcript = make_decoder(ALPHABET, DecodingOptions(kind, beam_width=8, lm_path=lm_path)).decode(logits, 0.02)
    assert transcript.text == "hi yo"
    hi, yo = transcript.words
    assert (hi.word, hi.start, hi.end) == ("hi", pytest.approx(0.06), pytest.approx(0.12))
    assert (yo.word, yo.start, yo.end) == ("yo", pytest.approx(0.18), pytest.approx(0.24))
    assert 0.0 <= yo.confidence < hi.confidence <= 1.0
    # The geometric mean over characters of each character's peak probability: "y" on frame 9, "o" on 10-11.
    probs = np.exp(log_softmax(logits))
    y, o = ALPHABET.encode("yo")
    expected = np.sqrt(probs[9, y] * probs[10:12, o].max())
    assert yo.confidence == pytest.approx(expected)


def test_forced_alignment_small_case():
    # Labels "a a" need a blank between the two a's; the frames say a, a, blank, a, blank.
    logits = peaked("aa_a_")
    path = forced_align(log_softmax(logits), ALPHABET.encode("aa"))
    assert path.tolist() == [ALPHABET.encode("a")[0]] * 2 + [0, ALPHABET.encode("a")[0], 0]
    assert forced_align(log_softmax(logits[:2]), ALPHABET.encode("aa")) is None  # needs 3 frames
    assert forced_align(np.zeros((0, ALPHABET.num_classes)), []).tolist() == []


def test_forced_alignment_is_the_best_path_for_its_labels():
    rng = np.random.default_rng(2)
    for _ in range(30):
        frames, classes = int(rng.integers(1, 6)), 3
        log_probs = log_softmax(rng.normal(size=(frames, classes)) * 2)
        labels = [int(k) for k in rng.integers(1, classes, size=int(rng.integers(0, 4)))]
        scores = [sum(log_probs[t, k] for t, k in enumerate(p))
                  for p in itertools.product(range(classes), repeat=frames)
                  if [k for k, _ in itertools.groupby(p) if k != 0] == labels]
        path = forced_align(log_probs, labels)
        if not scores:
            assert path is None
            continue
        assert [k for k, _ in itertools.groupby(path.tolist()) if k != 0] == labels
        assert sum(log_probs[t, k] for t, k in enumerate(path)) == pytest.approx(max(scores))


def test_empty_and_very_short_logits(lm_path):
    for decoder in decoders(lm_path):
        assert decoder.decode(np.zeros((0, ALPHABET.num_classes)), 0.03) == Transcript("", [])
        one = decoder.decode(peaked("a"), 0.03)
        assert one.text == "a" and one.words[0].end == pytest.approx(0.03)
        assert decoder.decode(peaked("_"), 0.03).text == ""


# --- errors ------------------------------------------------------------------------------------------------


def test_decoder_errors_name_what_is_wrong(tmp_path, lm_path):
    with pytest.raises(DecoderError, match="unknown kind 'viterbi'"):
        make_decoder(ALPHABET, DecodingOptions("viterbi"))
    with pytest.raises(DecoderError, match="lm_path"):
        make_decoder(ALPHABET, DecodingOptions("beam_lm"))
    with pytest.raises(DecoderError, match="missing.arpa.*not found"):
        make_decoder(ALPHABET, DecodingOptions("beam_lm", lm_path=tmp_path / "missing.arpa"))
    garbage = tmp_path / "garbage.arpa"
    garbage.write_bytes(b"\x00\xff not a language model\n")
    with pytest.raises(DecoderError, match="garbage.arpa"):
        make_decoder(ALPHABET, DecodingOptions("beam_lm", lm_path=garbage))
    with pytest.raises(DecoderError, match="beam_width"):
        make_decoder(ALPHABET, DecodingOptions("beam", beam_width=0))
    with pytest.raises(DecoderError, match="token_beam must be a positive integer"):
        DecodingOptions("beam", token_beam=0)
    with pytest.raises(DecoderError, match="alpha"):
        make_decoder(ALPHABET, DecodingOptions("beam_lm", lm_path=lm_path, alpha=float("nan")))
    with pytest.raises(DecoderError, match=r"\[frames, 29\]"):
        make_decoder(ALPHABET).decode(np.zeros((4, 5)), 0.03)
    with pytest.raises(DecoderError, match="NaN"):
        make_decoder(ALPHABET, DecodingOptions("beam")).decode(np.full((4, ALPHABET.num_classes), np.nan), 0.03)
    assert make_decoder(ALPHABET, DecodingOptions("beam", beam_width=np.int64(4))).decode(peaked("a"), 0.03).text == "a"


# --- asr.tuning (pipelines/tuning.py) -----------------------------------------------------------------


def test_tune_decoder_picks_a_setting_with_the_lm(lm_path):
    transcriber = tuning.logits_transcriber([cat_or_cap(), peaked(spelled("the dog sat"))], 0.03)
    results = tuning.tune(transcriber, ["The cat sat.", "the dog sat"], ALPHABET, lm_path,
                                alphas=[0.0, 0.5], betas=[1.0], beam_widths=[8], token_beams=[1, 4])
    wer = {(r.decoder, r.token_beam, r.alpha): r.wer for r in results}
    assert wer[("greedy", None, None)] == wer[("beam_lm", 4, 0.0)] == pytest.approx(1 / 6)
    assert wer[("beam_lm", 1, 0.5)] == pytest.approx(1 / 6)  # one class a frame: the LM cannot reach "cat"
    assert wer[("beam_lm", 4, 0.5)] == 0.0
    best = tuning.best_setting(results)
    assert (best.decoder, best.alpha, best.beta, best.beam_width, best.token_beam) == ("beam_lm", 0.5, 1.0, 8, 4)


def test_tune_decoder_searches_the_unseen_word_offset(lm_path):
    transcriber = tuning.logits_transcriber([cat_or_cap()], 0.03)
    results = tuning.tune(transcriber, ["the cat sat"], ALPHABET, lm_path, alphas=[0.0], betas=[1.0],
                                beam_widths=[8], unk_offsets=[0.0, -3.0, -6.0])
    wer = {r.unk_offset: r.wer for r in results if r.decoder == "beam_lm"}
    assert wer == {0.0: pytest.approx(1 / 3), -3.0: 0.0, -6.0: 0.0}
    assert tuning.best_setting(results).unk_offset == -3.0  # a tie goes to the milder penalty
    results = tuning.tune(transcriber, ["the cat sat"], ALPHABET, lm_path, alphas=[0.0], betas=[1.0],
                                beam_widths=[8], unk_offsets=[0.0, -3.0], vocabularies=["open", "closed"])
    wer = {(r.vocabulary, r.unk_offset): r.wer for r in results if r.decoder == "beam_lm"}
    assert wer == {("open", 0.0): pytest.approx(1 / 3), ("open", -3.0): 0.0, ("closed", 0.0): 0.0}  # closed: once


def test_tune_decoder_transcribes_as_asr_transcribe_does_and_runs_the_model_once(trained_run):
    model = load_model(trained_run)
    paths = [row.audio_filepath for row in fsdd_rows("theo", takes=range(2))]
    cached = tuning.CachedLogits(model)
    transcriber = tuning.model_transcriber(cached, paths)
    greedy = transcriber(make_decoder(model.config.alphabet()))
    model_calls, segments = cached.model_calls, len(cached.cache)
    assert model_calls >= 1 and segments >= len(paths)
    beam = make_decoder(model.config.alphabet(), DecodingOptions("beam", beam_width=4))
    beamed = transcriber(beam)
    assert (cached.model_calls, len(cached.cache)) == (model_calls, segments)  # the second setting reused them
    for decoder, texts in ((make_decoder(model.config.alphabet()), greedy), (beam, beamed)):
        served = {r.path: r.text for r in transcribe(paths, model, decoder, progress=False)}
        assert texts == [served[path] for path in paths]  # the VAD and windows of `asr transcribe`, in order
    assert greedy[::2] == ["zero", "one", "two", "three"]  # take 0 of each digit: the fixture model's training rows


def test_the_tune_decoder_script_writes_the_best_setting_into_the_model_folder(trained_run, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(trained_run, folder)
    (tmp_path / "words.txt").write_text("zero one two three\n" * 3)
    build_lm(tmp_path / "words.txt", folder / "lm.arpa", order=2)
    manifest = tmp_path / "dev.jsonl"
    write_manifest(manifest, fsdd_rows("theo"))
    done = subprocess.run([sys.executable, str(REPO / "pipelines" / "tune_decoder.py"), "--model", str(folder),
                           "--manifest", str(manifest), "--lm", str(folder / "lm.arpa"), "--alpha", "0", "0.5",
                           "--beta", "1", "--beam-width", "4", "--out", str(tmp_path / "tuning.json"),
                           "--write-decoding", str(folder)], capture_output=True, text=True, check=True)
    assert "best: --decoder beam_lm --beam-width 4" in done.stdout
    best = json.loads((tmp_path / "tuning.json").read_text())["best"]
    assert best["wer"] == 0.0 and best["alpha"] in (0.0, 0.5)  # the fixture model says its digits exactly
    options = read_decoding_options(folder)
    assert (options.decoder, options.beam_width, options.alpha, options.beta) == ("beam_lm", 4, best["alpha"], 1.0)
    bad = subprocess.run([sys.executable, str(REPO / "pipelines" / "tune_decoder.py"), "--model", str(folder),
                          "--manifest", str(manifest), "--lm", str(tmp_path / "missing.arpa")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "missing.arpa" in bad.stderr
