"""Callbacks `asr.train` hands to `fit`: atomic resumable checkpoints, dev WER with early stopping, and a guard
against runs of unusable losses. `RunState` is what a resumed run continues from.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.backend import keras, tf
from asr.config import Config
from asr.ctc_trainer import CTCTrainer
from asr.data import Utterance
from asr.dataset import make_dataset, predict_rows
from asr.decoding import greedy_decode
from asr.model_folder import BEST_WEIGHTS_NAME, LAST_WEIGHTS_NAME, STATE_NAME
from asr.scoring import error_rate
from asr.utils import atomic_path, atomic_write


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
                _atomic_weights(self.model.network, self.folder / BEST_WEIGHTS_NAME)
            else:
                self.state.epochs_without_improvement += 1
            patience = self.config.train.early_stopping_patience
            if patience and self.state.epochs_without_improvement >= patience:
                self.state.stop_reason = f"early stopping: dev WER has not improved for {patience} epochs"
                self.model.stop_training = True
        self.save()

    def save(self) -> None:
        _atomic_weights(self.model, self.folder / LAST_WEIGHTS_NAME)
        self.save_state()

    def save_state(self) -> None:
        with atomic_write(self.folder / STATE_NAME) as handle:
            json.dump(vars(self.state), handle, indent=2)


class DevEvaluation(keras.callbacks.Callback):
    """Greedy-decodes the dev set after each epoch and adds val_loss, val_wer and val_cer to the logs."""

    def __init__(self, rows: Sequence[Utterance], config: Config, announce: bool = True):
        super().__init__()
        self.rows, self.config, self.announce = rows, config, announce
        self.dataset = make_dataset(rows, config, training=False)  # built once, iterated every epoch

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs.update(evaluate_rows(self.model, self.rows, self.config, self.dataset))
        if self.announce:
            print(f"epoch {epoch + 1}: dev loss {logs['val_loss']:.3f}, WER {logs['val_wer']:.2%}, "
              f"CER {logs['val_cer']:.2%}", file=sys.stderr)


class UnusableLossGuard(keras.callbacks.Callback):
    """Stops training with a clear message when batches keep producing unusable losses.

    Unusable: non-finite, or a label too long for its output frames (both zeroed by the trainer).
    """

    def __init__(self, state: RunState, limit: int):
        super().__init__()
        self.state, self.limit = state, limit
        self.previous = 0.0
        self.streak = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.previous = 0.0

    def on_train_batch_end(self, batch, logs=None):
        total = float((logs or {}).get("unusable", 0.0))
        self.streak = self.streak + 1 if total > self.previous else 0
        self.previous = total
        if self.streak >= self.limit:
            self.state.stop_reason = (
                f"stopped: {self.streak} consecutive batches had unusable CTC losses (non-finite, or labels too "
                "long for their audio; zeroed, not applied). "
                "Check that `asr prepare` ran with this config's subsampling, or lower optim.learning_rate.")
            self.model.stop_training = True


def evaluate_rows(trainer: CTCTrainer, rows: Sequence[Utterance], config: Config,
                  dataset: tf.data.Dataset | None = None) -> dict[str, float]:
    """Dev loss (mean over finite losses) and greedy WER/CER over `rows`."""
    results = predict_rows(rows, config, trainer.predict_with_loss, dataset)
    losses = [float(r["loss"]) for r in results if np.isfinite(r["loss"])]
    alphabet = config.alphabet()
    hypotheses = greedy_decode([r["logits"] for r in results], [len(r["logits"]) for r in results], alphabet)
    references = [row.text for row in rows]
    return {"val_loss": float(np.mean(losses)) if losses else float("nan"),
            "val_wer": error_rate(references, hypotheses), "val_cer": error_rate(references, hypotheses, words=False)}


def _atomic_weights(model: keras.Model, path: Path) -> None:
    with atomic_path(path, ".weights.h5") as temporary:
        model.save_weights(temporary)
