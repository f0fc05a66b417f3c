#!/usr/bin/env bash
# Adapting the bundled model to your data: WER against minutes of adaptation data and CPU minutes, beside the
# same network trained from scratch on the same rows, for two kinds of new data (figures in RESULTS.md):
#   DOMAIN=an4    AN4's training speakers (recordings the bundled model's mix held; a domain, not a voice),
#                 scored on AN4's 8 dev speakers, whom it never heard; the "all" run is the AN4-by-transfer
#                 candidate for models/an4
#   DOMAIN=voice  a voice no training row used (Kokoro style blend 80) reading prose, scored on unseen
#                 sentences by that voice
#
#   DOMAIN=an4 bash recipes/adaptation/run.sh [--stage N] [--stop-stage M]    (an4 is the default)
#
# Stages (each resumable: re-run the recipe, or from the stage that was cut off):
#   1  data:     an4: the split of recipes/an4_wav (dev = its 8 speakers); voice: prose (stage 1 of
#                recipes/default) rendered by Kokoro blend80 (train, dev and test sentences disjoint);
#                then seeded random 2, 5 and 10 minutes of the training rows, nested
#   2  adapt:    asr train --init-from the bundled model on each subset and on all the training rows
#   3  scratch:  the same network (3 x BiLSTM-224, 8 kHz) from random weights on the same rows, same epochs
#   4  evaluate: every run's kept epoch and the bundled model itself on the test rows through asr evaluate
#                (greedy; every run served with the bundled model's vad.yaml)
#   5  curve:    the table (reports/adaptation/$DOMAIN/curve.md) and plot (recipes/adaptation/curve_$DOMAIN.png)
#   6  frozen:   the 10-minute adaptation again with train.frozen_layers=2 (the subsampling convolution and
#                the lowest BiLSTM kept), scored as in stage 4: does freezing help with little data?
set -euo pipefail
cd "$(dirname "$0")/../.."
. recipes/stages.sh "$@"  # --stage N --stop-stage M, run_stage

BIN=${BIN:-.venv/bin}
PY="$BIN/python"
DOMAIN=${DOMAIN:-an4}
DATA=work/adaptation/$DOMAIN
RUNS=${RUNS:-runs/adaptation/$DOMAIN}
REPORTS=reports/adaptation/$DOMAIN
BUNDLE=asr/assets/default_model
CONFIG=configs/default.yaml
ADAPT_RATE=1e-3  # peak; on AN4's 10-minute rows 1e-4 / 3e-4 / 1e-3 kept 27.4 / 27.4 / 25.6% dev (RESULTS.md)
SCRATCH_RATE=2e-3  # configs/default.yaml's, which trained the bundled network from scratch
case $DOMAIN in  # the plot's title, training rows, the dev rows that pick each run's epoch, the rows scored
  an4)
    TITLE="AN4 (8 unseen dev speakers)"
    TRAIN=work/an4_wav/an4.train.jsonl DEV=work/an4_wav/an4.dev.jsonl TEST=work/an4_wav/an4.dev.jsonl ;;  # models/an4's
  voice)
    TITLE="a new voice (Kokoro blend80), unseen sentences"
    TRAIN=$DATA/train/manifest.jsonl DEV=$DATA/dev/manifest.jsonl TEST=$DATA/test/manifest.jsonl ;;
  *) echo "DOMAIN=$DOMAIN: an4 or voice" >&2; exit 2 ;;
esac
mkdir -p "$DATA" "$RUNS" "$REPORTS"

rows() { if [ "$1" = all ]; then echo "$TRAIN"; else echo "$DATA/train_${1}min.jsonl"; fi; }
# One pass over 2 minutes is 2 batches, over AN4's 38 minutes 27: small sets get more epochs (about 280
# steps), and every run keeps its best dev epoch.
SIZES="2 5 10 all"
epochs() { case $1 in 2) echo 140 ;; 5) echo 70 ;; 10) echo 40 ;; all) echo 50 ;; esac; }
train() {  # NAME SIZE RATE [OVERRIDES...]: one run, its wall and CPU seconds appended to RUN/time.txt
  local name=$1 size=$2 rate=$3
  shift 3
  local run="$RUNS/${name}_$size"
  mkdir -p "$run"
  /usr/bin/time -f "%e %U %S" -a -o "$run/time.txt" "$BIN/asr" train --config "$CONFIG" --out "$run" --quiet \
      model.units=224 data.train_manifest="$(rows "$size")" data.dev_manifest="$DEV" \
      train.epochs="$(epochs "$size")" optim.learning_rate="$rate" optim.warmup_steps=50 \
      train.early_stopping_patience=null "$@"
}
render() {  # TEXT SKIP COUNT PART: Kokoro blend80, prosody drawn, degraded as the bundled model's TTS rows
  [ -f "$DATA/$4/manifest.jsonl" ] || TTS_THREADS=1 "$PY" pipelines/render_tts.py "$1" --engine kokoro \
      --voices blend80 --skip "$2" --count "$3" --vary-prosody --out "$DATA/$4"
}

if run_stage 1 data; then
  if [ "$DOMAIN" = an4 ]; then
    bash recipes/an4_wav/run.sh --stage 1 --stop-stage 1
  else
    [ -f work/prose/train.txt ] || "$PY" pipelines/prose_sentences.py --out work/prose
    # Past the sentences recipes/default renders (its train rows end at 2,620 + 400, its dev and test at 120
    # and 100), so none of these texts is one the bundled model heard.
    render work/prose/dev.txt 200 30 dev
    render work/prose/test.txt 200 60 test
    render work/prose/train.txt 6000 340 train
  fi
  for minutes in 2 5 10; do
    "$PY" pipelines/combine_manifests.py "$DATA/train_${minutes}min.jsonl" "$TRAIN" --minutes "$minutes" --seed 0
  done
fi

if run_stage 2 adapt; then
  for size in $SIZES; do train adapt "$size" "$ADAPT_RATE" train.init_from="$BUNDLE"; done
fi

if run_stage 3 scratch; then
  for size in $SIZES; do train scratch "$size" "$SCRATCH_RATE"; done
fi

if run_stage 4 evaluate; then
  "$BIN/asr" evaluate --manifest "$TEST" --model "$BUNDLE" --decoder greedy --report "$REPORTS/bundle/greedy" \
      --quiet
  for name in adapt scratch; do
    for size in $SIZES; do
      # Served as the bundled model is (0.5 s of context around speech): asr train gives the adapted runs its
      # vad.yaml; the scratch runs get the same, so that only the weights differ.
      [ -f "$RUNS/${name}_$size/vad.yaml" ] || cp "$BUNDLE/vad.yaml" "$RUNS/${name}_$size/"
      "$BIN/asr" evaluate --manifest "$TEST" --model "$RUNS/${name}_$size" --decoder greedy \
          --report "$REPORTS/${name}_$size/greedy" --quiet
    done
  done
fi

if run_stage 5 curve; then
  manifests=()
  for size in $SIZES; do manifests+=("$(rows "$size")"); done
  # shellcheck disable=SC2086  # the sizes are words
  "$PY" pipelines/adaptation_curve.py --reports "$REPORTS" --runs "$RUNS" --sizes $SIZES \
      --manifests "${manifests[@]}" --plot "recipes/adaptation/curve_$DOMAIN.png" \
      --title "$TITLE" > "$REPORTS/curve.md"
  cat "$REPORTS/curve.md"
fi

if run_stage 6 frozen; then
  train adapt_frozen2 10 "$ADAPT_RATE" train.init_from="$BUNDLE" train.frozen_layers=2
  "$BIN/asr" evaluate --manifest "$TEST" --model "$RUNS/adapt_frozen2_10" --decoder greedy \
      --report "$REPORTS/adapt_frozen2_10/greedy" --quiet
  for name in adapt_10 adapt_frozen2_10; do
    "$PY" -c 'import json, sys; print(sys.argv[1], json.load(open(sys.argv[2]))["summary"]["wer"])' "$name" \
        "$REPORTS/$name/greedy/report.json"
  done
fi
