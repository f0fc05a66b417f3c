"""asr: bidirectional LSTM + CTC speech recognition on Keras 3 / TensorFlow."""

__version__ = "0.1.0"
