"""Loading a trained model for inference, whatever form it comes in, and running it on waveforms.

Accepted: a run directory (`model.keras` + `config.yaml`), a `.keras` file with its `config.yaml` beside it,
an exported SavedModel folder (`asr export --format savedmodel`), or nothing: the bundled default model.
A published model folder may also hold `decoding.yaml`: its default decoding options (e.g. beam search with
the LM shipped beside it, α/β tuned on dev), and `vad.yaml`: its voice-activity settings (how much audio
around speech its model wants); `asr transcribe`/`asr evaluate` use them unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

import asr.model  # noqa: F401  (registers the custom layers for safe-mode loading)
from asr.audio import AudioError
from asr.backend import keras, tf
from asr.config import Config, ConfigError, load_config
from asr.decoders import make_decoder
from asr.decoding import DecoderError, DecodingOptions
from asr.transcribe import AudioArray, transcribe
from asr.utils import atomic_write
from asr.vad import VadError, VadOptions

BUNDLED_MODEL = Path(__file__).parent / "assets" / "default_model"
CONFIG_NAME = "config.yaml"
DECODING_NAME = "decoding.yaml"
VAD_NAME = "vad.yaml"  # the folder's voice-activity settings, e.g. how much audio its model wants around speech


class ModelError(ValueError):
    pass


@dataclass
class Recognizer:
    config: Config
    source: Path
    _call: object  # (waveforms [B, N] float32, lengths [B] int32) -> (logits [B, T, C], output lengths [B])
    keras_model: keras.Model | None = None  # None for an exported SavedModel
    decoding: DecodingOptions = field(default_factory=DecodingOptions)  # the folder's decoding.yaml, if any
    vad: VadOptions = field(default_factory=VadOptions)  # the folder's vad.yaml, if any

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
        by_name = {result.path: result for result in transcribe(sources, self, decoder, options, progress)}
        results = [by_name[source.name if isinstance(source, AudioArray) else source] for source in sources]
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
    if path is None:
        if not (BUNDLED_MODEL / "model.keras").exists():
            raise ModelError("no bundled default model in this installation; pass --model RUN_DIR (a folder "
                             "from `asr train`) or an exported model")
        path = BUNDLED_MODEL
    path = Path(path)
    if (path / "saved_model.pb").exists():
        return _load_savedmodel(path)
    model, config, keras_file = load_keras_model(path)
    if "waveform" not in {t.name for t in model.inputs}:
        raise ModelError(f"{keras_file}: takes precomputed features, not audio; transcribe needs a waveform model")

    @tf.function(reduce_retracing=True)
    def call(waveforms, lengths):
        outputs = model({"waveform": waveforms, "waveform_lengths": lengths}, training=False)
        return outputs["logits"], outputs["output_lengths"]

    return Recognizer(config, keras_file, call, model, read_decoding_options(keras_file.parent),
                      read_vad_options(keras_file.parent))


def load_keras_model(path: str | Path) -> tuple[keras.Model, Config, Path]:
    """A run directory's (or a .keras file's) model, safe-mode loaded, with the config beside it."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model not found")
    keras_file = path / "model.keras" if path.is_dir() else path
    if keras_file.suffix != ".keras" or not keras_file.is_file():
        raise ModelError(f"{path}: expected a run directory with model.keras, a .keras file, or a SavedModel folder")
    config = _config_beside(keras_file)
    try:
        return keras.saving.load_model(keras_file, safe_mode=True), config, keras_file
    except (ValueError, OSError) as error:
        raise ModelError(f"{keras_file}: cannot load model ({error})") from None


def _load_savedmodel(path: Path) -> Recognizer:
    config = _config_beside(path / "saved_model.pb")
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]

    def call(waveforms, lengths):
        outputs = signature(waveform=waveforms, waveform_lengths=lengths)
        return outputs["logits"], outputs["output_lengths"]

    return Recognizer(config, path, call, decoding=read_decoding_options(path), vad=read_vad_options(path))


def _config_beside(model_file: Path) -> Config:
    config_path = model_file.parent / CONFIG_NAME
    if not config_path.exists():
        raise ModelError(f"{model_file}: no {CONFIG_NAME} beside it (it records the alphabet and front end)")
    try:
        return load_config(config_path)
    except ConfigError as error:
        raise ModelError(f"{config_path}: {error}") from None


def _folder_settings(path: Path) -> dict | None:
    """A model folder's settings file as a mapping, None when the folder has none; errors name the file."""
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ModelError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a mapping of settings")
    return data


def read_decoding_options(folder: Path) -> DecodingOptions:
    """The folder's decoding.yaml (an LM path in it is relative to the folder), or greedy when there is none."""
    path = folder / DECODING_NAME
    data = _folder_settings(path)
    if data is None:
        return DecodingOptions()
    if data.get("lm_path") is not None:
        lm_path = folder / data["lm_path"]
        if not lm_path.is_file():
            raise ModelError(f"{path}: lm_path {data['lm_path']!r} does not exist in {folder}")
        data["lm_path"] = str(lm_path)
    try:
        return DecodingOptions.from_dict(data, str(path))
    except DecoderError as error:
        raise ModelError(str(error)) from None


def read_vad_options(folder: Path) -> VadOptions:
    """The folder's vad.yaml (any `VadOptions` fields), or the defaults when there is none."""
    path = folder / VAD_NAME
    data = _folder_settings(path)
    if data is None:
        return VadOptions()
    if data.get("method") is False:  # YAML 1.1 reads an unquoted `off` as false
        data["method"] = "off"
    try:
        return VadOptions(**data)
    except (TypeError, VadError) as error:  # TypeError: a field VadOptions does not have
        raise ModelError(f"{path}: {error}") from None


def write_decoding_options(folder: Path, options: DecodingOptions) -> Path:
    """Store `options` as the folder's defaults; an LM must lie in the folder and is stored by its name."""
    data = options.to_dict()
    if options.lm_path is not None:
        lm_path = Path(options.lm_path)
        if lm_path.resolve().parent != folder.resolve():
            raise ModelError(f"{lm_path}: copy the LM into {folder} first, so the folder is self-contained")
        data["lm_path"] = lm_path.name
    with atomic_write(folder / DECODING_NAME) as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return folder / DECODING_NAME
