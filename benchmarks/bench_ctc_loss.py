"""CTC loss and its gradient on CPU: keras.ops.ctc_loss (dense labels) against asr.ctc_trainer.ctc_loss (sparse
labels, TensorFlow's C++ kernel), by label length. Prints numbers; asserts nothing.

    python benchmarks/bench_ctc_loss.py [--repeats 5]

Batch 16 of random logits over 30 classes; label lengths drawn between half and all of L; output frames as a
×3-subsampled model gives for speech of that many characters (words: L 5, T 36; sentences: L 150, T 330).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from asr.backend import keras, tf
from asr.ctc_trainer import ctc_loss
from asr.text import BLANK_INDEX

SHAPES = ((5, 36), (35, 180), (85, 260), (150, 330))  # (label length L, output frames T)
BATCH, CLASSES = 16, 30


def timed(function, repeats: int) -> float:
    function()  # trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
        dense = step(lambda *a: keras.ops.ctc_loss(*a, mask_index=BLANK_INDEX), batch)
        sparse = step(ctc_loss, batch)
        difference = float(np.max(np.abs(dense()[0] - sparse()[0]) / np.abs(dense()[0])))
        keras_s, ours_s = timed(dense, args.repeats), timed(sparse, args.repeats)
        print(f"| {width} | {frames} | {keras_s:.3f} | {ours_s:.3f} | {keras_s / ours_s:.1f}× | {difference:.1e} |")


if __name__ == "__main__":
    main()
