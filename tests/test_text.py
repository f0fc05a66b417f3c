import csv
from pathlib import Path

import pytest

from asr.text import BLANK_INDEX, Alphabet, AlphabetError, ctc_min_frames, normalize_text

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Press 5.", "press five"),
        ("In 1990 we moved.", "in nineteen ninety we moved"),
        ("the 21st century", "the twenty first century"),
        ("a 28.8 kilobit modem", "a twenty eight point eight kilobit modem"),
        ("press * to toggle, # to exit", "press star to toggle pound to exit"),
        ("Caf\u00e9\u2019s  NA\u00cfVE   r\u00e9sum\u00e9", "cafe's naive resume"),
        ("... letters of your party's first name.", "letters of your party's first name"),
        ("Call-Forward on No Answer.", "call forward on no answer"),
        ('"a polite ""don\'t call"" menu"', "a polite don't call menu"),
        ("1,000,000 and 007", "one million and zero zero seven"),
        ("Stra\u00dfe \u00c6r\u00f8", "strasse aero"),
        ("'quoted' words", "quoted words"),
        ("   ", ""),
    ],
)
def test_normalizer_cases(raw, expected):
    assert normalize_text(raw) == expected


def test_normalizer_is_idempotent_on_asterisk_prompts():
    table = SHARED / "asterisk" / "transcripts.tsv"
    with table.open(newline="", encoding="utf-8") as handle:
        prompts = [row["text"] for row in csv.DictReader(handle, delimiter="\t")]
    assert len(prompts) == 453
    alphabet = Alphabet()
    numerals = 0
    for prompt in prompts:
        numerals += any(c.isdigit() for c in prompt)
        normalized = normalize_text(prompt)
        assert normalize_text(normalized) == normalized
        assert not alphabet.unknown_characters(normalized), prompt
        assert "  " not in normalized and normalized == normalized.strip()
    assert numerals > 20  # the raw prompts really do exercise the numeral speller
    by_prompt = {p: normalize_text(p) for p in prompts}
    assert by_prompt["press 0 for help"] == "press zero for help"
    assert by_prompt["Please press 1 to mute or unmute yourself, 4 or 6 to decrease or increase the conference "
                     "volume, 7 or 9 to decrease or increase your volume, or 8 to exit."].startswith(
        "please press one to mute or unmute yourself four or six to decrease")


def test_alphabet_round_trip_and_blank():
    alphabet = Alphabet()
    text = "it's a test"
    ids = alphabet.encode(text)
    assert BLANK_INDEX == 0 and BLANK_INDEX not in ids
    assert alphabet.decode(ids) == text
    assert alphabet.num_classes == len(" abcdefghijklmnopqrstuvwxyz'") + 1
    assert alphabet.labels[0] == "<blank>"


def test_alphabet_rejects_unknown_and_duplicates(tmp_path):
    with pytest.raises(AlphabetError, match="not in the alphabet"):
        Alphabet().encode("caf\u00e9")
    with pytest.raises(AlphabetError, match="repeated"):
        Alphabet("abca")
    path = tmp_path / "alphabet.json"
    Alphabet("ab c").save(path)
    assert Alphabet.load(path) == Alphabet("ab c")


def test_ctc_min_frames_counts_repeats():
    assert ctc_min_frames("abc") == 3
    assert ctc_min_frames("hello") == 6  # "ll" needs a blank between the two l's
    assert ctc_min_frames([1, 1, 1]) == 5
    assert ctc_min_frames("") == 0
