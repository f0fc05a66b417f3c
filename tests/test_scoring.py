"""WER/CER scoring: hand-computed counts, empty sides, normalisers, matching, bootstrap, paired test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from asr.compare import compare, load_report
from asr.data import ManifestError, Utterance
from asr.scoring import (
    MATCH_BASENAME,
    MATCH_PATH,
    STATUS_FAILED,
    STATUS_MISSING,
    STATUS_OK,
    Counts,
    read_hypotheses,
    score,
)

DATA = Path("/corpus")


def ref(name: str, text: str, duration: float = 1.0, speaker: str | None = None) -> Utterance:
    return Utterance(audio_filepath=str(DATA / name), duration=duration, text=text, speaker=speaker)


def hyp(name: str, text: str) -> dict:
    return {"audio_filepath": str(DATA / name), "text": text}


def one(reference: str, hypothesis: str, normalizer: str = "none", **kwargs):
    return score([ref("a.wav", reference)], [hyp("a.wav", hypothesis)], normalizer, **kwargs)


def test_substitution_counts():
    # the cat sat / the bat sat: cat->bat is 1 substitution, 2 hits; WER = 1/3
    result = one("the cat sat", "the bat sat")
    assert (result.words.hits, result.words.substitutions, result.words.deletions,
            result.words.insertions) == (2, 1, 0, 0)
    assert result.wer == pytest.approx(1 / 3)
    # characters: "the cat sat" has 11, c->b is the only edit; CER = 1/11
    assert result.chars.ref == 11 and result.chars.substitutions == 1
    assert result.cer == pytest.approx(1 / 11)


def test_deletion_and_insertion_counts():
    # a b c d / a c d: "b" deleted; WER = 1/4
    deleted = one("a b c d", "a c d")
    assert (deleted.words.deletions, deleted.words.substitutions, deleted.words.insertions) == (1, 0, 0)
    assert deleted.wer == pytest.approx(0.25)
    # a b / a x b: "x" inserted; WER = 1/2, can exceed 1 with many insertions
    inserted = one("a b", "a x b")
    assert (inserted.words.insertions, inserted.words.hits) == (1, 2)
    assert inserted.wer == pytest.approx(0.5)
    assert one("a", "a b c").wer == pytest.approx(2.0)


def test_corpus_wer_is_ratio_of_sums_not_mean_of_ratios():
    # utt 1: 1 error / 1 word, utt 2: 0 errors / 9 words -> corpus 1/10 (a mean of ratios would say 0.5)
    words = "one two three four five six seven eight nine"
    result = score([ref("a.wav", "yes"), ref("b.wav", words)], [hyp("a.wav", "no"), hyp("b.wav", words)],
                   "none")
    assert result.wer == pytest.approx(0.1)
    assert result.sentence_errors == 1 and result.ser == pytest.approx(0.5)


def test_empty_hypothesis_is_all_deletions():
    result = one("one two three", "")
    assert (result.words.deletions, result.words.hits) == (3, 0)
    assert result.wer == pytest.approx(1.0)
    assert result.chars.deletions == len("one two three") and result.cer == pytest.approx(1.0)


def test_empty_reference_contributes_insertions():
    # utt a: empty ref, 2 inserted words; utt b: 2 words correct -> corpus (0+0+2)/2 = 1.0
    refs = [ref("a.wav", ""), ref("b.wav", "hi there")]
    result = score(refs, [hyp("a.wav", "um yes"), hyp("b.wav", "hi there")], "none")
    assert result.words.insertions == 2 and result.words.ref == 2
    assert result.wer == pytest.approx(1.0)
    empty = result.utterances[0]
    assert empty.words.rate is None  # 2 errors against 0 reference words: undefined
    assert empty.alignment == [{"op": "insert", "ref": [], "hyp": ["um", "yes"]}]


def test_no_reference_words_gives_null_wer_with_note():
    result = one("", "something")
    assert result.words.ref == 0 and result.wer is None
    assert any("no words" in note for note in result.notes)
    assert one("", "").wer == 0.0


def test_normalizer_choice():
    default = one("Press 5.", "press five", normalizer="default")
    assert default.wer == 0.0 and default.utterances[0].reference == "press five"
    raw = one("Press 5.", "press five", normalizer="none")
    assert raw.wer == pytest.approx(1.0)  # "Press"->"press" and "5."->"five": 2 substitutions / 2 words
    assert raw.words.substitutions == 2
    assert "Text normaliser: none." in raw.notes
    with pytest.raises(ValueError, match="normalizer"):
        one("a", "a", normalizer="lower")


def test_none_normalizer_collapses_whitespace_only():
    result = one("Hello   World", "  Hello World ")
    assert result.wer == 0.0 and result.utterances[0].hypothesis == "Hello World"


def test_bootstrap_interval_contains_point_estimate_and_is_reproducible():
    refs = [ref(f"{i}.wav", "a b c d e") for i in range(40)]
    hyps = [hyp(f"{i}.wav", "a b c d e" if i % 3 else "a x c e") for i in range(40)]
    result = score(refs, hyps, "none", n_resamples=500, seed=7)
    low, high = result.wer_ci
    assert low < result.wer < high
    assert result.cer_ci[0] < result.cer < result.cer_ci[1]
    again = score(refs, hyps, "none", n_resamples=500, seed=7)
    assert again.wer_ci == result.wer_ci
    assert score(refs, hyps, "none", n_resamples=0).wer_ci is None


def test_unmatched_rows_are_listed_and_missing_references_scored_as_deletions():
    refs = [ref("a.wav", "good morning"), ref("b.wav", "good night")]
    result = score(refs, [hyp("a.wav", "good morning"), hyp("zzz.wav", "stray")], "none")
    assert [u["audio_filepath"] for u in result.unmatched_hypotheses] == [str(DATA / "zzz.wav")]
    missing = result.missing
    assert [u.audio_filepath for u in missing] == [os.path.relpath(DATA / "b.wav")]  # as reports show paths
    assert missing[0].status == STATUS_MISSING and missing[0].words.deletions == 2
    assert result.wer == pytest.approx(0.5)
    assert not result.complete


def test_failed_rows_are_counted_as_empty_hypotheses():
    refs = [ref("a.wav", "hello world"), ref("b.wav", "fine")]
    rows = [{"audio_filepath": str(DATA / "a.wav"), "error": "could not decode audio"}, hyp("b.wav", "fine")]
    result = score(refs, rows, "none")
    assert [u.audio_filepath for u in result.failed] == [os.path.relpath(DATA / "a.wav")]
    failed = result.failed[0]
    assert failed.status == STATUS_FAILED and failed.error == "could not decode audio"
    assert failed.hypothesis == "" and failed.words.deletions == 2
    assert result.utterances[1].status == STATUS_OK
    assert result.wer == pytest.approx(2 / 3)
    assert not result.complete


def test_duplicate_hypothesis_rows_use_the_first():
    result = score([ref("a.wav", "yes")], [hyp("a.wav", "yes"), hyp("a.wav", "no")], "none")
    assert result.wer == 0.0
    assert "duplicate" in result.unmatched_hypotheses[0]["reason"]


def test_relative_hypothesis_paths_resolve_against_the_hypothesis_file(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    refs = [Utterance(audio_filepath=str(corpus / "a.wav"), duration=1.0, text="ok then")]
    hyp_file = tmp_path / "out" / "hyp.jsonl"
    hyp_file.parent.mkdir()
    hyp_file.write_text(json.dumps({"audio_filepath": "../corpus/a.wav", "text": "ok then"}) + "\n")
    result = score(refs, read_hypotheses(hyp_file), "none")
    assert result.match_method == MATCH_PATH
    assert result.complete and result.wer == 0.0


def test_basename_fallback_only_when_nothing_matches_and_names_are_unique():
    refs = [ref("a.wav", "one"), ref("b.wav", "two")]
    moved = [{"audio_filepath": "/elsewhere/a.wav", "text": "one"}, {"audio_filepath": "/elsewhere/b.wav",
                                                                      "text": "two"}]
    result = score(refs, moved, "none")
    assert result.match_method == MATCH_BASENAME and result.complete and result.wer == 0.0
    assert any("file name" in note for note in result.notes)
    ambiguous = [*moved, {"audio_filepath": "/other/a.wav", "text": "one"}]
    strict = score(refs, ambiguous, "none")
    assert strict.match_method == MATCH_PATH and len(strict.missing) == 2


def test_read_hypotheses_errors_name_file_and_line(tmp_path: Path):
    path = tmp_path / "hyp.jsonl"
    path.write_text('{"audio_filepath": "a.wav", "text": "x"}\n\n{not json\n')
    with pytest.raises(ManifestError, match=r"hyp\.jsonl:3: not valid JSON"):
        read_hypotheses(path)
    path.write_text('{"audio_filepath": "a.wav"}\n')
    with pytest.raises(ManifestError, match=r"hyp\.jsonl:1: .*'text'"):
        read_hypotheses(path)
    with pytest.raises(ManifestError, match="not found"):
        read_hypotheses(tmp_path / "absent.jsonl")


def test_frequent_errors_come_from_alignment():
    refs = [ref("a.wav", "the cat sat"), ref("b.wav", "a cat ran"), ref("c.wav", "go now")]
    hyps = [hyp("a.wav", "the bat sat"), hyp("b.wav", "a bat ran fast"), hyp("c.wav", "go")]
    errors = score(refs, hyps, "none").frequent_errors()
    assert errors["substitutions"][0] == ("cat", "bat", 2)
    assert errors["insertions"] == [("fast", 1)]
    assert errors["deletions"] == [("now", 1)]


def test_breakdowns_by_duration_and_speaker():
    from asr.scoring import by_duration, by_speaker

    refs = [ref("a.wav", "x y", 1.0, "ann"), ref("b.wav", "x y", 12.0, "bob"), ref("c.wav", "z", 3.0, None)]
    result = score(refs, [hyp("a.wav", "x y"), hyp("b.wav", "x"), hyp("c.wav", "z")], "none")
    assert list(by_duration(result)) == ["0-2 s", "2-5 s", "10-20 s"]
    assert by_duration(result)["10-20 s"]["wer"] == pytest.approx(0.5)
    assert by_speaker(result) == {"ann": {"utterances": 1, "ref_words": 2, "errors": 0, "wer": 0.0},
                                  "bob": {"utterances": 1, "ref_words": 2, "errors": 1, "wer": 0.5}}


def _report_dict(result) -> dict:
    from asr.report import report_json

    return json.loads(json.dumps(report_json(result)))


def test_compare_identical_systems_is_not_significant():
    refs = [ref(f"{i}.wav", "a b c d") for i in range(20)]
    hyps = [hyp(f"{i}.wav", "a b x d" if i % 2 else "a b c d") for i in range(20)]
    result = score(refs, hyps, "none", n_resamples=300)
    comparison = compare(result, _report_dict(result), "same")
    assert comparison.common == 20 and comparison.only_this == comparison.only_other == 0
    assert comparison.words.delta == 0.0
    assert comparison.words.ci == (0.0, 0.0)
    assert comparison.words.p_value == 1.0


def test_compare_clearly_better_system():
    refs = [ref(f"{i}.wav", "the quick brown fox") for i in range(30)]
    good = score(refs, [hyp(f"{i}.wav", "the quick brown fox") for i in range(30)], "none", n_resamples=300)
    worse = [hyp(f"{i}.wav", "the quick frown" if i % 3 else "a quick brown fox") for i in range(30)]
    bad = score(refs, worse, "none", n_resamples=300)
    comparison = compare(good, _report_dict(bad), "bad")
    assert comparison.words.delta < 0
    assert comparison.words.ci[1] < 0
    assert comparison.words.p_value < 0.05
    assert comparison.differences and comparison.differences[0]["this_errors"] == 0
    reverse = compare(bad, _report_dict(good), "good")
    assert reverse.words.delta == pytest.approx(-comparison.words.delta)


def test_compare_uses_the_intersection():
    refs = [ref(f"{i}.wav", "a b") for i in range(6)]
    this = score(refs[:4], [hyp(f"{i}.wav", "a b") for i in range(4)], "none")
    other = score(refs[2:], [hyp(f"{i}.wav", "a") for i in range(2, 6)], "none")
    comparison = compare(this, _report_dict(other))
    assert (comparison.common, comparison.only_this, comparison.only_other) == (2, 2, 2)
    assert comparison.words.other == Counts(ref=4, hits=2, deletions=2)


def test_load_report_rejects_other_json(tmp_path: Path):
    path = tmp_path / "other.json"
    path.write_text('{"wer": 0.1}')
    with pytest.raises(ManifestError, match="not an `asr score` report"):
        load_report(path)
    path.write_text("{oops")
    with pytest.raises(ManifestError, match=r"other\.json:1: not valid JSON"):
        load_report(path)


def test_corpus_error_rate_counts_edits_over_reference_tokens_and_insertions_on_empty_references():
    from asr.scoring import error_rate

    references = ["the cat sat", "", "a b"]
    hypotheses = ["the bat sat down", "noise", "a b"]
    assert error_rate(references, hypotheses) == pytest.approx(3 / 5)  # 1 sub + 1 ins, 1 ins on the empty one
    assert error_rate(["ab"], ["abc"], words=False) == pytest.approx(1 / 2)
    assert error_rate([""], [""]) == 0.0 and error_rate([""], ["x"]) == 1.0
