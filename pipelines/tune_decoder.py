"""Grid-search the beam_lm decoder's vocabulary, LM weight, word bonus, unseen-word offset and beams on a dev set.

    python pipelines/tune_decoder.py --model RUN_DIR_OR_MODEL --manifest DEV.jsonl --lm lm.arpa \
        [--vocabulary open closed] [--alpha 0 0.5 1.0] [--beta 0 1 2] [--unk-offset 0 -5] [--beam-width 16 32] \
        [--token-beam 4 16] [--out results.json] [--write-decoding FOLDER]

Each setting transcribes the manifest's files as `asr transcribe` does (20 s windows, the model folder's voice
activity detector and vad.yaml), so the chosen setting is tuned for the path it will serve; the model runs
once per distinct speech segment and every setting decodes the same logits. WER (jiwer, references
normalised as training targets are) is printed for greedy, for beam search without the LM at each width,
and for each (beam width, token beam, vocabulary, alpha, beta, unk offset: open vocabulary only); the best
beam_lm setting is printed last (the search itself is `asr.tuning`).
`--write-decoding FOLDER` stores it as that model folder's decoding.yaml (the LM must lie in the folder), so
`asr transcribe` and `asr evaluate` use it by default.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from asr.decoders import make_decoder
from asr.decoding import VOCABULARIES, DecodingOptions
from asr.model_folder import ModelError, write_decoding_options
from asr.text import Alphabet
from asr.tuning import (
    DEFAULT_ALPHAS,
    DEFAULT_BEAM_WIDTHS,
    DEFAULT_BETAS,
    DEFAULT_TOKEN_BEAMS,
    DEFAULT_UNK_OFFSETS,
    DEFAULT_VOCABULARIES,
    best_setting,
    decoding_options,
    load_transcriber,
    tune,
)
from asr.utils import atomic_write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="run directory or .keras file (config beside)")
    parser.add_argument("--manifest", type=Path, required=True, help="dev manifest with audio and text")
    parser.add_argument("--lm", type=Path, required=True, help="ARPA language model (pipelines/build_lm.py)")
    parser.add_argument("--alpha", type=float, nargs="+", default=list(DEFAULT_ALPHAS), help="LM weights")
    parser.add_argument("--beta", type=float, nargs="+", default=list(DEFAULT_BETAS), help="word insertion bonuses")
    parser.add_argument("--beam-width", type=int, nargs="+", default=list(DEFAULT_BEAM_WIDTHS), help="beam widths")
    parser.add_argument("--token-beam", type=int, nargs="+", default=list(DEFAULT_TOKEN_BEAMS),
                        help="beam_lm: the most probable classes tried at each frame (slower when larger)")
    parser.add_argument("--vocabulary", nargs="+", choices=VOCABULARIES, default=list(DEFAULT_VOCABULARIES),
                        help="beam_lm: open (any spelling) and/or closed (only the LM's words)")
    parser.add_argument("--unk-offset", type=float, nargs="+", default=list(DEFAULT_UNK_OFFSETS),
                        help="beam_lm: nats added for each word outside the LM's vocabulary (<= 0)")
    parser.add_argument("--out", type=Path, help="also write every setting and the best as JSON")
    parser.add_argument("--write-decoding", type=Path, metavar="FOLDER",
                        help="store the best setting as FOLDER/decoding.yaml (the model folder holding the LM)")
    args = parser.parse_args(argv)
    try:
        make_decoder(Alphabet(), DecodingOptions("beam_lm", lm_path=args.lm))  # a bad LM fails before the model runs
        transcriber, references, alphabet, audio_seconds = load_transcriber(args.model, args.manifest)
        results = tune(transcriber, references, alphabet, args.lm, args.alpha, args.beta, args.beam_width,
                       args.token_beam, args.unk_offset, args.vocabulary)
    except ValueError as error:  # DecoderError, ManifestError, ModelError, AudioError: bad inputs, not bugs
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(references)} utterances, {audio_seconds:.1f} s of audio (s/s audio: reading, VAD and decoding)")
    print(f"{'decoder':8} {'width':>5} {'tokens':>6} {'vocab':>6} {'alpha':>6} {'beta':>6} {'unk':>6} {'WER':>7} "
          f"{'s/s audio':>9}")
    for r in results:
        cells = [f"{v:>{w}}" if v is not None else " " * w
                 for v, w in ((r.beam_width, 5), (r.token_beam, 6), (r.vocabulary, 6), (r.alpha, 6), (r.beta, 6),
                              (r.unk_offset, 6))]
        print(f"{r.decoder:8} {' '.join(cells)} {r.wer:7.2%} {r.seconds / max(audio_seconds, 1e-9):9.4f}")
    best = best_setting(results)
    print(f"best: --decoder beam_lm --beam-width {best.beam_width} --token-beam {best.token_beam} "
          f"--vocabulary {best.vocabulary} --alpha {best.alpha} --beta {best.beta} --unk-offset {best.unk_offset} "
          f"(WER {best.wer:.2%})")
    if args.out:
        with atomic_write(args.out) as handle:
            json.dump({"settings": [asdict(r) for r in results], "best": asdict(best)}, handle, indent=2)
    if args.write_decoding:
        try:
            print(f"wrote {write_decoding_options(args.write_decoding, decoding_options(best, args.lm))}")
        except ModelError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
