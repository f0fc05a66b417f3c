"""Training with CTC: a Keras `Model` with a custom `train_step`, driven by `fit` and callbacks.

A run directory holds everything needed to resume or to use the result:
  config.yaml, alphabet.json      the resolved config and the output alphabet
  checkpoints/last.weights.h5     network + optimiser state, written atomically every N steps and each epoch
  checkpoints/state.json          epoch, batches done in it, best dev WER, patience (also atomic)
  checkpoints/best.weights.h5     network weights at the best dev WER
  model.keras                     final model (best weights; waveform in, front end inside), safe-mode loadable
  log.csv, tensorboard/           per-epoch loss, dev loss, dev WER/CER
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np

from asr import distribute
from asr.backend import keras, tf
from asr.config import Config, ConfigError, load_config, save_config
from asr.data import atomic_write, read_manifest
from asr.decoding import greedy_decode
from asr.features import subsampled_length
from asr.model import build_inference_model, build_network
from asr.pipeline import make_dataset, steps_per_epoch
from asr.text import ctc_min_frames

CHECKPOINT_EVERY_STEPS = 50
CHECKPOINTS = "checkpoints"


class TrainingError(RuntimeError):
    pass


class CTCTrainer(keras.Model):
    """Wraps the network for `fit`: CTC on true label and output lengths, non-finite losses zeroed."""

    def __init__(self, network: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.nonfinite_tracker = keras.metrics.Sum(name="nonfinite")
        self.built = True  # the wrapped functional network is built; this wrapper adds no weights of its own

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    @tf.function(reduce_retracing=True)
    def predict_with_loss(self, batch):
        outputs = self.network({"features": batch["features"], "feature_lengths": batch["feature_lengths"]},
                               training=False)
        return outputs, keras.ops.ctc_loss(batch["labels"], outputs["logits"], batch["label_lengths"],
                                           outputs["output_lengths"], mask_index=0)

    @property
    def metrics(self):
        return [self.loss_tracker, self.nonfinite_tracker]

    def ctc_losses(self, batch, training: bool):
        """Per-utterance CTC losses with unusable ones set to 0, and how many there were.

        Unusable: non-finite, or a label that cannot fit its output frames. TensorFlow's CPU kernel returns a
        large *finite* loss for the latter rather than inf, so feasibility is checked directly.
        """
        outputs = self.network({"features": batch["features"], "feature_lengths": batch["feature_lengths"]},
                               training=training)
        # keras.ops.ctc_loss takes logits, true lengths on both sides, and blank = index 0.
        losses = keras.ops.ctc_loss(batch["labels"], outputs["logits"], batch["label_lengths"],
                                    outputs["output_lengths"], mask_index=0)
        usable = tf.math.is_finite(losses) & (ctc_min_frames_tf(batch["labels"], batch["label_lengths"])
                                              <= tf.cast(outputs["output_lengths"], tf.int32))
        return tf.where(usable, losses, 0.0), tf.reduce_sum(tf.cast(~usable, tf.float32))

    def train_step(self, data):
        batch, _, _ = keras.utils.unpack_x_y_sample_weight(data)  # fit passes the dict; train_on_batch a tuple
        with tf.GradientTape() as tape:
            losses, nonfinite = self.ctc_losses(batch, training=True)
            kept = tf.maximum(tf.cast(tf.size(losses), tf.float32) - nonfinite, 1.0)
            loss = tf.reduce_sum(losses) / kept
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(loss / replicas)
        variables = self.network.trainable_variables
        gradients = tape.gradient(scaled, variables)
        gradients = [tf.where(tf.math.is_finite(g), g, tf.zeros_like(g)) for g in gradients]
        self.optimizer.apply(gradients, variables)
        self.loss_tracker.update_state(loss)
        self.nonfinite_tracker.update_state(nonfinite)
        return self._logs()

    def _logs(self) -> dict:
        logs = {m.name: m.result() for m in self.metrics}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3.15 averages logs across workers with reduce(axis=0), which needs a dimension to reduce.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def test_step(self, data):
        batch, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        losses, nonfinite = self.ctc_losses(batch, training=False)
        self.loss_tracker.update_state(tf.reduce_mean(losses))
        self.nonfinite_tracker.update_state(nonfinite)
        return self._logs()


def ctc_min_frames_tf(labels: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """`asr.text.ctc_min_frames` for a padded batch: label length plus one blank per repeated pair."""
    labels, lengths = tf.cast(labels, tf.int32), tf.cast(lengths, tf.int32)
    inside = tf.sequence_mask(lengths, tf.shape(labels)[1])
    repeats = (labels[:, 1:] == labels[:, :-1]) & inside[:, 1:]
    return lengths + tf.reduce_sum(tf.cast(repeats, tf.int32), axis=1)


@dataclass
class RunState:
    epoch: int = 0  # epochs fully done
    step_in_epoch: int = 0  # batches done in the current epoch
    best_wer: float | None = None
    best_cer: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0
    finished: bool = False
    stop_reason: str | None = None


class RunCheckpoint(keras.callbacks.Callback):
    """Atomic checkpoints of weights + optimiser + data position; dev WER bookkeeping and early stopping.

    Every worker keeps the bookkeeping (they see identical dev scores, so they stop together) and saves, since
    saving creates variables, which under MultiWorkerMirroredStrategy is a collective step all workers must
    join; only the chief saves into the run directory, the others into a scratch folder (`folder`).
    """

    def __init__(self, folder: Path, state: RunState, config: Config, every_steps: int):
        super().__init__()
        self.folder, self.state, self.config, self.every_steps = folder, state, config, every_steps
        self.folder.mkdir(parents=True, exist_ok=True)

    def on_train_batch_end(self, batch, logs=None):
        self.state.step_in_epoch += 1
        if self.every_steps and self.state.step_in_epoch % self.every_steps == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.state.epoch, self.state.step_in_epoch = epoch + 1, 0
        logs = logs or {}
        if "val_wer" in logs:
            score = (float(logs["val_wer"]), float(logs["val_cer"]))  # CER breaks WER ties (common early on)
            if self.state.best_wer is None or score < (self.state.best_wer, self.state.best_cer):
                self.state.best_wer, self.state.best_cer = score
                self.state.best_epoch = epoch + 1
                self.state.epochs_without_improvement = 0
                _atomic_weights(self.model.network, self.folder / "best.weights.h5")
            else:
                self.state.epochs_without_improvement += 1
            patience = self.config.train.early_stopping_patience
            if patience and self.state.epochs_without_improvement >= patience:
                self.state.stop_reason = f"early stopping: dev WER has not improved for {patience} epochs"
                self.model.stop_training = True
        self.save()

    def save(self) -> None:
        _atomic_weights(self.model, self.folder / "last.weights.h5")
        with atomic_write(self.folder / "state.json") as handle:
            json.dump(vars(self.state), handle, indent=2)


class DevEvaluation(keras.callbacks.Callback):
    """Greedy-decodes the dev set after each epoch and adds val_loss, val_wer and val_cer to the logs."""

    def __init__(self, dataset: tf.data.Dataset, config: Config, announce: bool = True):
        super().__init__()
        self.dataset, self.alphabet, self.announce = dataset, config.alphabet(), announce

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs.update(evaluate_dataset(self.model, self.dataset, self.alphabet))
        if self.announce:
            print(f"epoch {epoch + 1}: dev loss {logs['val_loss']:.3f}, WER {logs['val_wer']:.2%}, "
              f"CER {logs['val_cer']:.2%}", file=sys.stderr)


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training with a clear message when batches keep producing non-finite CTC losses."""

    def __init__(self, state: RunState, limit: int):
        super().__init__()
        self.state, self.limit = state, limit
        self.previous = 0.0
        self.streak = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.previous = 0.0

    def on_train_batch_end(self, batch, logs=None):
        total = float((logs or {}).get("nonfinite", 0.0))
        self.streak = self.streak + 1 if total > self.previous else 0
        self.previous = total
        if self.streak >= self.limit:
            self.state.stop_reason = (
                f"stopped: {self.streak} consecutive batches had non-finite CTC losses (zeroed, not applied). "
                "Check that `asr prepare` ran with this config's subsampling, or lower optim.learning_rate.")
            self.model.stop_training = True


def evaluate_dataset(trainer: CTCTrainer, dataset: tf.data.Dataset, alphabet) -> dict[str, float]:
    references, hypotheses, losses = [], [], []
    for batch in dataset:
        outputs, loss = trainer.predict_with_loss(batch)
        losses += [float(x) for x in loss.numpy() if np.isfinite(x)]
        hypotheses += greedy_decode(outputs["logits"].numpy(), outputs["output_lengths"].numpy(), alphabet)
        references += [alphabet.decode(row[:n]) for row, n in zip(batch["labels"].numpy(),
                                                                     batch["label_lengths"].numpy(), strict=True)]
    return {"val_loss": float(np.mean(losses)) if losses else float("nan"),
            "val_wer": jiwer.wer(references, hypotheses), "val_cer": jiwer.cer(references, hypotheses)}


def make_optimizer(config: Config, total_steps: int) -> keras.optimizers.Optimizer:
    optim = config.optim
    warmup = min(optim.warmup_steps, max(total_steps - 1, 0))
    decay_steps = max((optim.decay_steps or total_steps) - warmup, 1)
    if optim.schedule == "inverse_sqrt":
        learning_rate = InverseSqrtSchedule(optim.learning_rate, max(warmup, 1))
    else:  # cosine, or constant = a cosine that decays to itself
        alpha = 1.0 if optim.schedule == "constant" else 0.01
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else optim.learning_rate, decay_steps, alpha=alpha,
            warmup_target=optim.learning_rate if warmup else None, warmup_steps=warmup)
    kwargs = {"learning_rate": learning_rate, "global_clipnorm": optim.clip_norm}
    if optim.optimizer == "adamw":
        return keras.optimizers.AdamW(weight_decay=optim.weight_decay, **kwargs)
    return keras.optimizers.Adam(**kwargs)


@keras.saving.register_keras_serializable(package="asr")
class InverseSqrtSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak`, then peak · sqrt(warmup / step) (the Transformer schedule)."""

    def __init__(self, peak: float, warmup_steps: int):
        self.peak, self.warmup_steps = peak, warmup_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + 1.0
        warmup = tf.cast(self.warmup_steps, tf.float32)
        return self.peak * tf.minimum(step / warmup, tf.sqrt(warmup / step))

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps}


def check_labels_fit(rows, config: Config, manifest: str) -> None:
    """Refuse to start when a label cannot be emitted in its output frames (CTC loss would be infinite)."""
    rate = config.features.frames_per_second
    bad = [row for row in rows
           if ctc_min_frames(row.text) > subsampled_length(max(1, int(row.duration * rate)), config.model.subsampling)]
    if bad:
        raise TrainingError(
            f"{manifest}: {len(bad)} utterance(s) have labels too long for their audio at subsampling "
            f"{config.model.subsampling}, e.g. {bad[0].source!r}. Re-run `asr prepare` with "
            f"--subsampling {config.model.subsampling} (or --config) to move them to the rejects file.")


@dataclass
class TrainResult:
    state: RunState
    network: keras.Model


def train(config: Config, run_dir: str | Path, resume: bool = False, verbose: int = 1,
          checkpoint_every: int = CHECKPOINT_EVERY_STEPS) -> TrainResult:
    placement = distribute.choose(config.train.strategy)  # first: collective ops are configured at start-up
    chief = placement.is_chief
    run_dir = Path(run_dir)
    state_path = run_dir / CHECKPOINTS / "state.json"
    if resume:
        if not state_path.exists():
            raise TrainingError(f"{run_dir}: nothing to resume (no {CHECKPOINTS}/state.json)")
        state = RunState(**json.loads(state_path.read_text()))
    else:
        if chief and state_path.exists():
            raise TrainingError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
        state = RunState()
        if chief:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(config, run_dir / "config.yaml")
            config.alphabet().save(run_dir / "alphabet.json")

    if not config.data.train_manifest:
        raise ConfigError("data.train_manifest: required for training")
    train_rows = read_manifest(config.data.train_manifest)
    check_labels_fit(train_rows, config, config.data.train_manifest)
    dev_rows = read_manifest(config.data.dev_manifest) if config.data.dev_manifest else []
    keras.utils.set_random_seed(config.train.seed)
    keras.mixed_precision.set_dtype_policy(config.optim.precision)
    steps = config.train.steps_per_epoch or steps_per_epoch(train_rows, config, workers=placement.num_workers)
    if steps < 1:
        raise TrainingError(f"{config.data.train_manifest}: fewer batches than the {placement.num_workers} workers")
    with placement.strategy.scope():
        network = build_network(config)
        trainer = CTCTrainer(network)
        trainer.compile(optimizer=make_optimizer(config, steps * config.train.epochs))
        trainer.optimizer.build(network.trainable_variables)
    # Keras 3.15 remembers the scope's strategy and, in fit, "symbolically builds" the model by reducing a
    # batch taken from the data: that fails on dict batches and would consume a batch. Everything is built
    # already, and fit runs inside the same scope below, so the strategy is found there instead.
    trainer._distribute_strategy = None
    if state.finished:
        print(f"{run_dir}: run already finished ({state.epoch} epochs)", file=sys.stderr)
        return TrainResult(state, network)
    if resume:
        trainer.load_weights(run_dir / CHECKPOINTS / "last.weights.h5")

    callbacks: list[keras.callbacks.Callback] = []
    if dev_rows:
        callbacks.append(DevEvaluation(make_dataset(dev_rows, config, training=False), config, announce=chief))
    scratch = None if chief else tempfile.TemporaryDirectory(prefix="asr-worker-")
    checkpoint = RunCheckpoint(run_dir / CHECKPOINTS if chief else Path(scratch.name), state, config,
                               checkpoint_every)
    checkpoint.set_model(trainer)  # fit sets it too, but a resumed run may have no epochs left to fit
    callbacks += [checkpoint, NonFiniteGuard(state, config.train.max_nonfinite_batches)]
    if chief:
        callbacks += [keras.callbacks.CSVLogger(str(run_dir / "log.csv"), append=True),
                      keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), update_freq="epoch")]

    previous_handler = signal.signal(signal.SIGTERM, _raise_interrupt)
    shard = (placement.worker_index, placement.num_workers)
    try:
        with placement.strategy.scope():  # Keras reads the strategy from the scope when fit runs
            _fit(trainer, train_rows, config, state, steps, callbacks, verbose if chief else 0, shard)
    except KeyboardInterrupt:
        checkpoint.save()
        print(f"\ninterrupted: checkpoint saved at epoch {state.epoch + 1}, batch {state.step_in_epoch}; "
              f"continue with: asr train --out {run_dir} --resume", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_handler)

    if state.stop_reason and state.stop_reason.startswith("stopped"):
        with placement.strategy.scope():
            checkpoint.save()
        raise TrainingError(state.stop_reason)
    best = checkpoint.folder / "best.weights.h5"
    if best.exists():
        network.load_weights(best)
    with placement.strategy.scope():
        export_model(network, config, (run_dir if chief else checkpoint.folder) / "model.keras",
                     waveform_input=not train_rows[0].feature_filepath)
        state.finished = True
        checkpoint.save()
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


def export_model(network: keras.Model, config: Config, path: Path, waveform_input: bool = True) -> None:
    """Save the final model atomically: waveform in (front end inside), or features in for feature corpora."""
    model = build_inference_model(network, config) if waveform_input else network
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    model.save(temporary)
    os.replace(temporary, path)


def _atomic_weights(model: keras.Model, path: Path) -> None:
    temporary = path.with_name(f".{path.name.removesuffix('.weights.h5')}.tmp.weights.h5")
    model.save_weights(temporary)
    os.replace(temporary, path)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def load_run_config(run_dir: Path, config_path: Path | None, overrides: list[str], resume: bool) -> Config:
    """The config for `asr train`: the run's own when resuming (changes would break the checkpoint)."""
    if resume:
        if config_path or overrides:
            raise ConfigError("--resume continues a run with its saved config.yaml; drop --config and overrides")
        return load_config(run_dir / "config.yaml")
    if config_path is None:
        raise ConfigError("--config is required to start a run")
    return load_config(config_path, overrides)
