"""Hotwords (`DecodingOptions.hotwords`, `asr transcribe --hotwords/--boost`): a boost spells a domain word the
acoustics and the LM get wrong, changes nothing where the words are not said, and bad input is reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from asr import cli, cli_decoding
from asr.audio import write_audio
from asr.decoders import make_decoder
from asr.decoding import DecoderError, DecodingOptions
from asr.hotwords import DEFAULT_BOOST, HotwordError, parse_boost, read_hotword_file
from asr.lm import arpa_vocabulary
from asr.model_folder import read_decoding_options, write_decoding_options
from asr.text import Alphabet
from tests.test_decoding import ALPHABET, cat_or_cap, misheard, peaked, spelled
from tests.test_decoding_defaults import RATE, fixed_logits_model, lm_folder  # noqa: F401 (a fixture)

KINDS = [("beam", "open"), ("beam_lm", "open"), ("beam_lm", "closed")]


def cad_or_cat() -> np.ndarray:
    """ "the cad sat", but the acoustics of the "d" lean (4.5 vs 4.0 nats) towards "t": "cat", a word of the LM,
    which lacks "cad"."""
    return misheard("the cad sat", len("the ca"), "t")


def decode(logits: np.ndarray, kind: str, vocabulary: str, lm_path: Path, hotwords=(), **options) -> str:
    lm = str(lm_path) if kind == "beam_lm" else None
    decoder = make_decoder(ALPHABET, DecodingOptions(kind, lm_path=lm, vocabulary=vocabulary, hotwords=hotwords,
                                                     **options))
    return decoder.decode(logits, 0.03).text


@pytest.mark.parametrize(("kind", "vocabulary"), KINDS)
def test_a_boost_spells_the_domain_word_the_acoustics_and_lm_get_wrong(lm_path, kind, vocabulary):
    assert "cad" not in arpa_vocabulary(lm_path)
    assert decode(cad_or_cat(), kind, vocabulary, lm_path) == "the cat sat"
    assert decode(cad_or_cat(), kind, vocabulary, lm_path, {"cad": 0.5}) == "the cat sat"  # too small a boost
    assert decode(cad_or_cat(), kind, vocabulary, lm_path, {"cad": 6.0}) == "the cad sat"
    assert decode(cad_or_cat(), kind, vocabulary, lm_path, ["Cad"]) == "the cad sat"  # DEFAULT_BOOST, normalised


def test_a_hotword_the_lm_lacks_becomes_spellable_in_the_closed_vocabulary(lm_path):
    zebu = peaked(spelled("the zebu sat"))  # said clearly, but not a word of the LM
    assert decode(zebu, "beam_lm", "closed", lm_path) == "the sat"
    assert decode(zebu, "beam_lm", "closed", lm_path, {"zebu": 0.0}) == "the zebu sat"  # no boost needed here


def test_the_closed_search_counts_a_boost_in_nats_even_without_lm_weight(lm_path):
    # alpha 0: the LM weighs nothing, "cat" wins on the acoustics by 1 nat, and a boost must still count.
    assert decode(cad_or_cat(), "beam_lm", "closed", lm_path, {"cad": 0.5}, alpha=0.0) == "the cat sat"
    assert decode(cad_or_cat(), "beam_lm", "closed", lm_path, {"cad": 2.0}, alpha=0.0) == "the cad sat"


def test_the_closed_search_boosts_the_completed_word_not_only_its_spelling(lm_path, monkeypatch):
    # flashlight replaces a word's trie look-ahead by its LM score when the word completes: without the boost in
    # the LM's score (asr.word_lm.boosted_kenlm), a spellable hotword would not win.
    import asr.beam_search

    boosted = asr.beam_search.boosted_kenlm
    monkeypatch.setattr(asr.beam_search, "boosted_kenlm", lambda kenlm, weight, boosts, size: boosted(
        kenlm, weight, {}, size))
    assert decode(cad_or_cat(), "beam_lm", "closed", lm_path, {"cad": 6.0}) == "the cat sat"


@pytest.mark.parametrize(("kind", "vocabulary"), KINDS)
def test_hotwords_not_said_change_nothing(lm_path, kind, vocabulary):
    # Sentences, some with noisy acoustics. (Pure noise is no sentence: there a 10-nat boost rightly wins.)
    rng = np.random.default_rng(5)
    sentences = [peaked(spelled(text)) for text in ("the dog sat on a log", "a cat sat there", "the mat")]
    cases = [*sentences, cat_or_cap(), *(s + rng.normal(size=s.shape) for s in sentences)]
    lm = str(lm_path) if kind == "beam_lm" else None
    plain = make_decoder(ALPHABET, DecodingOptions(kind, lm_path=lm, vocabulary=vocabulary))
    biased = make_decoder(ALPHABET, DecodingOptions(kind, lm_path=lm, vocabulary=vocabulary,
                                                    hotwords={"klaatu": 10.0, "zebu": 10.0, "nikto": 10.0}))
    for logits in cases:
        assert biased.decode(logits, 0.03) == plain.decode(logits, 0.03)  # text, word times and confidences


# --- options and their checks ------------------------------------------------------------------------------------


def test_hotwords_are_normalised_and_any_form_gives_the_same_options(lm_path):
    forms = [{"Klaatu": 4, "nikto": DEFAULT_BOOST}, [("klaatu", 4.0), "Nikto"], (("klaatu", 4.0), ("nikto", 10.0))]
    options = [DecodingOptions("beam_lm", lm_path=str(lm_path), hotwords=form) for form in forms]
    assert all(o == options[0] for o in options)
    assert options[0].hotwords == (("klaatu", 4.0), ("nikto", DEFAULT_BOOST))
    assert DecodingOptions().hotwords == ()
    hash(options[0])  # still a frozen, hashable dataclass


@pytest.mark.parametrize(("hotwords", "message"), [
    ({"": 1.0}, "is not a word"),
    ({"?!": 1.0}, "is not a word"),
    ({"klaatu barada": 1.0}, "several words after normalisation"),
    ({"42": 1.0}, r"several words after normalisation \('forty two'\)"),
    ({"klaatu": float("nan")}, "boost of 'klaatu' must be finite"),
    ({"klaatu": float("inf")}, "must be finite"),
    ({"klaatu": "lots"}, "boost of 'klaatu' must be a number"),
    ({"klaatu": True}, "must be a number"),
    ([("Klaatu", 1.0), ("klaatu", 2.0)], "'klaatu' is listed twice"),
    ([("klaatu", 1.0, 2.0)], "expected a word or a"),
    ("klaatu", "got the string"),
])
def test_bad_hotwords_are_refused(hotwords, message):
    with pytest.raises(DecoderError, match=f"hotwords: .*{message}"):
        DecodingOptions("beam", hotwords=hotwords)


def test_greedy_decoding_cannot_be_biased():
    with pytest.raises(DecoderError, match="greedy decoder cannot be biased"):
        DecodingOptions("greedy", hotwords={"klaatu": 3.0})


def test_a_hotword_outside_the_models_alphabet_is_refused_when_the_decoder_is_built():
    options = DecodingOptions("beam", hotwords={"日本": 3.0})  # letters of another script survive normalisation
    with pytest.raises(DecoderError, match="hotwords: '日本' has characters the model's alphabet lacks"):
        make_decoder(ALPHABET, options)
    with pytest.raises(DecoderError, match="alphabet lacks: 'z'"):
        make_decoder(Alphabet(" abcdefghijklmnopqrstuvwxy"), DecodingOptions("beam", hotwords=["zebu"]))


def test_decoding_yaml_round_trips_hotwords(tmp_path, lm_path):
    lm = tmp_path / "lm.arpa"
    lm.write_text(lm_path.read_text())
    options = DecodingOptions("beam_lm", lm_path=str(lm), vocabulary="closed", hotwords={"klaatu": 4.5, "nikto": 2})
    write_decoding_options(tmp_path, options)
    assert "hotwords:\n  klaatu: 4.5\n  nikto: 2.0\n" in (tmp_path / "decoding.yaml").read_text()
    assert read_decoding_options(tmp_path) == options
    write_decoding_options(tmp_path, DecodingOptions("beam_lm", lm_path=str(lm)))
    assert "hotwords" not in (tmp_path / "decoding.yaml").read_text()  # the default: files keep their shape
    (tmp_path / "decoding.yaml").write_text("decoder: beam\nhotwords: [Klaatu, [nikto, 2]]\n")
    assert read_decoding_options(tmp_path).hotwords == (("klaatu", DEFAULT_BOOST), ("nikto", 2.0))


# --- the command line ------------------------------------------------------------------------------------------


def test_hotword_file_takes_words_weights_and_comments(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# robot words\nKlaatu 4.5\n\nbarada   # a comment after a word\nnikto -1\nklaatu 6\n")
    assert read_hotword_file(path) == {"klaatu": 6.0, "barada": DEFAULT_BOOST, "nikto": -1.0}  # the last one counts


@pytest.mark.parametrize(("text", "message"), [
    ("klaatu\nnikto lots\n", r"words.txt:2: boost of 'nikto' must be a number, got 'lots'"),
    ("klaatu 1 2\n", r"words.txt:1: expected 'WORD' or 'WORD BOOST'"),
    ("ok\n\n!!! 3\n", r"words.txt:3: '!!!' is not a word"),
    ("nikto inf\n", r"words.txt:1: boost of 'nikto' must be finite"),
])
def test_bad_hotword_file_lines_are_named(tmp_path, text, message):
    path = tmp_path / "words.txt"
    path.write_text(text)
    with pytest.raises(HotwordError, match=message):
        read_hotword_file(path)


def test_a_missing_hotword_file_is_named(tmp_path):
    with pytest.raises(HotwordError, match="missing.txt: cannot read the hotword list"):
        read_hotword_file(tmp_path / "missing.txt")


def test_boost_arguments():
    assert parse_boost("Klaatu:4.5") == ("klaatu", 4.5)
    assert parse_boost("nikto") == ("nikto", DEFAULT_BOOST)
    assert parse_boost("don't:-2") == ("don't", -2.0)
    for bad, message in [("klaatu:", "must be a number"), ("klaatu:x", "must be a number"), (":3", "not a word")]:
        with pytest.raises(HotwordError, match=message):
            parse_boost(bad)


def options_from(argv: list[str], model_defaults: DecodingOptions) -> DecodingOptions:
    args = cli.build_parser("transcribe").parse_args(["transcribe", "x.wav", *argv])
    return cli_decoding.decoding_options(args, model_defaults)


def test_command_line_hotwords_add_to_the_models(tmp_path, lm_path):
    words = tmp_path / "words.txt"
    words.write_text("klaatu 4\nbarada\n")
    model = DecodingOptions("beam_lm", lm_path=str(lm_path), hotwords={"nikto": 2.0, "klaatu": 1.0})
    options = options_from(["--hotwords", str(words), "--boost", "Barada:7", "--boost", "gort"], model)
    assert dict(options.hotwords) == {"nikto": 2.0, "klaatu": 4.0, "barada": 7.0, "gort": DEFAULT_BOOST}
    assert options_from([], model).hotwords == model.hotwords
    assert options_from(["--decoder", "greedy"], model).hotwords == ()  # opting out of the search, and its hotwords
    assert options_from(["--decoder", "beam"], model).hotwords == model.hotwords


def test_hotwords_on_a_greedy_model_imply_the_beam_decoder():
    assert options_from(["--boost", "klaatu"], DecodingOptions()).decoder == "beam"
    with pytest.raises(DecoderError, match="greedy decoder cannot be biased"):
        options_from(["--decoder", "greedy", "--boost", "klaatu"], DecodingOptions())


def transcribe(tmp_path: Path, folder: Path, monkeypatch, extra: list[str]) -> tuple[int, str]:
    monkeypatch.setattr("asr.recognizer.load_model", lambda path: fixed_logits_model(folder))
    audio = tmp_path / "any.wav"
    write_audio(audio, np.zeros(RATE, np.float32), RATE)
    out = tmp_path / "out.jsonl"
    code = cli.main(["transcribe", str(audio), "--model", str(folder), "--out", str(out), "--quiet", "--vad", "off",
                     *extra])
    return code, json.loads(out.read_text())["text"] if code == 0 else ""


@pytest.mark.parametrize(("extra", "expected"), [
    ([], "the cat sat"),  # the folder's LM fixes the acoustics' "cap"
    (["--boost", "cap:6"], "the cap sat"),  # ... unless "cap" is the user's word
    (["--vocabulary", "closed"], "the cat sat"),
    (["--vocabulary", "closed", "--boost", "cap:6"], "the cap sat"),  # spellable, though the LM lacks it
    (["--boost", "zebu:6"], "the cat sat"),  # a hotword not said
])
def test_transcribe_with_boosts(tmp_path, lm_folder, monkeypatch, extra, expected):  # noqa: F811
    assert transcribe(tmp_path, lm_folder, monkeypatch, extra) == (0, expected)


def test_transcribe_names_a_bad_hotword_file_line(tmp_path, lm_folder, monkeypatch, capsys):  # noqa: F811
    words = tmp_path / "words.txt"
    words.write_text("cap\ncap x\n")
    assert transcribe(tmp_path, lm_folder, monkeypatch, ["--hotwords", str(words)])[0] == cli.EXIT_USAGE
    assert f"asr transcribe: error: --hotwords: {words}:2: boost of 'cap' must be a number" in capsys.readouterr().err
    assert transcribe(tmp_path, lm_folder, monkeypatch, ["--boost", "cap:nan"])[0] == cli.EXIT_USAGE
    assert "--boost 'cap:nan': boost of 'cap' must be finite" in capsys.readouterr().err
    assert transcribe(tmp_path, lm_folder, monkeypatch, ["--decoder", "greedy", "--boost", "cap"])[0] == 2
    assert "greedy decoder cannot be biased" in capsys.readouterr().err
