#!/usr/bin/env bash
# AN4 by transfer at 16 kHz (#30): the published models/an4 trained on again with every real corpus in
# ../shared/data (more speakers than AN4's 66), then fine-tuned on AN4's training speakers alone; scored on
# the same 8 dev speakers as models/an4, greedy and with its LM re-tuned, beside models/an4 (RESULTS.md).
#
#   bash recipes/an4_transfer/run.sh [--stage N] [--stop-stage M]      (from the repository root or anywhere)
#
# Stages (each resumable: re-run the recipe, or from the stage that was cut off):
#   1  prepare:   AN4 as recipes/an4_wav splits it (dev = its 8 speakers); Speech Commands, LJ Speech, FSDD
#                 and Asterisk imported and split as recipes/default splits them (same seeds), training rows
#                 only (the 8 kHz corpora are resampled to 16 kHz on load: no energy above 4 kHz)
#   2  mix:       asr train --init-from models/an4 on AN4 + the other corpora, one cosine
#   3  finetune:  asr train --init-from stage 2's kept epoch on AN4's training rows alone, one cosine
#   4  lm:        models/an4's LM (the same transcripts) and decoding tuned on dev through the VAD path
#   5  evaluate:  dev greedy and with the LM for stages 2 and 3 and for models/an4, into reports/an4_transfer/
#   6  publish:   copy stage 3's model folder into models/an4 (run it by hand, only when stage 5 says it is
#                 better: the recipe does not replace the published model on its own)
set -euo pipefail
cd "$(dirname "$0")/../.."
. recipes/stages.sh "$@"  # --stage N --stop-stage M, run_stage

BIN=${BIN:-.venv/bin}
PY="$BIN/python"
SHARED=../shared/data
DATA=work/an4_transfer
RUNS=${RUNS:-runs/an4_transfer}
REPORTS=reports/an4_transfer
CONFIG=configs/an4_wav.yaml
SOURCE=models/an4
AN4=work/an4_wav  # recipes/an4_wav's split
MIX_EPOCHS=${MIX_EPOCHS:-5}  # 145 min of audio a pass, ~6 min each on a 2-core AVX2 VM
MIX_RATE=${MIX_RATE:-5e-4}  # a quarter of the rate models/an4 was trained with from scratch
FINETUNE_EPOCHS=${FINETUNE_EPOCHS:-10}
FINETUNE_RATE=${FINETUNE_RATE:-3e-4}
mkdir -p "$DATA" "$RUNS" "$REPORTS"

train() {  # RUN INIT TRAIN EPOCHS RATE: one cosine from INIT's weights, the best dev epoch kept; wall and CPU s
  mkdir -p "$1"
  /usr/bin/time -f "%e %U %S" -a -o "$1/time.txt" "$BIN/asr" train --config "$CONFIG" --out "$1" --quiet \
      --init-from "$2" data.train_manifest="$3" data.dev_manifest="$AN4/an4.dev.jsonl" train.epochs="$4" \
      optim.learning_rate="$5" optim.warmup_steps=100 train.early_stopping_patience=null
}

if run_stage 1 prepare; then
  bash recipes/an4_wav/run.sh --stage 1 --stop-stage 1
  for corpus in speech_commands ljspeech asterisk; do
    "$BIN/asr" prepare tsv "$SHARED/$corpus" --out "$DATA/$corpus.jsonl" --config "$CONFIG" --purpose eval \
        --quiet --rejects-ok
  done
  "$BIN/asr" prepare fsdd "$SHARED/fsdd" --out "$DATA/fsdd.jsonl" --config "$CONFIG" --purpose eval --quiet \
      --rejects-ok
  "$BIN/asr" split "$DATA/fsdd.jsonl" --dev 0.2 --test 0.2 --seed 0
  "$BIN/asr" split "$DATA/asterisk.jsonl" --dev 0.1 --test 0.1 --seed 0
  "$BIN/asr" split "$DATA/speech_commands.jsonl" --dev 0.1 --test 0.15 --seed 0
  "$BIN/asr" split "$DATA/ljspeech.jsonl" --dev 0.1 --test 0.2 --seed 0 --by-text
  for corpus in fsdd asterisk speech_commands ljspeech; do
    "$BIN/asr" prepare manifest "$DATA/$corpus.train.jsonl" --out "$DATA/$corpus.train.ok.jsonl" \
        --config "$CONFIG" --quiet --rejects-ok
  done
  "$PY" pipelines/combine_manifests.py "$DATA/mix.train.jsonl" "$AN4/an4.train.jsonl" \
      "$DATA"/{speech_commands,ljspeech,fsdd,asterisk}.train.ok.jsonl
fi

if run_stage 2 mix; then  # re-running it continues an interrupted run of the same settings
  train "$RUNS/mix" "$SOURCE" "$DATA/mix.train.jsonl" "$MIX_EPOCHS" "$MIX_RATE"
fi

if run_stage 3 finetune; then
  train "$RUNS/finetune" "$RUNS/mix" "$AN4/an4.train.jsonl" "$FINETUNE_EPOCHS" "$FINETUNE_RATE"
fi

if run_stage 4 lm; then
  for run in mix finetune; do
    cp "$SOURCE/lm.arpa" "$RUNS/$run/lm.arpa"  # recipes/an4_wav's: a 3-gram of AN4's training transcripts
    "$PY" pipelines/tune_decoder.py --model "$RUNS/$run" --manifest "$AN4/an4.dev.jsonl" --lm "$RUNS/$run/lm.arpa" \
        --vocabulary open closed --alpha 0.25 0.5 0.75 1 1.5 2 --beta 0 1 2 3 4 5 6 \
        --beam-width 32 --token-beam 16 \
        --out "$RUNS/$run/tuning.json" --write-decoding "$RUNS/$run" | tee "$RUNS/$run/tuning.txt"
  done
fi

if run_stage 5 evaluate; then
  for name in source mix finetune; do
    model="$RUNS/$name"
    [ "$name" = source ] && model=$SOURCE
    "$BIN/asr" evaluate --manifest "$AN4/an4.dev.jsonl" --model "$model" --decoder greedy \
        --report "$REPORTS/$name/greedy" --quiet
    "$BIN/asr" evaluate --manifest "$AN4/an4.dev.jsonl" --model "$model" --report "$REPORTS/$name/beam_lm" --quiet
  done
  for report in "$REPORTS"/*/*/report.json; do
    "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(sys.argv[1], r["wer"], r.get("cer"))' "$report"
  done
fi

if run_stage 6 publish; then
  cp "$RUNS/finetune"/{model.keras,config.yaml,alphabet.json,lm.arpa,decoding.yaml,vad.yaml} "$SOURCE/"
  echo "published: $SOURCE ($(du -sh "$SOURCE" | cut -f1))"
fi
