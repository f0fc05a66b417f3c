"""CTC loss and its gradient on CPU: keras.ops.ctc_loss (dense labels) against asr.ctc_trainer.ctc_loss (sparse
labels, TensorFlow's C++ kernel), by label length. Prints numbers; asserts nothing.

    python benchmarks/bench_ctc_loss.py [--repeats 5]

Batch 16 of random logits over 30 classes; label lengths drawn between half and all of L; output frames as a
×3-subsampled model gives for speech of that many characters (words: L 5, T 36; sentences: L 150, T 330).
"""

from __future__ import annotations

import argparse

import numpy as np
from profile_train_step import median_seconds  # this folder is sys.path[0] when a benchmark runs

from asr.backend import tf
from asr.ctc_trainer import ctc_loss, keras_ctc_loss

SHAPES = ((5, 36), (35, 180), (85, 260), (150, 330))  # (label length L, output frames T)
BATCH, CLASSES = 16, 30


def step(loss_fn, batch):
    """A traced function returning the losses and their gradient with respect to the logits."""
    labels, logits, label_lengths, logit_lengths = batch

    @tf.function
    def run():
        with tf.GradientTape() as tape:
            losses = loss_fn(labels, logits, label_lengths, logit_lengths)
        return losses, tape.gradient(losses, logits)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| L | T | keras.ops.ctc_loss (s) | asr ctc_loss (s) | speed-up | max relative loss difference |")
    print("|---|---|---|---|---|---|")
    for width, frames in SHAPES:
        logits = tf.Variable(rng.standard_normal((BATCH, frames, CLASSES)).astype("float32"))
        label_lengths = tf.constant(rng.integers(width // 2, width + 1, BATCH), tf.int32)
        labels = tf.constant(rng.integers(1, CLASSES, (BATCH, width)), tf.int32) \
            * tf.cast(tf.sequence_mask(label_lengths, width), tf.int32)
        logit_lengths = tf.fill([BATCH], frames)

        batch = (labels, logits, label_lengths, logit_lengths)
        dense = step(keras_ctc_loss, batch)
        sparse = step(ctc_loss, batch)
        difference = float(np.max(np.abs(dense()[0] - sparse()[0]) / np.abs(dense()[0])))
        keras_s, ours_s = median_seconds(dense, args.repeats), median_seconds(sparse, args.repeats)
        print(f"| {width} | {frames} | {keras_s:.3f} | {ours_s:.3f} | {keras_s / ours_s:.1f}× | {difference:.1e} |")


if __name__ == "__main__":
    main()
