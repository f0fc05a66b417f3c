"""One config object for a training run, loaded from YAML with `key=value` overrides.

Plain dataclasses; `from_dict` is written here rather than taken from a library (dacite, pydantic)
because we want every error to name the full dotted key ("model.units: expected int, got 'big'") and
the range checks live beside the fields they guard.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from asr.frames import FeatureConfig
from asr.text import DEFAULT_CHARACTERS, Alphabet, AlphabetError

CELLS = ("lstm", "gru", "rnn", "irnn")
SUBSAMPLING_KINDS = ("conv", "stack")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine", "inverse_sqrt")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
CPU_LSTM_PATHS = ("auto", "fused", "fused_bf16", "keras")  # asr.cpu_rnn: how a CPU-only run steps its BiLSTMs
SUBSAMPLING_FACTORS = (1, 2, 3, 4)


class ConfigError(ValueError):
    pass


@dataclass
class DataConfig:
    train_manifest: str | None = None
    dev_manifest: str | None = None
    batch_size: int = 16
    max_frames_per_batch: int | None = None  # smaller batches of longer audio: utterances × frames <= this
    bucketing: bool = True  # batch utterances of similar length together
    cache: str | None = None  # folder for log-mel features computed once and reused across epochs and runs
    num_parallel_calls: int = -1  # -1: tf.data.AUTOTUNE

    def check(self) -> None:
        _positive("data.batch_size", self.batch_size)
        if self.max_frames_per_batch is not None:
            _positive("data.max_frames_per_batch", self.max_frames_per_batch)


@dataclass
class AugmentConfig:
    freq_masks: int = 2
    freq_mask_width: int = 15  # SpecAugment F, in feature bins
    time_masks: int = 2
    time_mask_width: int = 40  # SpecAugment T, in frames
    time_mask_max_fraction: float = 0.1  # SpecAugment p: no mask longer than this share of the utterance
    noise_probability: float = 0.0
    noise_snr_db: tuple[float, float] = (10.0, 30.0)
    speed_factors: tuple[float, ...] = ()  # e.g. [0.9, 1.0, 1.1]; empty: off

    def check(self) -> None:
        for name in ("freq_masks", "freq_mask_width", "time_masks", "time_mask_width"):
            _at_least(f"augment.{name}", getattr(self, name), 0)
        _fraction("augment.time_mask_max_fraction", self.time_mask_max_fraction)
        _fraction("augment.noise_probability", self.noise_probability)
        if len(self.noise_snr_db) != 2 or self.noise_snr_db[0] > self.noise_snr_db[1]:
            raise ConfigError(f"augment.noise_snr_db: expected [low, high], got {list(self.noise_snr_db)}")
        if any(not 0.5 <= f <= 2.0 for f in self.speed_factors):
            raise ConfigError(f"augment.speed_factors: each must be in [0.5, 2], got {list(self.speed_factors)}")

    @property
    def changes_waveform(self) -> bool:
        return self.noise_probability > 0 or any(f != 1.0 for f in self.speed_factors)


@dataclass
class ModelConfig:
    input_dim: int | None = None  # precomputed features (e.g. 13 for AN4 MFCC); default: features.n_mels
    subsampling: int = 2
    subsampling_kind: str = "conv"
    conv_channels: int = 64
    cell: str = "lstm"
    units: int = 256  # per direction
    layers: int = 3
    dropout: float = 0.1
    layer_norm: bool = False

    def check(self) -> None:
        if self.subsampling not in SUBSAMPLING_FACTORS:
            raise ConfigError(f"model.subsampling: must be one of {SUBSAMPLING_FACTORS}, got {self.subsampling}")
        _choice("model.subsampling_kind", self.subsampling_kind, SUBSAMPLING_KINDS)
        _choice("model.cell", self.cell, CELLS)
        _positive("model.units", self.units)
        _positive("model.layers", self.layers)
        _positive("model.conv_channels", self.conv_channels)
        _fraction("model.dropout", self.dropout, allow_one=False)
        if self.input_dim is not None:
            _positive("model.input_dim", self.input_dim)


@dataclass
class OptimConfig:
    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    schedule: str = "cosine"
    decay_steps: int | None = None  # default: epochs × steps per epoch
    clip_norm: float | None = 5.0
    precision: str = "float32"

    def check(self) -> None:
        _choice("optim.optimizer", self.optimizer, OPTIMIZERS)
        _choice("optim.schedule", self.schedule, SCHEDULES)
        _choice("optim.precision", self.precision, PRECISIONS)
        if not self.learning_rate > 0:
            raise ConfigError(f"optim.learning_rate: must be positive, got {self.learning_rate}")
        _at_least("optim.warmup_steps", self.warmup_steps, 0)
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ConfigError(f"optim.clip_norm: must be positive or null, got {self.clip_norm}")


@dataclass
class TrainConfig:
    epochs: int = 20
    seed: int = 0
    early_stopping_patience: int | None = 5  # epochs without dev WER improvement
    max_nonfinite_batches: int = 20  # consecutive batches with unusable losses (non-finite or infeasible)
    steps_per_epoch: int | None = None  # default: one pass over the training manifest
    strategy: str = "auto"  # auto | default | mirrored (GPUs on one host) | multi_worker (TF_CONFIG)
    init_from: str | None = None  # fine-tune: start from this model's weights (a model folder or .keras file)
    # With init_from: start the output layer afresh and every other layer from the model, e.g. to adapt it to
    # a new alphabet (the acoustic layers keep what they learnt; the new output layer learns the characters).
    init_new_output: bool = False
    # With init_from: keep the lowest N layers that have weights as the model had them (the subsampling
    # convolution first, then the recurrent layers from the bottom), so that a few minutes of new audio train
    # only what lies above them. 0 trains every layer.
    frozen_layers: int = 0
    # Training on CPU only (a GPU run always steps cuDNN's kernels): fused = asr.cpu_rnn's BiLSTM in float32,
    # fused_bf16 = the same with bfloat16 matrix multiplies, keras = Keras's generic loop, auto = fused_bf16
    # on CPUs with bfloat16 matrix instructions (AMX, AVX-512 BF16), else fused. Saved models are the same
    # standard layers whichever runs.
    cpu_lstm: str = "auto"

    def check(self) -> None:
        _positive("train.epochs", self.epochs)
        _choice("train.cpu_lstm", self.cpu_lstm, CPU_LSTM_PATHS)
        _choice("train.strategy", self.strategy, STRATEGIES)
        _positive("train.max_nonfinite_batches", self.max_nonfinite_batches)
        if self.frozen_layers < 0:
            raise ConfigError(f"train.frozen_layers: must be 0 or more, got {self.frozen_layers}")
        if self.frozen_layers and not self.init_from:
            raise ConfigError("train.frozen_layers: freezing needs trained weights to keep: set train.init_from")


@dataclass
class Config:
    alphabet_characters: str = DEFAULT_CHARACTERS
    features: FeatureConfig = field(default_factory=FeatureConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def check(self) -> None:
        try:
            self.alphabet()
        except AlphabetError as error:
            raise ConfigError(f"alphabet_characters: {error}") from None
        for section in (self.data, self.augment, self.model, self.optim, self.train):
            section.check()

    def alphabet(self) -> Alphabet:
        return Alphabet(self.alphabet_characters)

    @property
    def output_frame_seconds(self) -> float:
        """Duration of one model output frame: the feature hop times the time subsampling."""
        return self.features.hop_length * self.model.subsampling / self.features.sample_rate

    @property
    def input_dim(self) -> int:
        return self.model.input_dim or self.features.n_mels

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({error})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        _resolve_manifests(data, path.parent)
    for override in overrides or []:
        _apply_override(data, override)
    config = from_dict(Config, data, "")
    config.check()
    return config


def save_config(config: Config, path: str | Path) -> None:
    from asr.utils import atomic_write

    with atomic_write(path) as handle:
        yaml.safe_dump(config.to_dict(), handle, sort_keys=False)


def from_dict(cls, data, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        names = ", ".join(f"{where}{k}" for k in sorted(unknown))
        raise ConfigError(f"unknown config key(s): {names} (known: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    values = {name: _convert(hints[name], value, f"{where}{name}") for name, value in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where.rstrip('.') or 'config'}: {error}") from None


def _convert(hint, value, key: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(options[0], value, key)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, f"{key}.")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(_convert(item, v, key) for v in value)
    if hint is float:  # a string too: YAML 1.1 reads 1e-4 (no dot) as one, and learning rates are written so
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if hint in (int, str, bool) and (type(value) is not hint):
        raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")
    return value


def _apply_override(data: dict, override: str) -> None:
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {override!r}: expected key=value, e.g. model.units=128")
    *sections, name = key.split(".")
    node = data
    for section in sections:
        node = node.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {section} is not a section")
    node[name] = yaml.safe_load(raw)


def _resolve_manifests(data: dict, base: Path) -> None:
    """Manifest paths in a config file are relative to the current directory, as users type them.

    Only when such a path does not exist there but does beside the config file is the latter taken.
    """
    section = data.get("data")
    if not isinstance(section, dict):
        return
    for key in ("train_manifest", "dev_manifest"):
        value = section.get(key)
        if isinstance(value, str) and not Path(value).exists() and (base / value).exists():
            section[key] = str(base / value)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _positive(key: str, value) -> None:
    if not value > 0:
        raise ConfigError(f"{key}: must be positive, got {value}")


def _at_least(key: str, value, low) -> None:
    if value < low:
        raise ConfigError(f"{key}: must be at least {low}, got {value}")


def _fraction(key: str, value: float, allow_one: bool = True) -> None:
    if not (0 <= value <= 1 if allow_one else 0 <= value < 1):
        raise ConfigError(f"{key}: must be between 0 and 1, got {value}")


def _choice(key: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{key}: must be one of {', '.join(choices)}, got {value!r}")

