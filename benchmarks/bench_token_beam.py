"""LM beam search: WER and decoding speed per token beam (classes tried per frame) and beam width.

    python benchmarks/bench_token_beam.py --model asr/assets/default_model --manifest work/default/default.dev.jsonl \
        [--every 2] [--token-beam 16 8 4 3 2] [--beam-width 32] [--repeats 3]

The model runs once over every `--every`-th row of the manifest (whole utterances, no VAD); each setting then
decodes the same logits with the model folder's own LM, alpha and beta. Decoding seconds are the median of
`--repeats` runs; × real time counts decoding only (audio seconds / decoding seconds). Prints numbers only.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from asr.audio import load_audio
from asr.data import read_manifest
from asr.decoders import make_decoder
from asr.recognizer import load_model
from asr.text import normalize_text
from asr.tuning import word_error_rate

BATCH_SIZE = 16


def model_logits(model, rows) -> list[np.ndarray]:
    """Per-utterance logits of a loaded `Recognizer` over manifest rows (whole utterances, no VAD)."""
    order = sorted(range(len(rows)), key=lambda i: rows[i].duration)  # similar lengths batch with little padding
    logits: list[np.ndarray] = [np.zeros(0)] * len(rows)
    for first in range(0, len(order), BATCH_SIZE):
        batch = order[first:first + BATCH_SIZE]
        waveforms = [load_audio(rows[i].audio_filepath, model.sample_rate) for i in batch]
        for i, row_logits in zip(batch, model.logits(waveforms), strict=True):
            logits[i] = row_logits
    return logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="model folder with an LM in its decoding.yaml")
    parser.add_argument("--manifest", type=Path, required=True, help="dev manifest with audio and text")
    parser.add_argument("--every", type=int, default=2, help="use every N-th row (default 2)")
    parser.add_argument("--token-beam", type=int, nargs="+", default=[16, 8, 4, 3, 2])
    parser.add_argument("--beam-width", type=int, nargs="+", default=[32])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = load_model(args.model)
    if model.decoding.decoder != "beam_lm":
        parser.error(f"{args.model}: its decoding.yaml has no LM decoder")
    rows = read_manifest(args.manifest)[::args.every]
    logits, alphabet, frame_seconds = model_logits(model, rows), model.config.alphabet(), model.frame_seconds
    references = [normalize_text(row.text) for row in rows]
    audio = sum(len(row) for row in logits) * frame_seconds
    print(f"model: {args.model}; {len(logits)} utterances ({audio:.0f} s) from {args.manifest}, every "
          f"{args.every}; LM {Path(model.decoding.lm_path).name}, alpha {model.decoding.alpha}, "
          f"beta {model.decoding.beta}\n")
    print("| beam width | token beam | WER | median decoding s | × real time (decoding) |")
    print("|---|---|---|---|---|")
    for width in args.beam_width:
        for token_beam in args.token_beam:
            decoder = make_decoder(alphabet, replace(model.decoding, beam_width=width, token_beam=token_beam))
            walls = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                hypotheses = [decoder.decode(row, frame_seconds).text for row in logits]
                walls.append(time.perf_counter() - start)
            wall = statistics.median(walls)
            print(f"| {width} | {token_beam} | {word_error_rate(references, hypotheses):.2%} | {wall:.2f} | "
                  f"{audio / wall:.0f} |", flush=True)


if __name__ == "__main__":
    main()
