"""Where one training step's time goes at the shipped size, by op group, against an arithmetic estimate.

    python benchmarks/profile_train_step.py [--batch 32] [--frames 300] [--repeats 7]

One batch of `--batch` utterances of `--frames` feature frames (8 kHz, 48 mels, ×3 subsampling, 3 × BiLSTM-224:
the bundled model's shape) is timed, median of `--repeats`, as:
  - the whole train step (CTC loss, gradients, AdamW) on each `train.cpu_lstm` path;
  - one BiLSTM-224 layer (448 inputs) forward + backward, on each path;
  - the same layer's recurrence alone: its per-step state multiplies, nothing else (the loop's floor);
and the step's multiply-add count is divided by this machine's measured large-matmul rate (float32 and
bfloat16), the "could do" figure the step is compared with.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from asr.backend import keras, tf
from asr.config import CPU_LSTM_PATHS, load_config
from asr.cpu_rnn import FusedBidirectionalLSTM, training_network
from asr.ctc_trainer import CTCTrainer
from asr.model import build_network
from asr.optim import make_optimizer

SHIPPED = ["features.sample_rate=8000", "features.n_mels=48", "model.subsampling=3", "model.units=224",
           "model.layers=3", "model.conv_channels=128"]
LABELS_PER_UTTERANCE = 20


def median_seconds(run, repeats: int) -> float:
    run()
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_rate(dtype, repeats: int) -> float:
    """FLOP/s of a large [4800, 448] x [448, 896] product: what the cores do on the input projections."""
    a, b = tf.cast(tf.random.normal([4800, 448]), dtype), tf.cast(tf.random.normal([448, 896]), dtype)
    product = tf.function(lambda: tf.matmul(a, b))
    return 2 * 4800 * 448 * 896 / median_seconds(lambda: product().numpy(), repeats)


def bilstm_flops(batch: int, steps: int, inputs: int, units: int) -> float:
    """Forward + backward multiply-adds × 2 of one bidirectional layer: input and recurrent products, and
    their gradients (inputs and weights), i.e. three times the forward products."""
    forward = 2 * batch * steps * 4 * units * (inputs + units) * 2  # two directions
    return 3 * forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=300, help="feature frames per utterance (100 per second)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    config = load_config(None, SHIPPED)
    steps = -(-args.frames // config.model.subsampling)
    lengths = rng.integers(args.frames // 2, args.frames + 1, args.batch).astype("int32")
    lengths[0] = args.frames
    batch = {"features": tf.constant(rng.normal(size=(args.batch, args.frames, config.input_dim)), tf.float32),
             "feature_lengths": tf.constant(lengths),
             "labels": tf.constant(rng.integers(1, 28, (args.batch, LABELS_PER_UTTERANCE)), tf.int32),
             "label_lengths": tf.fill([args.batch], LABELS_PER_UTTERANCE)}
    units, width = config.model.units, 2 * config.model.units
    total_flops = bilstm_flops(args.batch, steps, config.model.conv_channels, units) \
        + 2 * bilstm_flops(args.batch, steps, width, units)
    fp32, bf16 = matmul_rate(tf.float32, args.repeats), matmul_rate(tf.bfloat16, args.repeats)
    print(f"batch {args.batch} × {args.frames} frames ({args.batch * args.frames / 100:.0f} s of audio), "
          f"{steps} BiLSTM steps; median of {args.repeats}\n")
    print(f"BiLSTM arithmetic per step: {total_flops / 1e9:.1f} GFLOP; large matmuls here run at "
          f"{fp32 / 1e9:.0f} GFLOP/s float32, {bf16 / 1e9:.0f} GFLOP/s bfloat16 -> "
          f"{total_flops / fp32:.3f} s / {total_flops / bf16:.3f} s if every product ran that fast\n")

    print("| what | train.cpu_lstm | seconds | audio s / wall s |")
    print("|---|---|---|---|")
    audio = float(lengths.sum()) / 100
    for path in (path for path in CPU_LSTM_PATHS if path != "auto"):
        network = build_network(load_config(None, [*SHIPPED, f"train.cpu_lstm={path}"]))
        trainer = CTCTrainer(network, training_network(network, load_config(None, [f"train.cpu_lstm={path}"])))
        trainer.compile(optimizer=make_optimizer(config, 1000))
        seconds = median_seconds(lambda trainer=trainer: trainer.train_on_batch(batch), args.repeats)
        print(f"| whole train step | {path} | {seconds:.3f} | {audio / seconds:.1f} |", flush=True)

    x = tf.constant(rng.normal(size=(args.batch, steps, width)), tf.float32)
    mask = tf.sequence_mask(np.maximum(lengths // config.model.subsampling, 1), steps)
    layer = keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True))
    layer(x, mask=mask)
    candidates = {"keras": layer, "fused": FusedBidirectionalLSTM(layer),
                  "fused_bf16": FusedBidirectionalLSTM(layer, "bfloat16")}
    for path, computed in candidates.items():
        @tf.function
        def step(computed=computed):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.square(computed(x, mask=mask)))
            return tape.gradient(loss, [x, *layer.trainable_variables])

        seconds = median_seconds(lambda step=step: [g.numpy() for g in step()], args.repeats)
        print(f"| one BiLSTM-{units} layer ({width} in), forward + backward | {path} | {seconds:.3f} | |",
              flush=True)

    kernel = tf.random.normal([2, units, 4 * units]) * 0.05
    state = tf.zeros([2, args.batch, units])

    @tf.function
    def products_only():  # forward and backward each multiply the state by a [U, 4U] kernel once per step
        def body(t, h):
            z = tf.matmul(h, kernel)
            return t + 1, tf.matmul(z, kernel, transpose_b=True)
        return tf.while_loop(lambda t, h: t < steps, body, (0, state))[1]

    seconds = median_seconds(lambda: products_only().numpy(), args.repeats)
    print(f"| that layer's recurrent products alone (float32, both passes) | - | {seconds:.3f} | |")


if __name__ == "__main__":
    main()
