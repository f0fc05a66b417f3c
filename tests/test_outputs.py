"""`asr transcribe --format ctm` and `--format textgrid`: the lines and documents written for constructed results."""

import sys

import pytest

from asr.outputs import (
    PRAATIO_MISSING,
    OutputError,
    OutputWriter,
    render_ctm,
    textgrid_intervals,
    utterance_ids,
    write_textgrid,
)

WORDS = [{"word": "hello", "start": 0.5, "end": 0.92, "confidence": 0.9},
         {"word": "world", "start": 1.04, "end": 1.4, "confidence": 0.75}]
ROW = {"audio_filepath": "/data/calls/call one.wav", "duration": 2.0, "text": "hello world", "words": WORDS}


def test_ctm_lines_of_a_result():
    assert render_ctm(ROW, "call_one") == (";; call_one 2 words from /data/calls/call one.wav\n"
                                           "call_one 1 0.500 0.420 hello 0.9000\n"
                                           "call_one 1 1.040 0.360 world 0.7500\n")
    silent = {"audio_filepath": "quiet.wav", "duration": 1.0, "text": "", "words": []}
    assert render_ctm(silent, "quiet") == ";; quiet 0 words from quiet.wav\n"
    assert render_ctm({"audio_filepath": "bad.wav", "error": "bad.wav: not\nan audio file"}, "bad") == (
        ";; error: bad.wav: bad.wav: not an audio file\n")


def test_utterance_ids_are_stems_without_separators_and_unique():
    ids = utterance_ids(["/a/call one.wav", "/a/x(1).flac", "/a/same.wav", "/b/same.wav"])
    assert ids["/a/call one.wav"] == "call_one" and ids["/a/x(1).flac"] == "x_1_"
    assert ids["/a/same.wav"].startswith("same-") and ids["/b/same.wav"].startswith("same-")
    assert ids["/a/same.wav"] != ids["/b/same.wav"]


def test_one_ctm_file_for_a_batch_and_resume_drops_a_torn_block(tmp_path):
    out = tmp_path / "all.ctm"
    inputs = ["/d/a.wav", "/d/b.wav", "/d/c.wav"]
    writer = OutputWriter(out, "ctm", inputs)
    writer.write({**ROW, "audio_filepath": "/d/a.wav"})
    writer.write({"audio_filepath": "/d/b.wav", "error": "/d/b.wav: is empty (0 bytes)"})
    writer.write({"audio_filepath": "/d/c.wav", "duration": 1.0, "text": "", "words": []})
    writer.close()
    expected_a = ";; a 2 words from /d/a.wav\na 1 0.500 0.420 hello 0.9000\na 1 1.040 0.360 world 0.7500\n"
    expected_c = ";; c 0 words from /d/c.wav\n"
    assert out.read_text() == expected_a + ";; error: /d/b.wav: /d/b.wav: is empty (0 bytes)\n" + expected_c

    # Interrupted while writing c's block: its header announces a word that never arrived whole.
    out.write_text(expected_a + ";; c 1 word from /d/c.wav\nc 1 0.1")
    writer = OutputWriter(out, "ctm", inputs, resume=True)
    assert [p for p in inputs if writer.is_done(p)] == ["/d/a.wav"]
    writer.close()
    assert out.read_text() == expected_a


def test_ctm_folder_has_one_file_per_input(tmp_path):
    (tmp_path / "ctm").mkdir()  # an existing folder (or one more than one document needs)
    writer = OutputWriter(tmp_path / "ctm", "ctm", ["/d/a.wav", "/d/b.wav"])
    writer.write({**ROW, "audio_filepath": "/d/a.wav"})
    writer.write({"audio_filepath": "/d/b.wav", "error": "broken"})
    assert (tmp_path / "ctm" / "a.ctm").read_text().splitlines()[1:] == ["a 1 0.500 0.420 hello 0.9000",
                                                                         "a 1 1.040 0.360 world 0.7500"]
    assert not (tmp_path / "ctm" / "b.ctm").exists() and "broken" in (tmp_path / "ctm" / "errors.jsonl").read_text()


def test_textgrid_round_trips_through_praatio(tmp_path):
    from praatio import textgrid

    path = tmp_path / "call.TextGrid"
    writer = OutputWriter(path, "textgrid", [ROW["audio_filepath"]])
    writer.write(ROW)
    grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    assert grid.tierNames == ("words",)
    assert (grid.minTimestamp, grid.maxTimestamp) == (0.0, 2.0)
    assert [tuple(entry) for entry in grid.getTier("words").entries] == [(0.5, 0.92, "hello"), (1.04, 1.4, "world")]
    with_gaps = textgrid.openTextgrid(str(path), includeEmptyIntervals=True).getTier("words").entries
    assert [tuple(entry) for entry in with_gaps] == [(0.0, 0.5, ""), (0.5, 0.92, "hello"), (0.92, 1.04, ""),
                                                     (1.04, 1.4, "world"), (1.4, 2.0, "")]


def test_textgrid_folder_names_files_as_praat_does(tmp_path):
    from praatio import textgrid

    writer = OutputWriter(tmp_path / "grids", "textgrid", ["/d/a.wav", "/d/b.wav"])
    writer.write({**ROW, "audio_filepath": "/d/a.wav"})
    writer.write({"audio_filepath": "/d/b.wav", "duration": 0.5, "text": "", "words": []})
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == ["a.TextGrid", "b.TextGrid"]
    empty = textgrid.openTextgrid(str(tmp_path / "grids" / "b.TextGrid"), includeEmptyIntervals=False)
    assert empty.getTier("words").entries == () and empty.maxTimestamp == 0.5


def test_overlapping_words_are_made_valid_tier_intervals(tmp_path):
    words = [{"word": "b", "start": 1.0, "end": 1.2, "confidence": 1}, {"word": "a", "start": 0.5, "end": 1.1,
                                                                        "confidence": 1},
             {"word": "c", "start": 1.2, "end": 1.2, "confidence": 1}]
    assert textgrid_intervals(words) == [(0.5, 1.1, "a"), (1.1, 1.2, "b"), (1.2, 1.201, "c")]
    write_textgrid(tmp_path / "x.TextGrid", words, duration=1.0)  # words past the duration widen the grid
    from praatio import textgrid

    assert textgrid.openTextgrid(str(tmp_path / "x.TextGrid"), False).maxTimestamp == 1.201


def test_textgrid_without_praatio_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "praatio", None)  # makes `import praatio` raise ImportError
    with pytest.raises(OutputError, match=r"pip install -e '\.\[formats\]'") as error:
        OutputWriter(tmp_path / "x.TextGrid", "textgrid", ["a.wav"])
    assert str(error.value) == PRAATIO_MISSING


def test_textgrid_needs_out():
    with pytest.raises(OutputError, match="--format textgrid needs --out"):
        OutputWriter(None, "textgrid", ["a.wav"])


def test_cli_writes_ctm_to_stdout_and_a_textgrid_named_by_its_extension(tmp_path, monkeypatch, capsys):
    from praatio import textgrid

    from asr import cli
    from asr.audio import write_audio
    from tests.test_transcribe import RATE, encode, fake_model

    audio = tmp_path / "two words.wav"
    write_audio(audio, encode("one two"), RATE)
    monkeypatch.setattr("asr.recognizer.load_model", lambda path: fake_model())
    assert cli.main(["transcribe", str(audio), "--format", "ctm", "--vad", "off", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f";; two_words 2 words from {audio}"
    fields = [line.split() for line in lines[1:]]
    assert [(f[0], f[1], f[4]) for f in fields] == [("two_words", "1", "one"), ("two_words", "1", "two")]
    # The fake model's frames are 30 ms: 4 blank frames, "one" = 3 characters x (3 frames + a blank).
    assert [(float(f[2]), float(f[3])) for f in fields] == [(0.12, 0.33), (0.6, 0.33)]

    out = tmp_path / "grid.TextGrid"
    assert cli.main(["transcribe", str(audio), "--out", str(out), "--vad", "off", "--quiet"]) == 0
    entries = textgrid.openTextgrid(str(out), includeEmptyIntervals=False).getTier("words").entries
    assert [(e.label, round(e.start, 3), round(e.end, 3)) for e in entries] == [("one", 0.12, 0.45),
                                                                                ("two", 0.6, 0.93)]
