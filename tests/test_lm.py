"""asr.lm, `asr lm` and pipelines/build_lm.py: the Kneser-Ney estimator, the ARPA file it writes, and reading it
back."""

from __future__ import annotations

import itertools
import json
import re
import sys

import pytest

from asr import cli
from asr.lm import (
    BOS,
    EOS,
    UNK,
    WORDFREQ_MISSING,
    LMError,
    build_lm,
    estimate,
    read_arpa,
    read_sentences,
    write_arpa,
)

SENTENCES = ["the cat sat on the mat", "the dog sat on the log", "a cat ate the rat", "the cat sat",
             "san francisco", "san francisco", "san francisco", "a dog in san francisco"]


def predictable(model) -> list[str]:
    return [w for w in model.vocabulary() if w != BOS]


def contexts(model, length: int) -> list[tuple[str, ...]]:
    """Every context of `length` words seen in the model, plus one never seen, plus <unk>."""
    seen = sorted({g[:-1] for g in model.logprob if len(g) == length + 1})
    return [*seen, ("zebra",) * length, (UNK,) * length]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_each_order_sums_to_one_over_the_vocabulary(tmp_path, order):
    write_arpa(estimate(SENTENCES, order), tmp_path / "lm.arpa")
    model = read_arpa(tmp_path / "lm.arpa")  # the file, read back with backoff: what a decoder sees
    assert model.order == order
    for length in range(order):
        for context in contexts(model, length):
            total = sum(10 ** model.log10_prob(w, context) for w in predictable(model))
            assert total == pytest.approx(1.0, abs=1e-5), context


def test_header_counts_match_the_sections(tmp_path):
    build_lm_file = tmp_path / "lm.arpa"
    write_arpa(estimate(SENTENCES, 3), build_lm_file)
    text = build_lm_file.read_text()
    announced = {int(n): int(c) for n, c in re.findall(r"^ngram (\d+)=(\d+)$", text, re.M)}
    sections = re.split(r"^\\(\d)-grams:$", text, flags=re.M)
    found = {int(n): len([line for line in body.splitlines() if line.strip() and not line.startswith("\\")])
             for n, body in zip(sections[1::2], sections[2::2], strict=True)}
    assert announced == found and set(found) == {1, 2, 3}
    assert text.startswith("\\data\\\n") and text.rstrip().endswith("\\end\\")
    broken = tmp_path / "broken.arpa"
    broken.write_text(text.replace(f"ngram 2={announced[2]}", f"ngram 2={announced[2] + 1}"))
    with pytest.raises(LMError, match="header announces"):
        read_arpa(broken)


def test_arpa_has_sentence_markers_unk_and_backoffs():
    model = estimate(SENTENCES, 3)
    assert model.logprob[(BOS,)] == -99.0 and (EOS,) in model.logprob and (UNK,) in model.logprob
    assert (BOS,) in model.backoff and ("the", "cat") in model.backoff  # contexts carry backoff weights
    # every listed n-gram's context and suffix are listed one order down, as ARPA readers assume
    for ngram in (g for g in model.logprob if len(g) > 1):
        assert ngram[:-1] in model.logprob and ngram[1:] in model.logprob


def test_kneser_ney_prefers_words_seen_after_many_others():
    # "francisco" is frequent but only ever follows "san"; "cat" is seen after two different words.
    model = estimate(SENTENCES, 2)
    counts = {w: sum(s.split().count(w) for s in SENTENCES) for w in ("francisco", "cat")}
    assert counts["francisco"] > counts["cat"]
    assert model.log10_prob("francisco") < model.log10_prob("cat")
    assert model.log10_prob("francisco", ["san"]) > model.log10_prob("cat", ["san"])


def test_the_decoder_library_loads_the_file_and_agrees(tmp_path):
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    write_arpa(estimate(SENTENCES, 3), tmp_path / "lm.arpa")
    model = read_arpa(tmp_path / "lm.arpa")
    words = [*model.vocabulary(), "zebra"]
    dictionary = Dictionary(words)
    kenlm = KenLM(str(tmp_path / "lm.arpa"), dictionary)
    state, history = kenlm.start(False), [BOS]
    for word in ["the", "cat", "sat", "on", "zebra", "the", "mat"]:
        state, score = kenlm.score(state, dictionary.get_index(word))
        assert score == pytest.approx(model.log10_prob(word, history), abs=1e-5), word
        history.append(word)
    assert kenlm.finish(state)[1] == pytest.approx(model.log10_prob(EOS, history), abs=1e-5)


def test_text_and_manifest_are_normalised(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("The CAT sat!\n\n  \nIt cost $5.\n")
    assert list(read_sentences(text)) == ["the cat sat", "it cost five dollars"]
    manifest = tmp_path / "train.jsonl"
    rows = [{"audio_filepath": "a.wav", "duration": 1.0, "text": "Hello, World"}, {"audio_filepath": "b.wav",
                                                                                    "text": "3 cats"}]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert list(read_sentences(manifest)) == ["hello world", "three cats"]
    manifest.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"audio_filepath": "c.wav"}) + "\n")
    with pytest.raises(LMError, match=r"train.jsonl:2: field 'text'"):
        list(read_sentences(manifest))


def test_estimator_errors():
    with pytest.raises(LMError, match="order"):
        estimate(SENTENCES, 0)
    with pytest.raises(LMError, match="no text"):
        estimate([], 3)
    with pytest.raises(LMError, match="not found"):
        list(read_sentences("/nonexistent/corpus.txt"))


def test_orders_longer_than_any_sentence_are_dropped():
    model = estimate(["one", "two", "three"], 5)  # <s> w </s>: nothing longer than a trigram
    assert model.order == 3 and all(model.counts())


def test_build_lm_script_writes_atomically(tmp_path, monkeypatch, capsys, pipeline_script):
    script = pipeline_script("build_lm")
    source = tmp_path / "corpus.txt"
    source.write_text("\n".join(SENTENCES) + "\n")
    out = tmp_path / "models" / "lm.arpa"
    assert script.main([str(source), "--order", "2", "--out", str(out)]) == 0
    assert read_arpa(out).order == 2 and "2-grams" in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == ["lm.arpa"]  # no temporary file left behind
    before = out.read_text()
    assert script.main([str(tmp_path / "missing.txt"), "--out", str(out)]) == 2
    assert "missing.txt" in capsys.readouterr().err
    assert out.read_text() == before  # a failed build leaves the previous model alone


def test_build_lm_from_a_manifest(tmp_path):
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps({"audio_filepath": f"{i}.wav", "text": s}) + "\n"
                                for i, s in enumerate(SENTENCES)))
    model = build_lm(manifest, tmp_path / "lm.arpa", order=3)
    assert set(predictable(model)) == {*itertools.chain.from_iterable(s.split() for s in SENTENCES), EOS, UNK}


def test_build_lm_pools_the_sentences_of_several_sources(tmp_path):
    half = len(SENTENCES) // 2
    (tmp_path / "all.txt").write_text("\n".join(SENTENCES) + "\n")
    (tmp_path / "first.txt").write_text("\n".join(SENTENCES[:half]) + "\n")
    manifest = tmp_path / "rest.jsonl"
    manifest.write_text("".join(json.dumps({"audio_filepath": f"{i}.wav", "text": s}) + "\n"
                                for i, s in enumerate(SENTENCES[half:])))
    build_lm(tmp_path / "all.txt", tmp_path / "one.arpa", order=3)
    build_lm([tmp_path / "first.txt", manifest], tmp_path / "pooled.arpa", order=3)
    assert (tmp_path / "pooled.arpa").read_text() == (tmp_path / "one.arpa").read_text()


BACKGROUND = {"the": 5e-2, "cat": 1e-4, "zebra": 4e-6, "giraffe": 2e-6}


def test_background_words_join_the_vocabulary_weighted_by_frequency(tmp_path):
    write_arpa(estimate(SENTENCES, 3, background=BACKGROUND), tmp_path / "lm.arpa")
    model = read_arpa(tmp_path / "lm.arpa")
    plain = estimate(SENTENCES, 3)
    assert set(model.vocabulary()) == set(plain.vocabulary()) | {"zebra", "giraffe"}
    for length in range(3):  # still a distribution in every context, read back from the file
        for context in contexts(model, length):
            total = sum(10 ** model.log10_prob(w, context) for w in predictable(model))
            assert total == pytest.approx(1.0, abs=1e-5), context
    # words only the background knows share the unseen-word mass by frequency: twice as common, twice as likely
    for context in ([], ["the"], ["the", "cat"]):
        ratio = 10 ** (model.log10_prob("zebra", context) - model.log10_prob("giraffe", context))
        assert ratio == pytest.approx(2.0, rel=1e-4), context
    assert model.log10_prob("zebra") < model.log10_prob("mat")  # a transcript word still beats a background one
    assert model.log10_prob("zebra") > model.log10_prob(UNK)  # and a listed word beats <unk> (floor: rarest)


def test_background_frequencies_must_be_positive():
    with pytest.raises(LMError, match="positive"):
        estimate(SENTENCES, 3, background={"zebra": 0.0})


def test_build_lm_script_adds_common_english_words(tmp_path):
    from pipelines.build_lm import main

    (tmp_path / "text.txt").write_text("\n".join(SENTENCES) + "\n")
    assert main([str(tmp_path / "text.txt"), "--background-words", "300", "--out", str(tmp_path / "lm.arpa")]) == 0
    words = set(read_arpa(tmp_path / "lm.arpa").vocabulary())
    assert {"because", "people", "don't"} <= words and "francisco" in words
    assert len(words - set(estimate(SENTENCES, 3).vocabulary())) > 250  # most of the 300 were new
    assert all(w.isascii() and " " not in w for w in words)


def test_cli_builds_an_arpa_file_with_the_expected_ngrams(tmp_path, capsys):
    (tmp_path / "text.txt").write_text("The cat sat.\nthe cat ran\n\n")
    out = tmp_path / "lm.arpa"
    assert cli.main(["lm", str(tmp_path / "text.txt"), "--out", str(out)]) == 0  # order 3 by default
    assert capsys.readouterr().out == f"wrote {out} (order 3; 1-grams: 7, 2-grams: 6, 3-grams: 5)\n"
    model = read_arpa(out)
    assert model.order == 3 and model.counts() == [7, 6, 5]
    assert set(model.vocabulary()) == {"the", "cat", "sat", "ran", BOS, EOS, UNK}
    assert {g for g in model.logprob if len(g) == 2} == {
        (BOS, "the"), ("the", "cat"), ("cat", "sat"), ("cat", "ran"), ("sat", EOS), ("ran", EOS)}
    assert {g for g in model.logprob if len(g) == 3} == {
        (BOS, "the", "cat"), ("the", "cat", "sat"), ("the", "cat", "ran"), ("cat", "sat", EOS), ("cat", "ran", EOS)}
    assert model.log10_prob("sat", ["the", "cat"]) == model.log10_prob("ran", ["the", "cat"])  # seen once each

    manifest = tmp_path / "more.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "text": "a dog sat"}) + "\n")
    assert cli.main(["lm", str(tmp_path / "text.txt"), str(manifest), "--order", "2", "--out", str(out)]) == 0
    assert read_arpa(out).counts() == [9, 9]  # + a, dog; + <s> a, a dog, dog sat


def test_cli_errors_name_the_file_and_leave_the_model_alone(tmp_path, capsys):
    out = tmp_path / "lm.arpa"
    out.write_text("previous model")
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"txt": "typo"}\n')
    assert cli.main(["lm", str(tmp_path / "bad.jsonl"), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"asr lm: error: {tmp_path / 'bad.jsonl'}:2: field 'text' is missing or not "
                                       "a string\n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    assert cli.main(["lm", str(tmp_path / "latin1.txt"), "--out", str(out)]) == 2
    assert "latin1.txt: not UTF-8 text" in capsys.readouterr().err
    assert cli.main(["lm", str(tmp_path / "bad.jsonl"), "--order", "9", "--out", str(out)]) == 2
    assert "order must be between 1 and 6" in capsys.readouterr().err
    assert out.read_text() == "previous model"


def test_cli_background_words_need_wordfreq_only_when_asked(tmp_path, monkeypatch, capsys):
    (tmp_path / "text.txt").write_text("the cat sat\n")
    monkeypatch.setitem(sys.modules, "wordfreq", None)  # `import wordfreq` raises ImportError
    assert cli.main(["lm", str(tmp_path / "text.txt"), "--out", str(tmp_path / "plain.arpa")]) == 0
    assert cli.main(["lm", str(tmp_path / "text.txt"), "--background-words", "10",
                     "--out", str(tmp_path / "wide.arpa")]) == 2
    assert capsys.readouterr().err.endswith(f"asr lm: error: {WORDFREQ_MISSING}\n")
    assert "pip install -e '.[lm]'" in WORDFREQ_MISSING and not (tmp_path / "wide.arpa").exists()


def test_cli_background_words_widen_the_vocabulary(tmp_path):
    pytest.importorskip("wordfreq")
    (tmp_path / "text.txt").write_text("the cat sat\n")
    assert cli.main(["lm", str(tmp_path / "text.txt"), "--order", "2", "--background-words", "20",
                     "--out", str(tmp_path / "lm.arpa")]) == 0
    words = set(read_arpa(tmp_path / "lm.arpa").vocabulary())
    assert {"cat", "sat", "the", "of", "and"} <= words
    assert len(words - {"cat", "sat", BOS, EOS, UNK}) == 20  # "the" is both a transcript and a background word
