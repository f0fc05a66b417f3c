"""A deterministic speech corpus from espeak-ng, shaped like 8 kHz telephone audio (pipelines/synthesize_corpus.py).

Utterance i gets its sentence, speaker (an espeak-ng voice+variant such as `en-us+f3`), speaking rate, pitch and
word gap, then its edge silence, noise, telephone band-pass and gain (`asr.synthesis.degrade`), from numpy
Generators seeded with (seed, i): a file depends only on the seed and its index, so resumed, partial and parallel
runs write the same bytes. Writes OUT/audio/utt_NNNNNN.wav (16-bit PCM) and OUT/manifest.jsonl (speaker =
voice+variant, so `asr split` keeps each synthetic speaker in one split). Audio already there and readable is
kept; OUT/synthesis.json records the settings, and a folder made with others (seed, sentences, voices, rate) is
refused, not mixed. A speaker pool limit of N keeps N voice+variant pairs (0: every pair installed).
Needs espeak-ng: apt-get install espeak-ng.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import subprocess
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from asr.audio import AudioError, read_audio, resample
from asr.data import Utterance, write_manifest
from asr.synthesis.degrade import degrade, write_wav
from asr.text import Alphabet, normalize_text
from asr.utils import atomic_write

ESPEAK = "espeak-ng"
ESPEAK_MISSING = "espeak-ng not found on PATH: install it with `apt-get install espeak-ng`"
DEFAULT_SAMPLE_RATE = 8000
ALPHABET = Alphabet()  # the model's default: space, a-z, apostrophe
# espeak-ng's own English voices (accents). The mbrola ones (mb/...) need separate mbrola voice packages.
VOICES = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
          "en-us-nyc")
# Variants (timbre, formants, pitch range) that sound like a person on a phone; robots, whispers, croaks,
# stutters and effects voices are left out because no caller sounds like them.
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4",
    "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "antonio", "aunty", "belinda", "benjamin", "boris",
    "caleb", "david", "Denis", "Diogo", "ed", "edward", "edward2", "Gene", "Gene2", "gustave", "Henrique", "Hugo",
    "iven", "iven2", "iven3", "iven4", "Jacky", "john", "Lee", "linda", "marcelo", "Marco", "Mario", "max",
    "Michael", "michel", "miguel", "Mike", "norbert", "Nguyen", "pablo", "paul", "pedro", "quincy", "rob",
    "robert", "sandro", "shelby", "steph", "steph2", "steph3", "travis", "victor", "zac", "anika", "grandma",
    "grandpa",
)
SPEED_WPM = (120, 200)  # espeak -s; its default is 175
PITCH = (20, 80)  # espeak -p, 0-99; its default is 50
WORD_GAP = (0, 4)  # espeak -g, extra pause between words in 10 ms units: slow, deliberate callers
# Seed-sequence keys (seed, stream, n): one independent stream per purpose, so adding draws to one
# stream never changes another's values.
PLAN_STREAM, AUDIO_STREAM, SENTENCE_STREAM, SPEAKER_STREAM = 0, 1, 2, 3
AUDIO_DIR = "audio"
MANIFEST = "manifest.jsonl"
RECIPE_FILE = "synthesis.json"  # what the audio was made from, checked before resuming
RECIPE_VERSION = 1  # bump when a change here alters the audio, so old folders are not silently mixed in
CHUNKSIZE = 8  # utterances per task sent to a worker: amortises pickling without starving the progress bar


class SynthesisError(RuntimeError):
    pass


@dataclass(frozen=True)
class Plan:
    """Everything about utterance `index` that is decided before synthesis (and needed for the manifest)."""

    index: int
    text: str
    original_text: str
    speaker: str
    speed: int
    pitch: int
    word_gap: int

    @property
    def filename(self) -> str:
        return f"utt_{self.index:06d}.wav"


# --- inputs --------------------------------------------------------------------------------------------------

def read_sentences(path: Path, alphabet: Alphabet = ALPHABET) -> list[tuple[str, str]]:
    """(normalised, original) pairs, in file order, without repeats of the same normalised text."""
    if not path.is_file():
        raise SynthesisError(f"{path}: text file not found")
    pairs: dict[str, str] = {}
    problems = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        original = line.strip()
        if not original or original.startswith("#"):
            continue
        text = normalize_text(original)
        unknown = alphabet.unknown_characters(text)
        if not text or unknown:
            problems.append(f"{path}:{number}: {original!r} -> {text!r} (outside the alphabet: {sorted(unknown)})")
        pairs.setdefault(text, original)
    if problems:
        raise SynthesisError("lines unusable as training targets:\n" + "\n".join(problems[:20]))
    if not pairs:
        raise SynthesisError(f"{path}: no sentences")
    return list(pairs.items())


def check_espeak() -> None:
    if shutil.which(ESPEAK) is None:
        raise SynthesisError(ESPEAK_MISSING)


def installed_names(kind: str) -> set[str]:
    """Voice languages (`en`) or variant file names (`variant`) that this espeak-ng has."""
    listing = subprocess.run([ESPEAK, f"--voices={kind}"], capture_output=True, text=True, check=True).stdout
    names = set()
    for row in listing.splitlines()[1:]:
        fields = row.split()
        if len(fields) >= 5 and kind == "variant" and fields[4].startswith("!v/"):
            names.add(row[row.index("!v/") + 3:].split("  ")[0].strip())  # variant files may hold spaces
        elif len(fields) >= 5 and kind != "variant" and not fields[4].startswith("mb/"):
            names.add(fields[1])
    return names


def speaker_pool(limit: int, seed: int) -> list[str]:
    """voice+variant names, in the constants' order (so a seed means the same speakers wherever they exist)."""
    have_voices, have_variants = installed_names("en"), installed_names("variant")
    voices = [v for v in VOICES if v in have_voices]
    variants = [v for v in VARIANTS if v in have_variants]
    if not voices or not variants:
        raise SynthesisError(f"{ESPEAK} has none of the expected English voices/variants; reinstall espeak-ng")
    pool = [f"{voice}+{variant}" for voice in voices for variant in variants]
    if 0 < limit < len(pool):
        order = np.random.default_rng([seed, SPEAKER_STREAM]).permutation(len(pool))
        pool = [pool[i] for i in sorted(order[:limit])]
    return pool


@lru_cache(maxsize=8)
def _sentence_order(seed: int, epoch: int, size: int) -> np.ndarray:
    return np.random.default_rng([seed, SENTENCE_STREAM, epoch]).permutation(size)


def plan_utterance(index: int, seed: int, sentences: list[tuple[str, str]], speakers: list[str]) -> Plan:
    # Sentences are dealt from a fresh seeded shuffle per pass over the file: every line is used before any
    # repeats, and utterance i's sentence still depends only on (seed, i).
    epoch, position = divmod(index, len(sentences))
    text, original = sentences[_sentence_order(seed, epoch, len(sentences))[position]]
    rng = np.random.default_rng([seed, PLAN_STREAM, index])
    return Plan(index=index, text=text, original_text=original, speaker=speakers[rng.integers(len(speakers))],
                speed=int(rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1)),
                pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                word_gap=int(rng.integers(WORD_GAP[0], WORD_GAP[1] + 1)))


# --- audio ---------------------------------------------------------------------------------------------------

def speak(plan: Plan) -> tuple[np.ndarray, int]:
    """espeak-ng's mono 16-bit wav (22050 Hz) for the plan, as float32 samples and its rate."""
    command = [ESPEAK, "-v", plan.speaker, "-s", str(plan.speed), "-p", str(plan.pitch), "-g", str(plan.word_gap),
               "--stdout"]
    result = subprocess.run(command, input=plan.text.encode(), capture_output=True, check=False)
    if result.returncode != 0 or len(result.stdout) <= 44:
        raise SynthesisError(f"{' '.join(command)} failed on {plan.text!r}: {result.stderr.decode().strip()}")
    # --stdout writes a streaming header (sizes 0x7fffffff); libsndfile reads up to the real end of the data.
    samples, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    return samples, rate


def render(plan: Plan, audio_dir: Path, seed: int, sample_rate: int) -> float:
    """Synthesise, degrade and write one utterance; returns its duration in seconds. Runs in worker processes."""
    samples, rate = speak(plan)
    samples = resample(samples, rate, sample_rate)
    audio = degrade(samples, sample_rate, np.random.default_rng([seed, AUDIO_STREAM, plan.index]))
    write_wav(audio_dir / plan.filename, audio, sample_rate)
    return audio.size / sample_rate


def claim_folder(out: Path, recipe: dict) -> None:
    """Record what the folder's audio is made from; refuse to mix in files made from another recipe.

    Resuming keeps any readable utt_NNNNNN.wav, so a folder made with another seed, sentence file or voice
    set would otherwise end up with audio that does not say its manifest's text.
    """
    path = out / RECIPE_FILE
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            previous = None
        if previous != recipe:
            raise SynthesisError(f"{out} holds audio made with other settings (seed, sentences, voices, sample "
                                 f"rate or recipe version; see {path}): choose another --out or delete it")
        return
    if any((out / AUDIO_DIR).glob("utt_*.wav")):  # the recipe is written before any audio: these are foreign
        raise SynthesisError(f"{out / AUDIO_DIR} holds audio but no {RECIPE_FILE}: choose another --out or delete it")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as handle:  # a temporary file and a rename: never half a recipe
        handle.write((json.dumps(recipe, indent=1) + "\n").encode())


def make_recipe(seed: int, sample_rate: int, sentences: list[tuple[str, str]], pool: list[str]) -> dict:
    return {"version": RECIPE_VERSION, "seed": seed, "sample_rate": sample_rate,
            "sentences_sha256": _sha256(f"{text}\t{original}" for text, original in sentences),
            "speakers_sha256": _sha256(pool)}


def _sha256(lines: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def existing_duration(path: Path, sample_rate: int) -> float | None:
    """Duration of a finished file worth keeping: it decodes completely at the requested rate."""
    if not path.exists():
        return None
    try:
        samples, rate = read_audio(path)
    except AudioError:
        return None
    return samples.size / rate if rate == sample_rate else None


# --- the run -------------------------------------------------------------------------------------------------

def synthesize_corpus(text: Path, out: Path, count: int, seed: int, sample_rate: int = DEFAULT_SAMPLE_RATE,
                      voices: int = 0, jobs: int = 1, progress: bool = True) -> dict:
    """Make (or complete) the corpus; returns counts for the summary. Raises SynthesisError."""
    check_espeak()
    sentences = read_sentences(text)
    pool = speaker_pool(voices, seed)
    plans = [plan_utterance(i, seed, sentences, pool) for i in range(count)]
    claim_folder(out, make_recipe(seed, sample_rate, sentences, pool))
    audio_dir = out / AUDIO_DIR
    audio_dir.mkdir(parents=True, exist_ok=True)
    for stale in audio_dir.glob(".utt_*.tmp"):  # left by a run killed mid-write
        stale.unlink(missing_ok=True)
    durations = {p.index: existing_duration(audio_dir / p.filename, sample_rate) for p in plans}
    todo = [p for p in plans if durations[p.index] is None]
    work = partial(render, audio_dir=audio_dir, seed=seed, sample_rate=sample_rate)
    parallel = jobs > 1 and len(todo) > 1
    with tqdm(total=len(todo), desc="synthesising", unit="utt", disable=not progress) as bar, \
            (ProcessPoolExecutor(max_workers=jobs) if parallel else contextlib.nullcontext()) as executor:
        results = executor.map(work, todo, chunksize=CHUNKSIZE) if parallel else map(work, todo)
        for plan, duration in zip(todo, results, strict=True):
            durations[plan.index] = duration
            bar.update()
    write_corpus_manifest(out / MANIFEST, audio_dir, plans, durations)
    return {"utterances": count, "generated": len(todo), "kept": count - len(todo),
            "hours": sum(durations.values()) / 3600, "speakers": len({p.speaker for p in plans}),
            "voices": len({p.speaker.split("+")[0] for p in plans}), "pool": len(pool)}


def write_corpus_manifest(path: Path, audio_dir: Path, plans: list[Plan], durations: dict[int, float]) -> None:
    write_manifest(path, (Utterance(str(audio_dir / p.filename), durations[p.index], p.text, speaker=p.speaker,
                                    original_text=p.original_text) for p in plans))
