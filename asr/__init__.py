"""asr: bidirectional LSTM + CTC speech recognition on Keras 3 / TensorFlow."""

import os

# TensorFlow prints CUDA probing noise on CPU-only machines; keep real errors, drop the chatter.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
