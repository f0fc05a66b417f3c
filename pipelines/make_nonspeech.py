"""Silence, noise and telephone tones with empty transcripts, so that a model learns to say nothing for them.

    python pipelines/make_nonspeech.py --out work/nonspeech --count 300 [--seed 1000] [--sample-rate 8000]

Clip i draws its kind, length (1-4 s) and level from a numpy Generator seeded with (seed, i), so a re-run
writes the same bytes and keeps files already there. Kinds: digital silence, dither, white/pink/brown noise
from -65 to -20 dBFS, mains hum at 50 or 60 Hz with harmonics, clicks, and the call-progress tones a
telephone line carries (dial, ringback, busy, DTMF keys); a third go through the telephone band-pass.
Writes OUT/audio/ns_NNNNNN.wav and OUT/manifest.jsonl, each row `"text": ""` and `"non_speech": true`
(`asr.data.NON_SPEECH`), speaker = its kind so that `asr split` keeps each kind's clips together.
The default seed (1000) keeps these clips apart from the ones `benchmarks/bench_vad.py` scores (seeds 0-2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from asr.audio import AudioError, read_audio
from asr.data import NON_SPEECH, Utterance, write_manifest
from asr.synthesis.degrade import coloured_noise, telephone_filter, write_wav

DEFAULT_SEED = 1000
DURATION_S = (1.0, 4.0)
LEVEL_DBFS = (-65.0, -20.0)
TELEPHONE_PROBABILITY = 1 / 3
# North American call-progress tones (ITU-T E.180): frequencies in Hz, then (on, off) cadence in seconds.
CALL_PROGRESS = {"dial": ((350, 440), None), "ringback": ((440, 480), (2.0, 4.0)), "busy": ((480, 620), (0.5, 0.5))}
DTMF_ROWS, DTMF_COLUMNS = (697, 770, 852, 941), (1209, 1336, 1477)


def _tone(frequencies: tuple[float, ...], t: np.ndarray) -> np.ndarray:
    return sum(np.sin(2 * np.pi * f * t) for f in frequencies)


def _cadenced(frequencies, cadence, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    signal = _tone(frequencies, t)
    if cadence is None:
        return signal
    on, off = cadence
    phase = (t + rng.uniform(0, on + off)) % (on + off)
    return signal * (phase < on)


def _dtmf(t: np.ndarray, rng: np.random.Generator, rate: int) -> np.ndarray:
    out = np.zeros_like(t)
    start = 0
    while start < t.size:
        length = int(rng.uniform(0.06, 0.2) * rate)
        keys = (DTMF_ROWS[rng.integers(4)], DTMF_COLUMNS[rng.integers(3)])
        out[start:start + length] = _tone(keys, t[start:start + length])
        start += length + int(rng.uniform(0.05, 0.5) * rate)
    return out


def _clicks(size: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(size)
    for position in rng.integers(0, size - 16, max(1, int(rng.uniform(2, 12) * size / 8000))):
        out[position:position + 16] += np.hanning(16) * rng.choice([-1.0, 1.0])
    return out


def _hum(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mains = 50.0 if rng.random() < 0.5 else 60.0
    return sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3, 5))


KINDS: dict[str, Callable[[np.ndarray, np.random.Generator, int], np.ndarray]] = {
    "silence": lambda t, rng, rate: np.zeros_like(t),
    "dither": lambda t, rng, rate: rng.standard_normal(t.size) * 2 ** -15,
    "white": lambda t, rng, rate: coloured_noise(rng, t.size, 0.0),
    "pink": lambda t, rng, rate: coloured_noise(rng, t.size, 1.0),
    "brown": lambda t, rng, rate: coloured_noise(rng, t.size, 2.0),
    "hum": lambda t, rng, rate: _hum(t, rng),
    "clicks": lambda t, rng, rate: _clicks(t.size, rng),
    "dtmf": _dtmf,
    **{name: (lambda t, rng, rate, f=f, c=c: _cadenced(f, c, t, rng)) for name, (f, c) in CALL_PROGRESS.items()},
}
UNSCALED = {"silence", "dither"}  # already at their level


def make_clip(index: int, seed: int, rate: int) -> tuple[str, np.ndarray]:
    """Clip `index`'s kind and samples (float32), from its own Generator."""
    rng = np.random.default_rng([seed, index])
    kind = list(KINDS)[rng.integers(len(KINDS))]
    t = np.arange(int(rng.uniform(*DURATION_S) * rate)) / rate
    signal = np.asarray(KINDS[kind](t, rng, rate), dtype=np.float64)
    if kind not in UNSCALED:
        rms = max(float(np.sqrt(np.mean(signal ** 2))), 1e-12)
        signal *= 10 ** (rng.uniform(*LEVEL_DBFS) / 20) / rms
        if rng.random() < TELEPHONE_PROBABILITY:
            signal = telephone_filter(signal, rate)
    return kind, np.clip(signal, -1.0, 1.0).astype(np.float32)


def make_nonspeech(out: Path, count: int, seed: int = DEFAULT_SEED, rate: int = 8000) -> Path:
    """Write (or keep) `count` clips and their manifest; returns the manifest's path."""
    audio = out / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        kind, samples = make_clip(index, seed, rate)
        path = audio / f"ns_{index:06d}.wav"
        try:
            read_audio(path)
        except AudioError:
            write_wav(path, samples, rate)
        rows.append(Utterance(str(path), samples.size / rate, "", speaker=f"nonspeech-{kind}",
                              extra={NON_SPEECH: True}))
    manifest = out / "manifest.jsonl"
    write_manifest(manifest, rows)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for audio/ and manifest.jsonl")
    parser.add_argument("--count", type=int, required=True, help="number of clips")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the same seed gives the same files")
    parser.add_argument("--sample-rate", type=int, default=8000, help="output rate in Hz")
    args = parser.parse_args(argv)
    if args.count < 1 or args.seed < 0:
        parser.error("--count must be positive and --seed non-negative")
    manifest = make_nonspeech(args.out, args.count, args.seed, args.sample_rate)
    print(f"{args.count} non-speech clips: {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
