"""Transcription throughput per decoder, and peak memory on 1 min vs 60 min files. Prints numbers only.

    python benchmarks/bench_transcribe.py [--model RUN_DIR] [--manifest M.jsonl] [--repeats 3] [--long-minutes 60]

Throughput: the FSDD test recordings (8 kHz; or the audio of `--manifest`) through
`asr.transcribe.transcribe` with greedy, beam and beam + trigram LM (built from the FSDD training
transcripts), and the model folder's own decoding (`decoding.yaml`, e.g. its shipped LM) when it has one,
median of `--repeats` runs, as × real time (audio seconds / wall seconds) and RTF (wall / audio).
Memory: `asr transcribe` in a child process on a 1-minute and a long file made of Asterisk prompts; peak
RSS from wait4's rusage.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from asr.audio import load_audio, write_audio
from asr.data import read_manifest
from asr.decoders import make_decoder
from asr.decoding import DecodingOptions
from asr.lm import build_lm
from asr.recognizer import load_model
from asr.transcribe import transcribe

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def fsdd_split(split: str) -> list[tuple[str, str]]:
    with (SHARED / "fsdd" / "transcripts.tsv").open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [(str(SHARED / "fsdd" / r["path"]), r["text"]) for r in rows if r["split"] == split]


def throughput(model_path, repeats: int, tmp: Path, manifest: Path | None = None) -> None:
    model = load_model(model_path)
    files = ([row.audio_filepath for row in read_manifest(manifest)] if manifest
             else [path for path, _ in fsdd_split("test")])
    lm_text = tmp / "train.txt"
    lm_text.write_text("\n".join(text for _, text in fsdd_split("train")) + "\n")
    build_lm(lm_text, tmp / "lm.arpa", order=3)
    alphabet = model.config.alphabet()
    decoders = {"greedy": make_decoder(alphabet), "beam (width 32)": make_decoder(alphabet, DecodingOptions("beam")),
                "beam + 3-gram LM (width 32)": make_decoder(alphabet,
                                                             DecodingOptions("beam_lm", lm_path=str(tmp / "lm.arpa")))}
    if model.decoding.lm_path:
        decoders[f"the model's decoding.yaml ({model.decoding.decoder}, width {model.decoding.beam_width}, "
                 f"its {Path(model.decoding.lm_path).name})"] = make_decoder(alphabet, model.decoding)
    print(f"model: {model.source}; {len(files)} files from {manifest or 'the FSDD test split'}\n")
    print("| decoder | audio s | median wall s | × real time | RTF |")
    print("|---|---|---|---|---|")
    for name, decoder in decoders.items():
        walls, audio = [], 0.0
        for run in range(repeats + 1):  # the first run traces the model's graph and is not counted
            start = time.perf_counter()
            results = list(transcribe(files, model, decoder, progress=False))
            if run:
                walls.append(time.perf_counter() - start)
                audio = sum(result.duration for result in results)
        wall = statistics.median(walls)
        print(f"| {name} | {audio:.0f} | {wall:.2f} | {audio / wall:.0f} | {wall / audio:.4f} |", flush=True)


def long_file(path: Path, minutes: float) -> None:
    prompts = [load_audio(p, 8000) for p in sorted((SHARED / "asterisk" / "wav8k").glob("*.wav"))[:40]]
    block = np.concatenate(prompts)
    target = int(minutes * 60 * 8000)
    with_repeats = np.tile(block, target // len(block) + 1)[:target]
    write_audio(path, with_repeats, 8000)


def peak_rss(model_path, audio: Path, out: Path) -> tuple[float, float]:
    command = [sys.executable, "-m", "asr", "transcribe", str(audio), "--out", str(out), "--quiet"]
    if model_path:
        command += ["--model", str(model_path)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status:
        raise RuntimeError(f"{' '.join(command)} failed with status {status}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def memory(model_path, tmp: Path, long_minutes: float) -> None:
    print("\n| file | peak RSS (MiB) | wall s |")
    print("|---|---|---|")
    for minutes in (1, long_minutes):
        audio = tmp / f"{minutes:g}min.wav"
        long_file(audio, minutes)
        rss, wall = peak_rss(model_path, audio, tmp / f"{minutes:g}min.jsonl")
        print(f"| {minutes:g} min | {rss:.0f} | {wall:.1f} |", flush=True)
        audio.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="run directory or exported model (default: bundled)")
    parser.add_argument("--manifest", type=Path, help="time these files instead of the FSDD test split")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-minutes", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        throughput(args.model, args.repeats, Path(folder), args.manifest)
        memory(args.model, Path(folder), args.long_minutes)


if __name__ == "__main__":
    main()
