"""Score a model that reads precomputed features (e.g. AN4's Sphinx MFCC) on a manifest: greedy and beam + LM.

    python pipelines/score_features.py --model runs/an4 --manifest work/an4/an4.dev.jsonl \
        [--lm work/an4/an4.train.arpa --alpha 0.5 --beta 1.0] --report reports/an4

`asr evaluate` transcribes audio; feature manifests have none, so this script feeds the manifest's features
through the same input pipeline as training (normalisation included) and writes one report per decoder
(REPORT/greedy, REPORT/beam_lm) with `asr.report.write_reports`, plus a one-line summary each.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from asr.data import read_manifest
from asr.dataset import predict_rows
from asr.decoders import make_decoder
from asr.decoding import DecodingOptions
from asr.recognizer import load_keras_model
from asr.report import write_reports
from asr.scoring import score


def feature_logits(run: Path, manifest: Path):
    network, config, _ = load_keras_model(run)
    rows = read_manifest(manifest)

    def predict(batch: dict) -> dict:
        return network({"features": batch["features"], "feature_lengths": batch["feature_lengths"]})

    logits = [result["logits"] for result in predict_rows(rows, config, predict)]
    return rows, logits, config, config.output_frame_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="run directory of a feature-input model")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--lm", type=Path, help="ARPA LM for the beam_lm decoder")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--beam-width", type=int, default=32)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()
    rows, logits, config, frame_seconds = feature_logits(args.model, args.manifest)
    # Feature rows have no audio path; their feature file is what identifies them on both sides.
    refs = [replace(row, audio_filepath=row.feature_filepath) for row in rows]
    decoders = {"greedy": make_decoder(config.alphabet())}
    if args.lm:
        decoders["beam_lm"] = make_decoder(config.alphabet(), DecodingOptions(
            "beam_lm", beam_width=args.beam_width, lm_path=str(args.lm), alpha=args.alpha, beta=args.beta))
    for name, decoder in decoders.items():
        hyps = [{"audio_filepath": ref.audio_filepath, "text": decoder.decode(row, frame_seconds).text}
                for ref, row in zip(refs, logits, strict=True)]
        result = score(refs, hyps, ref_path=str(args.manifest), hyp_path=f"{args.model} ({name})")
        write_reports(result, args.report / name)
        print(f"{name}: WER {result.wer:.2%} CER {result.cer:.2%} on {len(refs)} utterances "
              f"(report: {args.report / name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
