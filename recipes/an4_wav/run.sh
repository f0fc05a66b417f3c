#!/usr/bin/env bash
# AN4 from 16 kHz waveforms through our own log-mel front end, end to end: the published models/an4
# (its MODEL_CARD.md), figures in RESULTS.md.
#
#   bash recipes/an4_wav/run.sh [--stage N] [--stop-stage M]      (from the repository root or anywhere)
#   RUN=runs/other bash recipes/an4_wav/run.sh                     (another run folder; default runs/an4_wav)
#
# Stages (each resumable: re-run the recipe, or from the stage that was cut off):
#   1  prepare:   import ../shared/data/an4_wav (asr prepare an4); dev = the MFCC recipe's 8 dev speakers, so
#                 both recipes are scored on the same people (speaker-disjoint from training); skipped when
#                 work/an4_wav/an4.train.jsonl exists
#   2  train:     configs/an4_wav.yaml into $RUN (re-running continues an interrupted run from its checkpoint)
#   3  publish:   copy the model, config and alphabet into models/an4, with AN4_LICENSE and vad.yaml
#   4  lm:        word 3-gram LM from the training transcripts (models/an4/lm.arpa)
#   5  tune:      α/β on dev with beam width 32, written as models/an4/decoding.yaml (work/an4_wav/tuning.*)
#   6  evaluate:  dev greedy and with the LM, into reports/an4_wav/{greedy,beam_lm}
set -euo pipefail
cd "$(dirname "$0")/../.."
. recipes/stages.sh "$@"  # --stage N --stop-stage M, run_stage

BIN=${BIN:-.venv/bin}
RUN=${RUN:-runs/an4_wav}
DATA=work/an4_wav
MODEL=models/an4
CONFIG=configs/an4_wav.yaml
DEV_SPEAKERS=fjam,mdxn,mfaa,mjhp,mmaf,mmap,msjr,mtcv  # what `asr split --dev 0.1 --seed 0` picks for an4_mfcc
mkdir -p "$DATA"

if run_stage 1 prepare; then
  if [ ! -f "$DATA/an4.train.jsonl" ]; then
    "$BIN/asr" prepare an4 ../shared/data/an4_wav --out "$DATA/an4.jsonl" --config "$CONFIG" --quiet
    "$BIN/asr" split "$DATA/an4.jsonl" --dev-speakers "$DEV_SPEAKERS" --test 0 --seed 0
  fi
fi

if run_stage 2 train; then
  "$BIN/asr" train --config "$CONFIG" --out "$RUN" --quiet
fi

if run_stage 3 publish; then
  mkdir -p "$MODEL"
  cp "$RUN/model.keras" "$RUN/config.yaml" "$RUN/alphabet.json" "$MODEL/"
  install -m 644 ../shared/data/an4_wav/LICENSE "$MODEL/AN4_LICENSE"
  # Decode 0.5 s of audio around each detected speech region (words are still kept only near speech): this
  # model was trained on whole utterances with their silences; 0.1 s costs it 6.8 points of dev WER (HISTORY.md).
  printf 'context_seconds: 0.5\n' > "$MODEL/vad.yaml"
fi

if run_stage 4 lm; then
  "$BIN/python" pipelines/build_lm.py "$DATA/an4.train.jsonl" --order 3 --out "$MODEL/lm.arpa"
fi

if run_stage 5 tune; then
  "$BIN/python" pipelines/tune_decoder.py --model "$MODEL" --manifest "$DATA/an4.dev.jsonl" --lm "$MODEL/lm.arpa" \
      --vocabulary open closed --alpha 0.25 0.5 0.75 1 1.5 2 --beta 0 1 2 3 4 5 6 \
      --beam-width 32 --token-beam 16 \
      --out "$DATA/tuning.json" --write-decoding "$MODEL" | tee "$DATA/tuning.txt"
fi

if run_stage 6 evaluate; then
  "$BIN/asr" evaluate --manifest "$DATA/an4.dev.jsonl" --model "$MODEL" --decoder greedy \
      --report reports/an4_wav/greedy --quiet
  "$BIN/asr" evaluate --manifest "$DATA/an4.dev.jsonl" --model "$MODEL" --report reports/an4_wav/beam_lm --quiet
  echo "published: $MODEL ($(du -sh "$MODEL" | cut -f1))"
fi
