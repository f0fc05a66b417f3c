"""Fit a model's word-confidence calibration on dev manifests and store it in the model folder's decoding.yaml.

    python pipelines/calibrate_confidence.py --manifest work/default/fsdd.dev.jsonl work/default/asterisk.dev.jsonl
    python pipelines/calibrate_confidence.py --model runs/tiny --manifest work/fsdd.dev.jsonl --write

Transcribes each manifest as `asr evaluate` does, but with raw confidences (the folder's decoding options,
calibration reset), labels each hypothesis word correct or wrong by the WER alignment, pools the words of
all manifests and fits Platt scaling (c -> sigmoid(logit(c) / temperature + bias), maximum likelihood; see
asr/confidence.py). Prints AUROC and ECE per manifest before and after; with --write, stores
`confidence_temperature` and `confidence_bias` in MODEL/decoding.yaml, keeping its other options. Fit on dev,
then measure on test with `asr evaluate`: the test split must not take part in the fit.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from asr import confidence
from asr.data import read_manifest
from asr.decoders import make_decoder
from asr.model_folder import write_decoding_options
from asr.recognizer import load_model
from asr.scoring import score
from asr.transcribe import transcribe

DECIMALS = 4  # stored precision of the fitted values


def word_outcomes(model, options, manifest: Path) -> tuple[np.ndarray, np.ndarray]:
    """(raw confidences, correct flags) of the hypothesis words the model produces on `manifest`."""
    refs = read_manifest(manifest)
    paths = [row.audio_filepath for row in refs if row.audio_filepath]
    rows = [result.row() for result in transcribe(paths, model, make_decoder(model.config.alphabet(), options),
                                                  progress=False)]
    outcomes = confidence.word_outcomes(score(refs, rows, n_resamples=0).utterances)
    return outcomes.confidence, outcomes.correct


def describe(name: str, scores: np.ndarray, correct: np.ndarray) -> str:
    auroc, ece = confidence.auroc(scores, correct), confidence.expected_calibration_error(scores, correct)
    return (f"{name}: {len(scores)} words, accuracy {correct.mean():.3f}, mean confidence {scores.mean():.3f}, "
            f"AUROC {'n/a' if auroc is None else f'{auroc:.3f}'}, ECE {ece:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="run directory or model folder (default: the bundled model)")
    parser.add_argument("--manifest", type=Path, nargs="+", required=True, help="dev manifest(s) to fit on")
    parser.add_argument("--write", action="store_true", help="store the fit in the model folder's decoding.yaml")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    raw = replace(model.decoding, confidence_temperature=1.0, confidence_bias=0.0)
    outcomes = {manifest: word_outcomes(model, raw, manifest) for manifest in args.manifest}
    pooled = [np.concatenate(parts) for parts in zip(*outcomes.values(), strict=True)]
    try:
        temperature, bias = confidence.fit_platt(*pooled)
    except confidence.CalibrationError as error:
        print(f"cannot calibrate: {error}", file=sys.stderr)
        return 1
    temperature, bias = round(temperature, DECIMALS), round(bias, DECIMALS)
    print(f"fitted on {len(pooled[0])} words: confidence_temperature {temperature}, confidence_bias {bias}")
    for manifest, (scores, correct) in outcomes.items():
        print("  before  " + describe(str(manifest), scores, correct))
        print("  after   " + describe(str(manifest), confidence.platt(scores, temperature, bias), correct))
    if args.write:
        path = write_decoding_options(model.folder, replace(model.decoding, confidence_temperature=temperature,
                                                            confidence_bias=bias))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
