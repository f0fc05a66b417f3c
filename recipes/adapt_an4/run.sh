#!/usr/bin/env bash
# Adapting the bundled model to AN4: WER against minutes of adaptation data and CPU minutes, beside the same
# network trained from scratch on the same rows; the "all" adapted model is the AN4-by-transfer candidate for
# models/an4. Figures in RESULTS.md; the curve (table and plot) in reports/adapt_an4/.
#
#   bash recipes/adapt_an4/run.sh [--stage N] [--stop-stage M]     (from the repository root or anywhere)
#
# Stages (each resumable: re-run the recipe, or from the stage that was cut off):
#   1  data:     AN4 from waveforms split as recipes/an4_wav does (dev = its 8 speakers, whom the bundled
#                model never heard); seeded random 2, 5 and 10 minutes of the training rows, nested
#   2  adapt:    asr train --init-from the bundled model on each subset and on all 38 minutes
#   3  scratch:  the same network (3 x BiLSTM-224, 8 kHz) from random weights on the same rows, same epochs
#   4  evaluate: every run's kept epoch and the bundled model itself on dev through asr evaluate (greedy,
#                the bundled model's vad.yaml)
#   5  curve:    the table (reports/adapt_an4/curve.md) and plot (recipes/adapt_an4/curve.png)
set -euo pipefail
cd "$(dirname "$0")/../.."
. recipes/stages.sh "$@"  # --stage N --stop-stage M, run_stage

BIN=${BIN:-.venv/bin}
PY="$BIN/python"
DATA=work/adapt_an4
AN4=work/an4_wav
RUNS=${RUNS:-runs/adapt_an4}
REPORTS=reports/adapt_an4
BUNDLE=asr/assets/default_model
CONFIG=configs/default.yaml
SIZES="2 5 10 all"
ADAPT_RATE=1e-3  # peak; on the 10-minute rows 1e-4 / 3e-4 / 1e-3 kept 27.4 / 27.4 / 25.6% dev (RESULTS.md)
SCRATCH_RATE=2e-3  # configs/default.yaml's, which trained the bundled network from scratch
mkdir -p "$DATA" "$RUNS" "$REPORTS"

rows() { if [ "$1" = all ]; then echo "$AN4/an4.train.jsonl"; else echo "$DATA/train_${1}min.jsonl"; fi; }
# One pass over 2 minutes is 2 batches, over all 38 minutes 27: small sets get more epochs (about 280
# steps), and every run keeps its best dev epoch.
epochs() { case $1 in 2) echo 140 ;; 5) echo 70 ;; 10) echo 40 ;; all) echo 50 ;; esac; }
train() {  # NAME SIZE RATE [OVERRIDES...]: one run, its wall and CPU seconds appended to RUN/time.txt
  local name=$1 size=$2 rate=$3
  shift 3
  local run="$RUNS/${name}_$size"
  mkdir -p "$run"
  /usr/bin/time -f "%e %U %S" -a -o "$run/time.txt" "$BIN/asr" train --config "$CONFIG" --out "$run" --quiet \
      model.units=224 data.train_manifest="$(rows "$size")" data.dev_manifest="$AN4/an4.dev.jsonl" \
      train.epochs="$(epochs "$size")" optim.learning_rate="$rate" optim.warmup_steps=50 \
      train.early_stopping_patience=null "$@"
}

if run_stage 1 data; then
  bash recipes/an4_wav/run.sh --stage 1 --stop-stage 1
  for minutes in 2 5 10; do
    "$PY" pipelines/combine_manifests.py "$DATA/train_${minutes}min.jsonl" "$AN4/an4.train.jsonl" \
        --minutes "$minutes" --seed 0
  done
fi

if run_stage 2 adapt; then
  for size in $SIZES; do train adapt "$size" "$ADAPT_RATE" train.init_from="$BUNDLE"; done
fi

if run_stage 3 scratch; then
  for size in $SIZES; do train scratch "$size" "$SCRATCH_RATE"; done
fi

if run_stage 4 evaluate; then
  "$BIN/asr" evaluate --manifest "$AN4/an4.dev.jsonl" --model "$BUNDLE" --decoder greedy \
      --report "$REPORTS/bundle/greedy" --quiet
  for name in adapt scratch; do
    for size in $SIZES; do
      # Served as the bundled model is (0.5 s of context around speech): asr train gives the adapted runs its
      # vad.yaml; the scratch runs get the same, so that only the weights differ.
      [ -f "$RUNS/${name}_$size/vad.yaml" ] || cp "$BUNDLE/vad.yaml" "$RUNS/${name}_$size/"
      "$BIN/asr" evaluate --manifest "$AN4/an4.dev.jsonl" --model "$RUNS/${name}_$size" --decoder greedy \
          --report "$REPORTS/${name}_$size/greedy" --quiet
    done
  done
fi

if run_stage 5 curve; then
  # shellcheck disable=SC2086  # the sizes are words
  "$PY" pipelines/adaptation_curve.py --reports "$REPORTS" --runs "$RUNS" --sizes $SIZES \
      --manifests "$DATA"/train_{2,5,10}min.jsonl "$AN4/an4.train.jsonl" --plot recipes/adapt_an4/curve.png \
      > "$REPORTS/curve.md"
  cat "$REPORTS/curve.md"
fi
