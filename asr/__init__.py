"""asr: bidirectional LSTM + CTC speech recognition on Keras 3 / TensorFlow.

    import asr
    model = asr.load_model()                      # the bundled model; or a run dir, .keras file, model folder
    result = model.transcribe("call.wav")         # .text, .words (word, start, end, confidence)
    results = model.transcribe(["a.wav", "b.flac"], decoding=asr.DecodingOptions("beam", beam_width=16))
    result = model.transcribe(samples, sample_rate=16000)   # a numpy array
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# The public API loads on first use, so that `import asr.config` (or asr.data, asr.text, asr.frames) reads a
# config or a manifest without loading TensorFlow. `asr.load_model` (or `import asr.model`) registers the
# custom layers ("asr>LogMelSpectrogram", ...) with Keras, after which a plain
# `keras.saving.load_model("model.keras", safe_mode=True)` finds them.
_PUBLIC = {"DecodingOptions": "asr.decoding", "FileResult": "asr.transcribe", "Recognizer": "asr.recognizer",
           "TranscribeOptions": "asr.transcribe", "VadOptions": "asr.vad", "load_model": "asr.recognizer"}

if TYPE_CHECKING:
    from asr.decoding import DecodingOptions
    from asr.recognizer import Recognizer, load_model
    from asr.transcribe import FileResult, TranscribeOptions
    from asr.vad import VadOptions

__version__ = "0.1.0"
__all__ = ["DecodingOptions", "FileResult", "Recognizer", "TranscribeOptions", "VadOptions", "load_model"]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'asr' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value
