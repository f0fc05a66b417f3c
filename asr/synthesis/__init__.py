"""Making speech to train and test on, not recognising it: espeak-ng corpora (`asr.synthesis.espeak`), other
TTS engines and neural voices (`asr.synthesis.engines`, `asr.synthesis.neural`), and the telephone-like
degradation they all share (`asr.synthesis.degrade`). The command lines are the scripts in `pipelines/`.

Importing this package loads nothing; its modules need numpy, scipy and soundfile, and the engines their
programs (espeak-ng, flite, ...) or the `tts` extra, never TensorFlow.
"""
