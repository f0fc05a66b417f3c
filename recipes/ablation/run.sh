#!/usr/bin/env bash
# Cell and subsampling ablation on FSDD (pipelines/ablation.py): LSTM, GRU, tanh RNN and IRNN at an equal
# parameter budget, then the LSTM at subsampling ×1-×4, the same data, optimiser and 15 epochs for every run.
# Figures in RESULTS.md.
#
#   bash recipes/ablation/run.sh [--stage N] [--stop-stage M]      (from the repository root or anywhere)
#
# Stages (each resumable: re-run the recipe, or from the stage that was cut off):
#   1  prepare:   FSDD digits at 8 kHz for configs/tiny.yaml (×2 subsampling), split by speaker into
#                 work/fsdd.{train,dev,test}.jsonl (3 training speakers, one dev, one test)
#   2  ablation:  the eight runs into runs/ablation/<name> (a finished run is skipped, an interrupted one
#                 resumed), their table in runs/ablation/results.md
set -euo pipefail
cd "$(dirname "$0")/../.."
. recipes/stages.sh "$@"  # --stage N --stop-stage M, run_stage

BIN=${BIN:-.venv/bin}
CONFIG=configs/tiny.yaml
DATA=work

if run_stage 1 prepare; then
  mkdir -p "$DATA"
  "$BIN/asr" prepare fsdd ../shared/data/fsdd --out "$DATA/fsdd.jsonl" --config "$CONFIG" --quiet
  "$BIN/asr" split "$DATA/fsdd.jsonl" --dev 0.2 --test 0.2 --seed 0
fi

if run_stage 2 ablation; then
  "$BIN/python" pipelines/ablation.py --config "$CONFIG" --out runs/ablation --epochs 15
fi
