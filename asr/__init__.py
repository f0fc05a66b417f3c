"""asr: bidirectional LSTM + CTC speech recognition on Keras 3 / TensorFlow."""

# Importing the layer modules registers the custom layers ("asr>LogMelSpectrogram", ...) with Keras, so that
# after `import asr` a plain `keras.saving.load_model("model.keras", safe_mode=True)` finds them.
from asr import features as _features  # noqa: F401
from asr import model as _model  # noqa: F401
from asr import optim as _optim  # noqa: F401

__version__ = "0.1.0"
