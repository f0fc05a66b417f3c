#!/usr/bin/env bash
# AN4 benchmark from scratch, from the Sphinx MFCC features (../shared/data/an4_mfcc): figures in RESULTS.md.
#
#   bash recipes/an4/run.sh [--stage N] [--stop-stage M]      (from the repository root or anywhere)
#   RUN=runs/other bash recipes/an4/run.sh                     (another run folder; default runs/an4)
#
# Stages (each resumable: re-run the recipe, or from the stage that was cut off):
#   1  prepare:   import the MFCC features (asr prepare an4), carve a speaker-disjoint dev split (10% of the
#                 audio) from the training speakers; skipped when work/an4/an4.train.jsonl exists
#   2  train:     configs/an4.yaml into $RUN (re-running continues an interrupted run)
#   3  lm:        word 3-gram LM from the training transcripts (work/an4/an4.train.arpa)
#   4  score:     dev greedy and beam + LM decoding, into reports/an4/
set -euo pipefail
cd "$(dirname "$0")/../.."
. recipes/stages.sh "$@"  # --stage N --stop-stage M, run_stage

BIN=${BIN:-.venv/bin}
RUN=${RUN:-runs/an4}
DATA=work/an4
CONFIG=configs/an4.yaml
mkdir -p "$DATA"

if run_stage 1 prepare; then
  if [ ! -f "$DATA/an4.train.jsonl" ]; then
    "$BIN/asr" prepare an4 ../shared/data/an4_mfcc --out "$DATA/an4.jsonl" --config "$CONFIG" --quiet
    "$BIN/asr" split "$DATA/an4.jsonl" --dev 0.1 --test 0 --seed 0
  fi
fi

if run_stage 2 train; then
  "$BIN/asr" train --config "$CONFIG" --out "$RUN" --quiet
fi

if run_stage 3 lm; then
  "$BIN/python" pipelines/build_lm.py "$DATA/an4.train.jsonl" --order 3 --out "$DATA/an4.train.arpa"
fi

if run_stage 4 score; then
  "$BIN/python" pipelines/score_features.py --model "$RUN" --manifest "$DATA/an4.dev.jsonl" \
      --lm "$DATA/an4.train.arpa" --report "reports/an4"
fi
