"""Render sentences with flite, festival, pico, RHVoice or neural voices: engines other than the espeak-ng corpus's.

    python pipelines/render_tts.py MANIFEST... --out work/flite [--engine flite] [--voices kal awb rms slt] \\
        [--exclude-text MANIFEST...] [--count N] [--vary-prosody] [--seed 0]

MANIFEST: prepared manifests whose `text` fields are the sentences; a sentence that any --exclude-text manifest
(or `transcripts.tsv` table) holds is left out, and --count keeps the first N. Every voice speaks every
sentence; --vary-prosody draws a speaking rate and pitch for each recording, and each recording is degraded as
pipelines/synthesize_corpus.py degrades its own, seeded by (seed, index), so a re-run writes the same files and
keeps those already there. A sentence the engine fails on is reported and skipped. Writes
OUT/audio/ENGINE_VOICE_NNNN.wav and OUT/manifest.jsonl (speaker = ENGINE-VOICE). Which voices are kept for
testing and which may be trained on, and why: `asr.synthesis.engines`. Needs the engine: apt-get install flite,
festival festvox-kdlpc16k, libttspico-utils or rhvoice rhvoice-english (or pip install -e '.[tts]').
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from asr.corpora import CorpusError
from asr.data import ManifestError
from asr.synthesis.engines import ENGINES, SAMPLE_RATE, Prosody, render, sentences, speak
from asr.synthesis.neural import NeuralVoiceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifests", type=Path, nargs="+",
                        help="prepared manifests holding the sentences, or .txt files of one sentence per line")
    parser.add_argument("--out", type=Path, required=True, help="folder for audio/ and manifest.jsonl")
    parser.add_argument("--engine", choices=tuple(ENGINES), default="flite")
    parser.add_argument("--voices", nargs="+", help="default: " + ", ".join(
        f"{name} {' '.join(engine.default_voices)}" for name, engine in ENGINES.items()))
    parser.add_argument("--exclude-text", type=Path, nargs="*", default=[], help="manifests of sentences to leave out")
    parser.add_argument("--count", type=int, help="keep the first N sentences (after --skip)")
    parser.add_argument("--skip", type=int, default=0, help="leave out the first N sentences")
    parser.add_argument("--vary-prosody", action="store_true", help="draw a speaking rate and pitch per recording")
    parser.add_argument("--voice-per-sentence", action="store_true",
                        help="each sentence spoken once, by the voices in turn (default: by every voice)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same files")
    parser.add_argument("--sample-rate", type=int, default=SAMPLE_RATE,
                        help="output rate in Hz (the degrading's telephone band needs at least 8000)")
    args = parser.parse_args(argv)
    if args.sample_rate < 8000:
        print(f"error: --sample-rate {args.sample_rate}: below 8000 Hz the telephone band does not fit",
              file=sys.stderr)
        return 2
    engine = ENGINES[args.engine]
    voices = tuple(args.voices or engine.default_voices)
    if engine.program is not None and shutil.which(engine.program) is None:
        print(f"error: {engine.program} not found on PATH: install it with `apt-get install {engine.packages}`",
              file=sys.stderr)
        return 2
    missing = sorted(set(voices) - engine.voices())
    if missing:
        print(f"error: {args.engine} has no voice {', '.join(missing)}", file=sys.stderr)
        return 2
    if engine.synthesize is not None:
        try:  # loads the model once, so that a missing package is one error, not one per sentence
            speak(args.engine, voices[0], "hello", Prosody())
        except NeuralVoiceError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    try:
        texts = sentences(args.manifests, args.exclude_text, args.count, args.skip)
    except (ManifestError, CorpusError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not texts:
        print("error: no sentences left to render", file=sys.stderr)
        return 2
    manifest, failed = render(texts, args.out, args.engine, voices, args.seed, args.vary_prosody,
                              args.voice_per_sentence, args.sample_rate)
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    spoken = "one voice each" if args.voice_per_sentence else f"x {len(voices)} voices"
    print(f"{len(texts)} sentences {spoken} ({len(failed)} failed): {manifest}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
