#!/usr/bin/env bash
# The bundled default model from scratch, resumable at every step (re-run after an interruption):
#   1. synthesise the espeak-ng corpus (deterministic, seed 0);
#   2. import synthetic, FSDD and Asterisk audio at 8 kHz against configs/default.yaml's rules;
#   3. speaker-disjoint train/dev/test splits per corpus (Asterisk has one speaker: its split is by prompt);
#   4. train configs/default.yaml;  5. calibrate word confidences on the FSDD and Asterisk dev splits
#   (RUN_DIR/decoding.yaml);  6. evaluate each test split;  7. copy the model into asr/assets/.
#   bash pipelines/default_model.sh [RUN_DIR]     (default runs/default)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUN=${1:-runs/default}
DATA=work/default
CONFIG=configs/default.yaml
mkdir -p "$DATA"
"$BIN/python" pipelines/synthesize_corpus.py --text pipelines/sentences.txt --out work/synth --count 3000 \
    --seed 0 --jobs 2
if [ ! -f "$DATA/default.train.jsonl" ]; then
  "$BIN/asr" prepare manifest work/synth/manifest.jsonl --out "$DATA/synth.jsonl" --config "$CONFIG" --quiet || [ $? -eq 1 ]
  "$BIN/asr" prepare fsdd ../shared/data/fsdd --out "$DATA/fsdd.jsonl" --config "$CONFIG" --quiet || [ $? -eq 1 ]
  "$BIN/asr" prepare tsv ../shared/data/asterisk --out "$DATA/asterisk.jsonl" --config "$CONFIG" --quiet || [ $? -eq 1 ]
  "$BIN/asr" split "$DATA/synth.jsonl" --dev 0.05 --test 0.05 --seed 0
  "$BIN/asr" split "$DATA/fsdd.jsonl" --dev 0.2 --test 0.2 --seed 0
  "$BIN/asr" split "$DATA/asterisk.jsonl" --dev 0.1 --test 0.1 --seed 0
  for part in train dev; do
    cat "$DATA"/synth."$part".jsonl "$DATA"/fsdd."$part".jsonl "$DATA"/asterisk."$part".jsonl \
        > "$DATA/default.$part.jsonl.tmp" && mv "$DATA/default.$part.jsonl.tmp" "$DATA/default.$part.jsonl"
  done
fi
if [ -f "$RUN/checkpoints/state.json" ]; then
  "$BIN/asr" train --out "$RUN" --resume --quiet
else
  "$BIN/asr" train --config "$CONFIG" --out "$RUN" --quiet
fi
"$BIN/python" pipelines/calibrate_confidence.py --model "$RUN" --write \
    --manifest "$DATA/fsdd.dev.jsonl" "$DATA/asterisk.dev.jsonl"
for corpus in synth fsdd asterisk; do
  "$BIN/asr" evaluate --manifest "$DATA/$corpus.test.jsonl" --model "$RUN" --report "reports/default/$corpus" --quiet
done
mkdir -p asr/assets/default_model
cp "$RUN/model.keras" "$RUN/config.yaml" "$RUN/decoding.yaml" asr/assets/default_model/
echo "bundled: asr/assets/default_model ($(du -sh asr/assets/default_model | cut -f1))"
