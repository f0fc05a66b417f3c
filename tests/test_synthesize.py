"""pipelines/synthesize_corpus.py and asr.synthesis: an espeak-ng corpus that is complete, deterministic, resumable
and band-limited."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.data import read_manifest
from asr.synthesis import degrade, espeak
from asr.text import Alphabet

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "pipelines" / "synthesize_corpus.py"
COUNT = 12
@pytest.fixture(autouse=True)
def espeak_installed(request):
    """`make test` installs espeak-ng; without it the corpus tests must fail, not pass by skipping."""
    if "needs_espeak" in request.keywords:
        assert shutil.which("espeak-ng"), "espeak-ng is missing: run `make system-deps` (apt-get install espeak-ng)"


needs_espeak = pytest.mark.needs_espeak


@pytest.fixture(scope="module")
def synth():
    """The command line, pipelines/synthesize_corpus.py, loaded once for the module's corpus (its library code
    is asr.synthesis.espeak, which worker processes import by name)."""
    spec = importlib.util.spec_from_file_location("synthesize_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(synth, tmp_path_factory) -> Path:
    """COUNT utterances, seed 0, one process."""
    out = tmp_path_factory.mktemp("synth") / "seed0"
    assert synth.main(["--out", str(out), "--count", str(COUNT), "--seed", "0", "--quiet"]) == 0
    return out


def audio_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "audio").iterdir())}


@needs_espeak
def test_small_run_gives_a_usable_8khz_corpus(corpus):
    files = sorted((corpus / "audio").iterdir())
    assert [f.name for f in files] == [f"utt_{i:06d}.wav" for i in range(COUNT)]  # no temporary files left
    assert sorted(p.name for p in corpus.iterdir()) == ["audio", "manifest.jsonl", "synthesis.json"]
    rows = read_manifest(corpus / "manifest.jsonl")
    assert len(rows) == COUNT
    alphabet = Alphabet()
    for row, file in zip(rows, files, strict=True):
        assert Path(row.audio_filepath).resolve() == file.resolve()
        info = sf.info(str(file))
        assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
        assert row.duration == pytest.approx(info.frames / info.samplerate, abs=1e-4)
        assert 0.5 < row.duration < 15
        assert row.text and not alphabet.unknown_characters(row.text) and row.original_text
        samples, _ = sf.read(str(file))
        assert 0.01 < np.abs(samples).max() <= 1.0  # audible, not silence
        voice, variant = row.speaker.split("+")
        assert voice.startswith("en") and variant
    assert len({r.speaker for r in rows}) > 1 and len({r.speaker.split("+")[0] for r in rows}) > 1
    assert len({r.text for r in rows}) == COUNT  # one pass through the sentences repeats none


@needs_espeak
def test_same_seed_same_bytes_in_parallel_and_other_seed_differs(synth, corpus, tmp_path):
    again = tmp_path / "again"
    # A second process with two workers: the files depend on (seed, index) alone, not on the schedule.
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(again), "--count", str(COUNT), "--seed", "0",
                    "--jobs", "2", "--quiet"], check=True, cwd=REPO, capture_output=True)
    assert audio_bytes(again) == audio_bytes(corpus)
    assert (again / "manifest.jsonl").read_text() == (corpus / "manifest.jsonl").read_text()
    other = tmp_path / "other"
    assert synth.main(["--out", str(other), "--count", "4", "--seed", "1", "--quiet"]) == 0
    seed0, seed1 = audio_bytes(corpus), audio_bytes(other)
    assert all(seed1[name] != seed0[name] for name in seed1)
    assert read_manifest(other / "manifest.jsonl")[0].text != read_manifest(corpus / "manifest.jsonl")[0].text


@needs_espeak
def test_resume_regenerates_only_missing_or_broken_files(synth, corpus, tmp_path, capsys):
    out = tmp_path / "resume"
    shutil.copytree(corpus, out)
    (out / "manifest.jsonl").unlink()  # as after an interrupted run
    before = audio_bytes(out)
    removed = ["utt_000003.wav", "utt_000007.wav"]
    for name in removed:
        (out / "audio" / name).unlink()
    broken = out / "audio" / "utt_000010.wav"
    broken.write_bytes(before[broken.name][: len(before[broken.name]) // 2])  # header promises more than is there
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "audio").iterdir() if p.name != broken.name}
    capsys.readouterr()
    assert synth.main(["--out", str(out), "--count", str(COUNT), "--seed", "0", "--quiet"]) == 0
    assert "(3 synthesised, 9 kept)" in capsys.readouterr().out
    assert {name: (out / "audio" / name).stat().st_mtime_ns for name in kept} == kept
    assert audio_bytes(out) == before  # the regenerated files are the very same bytes
    assert (out / "manifest.jsonl").read_text() == (corpus / "manifest.jsonl").read_text()
    # Another seed would pair kept audio with new texts: refused, and nothing is touched.
    assert synth.main(["--out", str(out), "--count", str(COUNT), "--seed", "1", "--quiet"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert audio_bytes(out) == before
    assert (out / "manifest.jsonl").read_text() == (corpus / "manifest.jsonl").read_text()


def test_telephone_filter_keeps_the_voice_band_only():
    for rate, outside in ((8000, (100.0, 3850.0)), (16000, (100.0, 150.0, 5000.0, 7000.0))):
        t = np.arange(2 * rate) / rate
        tones = (*outside, 1000.0, 2000.0)
        signal = sum(np.sin(2 * np.pi * f * t) for f in tones).astype(np.float32)
        filtered = degrade.telephone_filter(signal, rate)[rate // 2:]  # skip the filter's start-up transient
        spectrum = np.abs(np.fft.rfft(filtered * np.hanning(filtered.size)))
        freqs = np.fft.rfftfreq(filtered.size, 1 / rate)
        level = {f: 20 * np.log10(spectrum[np.argmin(np.abs(freqs - f))] / (filtered.size / 4)) for f in tones}
        assert abs(level[1000.0]) < 1.0 and abs(level[2000.0]) < 1.0  # the passband is left alone
        assert all(level[f] < -30 for f in outside), level


def test_noise_colours_and_sentence_dealing():
    rng = np.random.default_rng(0)
    for exponent in (0.0, 1.0, 2.0):
        noise = degrade.coloured_noise(rng, 2**15, exponent)
        assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0)
        power = np.abs(np.fft.rfft(noise)) ** 2
        low, high = power[10:100].mean(), power[1000:10000].mean()
        assert 10 * np.log10(low / high) == pytest.approx(exponent * 20, abs=4)  # 10 dB per decade per unit
    sentences = [(f"line {i}", f"Line {i}") for i in range(5)]
    plans = [espeak.plan_utterance(i, 0, sentences, ["en-us+m1", "en-gb+f2"]) for i in range(10)]
    assert sorted(p.text for p in plans[:5]) == sorted(p.text for p in plans[5:]) == [s for s, _ in sentences]
    assert plans[0] == espeak.plan_utterance(0, 0, sentences, ["en-us+m1", "en-gb+f2"])


def test_text_outside_the_alphabet_and_missing_espeak_are_clear_errors(synth, tmp_path, monkeypatch, capsys):
    text = tmp_path / "sentences.txt"
    text.write_text("# comment\npress 5 for sales\n\nthe café is open\nこんにちは\n", encoding="utf-8")
    with pytest.raises(espeak.SynthesisError, match=r"sentences.txt:5"):
        espeak.read_sentences(text)
    text.write_text("# comment\npress 5 for sales\n\nthe café is open\npress five for sales\n", encoding="utf-8")
    assert espeak.read_sentences(text) == [("press five for sales", "press 5 for sales"),
                                           ("the cafe is open", "the café is open")]
    monkeypatch.setattr(espeak.shutil, "which", lambda name: None)
    assert synth.main(["--text", str(text), "--out", str(tmp_path / "out"), "--count", "2"]) == 2
    assert "apt-get install espeak-ng" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
