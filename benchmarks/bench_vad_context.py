"""How much audio to decode around each speech region: WER by `VadOptions.context_seconds`, per model.

    python benchmarks/bench_vad_context.py [--fsdd work/default/fsdd.test.jsonl] [--an4 work/an4_wav/an4.dev.jsonl]

Greedy decoding; words are kept only within the VAD's `pad_seconds` of speech whatever the context. The
bundled model on FSDD test utterances joined into files with 1-2 s pauses (`bench_vad.with_pauses`), and the
AN4 model (`models/an4`) on its dev utterances as they are. "whole" decodes every window that holds speech
whole. Prints a Markdown table of corpus WER (jiwer).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import jiwer
from bench_vad import with_pauses  # the sibling script: run as a script, its folder is on sys.path

import asr
from asr.audio import load_audio
from asr.data import read_manifest
from asr.vad import VAD_OFF, VadOptions, detect

ROOT = Path(__file__).resolve().parents[1]
CONTEXTS = (0.1, 0.25, 0.5, 1.0, None)  # seconds; None: the whole window


def wer_with_context(model: asr.Recognizer, rows, context: float | None) -> float:
    rate, vad, hypotheses = model.sample_rate, VadOptions(), []
    for row in rows:
        audio = load_audio(row.audio_filepath, rate)
        speech = detect(audio, rate, vad)
        chunks = [(0, len(audio))] if context is None and speech.spans else speech.regions(round((context or 0) * rate))
        near = [(a / rate, b / rate) for a, b in speech.regions(round(vad.pad_seconds * rate))]
        words = []
        for low, high in chunks:
            result = model.transcribe(audio[low:high], sample_rate=rate, decoding=asr.DecodingOptions(),
                                      options=asr.TranscribeOptions(vad=VAD_OFF))
            words += [w.word for w in result.words
                      if any(a <= low / rate + (w.start + w.end) / 2 <= b for a, b in near)]
        hypotheses.append(" ".join(words))
    return jiwer.wer([row.text for row in rows], hypotheses)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=ROOT / "work/default/fsdd.test.jsonl")
    parser.add_argument("--an4", type=Path, default=ROOT / "work/an4_wav/an4.dev.jsonl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sets = {"bundled model, FSDD test with pauses": (asr.load_model(), with_pauses(
                    "fsdd", read_manifest(args.fsdd), 10, 8000, Path(folder))),
                "AN4 model, AN4 dev": (asr.load_model(ROOT / "models" / "an4"), read_manifest(args.an4))}
        print("| model, set | " + " | ".join("whole" if c is None else f"{c:g} s" for c in CONTEXTS) + " |")
        print("|---|" + "---|" * len(CONTEXTS))
        for name, (model, rows) in sets.items():
            cells = [f"{wer_with_context(model, rows, c):.1%}" for c in CONTEXTS]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
