"""Training with CTC, top to bottom: read the data, build the network and optimiser, `fit` with callbacks
(`asr.callbacks`), keep the best weights, save the model. The loss lives in `asr.ctc_trainer`, the schedule in
`asr.optim`, the final save in `asr.export`, the run directory's file names in `asr.model_folder`.

A run directory holds everything needed to resume or to use the result:
  config.yaml, alphabet.json      the resolved config and the output alphabet
  checkpoints/last.weights.h5     network + optimiser state, written atomically every N steps and each epoch
                                  (at the end: the last epoch's, whichever epoch was best)
  checkpoints/state.json          epoch, batches done in it, best dev WER, patience (also atomic)
  checkpoints/best.weights.h5     network weights at the best dev WER
  model.keras                     final model (best weights; waveform in, front end inside), safe-mode loadable
  log.csv, tensorboard/           per-epoch loss, dev loss, dev WER/CER
"""

from __future__ import annotations

import json
import re
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from asr import distribute
from asr.backend import keras, tf
from asr.callbacks import DevEvaluation, RunCheckpoint, RunState, UnusableLossGuard
from asr.config import Config, ConfigError, load_config, save_config
from asr.cpu_rnn import training_network
from asr.ctc_trainer import CTCTrainer
from asr.data import read_manifest
from asr.dataset import make_dataset, steps_per_epoch
from asr.export import save_keras_model
from asr.features import subsampled_length
from asr.model import acoustic_network, build_network, cudnn_violations
from asr.model_folder import (
    BEST_WEIGHTS_NAME,
    CHECKPOINTS,
    LAST_WEIGHTS_NAME,
    STATE_NAME,
    ModelError,
    checkpoints_folder,
    config_file,
    inherit_vad_options,
    model_file,
    state_file,
    write_config,
)
from asr.optim import make_optimizer
from asr.recognizer import load_keras_model
from asr.text import ctc_min_frames
from asr.utils import atomic_write

CHECKPOINT_EVERY_STEPS = 50


class TrainingError(RuntimeError):
    pass


def check_labels_fit(rows, config: Config, manifest: str) -> None:
    """Refuse to start when a label cannot be emitted in its output frames (CTC loss would be infinite)."""
    def output_frames(row) -> int:
        return subsampled_length(config.features.frames_for(row.duration, bool(row.feature_filepath)),
                                 config.model.subsampling)

    bad = [row for row in rows if ctc_min_frames(row.text) > output_frames(row)]
    if bad:
        raise TrainingError(
            f"{manifest}: {len(bad)} utterance(s) have labels too long for their audio at subsampling "
            f"{config.model.subsampling}, e.g. {bad[0].source!r}. Re-run `asr prepare` with "
            f"--subsampling {config.model.subsampling} (or --config) to move them to the rejects file.")


def check_files_exist(rows, manifest: str) -> None:
    """Refuse to start when a file is missing: found mid-epoch it would stop the run with a TF traceback."""
    missing = [row.source for row in rows if not Path(row.source).is_file()]
    if missing:
        raise TrainingError(f"{manifest}: {len(missing)} file(s) not found, e.g. {missing[0]!r}. Paths in a "
                            "manifest are relative to its folder; re-run `asr prepare` if the data moved.")


@dataclass
class TrainResult:
    state: RunState
    network: keras.Model


def train(config: Config, run_dir: str | Path, resume: bool = False, verbose: int = 1,
          checkpoint_every: int = CHECKPOINT_EVERY_STEPS) -> TrainResult:
    cluster = distribute.choose(config.train.strategy)  # first: collective ops are configured at start-up
    chief = cluster.is_chief
    run_dir = Path(run_dir)
    if resume:
        state = _read_state(run_dir)
    else:
        if chief and state_file(run_dir).exists():
            raise TrainingError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
        state = RunState()
        if chief:
            write_config(run_dir, config)

    if not config.data.train_manifest:
        raise ConfigError("data.train_manifest: required for training")
    train_rows = read_manifest(config.data.train_manifest)
    check_files_exist(train_rows, config.data.train_manifest)
    check_labels_fit(train_rows, config, config.data.train_manifest)
    dev_rows = read_manifest(config.data.dev_manifest) if config.data.dev_manifest else []
    check_files_exist(dev_rows, config.data.dev_manifest)
    keras.utils.set_random_seed(config.train.seed)
    keras.mixed_precision.set_dtype_policy(config.optim.precision)
    steps = config.train.steps_per_epoch or steps_per_epoch(train_rows, config, workers=cluster.num_workers)
    if steps < 1:
        raise TrainingError(f"{config.data.train_manifest}: fewer batches than the {cluster.num_workers} workers")
    with cluster.strategy.scope():
        network = build_network(config)
        freeze_lowest_layers(network, config.train.frozen_layers)  # before the optimizer takes its variables
        trainer = CTCTrainer(network, training_network(network, config))
        trainer.compile(optimizer=make_optimizer(config, steps * config.train.epochs))
        trainer.optimizer.build(network.trainable_variables)
    if chief and tf.config.list_physical_devices("GPU"):
        for problem in cudnn_violations(network):  # Keras would silently fall back to the slow generic kernel
            print(f"warning: not on cuDNN: {problem}", file=sys.stderr)
    # Keras 3.15 remembers the scope's strategy and, in fit, "symbolically builds" the model by reducing a
    # batch taken from the data: that fails on dict batches and would consume a batch. Everything is built
    # already, and fit runs inside the same scope below, so the strategy is found there instead.
    trainer._distribute_strategy = None
    if state.finished:
        print(f"{run_dir}: run already finished ({state.epoch} epochs)", file=sys.stderr)
        return TrainResult(state, network)
    if resume:
        trainer.load_weights(checkpoints_folder(run_dir) / LAST_WEIGHTS_NAME)
    elif config.train.init_from:
        copy_weights_from(config.train.init_from, network, config)
        if chief and (inherited := inherit_vad_options(config.train.init_from, run_dir)):
            print(f"{inherited}: the voice-activity settings of {config.train.init_from}", file=sys.stderr)

    callbacks: list[keras.callbacks.Callback] = []
    if dev_rows:
        callbacks.append(DevEvaluation(dev_rows, config, announce=chief))
    scratch = None if chief else tempfile.TemporaryDirectory(prefix="asr-worker-")
    checkpoint = RunCheckpoint(checkpoints_folder(run_dir) if chief else Path(scratch.name), state, config,
                               checkpoint_every)
    checkpoint.set_model(trainer)  # fit sets it too, but a resumed run may have no epochs left to fit
    callbacks += [checkpoint, UnusableLossGuard(state, config.train.max_nonfinite_batches)]
    if chief:
        callbacks += [keras.callbacks.CSVLogger(str(run_dir / "log.csv"), append=True),
                      keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), update_freq="epoch")]

    previous_handler = signal.signal(signal.SIGTERM, _raise_interrupt)
    shard = (cluster.worker_index, cluster.num_workers)
    try:
        with cluster.strategy.scope():  # Keras reads the strategy from the scope when fit runs
            _fit(trainer, train_rows, config, state, steps, callbacks, verbose if chief else 0, shard)
    except KeyboardInterrupt:
        checkpoint.save()
        print(f"\ninterrupted: checkpoint saved at epoch {state.epoch + 1}, batch {state.step_in_epoch}; "
              f"continue with: asr train --out {run_dir} --resume", file=sys.stderr)
        raise
    except tf.errors.OpError as error:  # e.g. a file that exists but cannot be decoded, met mid-epoch
        checkpoint.save()
        raise TrainingError(f"{_root_cause(error)}; checkpoint saved at epoch {state.epoch + 1}, batch "
                            f"{state.step_in_epoch}: fix or drop that row, then asr train --out {run_dir} "
                            "--resume") from None
    finally:
        signal.signal(signal.SIGTERM, previous_handler)

    if state.stop_reason and state.stop_reason.startswith("stopped"):
        with cluster.strategy.scope():
            checkpoint.save()
        raise TrainingError(state.stop_reason)
    best = checkpoint.folder / BEST_WEIGHTS_NAME
    if best.exists():
        network.load_weights(best)
    freeze_lowest_layers(network, 0)  # model.keras is the standard model, every layer trainable by whoever loads it
    with cluster.strategy.scope():
        save_keras_model(network, config, model_file(run_dir if chief else checkpoint.folder),
                         waveform_input=not train_rows[0].feature_filepath)
        state.finished = True
        # Not save(): last.weights.h5 keeps the last epoch's weights (the network now holds the best ones), so
        # they are not lost when early stopping or a later epoch's dev WER picked another, and an extension
        # (--resume --epochs) continues from where training stopped.
        checkpoint.save_state()
    if scratch is not None:
        scratch.cleanup()
    return TrainResult(state, network)


def _fit(trainer, rows, config: Config, state: RunState, steps: int, callbacks, verbose: int,
         shard: tuple[int, int]) -> None:
    epochs = config.train.epochs
    if state.step_in_epoch:  # finish the interrupted epoch first, skipping the batches it already trained on
        skip = state.step_in_epoch
        dataset = make_dataset(rows, config, training=True, first_epoch=state.epoch, skip_batches=skip, shard=shard)
        trainer.fit(dataset, initial_epoch=state.epoch, epochs=state.epoch + 1, steps_per_epoch=steps - skip,
                    callbacks=callbacks, verbose=verbose, shuffle=False)
        if trainer.stop_training:
            return
    if state.epoch < epochs:
        dataset = make_dataset(rows, config, training=True, first_epoch=state.epoch, epochs=epochs - state.epoch,
                               shard=shard)
        trainer.fit(dataset, initial_epoch=state.epoch, epochs=epochs, steps_per_epoch=steps,
                    callbacks=callbacks, verbose=verbose, shuffle=False)


OUTPUT_LAYER = "logits"  # asr.model's output Dense: the one layer train.init_new_output starts afresh


def freeze_lowest_layers(network: keras.Model, count: int) -> None:
    """Make the lowest `count` layers with weights (below the output layer) untrainable and every other layer
    trainable (0: all trainable). `train.frozen_layers` (with `train.init_from`)."""
    below_output = [layer for layer in network.layers if layer.weights and layer.name != OUTPUT_LAYER]
    if count > len(below_output):
        raise ConfigError(f"train.frozen_layers: {count}, but the network has {len(below_output)} layers with "
                          f"weights below the output layer ({', '.join(layer.name for layer in below_output)})")
    for index, layer in enumerate(below_output):
        layer.trainable = index >= count


def copy_weights_from(source: str | Path, network: keras.Model, config: Config) -> None:
    """Start from a trained model's weights (fine-tuning): layer by layer, by name and shape.

    The source must share the front end (its config.yaml says), otherwise its inputs would mean something
    else with no shape to show it, and the alphabet unless `train.init_new_output` starts the output layer
    afresh (its classes are the alphabet's).
    """
    try:
        model, theirs, _ = load_keras_model(source)  # weights and config; no decoder, VAD or serving function
    except ModelError as error:
        raise ConfigError(f"train.init_from: {error}") from None
    new_output = config.train.init_new_output
    if theirs.alphabet_characters != config.alphabet_characters and not new_output:
        raise ConfigError(f"train.init_from: {source} has alphabet {theirs.alphabet_characters!r}, this run "
                          f"{config.alphabet_characters!r}; set train.init_new_output=true to start the output "
                          "layer afresh for the new alphabet")
    if theirs.features != config.features:
        raise ConfigError(f"train.init_from: {source} was trained on other features ({theirs.features}); "
                          f"this run has {config.features}")
    trained = acoustic_network(model)
    for layer in network.layers:
        if not layer.weights or (new_output and layer.name == OUTPUT_LAYER):
            continue
        try:
            weights = trained.get_layer(layer.name).get_weights()
        except ValueError:
            raise ConfigError(f"train.init_from: {source} has no layer {layer.name!r}; "
                              "its model section must match this run's") from None
        ours = [tuple(w.shape) for w in layer.weights]
        if [w.shape for w in weights] != ours:
            raise ConfigError(f"train.init_from: layer {layer.name!r} has shapes {[w.shape for w in weights]} "
                              f"in {source}, {ours} here; its model section must match this run's")
        layer.set_weights(weights)


def _root_cause(error: tf.errors.OpError) -> str:
    """The error raised inside the input pipeline (e.g. AudioError: path: reason), not TF's wrapping."""
    causes = re.findall(r"^\s*(?:[\w.]+\.)?(\w+Error): (.+)$", error.message, flags=re.MULTILINE)
    return causes[-1][1] if causes else error.message.strip().splitlines()[0]


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def load_run_config(run_dir: Path, config_path: Path | None, overrides: list[str], resume: bool,
                    epochs: int | None = None) -> Config:
    """The config for `asr train`: the run's own when resuming (changes would break the checkpoint).

    `epochs` (resume only) is the one change allowed: see `extend_run`.
    """
    if epochs is not None and not resume:
        raise ConfigError("--epochs goes with --resume; to start a run set train.epochs=N")
    if resume:
        if config_path or overrides:
            raise ConfigError("--resume continues a run with its saved config.yaml; drop --config and overrides")
        if epochs is not None:
            extend_run(run_dir, epochs)
        return saved_run_config(run_dir)
    if config_path is None:
        raise ConfigError("--config is required to start a run")
    return load_config(config_path, overrides)


def saved_run_config(run_dir: Path) -> Config:
    """The config a run in `run_dir` was started with; a folder holding checkpoints without one is refused with
    what to do (it is left by a run cut off before its first save, or by a folder changed under a run)."""
    if state_file(run_dir).exists() and not config_file(run_dir).exists():
        raise ConfigError(f"{run_dir} holds checkpoints but no {config_file(run_dir).name}, so the run cannot be "
                          f"continued: delete {run_dir} (or choose another --out) to start again")
    return load_config(config_file(run_dir))


def continues_run(run_dir: Path, config: Config) -> bool:
    """Whether starting `config` in `run_dir` is continuing the run already there: True when it holds a
    checkpoint of this same config (a re-run of the command that was cut off), False when it holds no run;
    ConfigError when it holds a run of another config (naming the settings that differ)."""
    if not state_file(run_dir).exists():
        return False
    saved = _flat(saved_run_config(run_dir).to_dict())
    wanted = _flat(config.to_dict())
    changed = [f"{key}: {saved.get(key)!r} -> {wanted.get(key)!r}" for key in sorted(saved.keys() | wanted.keys())
               if saved.get(key) != wanted.get(key)]
    if changed:
        raise ConfigError(f"{run_dir} already holds a run of another config ({'; '.join(changed)}); pass --resume "
                          "to continue it as it was, or choose another --out")
    return True


def _flat(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def extend_run(run_dir: Path, epochs: int) -> None:
    """Raise a run's epoch budget to `epochs` in total, re-opening it if it had finished or stopped early.

    The learning-rate schedule is laid over the new total and the optimiser keeps its step count, so a
    cosine run restarts warm from where the longer curve stands at this step (SGDR-style) and decays to
    zero at the new end. The best checkpoint still wins: a worse dev WER after the restart is not kept.
    """
    state = _read_state(run_dir)
    if load_config(config_file(run_dir)).train.epochs == epochs:
        return  # already extended (a re-run of the same command resumes or reports the run finished)
    if epochs <= state.epoch:
        raise ConfigError(f"--epochs {epochs}: {run_dir} has already trained {state.epoch} epochs; give more")
    if state.stop_reason and state.stop_reason.startswith("stopped"):
        raise TrainingError(f"{run_dir}: {state.stop_reason}; fix the data before extending the run")
    config = load_config(config_file(run_dir), [f"train.epochs={epochs}"])
    # The state first: cut off between the two writes, a re-run of the command still sees the old budget
    # in config.yaml and extends again, rather than finding it extended and the run still marked finished.
    state.finished, state.stop_reason, state.epochs_without_improvement = False, None, 0
    with atomic_write(state_file(run_dir)) as handle:
        json.dump(vars(state), handle, indent=2)
    save_config(config, config_file(run_dir))


def _read_state(run_dir: Path) -> RunState:
    path = state_file(run_dir)
    if not path.exists():
        raise TrainingError(f"{run_dir}: nothing to resume (no {CHECKPOINTS}/{STATE_NAME})")
    return RunState(**json.loads(path.read_text()))
