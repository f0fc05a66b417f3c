"""Render sentences with flite, festival or pico voices: speech from engines other than the espeak-ng corpus's.

    python pipelines/render_tts.py MANIFEST... --out work/flite [--engine flite] [--voices kal awb rms slt] \\
        [--exclude-text MANIFEST...] [--count N] [--vary-prosody] [--seed 0]

MANIFEST: prepared manifests whose `text` fields are the sentences; a sentence that any --exclude-text manifest
(or `transcripts.tsv` table) holds is left out, and --count keeps the first N. Every voice speaks every
sentence; --vary-prosody draws a speaking rate and pitch for each recording. Each is then given edge
silence, noise, maybe the telephone band and a gain at 8 kHz exactly as pipelines/synthesize_corpus.py
degrades its own, everything seeded by (seed, index), so a re-run writes the same files and keeps those
already there. A sentence the engine fails
on is reported and skipped. Writes OUT/audio/ENGINE_VOICE_NNNN.wav and OUT/manifest.jsonl (speaker =
ENGINE-VOICE).

Issue #11 keeps the flite voices kal, slt, awb and rms for testing (the default: a test set from an engine
and voices no training row used); festival's ked_diphone (Debian festvox-kdlpc16k) and SVOX pico's two
female English voices, en-US and en-GB (Debian non-free libttspico-utils; Apache-2.0), may be trained on.
Needs the engine: apt-get install flite, festival festvox-kdlpc16k, or libttspico-utils.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from combine_manifests import held_out
from synthesize_corpus import degrade, write_wav
from tqdm import tqdm

from asr.audio import AudioError, read_audio, resample
from asr.corpora import CorpusError
from asr.data import ManifestError, Utterance, read_manifest, write_manifest
from asr.text import normalize_text

TEST_VOICES = ("kal", "awb", "rms", "slt")  # the flite voices issue #11 reserves for testing
FESTIVAL_VOICES = ("ked_diphone",)
PICO_VOICES = ("en-US", "en-GB")
PICO_LANGUAGES = Path("/usr/share/pico/lang")
FESTIVAL_VOICE_FOLDERS = Path("/usr/share/festival/voices")
SAMPLE_RATE = 8000
RATE_STRETCH = (0.8, 1.25)  # --vary-prosody: duration multiplier (above 1 is slower)
PITCH_MEAN_HZ = (80.0, 200.0)  # and the intonation model's target mean and spread
PITCH_STD_HZ = (10.0, 35.0)
PICO_PITCH_REFERENCE_HZ = 140.0  # pico takes pitch as a percentage: PITCH_MEAN_HZ's middle is 100%
PROSODY_STREAM = 1  # the prosody Generator's stream, apart from degrade()'s (0)


@dataclass(frozen=True)
class Prosody:
    stretch: float = 1.0
    pitch_mean: float | None = None  # None: the voice's own
    pitch_std: float | None = None


def sentences(manifests: list[Path], exclude: list[Path], count: int | None = None) -> list[str]:
    """The distinct normalised texts of `manifests`, in order, without those any `exclude` manifest holds."""
    _, held = held_out([], exclude)
    texts = (normalize_text(row.text) for path in manifests for row in read_manifest(path))
    return [text for text in dict.fromkeys(texts) if text and text not in held][:count]


def flite_voices() -> set[str]:
    listing = subprocess.run(["flite", "-lv"], check=True, capture_output=True, text=True, timeout=60).stdout
    return set(listing.split(":", 1)[-1].split())


def festival_voices() -> set[str]:
    return {path.name for path in FESTIVAL_VOICE_FOLDERS.glob("*/*") if path.is_dir()}


def pico_voices() -> set[str]:
    return {path.name.removesuffix("_ta.bin") for path in PICO_LANGUAGES.glob("en-*_ta.bin")}  # one per language


def flite_command(voice: str, text: str, text_file: Path, wav: Path, prosody: Prosody) -> list[str]:
    command = ["flite", "-voice", voice, "-f", str(text_file), "-o", str(wav),
               "--setf", f"duration_stretch={prosody.stretch}"]
    if prosody.pitch_mean is not None:
        command += ["--setf", f"int_f0_target_mean={prosody.pitch_mean}",
                    "--setf", f"int_f0_target_stddev={prosody.pitch_std}"]
    return command


def festival_command(voice: str, text: str, text_file: Path, wav: Path, prosody: Prosody) -> list[str]:
    command = ["text2wave", "-eval", f"(voice_{voice})",
               "-eval", f"(Parameter.set 'Duration_Stretch {prosody.stretch})"]
    if prosody.pitch_mean is not None:  # the diphone voices' linear-regression intonation model, retargeted
        command += ["-eval", f"(set! int_lr_params '((target_f0_mean {prosody.pitch_mean}) (target_f0_std "
                             f"{prosody.pitch_std}) (model_f0_mean 170) (model_f0_std 34)))"]
    return [*command, str(text_file), "-o", str(wav)]


def pico_command(voice: str, text: str, text_file: Path, wav: Path, prosody: Prosody) -> list[str]:
    """pico reads no file: the text (letters, spaces, apostrophes) goes inside its prosody markup."""
    pitch = 100 if prosody.pitch_mean is None else round(100 * prosody.pitch_mean / PICO_PITCH_REFERENCE_HZ)
    markup = f'<speed level="{round(100 / prosody.stretch)}"><pitch level="{pitch}">{text}</pitch></speed>'
    return ["pico2wave", "-l", voice, "-w", str(wav), markup]


@dataclass(frozen=True)
class Engine:
    program: str
    packages: str  # what `apt-get install` needs
    default_voices: tuple[str, ...]
    voices: Callable[[], set[str]]  # installed (flite and festival fall back silently for any other name)
    command: Callable[[str, str, Path, Path, Prosody], list[str]]  # (voice, text, text_file, wav, prosody)


ENGINES = {
    "flite": Engine("flite", "flite", TEST_VOICES, flite_voices, flite_command),
    "festival": Engine("text2wave", "festival festvox-kdlpc16k", FESTIVAL_VOICES, festival_voices, festival_command),
    "pico": Engine("pico2wave", "libttspico-utils (Debian non-free)", PICO_VOICES, pico_voices, pico_command),
}


def speak(engine: str, voice: str, text: str, prosody: Prosody) -> np.ndarray:
    """The engine's rendering of `text`, at SAMPLE_RATE (float32)."""
    with tempfile.TemporaryDirectory() as folder:
        text_file, wav = Path(folder) / "text.txt", Path(folder) / "speech.wav"
        text_file.write_text(text + "\n", encoding="utf-8")
        subprocess.run(ENGINES[engine].command(voice, text, text_file, wav, prosody), check=True,
                       capture_output=True, timeout=120)
        samples, rate = read_audio(wav)
    return resample(samples, rate, SAMPLE_RATE)


def draw_prosody(seed: int, index: int) -> Prosody:
    rng = np.random.default_rng([seed, PROSODY_STREAM, index])
    return Prosody(round(rng.uniform(*RATE_STRETCH), 3), round(rng.uniform(*PITCH_MEAN_HZ), 1),
                   round(rng.uniform(*PITCH_STD_HZ), 1))


def render(texts: list[str], out: Path, engine: str = "flite", voices: tuple[str, ...] = TEST_VOICES,
           seed: int = 0, vary_prosody: bool = False) -> tuple[Path, list[str]]:
    """Write (or keep) every voice's rendering of every text and the manifest; returns it and what failed."""
    audio = out / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rows, failed = [], []
    jobs = [(voice, number, text) for voice in voices for number, text in enumerate(texts)]
    for index, (voice, number, text) in enumerate(tqdm(jobs, desc=engine, unit="utt", disable=None)):
        path = audio / f"{engine}_{voice}_{number:04d}.wav"
        try:
            samples, _ = read_audio(path)
        except AudioError:
            prosody = draw_prosody(seed, index) if vary_prosody else Prosody()
            try:
                speech = speak(engine, voice, text, prosody)
                samples = degrade(speech, SAMPLE_RATE, np.random.default_rng([seed, index]))
            except (subprocess.SubprocessError, AudioError, ValueError) as error:
                failed.append(f"{voice} {text!r}: {error}")
                continue
            write_wav(path, samples, SAMPLE_RATE)
        rows.append(Utterance(str(path), round(samples.size / SAMPLE_RATE, 4), text, speaker=f"{engine}-{voice}"))
    manifest = out / "manifest.jsonl"
    write_manifest(manifest, rows)
    return manifest, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifests", type=Path, nargs="+", help="prepared manifests holding the sentences")
    parser.add_argument("--out", type=Path, required=True, help="folder for audio/ and manifest.jsonl")
    parser.add_argument("--engine", choices=tuple(ENGINES), default="flite")
    parser.add_argument("--voices", nargs="+", help="default: " + ", ".join(
        f"{name} {' '.join(engine.default_voices)}" for name, engine in ENGINES.items()))
    parser.add_argument("--exclude-text", type=Path, nargs="*", default=[], help="manifests of sentences to leave out")
    parser.add_argument("--count", type=int, help="keep the first N sentences")
    parser.add_argument("--vary-prosody", action="store_true", help="draw a speaking rate and pitch per recording")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same files")
    args = parser.parse_args(argv)
    engine = ENGINES[args.engine]
    voices = tuple(args.voices or engine.default_voices)
    if shutil.which(engine.program) is None:
        print(f"error: {engine.program} not found on PATH: install it with `apt-get install {engine.packages}`",
              file=sys.stderr)
        return 2
    missing = sorted(set(voices) - engine.voices())
    if missing:
        print(f"error: {args.engine} has no voice {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        texts = sentences(args.manifests, args.exclude_text, args.count)
    except (ManifestError, CorpusError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not texts:
        print("error: no sentences left to render", file=sys.stderr)
        return 2
    manifest, failed = render(texts, args.out, args.engine, voices, args.seed, args.vary_prosody)
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    print(f"{len(texts)} sentences x {len(voices)} voices ({len(failed)} failed): {manifest}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
