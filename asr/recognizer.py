"""Loading a trained model for inference, whatever form it comes in, and running it on waveforms.

Accepted: a run directory (`model.keras` + `config.yaml`), a `.keras` file with its `config.yaml` beside it,
an exported SavedModel folder (`asr export --format savedmodel`), or nothing: the bundled default model.
A published model folder may also hold `decoding.yaml`: its default decoding options (e.g. beam search with
the LM shipped beside it, α/β tuned on dev), and `vad.yaml`: its voice-activity settings (how much audio
around speech its model wants); `asr transcribe`/`asr evaluate` use them unless told otherwise.
`asr.model_folder` finds and reads those files; this module loads the network (Keras, TensorFlow) from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import asr.model  # noqa: F401  (registers the custom layers for safe-mode loading)
from asr.audio import AudioError
from asr.backend import keras, tf
from asr.config import Config
from asr.decoders import make_decoder
from asr.decoding import DecodingOptions
from asr.model_folder import (  # noqa: F401  (BUNDLED_MODEL .. write_decoding_options: re-exported, as before)
    BUNDLED_MODEL,
    CONFIG_NAME,
    DECODING_NAME,
    SAVED_MODEL_NAME,
    VAD_NAME,
    ModelError,
    config_beside,
    is_savedmodel,
    locate,
    model_source,
    read_config,
    read_decoding_options,
    read_vad_options,
    write_decoding_options,
)
from asr.transcribe import AudioArray, source_key, transcribe
from asr.vad import VadOptions


@dataclass
class Recognizer:
    config: Config
    source: Path
    _call: object  # (waveforms [B, N] float32, lengths [B] int32) -> (logits [B, T, C], output lengths [B])
    keras_model: keras.Model | None = None  # None for an exported SavedModel
    decoding: DecodingOptions = field(default_factory=DecodingOptions)  # the folder's decoding.yaml, if any
    vad: VadOptions = field(default_factory=VadOptions)  # the folder's vad.yaml, if any

    @property
    def folder(self) -> Path:
        """The model folder: where its decoding.yaml and vad.yaml are (beside a bare .keras file)."""
        return self.source if self.source.is_dir() else self.source.parent

    @property
    def sample_rate(self) -> int:
        return self.config.features.sample_rate

    @property
    def frame_seconds(self) -> float:
        return self.config.output_frame_seconds

    def transcribe(self, audio, sample_rate: int | None = None, decoding: DecodingOptions | None = None,
                   options=None, progress: bool = False):
        """Transcribe a path, a numpy array of samples (give its `sample_rate`), or a list of either.

        One input: its `FileResult` (`.text`, `.words` with times in seconds and confidences), or AudioError
        when it cannot be read. A list: one result per input, in order, a failure carried in its `.error`.
        `decoding` defaults to this model's own (its folder's decoding.yaml, e.g. beam search with its LM);
        `options` (a `TranscribeOptions`) to 20 s windows with the voice activity detector on (the folder's
        vad.yaml settings, if it has one).
        """
        single = not isinstance(audio, list | tuple)
        items = [audio] if single else list(audio)
        if sample_rate is None and any(isinstance(item, np.ndarray) for item in items):
            raise ValueError("sample_rate is needed to transcribe a numpy array")
        sources = [AudioArray(item, sample_rate, f"<array {i}>") if isinstance(item, np.ndarray) else str(item)
                   for i, item in enumerate(items)]
        decoder = make_decoder(self.config.alphabet(), decoding or self.decoding)
        by_key = {result.key: result for result in transcribe(sources, self, decoder, options, progress)}
        results = [by_key[source_key(source)] for source in sources]
        if single and results[0].error:
            raise AudioError(results[0].path, results[0].error.removeprefix(f"{results[0].path}: "))
        return results[0] if single else results

    def logits(self, waveforms: list[np.ndarray]) -> list[np.ndarray]:
        """One [frames, classes] array per waveform, each cut to its true output length."""
        lengths = np.array([len(w) for w in waveforms], np.int32)
        batch = np.zeros((len(waveforms), max(int(lengths.max()), 1)), np.float32)
        for row, waveform in enumerate(waveforms):
            batch[row, :len(waveform)] = waveform
        logits, output_lengths = self._call(tf.constant(batch), tf.constant(lengths))
        logits, output_lengths = logits.numpy(), output_lengths.numpy()
        return [logits[row, :int(n)] for row, n in enumerate(output_lengths)]


def load_model(path: str | Path | None = None) -> Recognizer:
    """A model folder, .keras file or SavedModel ready to transcribe (None: the bundled default model)."""
    path = model_source(path)
    if is_savedmodel(path):
        return _load_savedmodel(path)
    model, config, keras_file = load_keras_model(path, waveform_input=True)

    @tf.function(reduce_retracing=True)
    def call(waveforms, lengths):
        outputs = model({"waveform": waveforms, "waveform_lengths": lengths}, training=False)
        return outputs["logits"], outputs["output_lengths"]

    return Recognizer(config, keras_file, call, model, read_decoding_options(keras_file.parent),
                      read_vad_options(keras_file.parent))


def load_keras_model(path: str | Path, waveform_input: bool = False) -> tuple[keras.Model, Config, Path]:
    """A run directory's (or a .keras file's) model, safe-mode loaded, with the config beside it: the network
    alone, without the folder's decoding or VAD settings (export, init_from and the pipelines need no more).

    `waveform_input`: refuse a model that reads precomputed features (transcribing and exporting need audio in).
    """
    keras_file, config_path = locate(path)
    config = read_config(config_path)
    try:
        model = keras.saving.load_model(keras_file, safe_mode=True)
    except (ValueError, OSError) as error:
        raise ModelError(f"{keras_file}: cannot load model ({error})") from None
    if waveform_input and "waveform" not in {t.name for t in model.inputs}:
        raise ModelError(f"{keras_file}: takes precomputed features, not audio; transcribing and exporting need "
                         "a waveform model")
    return model, config, keras_file


def _load_savedmodel(path: Path) -> Recognizer:
    config = read_config(config_beside(path / SAVED_MODEL_NAME))
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]

    def call(waveforms, lengths):
        outputs = signature(waveform=waveforms, waveform_lengths=lengths)
        return outputs["logits"], outputs["output_lengths"]

    return Recognizer(config, path, call, decoding=read_decoding_options(path), vad=read_vad_options(path))
