#!/usr/bin/env bash
# AN4 from 16 kHz waveforms through our own log-mel front end, end to end, resumable at every step:
#   1. import ../shared/data/an4_wav (asr prepare an4); dev = the MFCC recipe's 8 dev speakers, so both
#      recipes are scored on the same people (speaker-disjoint from training);
#   2. train configs/an4_wav.yaml (re-running continues an interrupted run from its checkpoint);
#   3. a word 3-gram LM from the training transcripts; α/β and beam width tuned on dev;
#   4. publish models/an4 (model.keras, config, alphabet, LM, decoding.yaml) and score dev greedy and with the LM.
#   bash pipelines/an4_wav.sh [RUN_DIR]        (default runs/an4_wav)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUN=${1:-runs/an4_wav}
DATA=work/an4_wav
MODEL=models/an4
CONFIG=configs/an4_wav.yaml
DEV_SPEAKERS=fjam,mdxn,mfaa,mjhp,mmaf,mmap,msjr,mtcv  # what `asr split --dev 0.1 --seed 0` picks for an4_mfcc
mkdir -p "$DATA"
if [ ! -f "$DATA/an4.train.jsonl" ]; then
  "$BIN/asr" prepare an4 ../shared/data/an4_wav --out "$DATA/an4.jsonl" --config "$CONFIG" --quiet
  "$BIN/asr" split "$DATA/an4.jsonl" --dev-speakers "$DEV_SPEAKERS" --test 0 --seed 0
fi
if [ -f "$RUN/checkpoints/state.json" ]; then
  "$BIN/asr" train --out "$RUN" --resume --quiet
else
  "$BIN/asr" train --config "$CONFIG" --out "$RUN" --quiet
fi
mkdir -p "$MODEL"
cp "$RUN/model.keras" "$RUN/config.yaml" "$RUN/alphabet.json" "$MODEL/"
install -m 644 ../shared/data/an4_wav/LICENSE "$MODEL/AN4_LICENSE"
# Decode 0.5 s of audio around each detected speech region (words are still kept only near speech): this
# model was trained on whole utterances with their silences; 0.1 s costs it 6.8 points of dev WER (BENCHMARKS).
printf 'context_seconds: 0.5\n' > "$MODEL/vad.yaml"
"$BIN/python" pipelines/build_lm.py "$DATA/an4.train.jsonl" --order 3 --out "$MODEL/lm.arpa"
"$BIN/python" pipelines/tune_decoder.py --model "$MODEL" --manifest "$DATA/an4.dev.jsonl" --lm "$MODEL/lm.arpa" \
    --alpha 0 0.25 0.5 0.75 1 1.5 --beta 0 0.5 1 2 3 --beam-width 32 \
    --out "$DATA/tuning.json" --write-decoding "$MODEL" | tee "$DATA/tuning.txt"
"$BIN/asr" evaluate --manifest "$DATA/an4.dev.jsonl" --model "$MODEL" --decoder greedy --report reports/an4_wav/greedy --quiet
"$BIN/asr" evaluate --manifest "$DATA/an4.dev.jsonl" --model "$MODEL" --report reports/an4_wav/beam_lm --quiet
echo "published: $MODEL ($(du -sh "$MODEL" | cut -f1))"
