"""sclite trn files in `asr score`, checked against NIST sclite itself on the same references and hypotheses.

How the two count a reference that has no hypothesis differs, and the tests say so: `asr score` scores it
as an empty hypothesis (all its words deleted), sclite leaves it out of every count. The trn files that
`--write-trn` writes hold such a hypothesis as an empty line, and on those sclite counts exactly what we do.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from asr import cli
from asr.data import ManifestError
from asr.outputs import render_ctm
from asr.scoring import MATCH_ID, MATCH_PATH, UTTERANCE_ID, read_hypotheses, read_references, score

SCLITE_MISSING = "NIST sclite is not installed: apt-get install sctk (make system-deps installs it)"
DEBIAN_SCLITE = Path("/usr/lib/sctk/bin/sclite")  # Debian's sctk keeps its programs off PATH, behind `sctk NAME`

# utterance id: (reference, hypothesis or None when the hypothesis file lacks the utterance)
CASES = {
    "spk1_utt1": ("the cat sat on the mat", "the bat sat on mat"),  # a substitution and a deletion
    "spk1_utt2": ("hello world", "hello big world"),  # an insertion
    "spk2_utt3": ("one two three four", ""),  # an empty hypothesis: four deletions
    "spk2_utt4": ("good morning everyone", None),  # missing from the hypotheses
    "spk3_utt5": ("a b c", "a b c"),  # correct
    "spk3_utt6": ("i like green apples", "i liked green apples and pears"),  # a substitution, two insertions
}
MISSING = "spk2_utt4"
# Ours, by hand: hits, substitutions, deletions, insertions, reference words.
EXPECTED = {"hits": 12, "substitutions": 2, "deletions": 8, "insertions": 3, "ref": 22}


def sclite_binary() -> str | None:
    found = shutil.which("sclite")
    if found:
        return found
    return str(DEBIAN_SCLITE) if DEBIAN_SCLITE.is_file() and os.access(DEBIAN_SCLITE, os.X_OK) else None


@pytest.fixture
def sclite():
    binary = sclite_binary()
    if binary is None:
        pytest.skip(SCLITE_MISSING)

    def run(ref: Path, hyp: Path, ref_format: str = "trn", hyp_format: str = "trn") -> dict:
        """sclite's counts: per utterance (from its pra alignment dump; ids lowercased, as sclite shows them) and
        in total (its sum table)."""
        args = [binary, "-r", str(ref), ref_format, "-h", str(hyp), hyp_format, "-o", "sum", "pra", "stdout"]
        if ref_format == "trn":
            args[7:7] = ["-i", "rm"]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        utterances = {uid: tuple(map(int, counts)) for uid, *counts in re.findall(
            r"id: \((\S+)\)\s*\n(?:\w+: .*\n)*Scores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)", result.stdout)}
        total = re.search(r"\| Sum/Avg\s*\|\s*(\d+)\s+(\d+)\s*\|" + r"\s*([\d.]+)" * 6, result.stdout)
        assert total, result.stdout
        return {"utterances": utterances, "sentences": int(total[1]), "words": int(total[2]),
                "err": float(total[7])}

    return run


def write_trn(path: Path, lines: dict[str, str | None]) -> Path:
    path.write_text("".join(f"{text} ({uid})\n" for uid, text in lines.items() if text is not None))
    return path


def counts_of(utterance: dict) -> tuple[int, int, int, int]:
    words = utterance["words"]
    return words["hits"], words["substitutions"], words["deletions"], words["insertions"]


def test_read_trn_references_and_hypotheses(tmp_path):
    path = tmp_path / "x.trn"
    path.write_text(";; a comment\nhello world (utt-1)\n\n(empty_one)\n  spaced   out  (u3)  \n")
    refs = read_references(path)
    assert [(r.text, r.extra[UTTERANCE_ID], r.audio_filepath) for r in refs] == [
        ("hello world", "utt-1", None), ("", "empty_one", None), ("spaced   out", "u3", None)]
    hyps = read_hypotheses(path)
    assert [(h.utterance_id, h.text, h.line) for h in hyps] == [("utt-1", "hello world", 2),
                                                                 ("empty_one", "", 4), ("u3", "spaced   out", 5)]
    path.write_text("hello (a)\nno id here\n")
    with pytest.raises(ManifestError, match=r"x\.trn:2: not a trn line"):
        read_references(path)
    path.write_text("hello (a)\nagain (a)\n")
    with pytest.raises(ManifestError, match=r"x\.trn:2: utterance id \(a\) already on line 1"):
        read_references(path)


def test_a_missing_hypothesis_counts_as_deletions_here_and_not_at_all_in_sclite(tmp_path, sclite, capsys):
    ref = write_trn(tmp_path / "ref.trn", {uid: r for uid, (r, _) in CASES.items()})
    hyp = write_trn(tmp_path / "hyp.trn", {uid: h for uid, (_, h) in CASES.items()})
    status = cli.main(["score", "--ref", str(ref), "--hyp", str(hyp), "--report", str(tmp_path / "report"),
                       "--bootstrap", "0", "--write-trn", str(tmp_path / "scored")])
    assert status == 1  # a reference without hypothesis: reported
    assert "sclite -r" in capsys.readouterr().out
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    ours = report["summary"]["words"]
    assert {k: ours[k] for k in EXPECTED} == EXPECTED
    assert report["inputs"]["match_method"] == MATCH_ID and report["summary"]["missing"] == 1
    by_id = {u["utterance_id"]: u for u in report["utterances"]}

    theirs = sclite(ref, hyp)
    missing_words = len(CASES[MISSING][0].split())
    # sclite scores every utterance but the missing one, and each of those exactly as we do ...
    assert set(theirs["utterances"]) == set(CASES) - {MISSING}
    assert theirs["utterances"] == {uid: counts_of(by_id[uid]) for uid in theirs["utterances"]}
    assert theirs["sentences"] == len(CASES) - 1
    # ... so its totals are ours without the missing reference's words, which we count as deletions.
    assert counts_of(by_id[MISSING]) == (0, 0, missing_words, 0)
    assert theirs["words"] == ours["ref"] - missing_words == 19
    scored = [u for u in report["utterances"] if u["status"] != "missing"]
    errors, words = sum(u["words"]["errors"] for u in scored), sum(u["words"]["ref"] for u in scored)
    assert theirs["err"] == round(100 * errors / words, 1) == 52.6
    assert round(100 * report["summary"]["wer"], 1) == 59.1

    # The trn files we wrote hold the missing hypothesis as an empty line: there sclite counts all of ours.
    assert (tmp_path / "scored" / "hyp.trn").read_text().splitlines()[3] == f"({MISSING})"
    same = sclite(tmp_path / "scored" / "ref.trn", tmp_path / "scored" / "hyp.trn")
    assert same["utterances"] == {uid: counts_of(u) for uid, u in by_id.items()}
    assert same["words"] == ours["ref"] and same["sentences"] == len(CASES)
    assert same["err"] == round(100 * report["summary"]["wer"], 1)


def test_written_trn_files_are_normalised_so_sclite_agrees_on_a_manifest_and_transcripts(tmp_path, sclite):
    rows = [("call_a.wav", "Hello, World!", "hello word"), ("call_b.wav", "I have 2 dogs.", "i have two dog s"),
            ("sub/call_c.wav", "Good night", None), ("call_d.wav", "It's OK", "its okay")]
    manifest, transcripts = tmp_path / "test.jsonl", tmp_path / "transcripts.jsonl"
    manifest.write_text("".join(json.dumps({"audio_filepath": path, "duration": 1.5, "text": text}) + "\n"
                                for path, text, _ in rows))
    transcripts.write_text("".join(json.dumps({"audio_filepath": path, "text": hyp}) + "\n"
                                   for path, _, hyp in rows if hyp is not None)
                           + json.dumps({"audio_filepath": "call_e.wav", "error": "not audio"}) + "\n")
    cli.main(["score", "--ref", str(manifest), "--hyp", str(transcripts), "--report", str(tmp_path / "report"),
              "--bootstrap", "0", "--write-trn", str(tmp_path / "trn")])
    assert (tmp_path / "trn" / "ref.trn").read_text() == ("hello world (call_a)\ni have two dogs (call_b)\n"
                                                          "good night (call_c)\nit's ok (call_d)\n")
    assert (tmp_path / "trn" / "hyp.trn").read_text() == ("hello word (call_a)\ni have two dog s (call_b)\n"
                                                          "(call_c)\nits okay (call_d)\n")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    theirs = sclite(tmp_path / "trn" / "ref.trn", tmp_path / "trn" / "hyp.trn")
    assert theirs["utterances"] == {u["utterance_id"]: counts_of(u) for u in report["utterances"]}
    assert theirs["words"] == report["summary"]["words"]["ref"] == 10
    assert theirs["err"] == round(100 * report["summary"]["wer"], 1) == 70.0


def test_trn_references_match_transcripts_by_file_stem():
    refs = [r for r in _references({"call_a": "one two", "call_b": "three"})]
    hyps = [{"audio_filepath": "/elsewhere/call_b.flac", "text": "three"},
            {"audio_filepath": "/elsewhere/call_a.wav", "text": "one"},
            {"audio_filepath": "/elsewhere/stray.wav", "text": "four"}]
    result = score(refs, hyps, n_resamples=0)
    assert result.match_method == MATCH_ID
    assert [(u.audio_filepath, u.hypothesis, u.words.deletions) for u in result.utterances] == [
        ("call_a", "one", 1), ("call_b", "three", 0)]
    assert result.unmatched_hypotheses == [{"audio_filepath": "/elsewhere/stray.wav", "line": 3,
                                            "reason": "no reference for this utterance"}]
    assert result.utterances[0].duration is None  # a trn line knows no audio: left out of the duration table


def _references(lines: dict[str, str]):
    from asr.data import Utterance

    return [Utterance(None, 0.0, text, extra={UTTERANCE_ID: uid}) for uid, text in lines.items()]


def test_sclite_reads_our_ctm(tmp_path, sclite):
    words = [{"word": "one", "start": 0.12, "end": 0.45, "confidence": 0.9},
             {"word": "too", "start": 0.6, "end": 0.93, "confidence": 0.5},
             {"word": "three", "start": 1.0, "end": 1.3, "confidence": 0.8}]
    ctm = tmp_path / "hyp.ctm"
    ctm.write_text(render_ctm({"audio_filepath": "/x/two words.wav", "duration": 2.0, "text": "", "words": words},
                              "two_words"))
    stm = tmp_path / "ref.stm"
    stm.write_text("two_words 1 two_words 0.00 2.00 one two three\n")
    theirs = sclite(stm, ctm, "stm", "ctm")
    assert theirs["words"] == 3 and theirs["err"] == round(100 / 3, 1)
    assert theirs["utterances"] == {"two_words-000": (2, 1, 0, 0)}  # sclite's id for the stm segment


def test_where_sclite_aligns_otherwise(tmp_path, sclite):
    """sclite's alignment minimises 4 x substitutions + 3 x (insertions + deletions), jiwer's the number of edits:
    on such near ties the split of the errors differs, and now and then the total (README, "sclite")."""
    ref = write_trn(tmp_path / "ref.trn", {"u1": "a a a d b b d a d"})
    hyp = write_trn(tmp_path / "hyp.trn", {"u1": "c a c c a a b"})
    ours = score(read_references(ref), read_hypotheses(hyp), n_resamples=0).words
    assert (ours.hits, ours.substitutions, ours.deletions, ours.insertions) == (2, 5, 2, 0)  # 7 edits, weight 26
    assert sclite(ref, hyp)["utterances"] == {"u1": (4, 0, 5, 3)}  # 8 edits, weight 24


def test_evaluate_writes_trn_files_too(tmp_path, monkeypatch, capsys):
    from asr.audio import write_audio
    from tests.test_transcribe import RATE, encode, fake_model

    rows = []
    for name, said, reference in [("first", "one two", "One two."), ("second", "three", "three four")]:
        write_audio(tmp_path / f"{name}.wav", encode(said), RATE)
        rows.append(json.dumps({"audio_filepath": f"{name}.wav", "duration": 1.0, "text": reference}) + "\n")
    (tmp_path / "test.jsonl").write_text("".join(rows))
    monkeypatch.setattr("asr.recognizer.load_model", lambda path: fake_model())
    assert cli.main(["evaluate", "--manifest", str(tmp_path / "test.jsonl"), "--report", str(tmp_path / "report"),
                     "--vad", "off", "--quiet", "--bootstrap", "0", "--write-trn", str(tmp_path / "trn")]) == 0
    assert (tmp_path / "trn" / "ref.trn").read_text() == "one two (first)\nthree four (second)\n"
    assert (tmp_path / "trn" / "hyp.trn").read_text() == "one two (first)\nthree (second)\n"
    assert f"sclite -r {tmp_path / 'trn' / 'ref.trn'} trn" in capsys.readouterr().out


def test_a_manifest_field_named_like_a_trn_id_changes_nothing(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "text": "yes", "utterance_id": "x"}) + "\n")
    result = score(read_references(manifest), [{"audio_filepath": str(tmp_path / "a.wav"), "text": "yes"}],
                   n_resamples=0)
    assert result.match_method == MATCH_PATH and result.complete and result.utterances[0].utterance_id == "a"
