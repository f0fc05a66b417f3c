"""asr: bidirectional LSTM + CTC speech recognition on Keras 3 / TensorFlow.

    import asr
    model = asr.load_model()                      # the bundled model; or a run dir, .keras file, model folder
    result = model.transcribe("call.wav")         # .text, .words (word, start, end, confidence)
    results = model.transcribe(["a.wav", "b.flac"], decoding=asr.DecodingOptions("beam", beam_width=16))
    result = model.transcribe(samples, sample_rate=16000)   # a numpy array
"""

# Importing the layer modules registers the custom layers ("asr>LogMelSpectrogram", ...) with Keras, so that
# after `import asr` a plain `keras.saving.load_model("model.keras", safe_mode=True)` finds them.
from asr import features as _features  # noqa: F401
from asr import model as _model  # noqa: F401
from asr import optim as _optim  # noqa: F401
from asr.decoding import DecodingOptions
from asr.recognizer import Recognizer, load_model
from asr.transcribe import FileResult, TranscribeOptions
from asr.vad import VadOptions

__version__ = "0.1.0"
__all__ = ["DecodingOptions", "FileResult", "Recognizer", "TranscribeOptions", "VadOptions", "load_model"]
