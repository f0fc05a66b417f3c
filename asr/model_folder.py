"""A model folder and its files: the one module that spells their names.

A run directory from `asr train` is a model folder too; a published one (asr/assets/default_model, models/an4)
is a run directory's model files plus what was tuned for it:

  model.keras        the network (waveform in, front end inside; or features in), safe-mode loadable
  config.yaml        the resolved config: alphabet, front end, model shape
  alphabet.json      the output classes, {"blank_index": 0, "characters": ...}
  decoding.yaml      optional: the default decoding options (an LM in it is named relative to the folder)
  vad.yaml           optional: the voice-activity settings (`VadOptions` fields)
  lm.arpa            optional: the LM that decoding.yaml names
  MODEL_CARD.md      published folders: what it was trained on and how well it does
  checkpoints/       training only: state.json, last.weights.h5, best.weights.h5
  log.csv, tensorboard/

A bare `.keras` file takes the config.yaml (and decoding.yaml, vad.yaml) beside it. An exported SavedModel
folder holds saved_model.pb with config.yaml and alphabet.json.

alphabet.json is kept, and checked. It is the output classes in a form a program serving an exported model
(SavedModel, TFLite) reads without knowing this package's config format, so it is still written beside every
config.yaml; and since it repeats what config.yaml says, a folder whose two copies disagree (one file edited,
or copied from another run) is refused when its config is read, naming alphabet.json, rather than decoding
with one of them silently. A folder without alphabet.json still loads: config.yaml is the source of truth.

No TensorFlow here (paths, YAML and JSON only): a model's `save` is called, Keras loading stays in
`asr.recognizer`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from asr.config import Config, ConfigError, load_config, save_config
from asr.decoding import DecoderError, DecodingOptions
from asr.text import Alphabet
from asr.utils import atomic_path, atomic_write
from asr.vad import VadError, VadOptions

MODEL_NAME = "model.keras"
CONFIG_NAME = "config.yaml"
ALPHABET_NAME = "alphabet.json"
DECODING_NAME = "decoding.yaml"
VAD_NAME = "vad.yaml"  # the folder's voice-activity settings, e.g. how much audio its model wants around speech
LM_NAME = "lm.arpa"
MODEL_CARD_NAME = "MODEL_CARD.md"
SAVED_MODEL_NAME = "saved_model.pb"  # marks an exported SavedModel folder
CHECKPOINTS = "checkpoints"
STATE_NAME = "state.json"  # in checkpoints/: epoch, batches done in it, best dev WER, patience
LAST_WEIGHTS_NAME = "last.weights.h5"  # in checkpoints/: network + optimiser state
BEST_WEIGHTS_NAME = "best.weights.h5"  # in checkpoints/: network weights at the best dev WER

EXPORT_FORMATS = ("savedmodel", "tflite")  # what `asr export` writes (asr.export)
BUNDLED_MODEL = Path(__file__).parent / "assets" / "default_model"


class ModelError(ValueError):
    pass


# --- paths -----------------------------------------------------------------------------------------------------


def config_file(run_dir: Path) -> Path:
    return run_dir / CONFIG_NAME


def model_file(folder: Path) -> Path:
    return folder / MODEL_NAME


def checkpoints_folder(run_dir: Path) -> Path:
    return run_dir / CHECKPOINTS


def state_file(run_dir: Path) -> Path:
    """A run's training state (`asr.callbacks.RunState` as JSON); a run directory holds a run when it exists."""
    return run_dir / CHECKPOINTS / STATE_NAME


def model_source(path: str | Path | None) -> Path:
    """`path` as a Path, or the bundled default model's folder for None."""
    if path is not None:
        return Path(path)
    if not (BUNDLED_MODEL / MODEL_NAME).exists():
        raise ModelError("no bundled default model in this installation; pass --model RUN_DIR (a folder "
                         "from `asr train`) or an exported model")
    return BUNDLED_MODEL


def is_savedmodel(path: Path) -> bool:
    return (path / SAVED_MODEL_NAME).exists()


# --- the model and its config ----------------------------------------------------------------------------------


def locate(path: str | Path) -> tuple[Path, Path]:
    """(the .keras file, its config.yaml) of a run directory or model folder, or of a bare .keras file."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model not found")
    keras_file = path / MODEL_NAME if path.is_dir() else path
    if keras_file.suffix != ".keras" or not keras_file.is_file():
        raise ModelError(f"{path}: expected a run directory with {MODEL_NAME}, a .keras file, or a SavedModel folder")
    return keras_file, config_beside(keras_file)


def config_beside(model_path: Path) -> Path:
    """The config.yaml beside `model_path` (a .keras file or saved_model.pb): it must be there."""
    config_path = model_path.parent / CONFIG_NAME
    if not config_path.is_file():
        raise ModelError(f"{model_path}: no {CONFIG_NAME} beside it (it records the alphabet and front end)")
    return config_path


def read_config(config_path: Path) -> Config:
    """A model's config, checked against the alphabet.json beside it when there is one."""
    try:
        config = load_config(config_path)
    except ConfigError as error:
        raise ModelError(f"{config_path}: {error}") from None
    alphabet_path = config_path.parent / ALPHABET_NAME
    if alphabet_path.is_file():
        try:
            characters = Alphabet.load(alphabet_path).characters
        except (ValueError, KeyError, TypeError, AttributeError) as error:  # not JSON, not a mapping, no characters
            raise ModelError(f"{alphabet_path}: not a readable alphabet ({error!r})") from None
        if characters != config.alphabet_characters:
            raise ModelError(f"{alphabet_path}: characters {characters!r} differ from {CONFIG_NAME}'s alphabet "
                             f"{config.alphabet_characters!r}; one of the two files is not this model's")
    return config


def write_config(folder: Path, config: Config) -> None:
    """config.yaml and the alphabet.json that repeats its alphabet, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    save_config(config, folder / CONFIG_NAME)
    with atomic_path(folder / ALPHABET_NAME) as temporary:
        config.alphabet().save(temporary)


def save_model(folder: Path, model, config: Config) -> Path:
    """A loadable model folder: `model` (a Keras model, saved atomically as model.keras), its config, alphabet."""
    write_config(folder, config)
    with atomic_path(folder / MODEL_NAME, ".keras") as temporary:
        model.save(temporary)
    return folder / MODEL_NAME


# --- decoding.yaml and vad.yaml: the folder's settings ---------------------------------------------------------


def _settings(path: Path) -> dict | None:
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
    data = _settings(path)
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


def write_decoding_options(folder: Path, options: DecodingOptions) -> Path:
    """Store `options` as the folder's defaults; an LM must lie in the folder and is stored by its name."""
    data = options.to_dict()
    if not options.hotwords:  # the default: files written before hotwords existed keep their shape
        del data["hotwords"]
    if options.lm_path is not None:
        lm_path = Path(options.lm_path)
        if lm_path.resolve().parent != folder.resolve():
            raise ModelError(f"{lm_path}: copy the LM into {folder} first, so the folder is self-contained")
        data["lm_path"] = lm_path.name
    return _write_settings(folder / DECODING_NAME, data)


def read_vad_options(folder: Path) -> VadOptions:
    """The folder's vad.yaml (any `VadOptions` fields), or the defaults when there is none."""
    path = folder / VAD_NAME
    data = _settings(path)
    if data is None:
        return VadOptions()
    if data.get("method") is False:  # YAML 1.1 reads an unquoted `off` as false
        data["method"] = "off"
    try:
        return VadOptions(**data)
    except (TypeError, VadError) as error:  # TypeError: a field VadOptions does not have
        raise ModelError(f"{path}: {error}") from None


def write_vad_options(folder: Path, options: VadOptions) -> Path:
    """Store `options` as the folder's voice-activity settings (only the fields that differ from the defaults)."""
    defaults = VadOptions()
    data = {name: value for name, value in vars(options).items() if value != getattr(defaults, name)}
    return _write_settings(folder / VAD_NAME, data)


def inherit_vad_options(source: str | Path, folder: Path) -> Path | None:
    """Give `folder` the voice-activity settings of the model it starts from (`train.init_from`), unless it has
    its own: an adapted model is served as its source was (e.g. the bundled model's 0.5 s of context around
    speech, without which its adapted AN4 models lose many points: recipes/adaptation/RESULTS.md). Returns the
    file written, if any."""
    keras_file, _ = locate(source)
    if (folder / VAD_NAME).exists() or not (keras_file.parent / VAD_NAME).exists():
        return None
    return write_vad_options(folder, read_vad_options(keras_file.parent))


def _write_settings(path: Path, data: dict) -> Path:
    with atomic_write(path) as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path
