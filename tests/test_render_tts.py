"""pipelines/render_tts.py: flite's held-out test voices and festival's and pico's training voices, rendered
deterministically."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.data import Utterance, read_manifest, write_manifest

REPO = Path(__file__).resolve().parents[1]
SENTENCES = ["dial eight four four one", "please enter your account number", "thank you goodbye"]


def render(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "pipelines" / "render_tts.py"), *map(str, args)],
                          capture_output=True, text=True)


def text_manifest(path: Path, texts: list[str]) -> Path:
    write_manifest(path, [Utterance(f"{i}.wav", 1.0, text) for i, text in enumerate(texts)])
    return path


@pytest.fixture(autouse=True)
def engines_installed():
    """`make test` installs the engines (make system-deps); without them these tests must fail, not skip."""
    assert shutil.which("flite"), "flite is missing: run `make system-deps` (apt-get install flite)"
    assert shutil.which("text2wave"), "festival is missing: run `make system-deps`"
    assert shutil.which("pico2wave"), "pico is missing: run `make system-deps` (Debian non-free libttspico-utils)"


def test_flite_test_voices_speak_every_kept_sentence_at_8khz_reproducibly(tmp_path):
    source = text_manifest(tmp_path / "test.jsonl", SENTENCES)
    held = text_manifest(tmp_path / "train.jsonl", ["Thank you, goodbye!"])  # normalised before comparing
    done = render(source, "--exclude-text", held, "--voices", "kal", "slt", "--out", tmp_path / "a")
    assert done.returncode == 0, done.stderr
    rows = read_manifest(tmp_path / "a" / "manifest.jsonl")
    assert [(row.speaker, row.text) for row in rows] == [
        (f"flite-{voice}", text) for voice in ("kal", "slt") for text in SENTENCES[:2]]
    for row in rows:
        info = sf.info(row.audio_filepath)
        assert info.samplerate == 8000 and row.duration == pytest.approx(info.duration, abs=1e-3)
        assert 1.0 < info.duration < 6.0  # a few words, with edge silence
    kal, slt = (sf.read(rows[i].audio_filepath)[0] for i in (0, 2))
    assert kal.shape != slt.shape  # two voices, not one voice twice
    # a fresh folder gets the same bytes; a re-run keeps what is there and rewrites nothing
    assert render(source, "--exclude-text", held, "--voices", "kal", "slt", "--out", tmp_path / "b").returncode == 0
    for name in ("flite_kal_0000.wav", "flite_slt_0001.wav"):
        assert (tmp_path / "a" / "audio" / name).read_bytes() == (tmp_path / "b" / "audio" / name).read_bytes()
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "a" / "audio").iterdir()}
    assert render(source, "--exclude-text", held, "--voices", "kal", "slt", "--out", tmp_path / "a").returncode == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "a" / "audio").iterdir()} == before


def test_festival_prosody_varies_per_recording(tmp_path):
    source = text_manifest(tmp_path / "text.jsonl", SENTENCES[:2])
    plain = render(source, "--engine", "festival", "--count", 1, "--seed", 3, "--out", tmp_path / "plain")
    varied = render(source, "--engine", "festival", "--count", 1, "--vary-prosody", "--seed", 3,
                    "--out", tmp_path / "varied")
    assert plain.returncode == 0 and varied.returncode == 0, plain.stderr + varied.stderr
    (row,) = read_manifest(tmp_path / "plain" / "manifest.jsonl")
    assert row.speaker == "festival-ked_diphone" and row.text == SENTENCES[0]
    plain_audio = sf.read(row.audio_filepath)[0]
    varied_audio = sf.read(read_manifest(tmp_path / "varied" / "manifest.jsonl")[0].audio_filepath)[0]
    assert plain_audio.shape != varied_audio.shape  # the same seed's noise and silences: another speaking rate


def test_pico_speaks_both_female_voices_and_its_prosody_markup_changes_the_rate(tmp_path):
    source = text_manifest(tmp_path / "text.jsonl", SENTENCES[1:2])
    plain = render(source, "--engine", "pico", "--seed", 5, "--out", tmp_path / "plain")
    varied = render(source, "--engine", "pico", "--vary-prosody", "--seed", 5, "--out", tmp_path / "varied")
    assert plain.returncode == 0 and varied.returncode == 0, plain.stderr + varied.stderr
    rows = read_manifest(tmp_path / "plain" / "manifest.jsonl")
    assert [(row.speaker, row.text) for row in rows] == [("pico-en-US", SENTENCES[1]), ("pico-en-GB", SENTENCES[1])]
    us, gb = (sf.read(row.audio_filepath)[0] for row in rows)
    assert sf.info(rows[0].audio_filepath).samplerate == 8000 and 1.0 < us.size / 8000 < 6.0
    assert us.shape != gb.shape  # two voices, not one twice
    varied_us = sf.read(read_manifest(tmp_path / "varied" / "manifest.jsonl")[0].audio_filepath)[0]
    assert varied_us.shape != us.shape  # the same seed's noise and silences: another speaking rate


def test_wideband_rendering_keeps_the_band_above_4_khz_and_a_rate_change_renders_again(tmp_path):
    source = text_manifest(tmp_path / "text.jsonl", SENTENCES[1:2])
    out = tmp_path / "wide"
    done = render(source, "--engine", "pico", "--voices", "en-US", "--seed", 0, "--sample-rate", 16000, "--out", out)
    assert done.returncode == 0, done.stderr
    (row,) = read_manifest(out / "manifest.jsonl")
    samples, rate = sf.read(row.audio_filepath)
    assert rate == 16000 and row.duration == pytest.approx(samples.size / 16000, abs=1e-3)
    narrow = render(source, "--engine", "pico", "--voices", "en-US", "--seed", 0, "--out", tmp_path / "narrow")
    assert narrow.returncode == 0, narrow.stderr
    narrow_row = read_manifest(tmp_path / "narrow" / "manifest.jsonl")[0]
    assert row.duration == pytest.approx(narrow_row.duration, abs=2e-3)  # the same speech, edges and seed
    # pico speaks at 16 kHz, and seed 0's first recording is not band-passed (degrade's draw; 1e-6 when it is): a 16 kHz
    # rendering keeps the energy above 4 kHz that an 8 kHz one cannot hold
    power = abs(np.fft.rfft(samples)) ** 2
    frequencies = np.fft.rfftfreq(samples.size, 1 / 16000)
    assert power[frequencies > 4200].sum() / power.sum() > 1e-5
    again = render(source, "--engine", "pico", "--voices", "en-US", "--seed", 0, "--out", out)  # 16 kHz files: again
    assert again.returncode == 0, again.stderr
    assert sf.info(read_manifest(out / "manifest.jsonl")[0].audio_filepath).samplerate == 8000
    done = render(source, "--sample-rate", 4000, "--out", tmp_path / "x")
    assert done.returncode == 2 and "--sample-rate 4000" in done.stderr


def test_unknown_voice_missing_manifest_and_nothing_left_are_errors(tmp_path):
    source = text_manifest(tmp_path / "test.jsonl", SENTENCES[:1])
    done = render(source, "--voices", "nobody", "--out", tmp_path / "x")
    assert done.returncode == 2 and "no voice nobody" in done.stderr  # flite would silently use kal
    done = render(tmp_path / "missing.jsonl", "--out", tmp_path / "x")
    assert done.returncode == 2 and "missing.jsonl" in done.stderr
    done = render(source, "--exclude-text", source, "--out", tmp_path / "x")
    assert done.returncode == 2 and "no sentences left" in done.stderr
    table = tmp_path / "transcripts.tsv"  # the demo samples' table form is held out the same way
    table.write_text(f"path\ttext\n0.wav\t{SENTENCES[0].upper()}.\n")
    done = render(source, "--exclude-text", table, "--out", tmp_path / "x")
    assert done.returncode == 2 and "no sentences left" in done.stderr
