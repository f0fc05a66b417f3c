#!/usr/bin/env bash
# AN4 benchmark from scratch: prepare the Sphinx MFCC features, carve a speaker-disjoint dev split from the
# training speakers, train configs/an4.yaml (resumable: re-running continues an interrupted run), build a
# trigram LM from the training transcripts, and score dev with greedy and beam + LM decoding.
#   bash pipelines/an4.sh [RUN_DIR]        (default runs/an4)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUN=${1:-runs/an4}
DATA=work/an4
mkdir -p "$DATA"
if [ ! -f "$DATA/an4.train.jsonl" ]; then
  "$BIN/asr" prepare an4 ../shared/data/an4_mfcc --out "$DATA/an4.jsonl" --config configs/an4.yaml --quiet
  "$BIN/asr" split "$DATA/an4.jsonl" --dev 0.1 --test 0 --seed 0
fi
if [ -f "$RUN/checkpoints/state.json" ]; then
  "$BIN/asr" train --out "$RUN" --resume --quiet
else
  "$BIN/asr" train --config configs/an4.yaml --out "$RUN" --quiet
fi
"$BIN/python" pipelines/build_lm.py "$DATA/an4.train.jsonl" --order 3 --out "$DATA/an4.train.arpa"
"$BIN/python" pipelines/score_features.py --model "$RUN" --manifest "$DATA/an4.dev.jsonl" \
    --lm "$DATA/an4.train.arpa" --report "reports/an4"
