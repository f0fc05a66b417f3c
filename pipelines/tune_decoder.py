"""Grid-search the beam_lm decoder's LM weight (alpha), word bonus (beta) and beam width on a dev set.

    python pipelines/tune_decoder.py --model RUN_DIR_OR_MODEL --manifest DEV.jsonl --lm lm.arpa \
        [--alpha 0 0.5 1.0] [--beta 0 1 2] [--beam-width 16 32] [--out results.json] [--write-decoding FOLDER]

The model runs once over the manifest; every setting then decodes the same logits. WER (jiwer, references
normalised as training targets are) is printed for greedy, for beam search without the LM at each width,
and for each (beam width, alpha, beta); the best beam_lm setting is printed last. `--write-decoding FOLDER`
stores it as that model folder's decoding.yaml (the LM must lie in the folder), so `asr transcribe` and
`asr evaluate` use it by default.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from asr.data import ManifestError, read_manifest
from asr.decoding import DecodingOptions, make_decoder
from asr.text import Alphabet, normalize_text

DEFAULT_ALPHAS = (0.0, 0.5, 1.0)
DEFAULT_BETAS = (0.0, 1.0, 2.0)
DEFAULT_BEAM_WIDTHS = (32,)
BATCH_SIZE = 16


@dataclass
class Setting:
    decoder: str
    beam_width: int | None
    alpha: float | None
    beta: float | None
    wer: float
    seconds: float  # decoding time over the whole set


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER: word edits over reference words (jiwer's alignment; empty references count insertions)."""
    from asr.scoring import align

    counts = [c for c, _ in align(list(references), list(hypotheses), words=True)]
    errors = sum(c.errors for c in counts)
    words = sum(c.ref for c in counts)
    return errors / words if words else float(errors > 0)


def evaluate(decoder, logits: Sequence[np.ndarray], references: Sequence[str], frame_seconds: float
             ) -> tuple[float, float]:
    start = time.perf_counter()
    hypotheses = [decoder.decode(row, frame_seconds).text for row in logits]
    return word_error_rate(references, hypotheses), time.perf_counter() - start


def tune(logits: Sequence[np.ndarray], references: Sequence[str], alphabet: Alphabet, frame_seconds: float,
         lm_path: str | Path, alphas: Sequence[float] = DEFAULT_ALPHAS, betas: Sequence[float] = DEFAULT_BETAS,
         beam_widths: Sequence[int] = DEFAULT_BEAM_WIDTHS) -> list[Setting]:
    """WER of greedy, of beam per width, and of beam_lm per (width, alpha, beta) on precomputed logits."""
    references = [normalize_text(r) for r in references]
    results = [Setting("greedy", None, None, None, *evaluate(make_decoder(alphabet), logits, references,
                                                              frame_seconds))]
    for width in beam_widths:
        decoder = make_decoder(alphabet, DecodingOptions("beam", beam_width=width))
        results.append(Setting("beam", width, None, None, *evaluate(decoder, logits, references, frame_seconds)))
    for width, alpha, beta in itertools.product(beam_widths, alphas, betas):
        options = DecodingOptions("beam_lm", beam_width=width, lm_path=str(lm_path), alpha=alpha, beta=beta)
        decoder = make_decoder(alphabet, options)
        results.append(Setting("beam_lm", width, alpha, beta, *evaluate(decoder, logits, references, frame_seconds)))
    return results


def best_setting(results: Sequence[Setting]) -> Setting:
    """Lowest WER among the beam_lm settings; ties go to the smaller beam (faster), then the earlier row."""
    candidates = [r for r in results if r.decoder == "beam_lm"] or list(results)
    return min(candidates, key=lambda r: (r.wer, r.beam_width or 0))


def compute_logits(model_path: Path, manifest: Path) -> tuple[list[np.ndarray], list[str], Alphabet, float]:
    """Run the model once over the manifest: per-utterance logits, reference texts, alphabet, frame seconds."""
    from asr.recognizer import load_model

    rows = read_manifest(manifest)
    missing = [i for i, row in enumerate(rows, 1) if not row.audio_filepath]
    if missing:
        raise ManifestError(f"{manifest}: rows {missing[:5]} have no audio_filepath")
    model = load_model(model_path)
    return model_logits(model, rows), [row.text for row in rows], model.config.alphabet(), model.frame_seconds


def model_logits(model, rows) -> list[np.ndarray]:
    """Per-utterance logits of a loaded `Recognizer` over manifest rows (whole utterances, no VAD)."""
    from asr.audio import load_audio

    order = sorted(range(len(rows)), key=lambda i: rows[i].duration)  # similar lengths batch with little padding
    logits: list[np.ndarray] = [np.zeros(0)] * len(rows)
    for first in range(0, len(order), BATCH_SIZE):
        batch = order[first:first + BATCH_SIZE]
        waveforms = [load_audio(rows[i].audio_filepath, model.sample_rate) for i in batch]
        for i, row_logits in zip(batch, model.logits(waveforms), strict=True):
            logits[i] = row_logits
    return logits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="run directory or .keras file (config beside)")
    parser.add_argument("--manifest", type=Path, required=True, help="dev manifest with audio and text")
    parser.add_argument("--lm", type=Path, required=True, help="ARPA language model (pipelines/build_lm.py)")
    parser.add_argument("--alpha", type=float, nargs="+", default=list(DEFAULT_ALPHAS), help="LM weights")
    parser.add_argument("--beta", type=float, nargs="+", default=list(DEFAULT_BETAS), help="word insertion bonuses")
    parser.add_argument("--beam-width", type=int, nargs="+", default=list(DEFAULT_BEAM_WIDTHS), help="beam widths")
    parser.add_argument("--out", type=Path, help="also write every setting and the best as JSON")
    parser.add_argument("--write-decoding", type=Path, metavar="FOLDER",
                        help="store the best setting as FOLDER/decoding.yaml (the model folder holding the LM)")
    args = parser.parse_args(argv)
    try:
        make_decoder(Alphabet(), DecodingOptions("beam_lm", lm_path=args.lm))  # a bad LM fails before the model runs
        logits, references, alphabet, frame_seconds = compute_logits(args.model, args.manifest)
        results = tune(logits, references, alphabet, frame_seconds, args.lm, args.alpha, args.beta, args.beam_width)
    except ValueError as error:  # DecoderError, ManifestError, ModelError, AudioError: bad inputs, not bugs
        print(f"error: {error}", file=sys.stderr)
        return 2
    audio_seconds = sum(len(row) for row in logits) * frame_seconds
    print(f"{len(logits)} utterances, {audio_seconds:.1f} s of audio")
    print(f"{'decoder':8} {'width':>5} {'alpha':>6} {'beta':>6} {'WER':>7} {'s/s audio':>9}")
    for r in results:
        cells = [f"{v:>{w}}" if v is not None else " " * w for v, w in ((r.beam_width, 5), (r.alpha, 6), (r.beta, 6))]
        print(f"{r.decoder:8} {' '.join(cells)} {r.wer:7.2%} {r.seconds / max(audio_seconds, 1e-9):9.4f}")
    best = best_setting(results)
    print(f"best: --decoder beam_lm --beam-width {best.beam_width} --alpha {best.alpha} --beta {best.beta} "
          f"(WER {best.wer:.2%})")
    if args.out:
        from asr.utils import atomic_write

        with atomic_write(args.out) as handle:
            json.dump({"settings": [asdict(r) for r in results], "best": asdict(best)}, handle, indent=2)
    if args.write_decoding:
        from asr.recognizer import ModelError, write_decoding_options

        options = DecodingOptions("beam_lm", beam_width=best.beam_width, lm_path=str(args.lm), alpha=best.alpha,
                                  beta=best.beta)
        try:
            print(f"wrote {write_decoding_options(args.write_decoding, options)}")
        except ModelError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
