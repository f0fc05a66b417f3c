"""Weight surgery on trained networks: widening the recurrent layers, and averaging runs of one architecture.

**Widening** (Net2Net-style growth, `widen_network`): a network that has stopped improving at its width keeps
what it has learnt and gets new units to learn with: each recurrent layer gains `units - old units` units per
direction with freshly initialised incoming weights (Keras's defaults: Glorot input, orthogonal recurrence,
forget-gate bias 1) and **zero outgoing weights**, into the next layer's input, the recurrence of the old units
and the logits. The widened network's logits therefore equal the old ones (tested), and training then grows the
new units' outgoing weights from their non-zero activations (Chen et al. 2016, Net2Net; zero-initialised
outgoing weights as in GradMax-style growth).

**Averaging** (`average_weights`, checkpoint averaging or a "soup"): fine-tuning stages that started from one
another's weights lie in one basin, so their element-wise mean is a model too, and often a better one than any
of them (Izmailov et al. 2018, SWA; Wortsman et al. 2022, model soups).

`pipelines/widen_model.py` and `pipelines/average_weights.py` are the command lines over model folders.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from asr.backend import keras
from asr.config import Config
from asr.model import acoustic_network, build_inference_model, build_network
from asr.model_folder import save_model
from asr.recognizer import load_keras_model

GATES = {"lstm": 4, "gru": 3}  # gate blocks laid side by side in a Keras kernel's columns
SEED = 0


def widen_columns(matrix: np.ndarray, old: int, new: int, gates: int, fresh: np.ndarray) -> np.ndarray:
    """Per gate block of `old` columns, append `new - old` columns taken from `fresh` (same rows, gates·(new-old))."""
    added = new - old
    blocks = []
    for gate in range(gates):
        blocks += [matrix[..., gate * old:(gate + 1) * old], fresh[..., gate * added:(gate + 1) * added]]
    return np.concatenate(blocks, axis=-1)


def widen_rows(matrix: np.ndarray, old: int, new: int, directions: int) -> np.ndarray:
    """Rows fed by `directions` concatenated blocks of `old` units: zero rows for each block's new units."""
    blocks = []
    for direction in range(directions):
        block = matrix[direction * old:(direction + 1) * old]
        blocks += [block, np.zeros((new - old, *matrix.shape[1:]), matrix.dtype)]
    return np.concatenate(blocks, axis=0)


def widen_cell(kernel, recurrent, bias, old: int, new: int, gates: int, input_from: int | None,
               seed: int, forget_gate: int | None):
    """One direction's (kernel, recurrent kernel, bias), widened; `input_from` = old width of a BiRNN below."""
    added = new - old
    if input_from is not None:  # the layer below grew too: its new units reach this one through zero rows
        kernel = widen_rows(kernel, input_from, new, 2)
    fresh_kernel = keras.initializers.GlorotUniform(seed)((kernel.shape[0], gates * added))
    kernel = widen_columns(kernel, old, new, gates, np.asarray(fresh_kernel, kernel.dtype))
    recurrent = widen_rows(recurrent, old, new, 1)  # new units' state does not touch the old units' gates
    fresh_recurrent = keras.initializers.Orthogonal(seed=seed)((new, gates * added))
    recurrent = widen_columns(recurrent, old, new, gates, np.asarray(fresh_recurrent, recurrent.dtype))
    fresh_bias = np.zeros((*bias.shape[:-1], gates * added), bias.dtype)
    if forget_gate is not None:
        fresh_bias[..., forget_gate * added:(forget_gate + 1) * added] = 1.0  # Keras's unit_forget_bias
    return kernel, recurrent, widen_columns(bias, old, new, gates, fresh_bias)


def widen_network(trained: keras.Model, config: Config, units: int) -> tuple[keras.Model, Config]:
    """A network of `units` per direction that computes what `trained` (built from `config`) computes."""
    model = config.model
    if model.cell not in GATES:
        raise ValueError(f"model.cell {model.cell!r}: only lstm and gru layers can be widened")
    if model.layer_norm:
        raise ValueError("model.layer_norm: widening would change the normalised statistics")
    if units <= model.units:
        raise ValueError(f"--units {units}: must exceed the model's {model.units}")
    wider = dataclasses.replace(config, model=dataclasses.replace(model, units=units))
    network = build_network(wider)
    gates, forget = GATES[model.cell], (1 if model.cell == "lstm" else None)
    for position, layer in enumerate(network.layers):
        weights = trained.get_layer(layer.name).get_weights() if layer.weights else []
        if layer.name.startswith("bi"):
            index = int(layer.name.rsplit("_", 1)[1])
            below = model.units if index else None
            half = len(weights) // 2
            weights = [w
                       for seed, direction in enumerate((weights[:half], weights[half:]), SEED + 2 * position)
                       for w in widen_cell(*direction, model.units, units, gates, below, seed, forget)]
        elif layer.name == "logits":
            weights = [widen_rows(weights[0], model.units, units, 2), weights[1]]
        if weights:
            layer.set_weights(weights)
    return network, wider


def average_weights(weight_sets: list[list[np.ndarray]], names: list[str]) -> list[np.ndarray]:
    """The element-wise mean of equally shaped weight lists (`names` label them in the error)."""
    shapes = [[w.shape for w in weights] for weights in weight_sets]
    for name, shape in zip(names[1:], shapes[1:], strict=True):
        if shape != shapes[0]:
            raise ValueError(f"{name}: its weights do not match {names[0]}'s (a different architecture)")
    return [np.mean(np.stack(group), axis=0).astype(group[0].dtype) for group in zip(*weight_sets, strict=True)]


def widen_model_folder(source: Path, units: int, out: Path) -> tuple[Config, Config, int, int]:
    """Write OUT (model.keras, config.yaml with model.units changed, alphabet.json: a folder `train.init_from`
    reads) widened from SOURCE; returns the old and new configs and weight counts."""
    model, config, _ = load_keras_model(source)
    trained = acoustic_network(model)
    network, wider = widen_network(trained, config, units)
    save_model(out, build_inference_model(network, wider), wider)
    return config, wider, trained.count_params(), network.count_params()


def average_model_folders(sources: list[Path], out: Path) -> Path:
    """Write the mean of the sources' weights to OUT with the first source's config and alphabet."""
    loaded = [load_keras_model(source) for source in sources]
    models = [model for model, _, _ in loaded]
    mean = average_weights([model.get_weights() for model in models], [str(source) for source in sources])
    models[0].set_weights(mean)
    return save_model(out, models[0], loaded[0][1])
