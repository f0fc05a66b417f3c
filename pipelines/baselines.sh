#!/usr/bin/env bash
# Peer baselines on the default model's test splits (run pipelines/default_model.sh first for the data):
#   - pocketsphinx (PyPI, its own en-us model) decoding the same files;
#   - the keras.io "CTC ASR" recipe as configs/kerasio.yaml, trained on the same data (resumable).
#   bash pipelines/baselines.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
DATA=work/default
"$BIN/pip" install --quiet pocketsphinx
for corpus in fsdd speech_commands an4 asterisk synth flite; do
  "$BIN/python" pipelines/pocketsphinx_baseline.py --manifest "$DATA/$corpus.test.jsonl" \
      --report "reports/pocketsphinx/$corpus"
done
if [ -f runs/kerasio/checkpoints/state.json ]; then
  "$BIN/asr" train --out runs/kerasio --resume --quiet
else
  "$BIN/asr" train --config configs/kerasio.yaml --out runs/kerasio --quiet
fi
for corpus in synth fsdd asterisk; do
  "$BIN/asr" evaluate --manifest "$DATA/$corpus.test.jsonl" --model runs/kerasio --report "reports/kerasio/$corpus" --quiet
done
