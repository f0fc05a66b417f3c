"""A faster CPU training path for bidirectional LSTMs, on the standard layers' own weights.

Keras runs an LSTM on CPU as a generic `while_loop` over time steps, each step multiplying the input
*and* the state by their kernels, once per direction, and TensorFlow differentiates that loop op by op.
Here, for each `Bidirectional(LSTM)` layer:
  - every time step's input projection (both directions) is one large matrix multiply before the loop;
  - both directions run in one loop (the backward one on `tf.reverse_sequence` of the input, which is what
    Keras's backward layer computes on a right-padded mask: its state stays zero through the padding);
  - the loop's gradient is written out (backpropagation through time, as cuDNN does) instead of being
    traced through the loop, and the recurrent kernel's gradient is one multiply over all steps;
  - matrix multiplies may run in bfloat16 (`matmul_dtype`), where CPUs with AMX/AVX-512 BF16 are several
    times faster, while gates, cell state and accumulation stay float32.

Nothing is saved from here: `fast_training_network` returns a clone of the network whose bidirectional
LSTM layers are replaced by `FusedBidirectionalLSTM` wrappers that *share the original layers' variables*.
The trainer steps the clone; checkpoints and `model.keras` come from the original network, so they hold
standard `keras.layers.LSTM` layers, and a GPU run never builds the clone (cuDNN runs the standard layers).
Hand-written rather than a library kernel because TensorFlow's fused CPU op (`BlockLSTMV2`) measured slower
than Keras's own loop here (0.42 s against 0.30 s for one BiLSTM-224 step, BENCHMARKS.md).
"""

from __future__ import annotations

from pathlib import Path

from asr.backend import keras, tf

FLOAT32 = "float32"
BFLOAT16 = "bfloat16"
BF16_CPU_FLAGS = {"amx_bf16", "avx512_bf16"}  # where bfloat16 products run natively (else TF emulates them)
CPUINFO = Path("/proc/cpuinfo")
GATES = 4  # Keras's kernel layout: input, forget, cell (candidate), output gates, `units` columns each


def _candidate_scale(units: tf.Tensor) -> tf.Tensor:
    """[4U] ones with 2 on the candidate gate's columns: tanh(z) = 2·sigmoid(2z) - 1, so one sigmoid serves all
    four gates inside the loop (each op in a loop step costs more in dispatch than in arithmetic here)."""
    ones = tf.ones([units], FLOAT32)
    return tf.concat([ones, ones, 2.0 * ones, ones], 0)


def _lstm_forward(projected: tf.Tensor, recurrent: tf.Tensor, matmul_dtype: str):
    """projected [T, 2, B, 4U] (input projection + bias), recurrent [2, U, 4U] -> cells and gate sigmoids per
    step (the candidate gate's as sigmoid(2z)). The loop keeps only what depends on the previous step."""
    steps = tf.shape(projected)[0]
    units = tf.shape(recurrent)[1]
    scale = _candidate_scale(units)
    projected = projected * scale
    kernel = tf.cast(recurrent * scale, matmul_dtype)
    zeros = tf.zeros(tf.shape(projected[0, :, :, :units]), FLOAT32)

    def step(t, h, c, cells, gates):
        sig = tf.sigmoid(projected[t] + tf.cast(tf.matmul(tf.cast(h, matmul_dtype), kernel), FLOAT32))
        i, f, g, o = tf.split(sig, GATES, axis=-1)
        c = f * c + i * (2.0 * g - 1.0)
        return t + 1, o * tf.tanh(c), c, cells.write(t, c), gates.write(t, sig)

    def array():
        return tf.TensorArray(FLOAT32, size=steps)

    _, _, _, cells, gates = tf.while_loop(lambda t, *_: t < steps, step, (0, zeros, zeros, array(), array()))
    return cells.stack(), gates.stack()


def _lstm_backward(d_states, cells, gates, recurrent, matmul_dtype: str):
    """Backpropagation through time: d(loss)/d(states) [T, 2, B, U] -> d/d(projected), d/d(recurrent).

    Everything that does not depend on the next step's gradient is computed for all steps at once before the
    loop, which then does five elementwise ops and one multiply per step.
    """
    i, f, g, o = tf.split(gates, GATES, axis=-1)
    g = 2.0 * g - 1.0
    tanh_c = tf.tanh(cells)
    previous_c = tf.concat([tf.zeros_like(cells[:1]), cells[:-1]], 0)
    to_cell = o * (1.0 - tanh_c * tanh_c)  # d(cell) per d(state) through this step's output
    # d(pre-activations) = [dc, dc, dc, dh] * factors: the four gates' local derivatives.
    factors = tf.concat([g * i * (1.0 - i), previous_c * f * (1.0 - f), i * (1.0 - g * g), tanh_c * o * (1.0 - o)],
                        -1)
    steps = tf.shape(d_states)[0]
    zeros = tf.zeros_like(d_states[0])
    kernel = tf.cast(recurrent, matmul_dtype)

    def step(t, dh_next, dc_next, d_projected):
        dh = d_states[t] + dh_next
        dc = dc_next + dh * to_cell[t]
        dz = tf.concat([dc, dc, dc, dh], -1) * factors[t]
        dh_prev = tf.cast(tf.matmul(tf.cast(dz, matmul_dtype), kernel, transpose_b=True), FLOAT32)
        return t - 1, dh_prev, dc * f[t], d_projected.write(t, dz)

    _, _, _, d_projected = tf.while_loop(lambda t, *_: t >= 0, step,
                                         (steps - 1, zeros, zeros, tf.TensorArray(FLOAT32, size=steps)))
    d_projected = d_projected.stack()
    states = o * tanh_c
    previous = tf.concat([tf.zeros_like(states[:1]), states[:-1]], 0)
    d_recurrent = tf.einsum("tkbu,tkbg->kug", tf.cast(previous, matmul_dtype), tf.cast(d_projected, matmul_dtype))
    return d_projected, tf.cast(d_recurrent, FLOAT32)


def lstm_recurrence(projected: tf.Tensor, recurrent: tf.Tensor, matmul_dtype: str = FLOAT32) -> tf.Tensor:
    """States [T, 2, B, U] of two LSTMs (stacked on axis 1) from zero state, with a hand-written gradient."""

    @tf.custom_gradient
    def run(projected, recurrent):
        cells, gates = _lstm_forward(projected, recurrent, matmul_dtype)
        states = tf.split(gates, GATES, axis=-1)[3] * tf.tanh(cells)

        def gradient(d_states):
            return _lstm_backward(d_states, cells, gates, recurrent, matmul_dtype)

        return states, gradient

    return run(tf.cast(projected, FLOAT32), tf.cast(recurrent, FLOAT32))


def fusable(layer: keras.layers.Layer) -> bool:
    """Whether `layer` is a Bidirectional LSTM whose arithmetic `FusedBidirectionalLSTM` reproduces."""
    if not isinstance(layer, keras.layers.Bidirectional) or layer.merge_mode != "concat":
        return False
    for rnn in (layer.forward_layer, layer.backward_layer):
        cell = getattr(rnn, "cell", None)
        if not isinstance(rnn, keras.layers.LSTM) or rnn.stateful or not rnn.return_sequences:
            return False
        if (cell.activation is not keras.activations.tanh or cell.recurrent_activation
                is not keras.activations.sigmoid or not cell.use_bias or cell.dropout or cell.recurrent_dropout):
            return False
    return not layer.forward_layer.go_backwards and layer.backward_layer.go_backwards


@keras.saving.register_keras_serializable(package="asr")
class FusedBidirectionalLSTM(keras.layers.Layer):
    """`Bidirectional(LSTM)` computed by `lstm_recurrence`, on the wrapped layer's variables.

    Training-time only: it is never saved (a saved model holds the wrapped standard layer). It expects the
    mask the network passes, right-padded with at least one real frame per row, as cuDNN does.
    """

    def __init__(self, bidirectional: keras.layers.Bidirectional, matmul_dtype: str = FLOAT32, **kwargs):
        super().__init__(name=kwargs.pop("name", bidirectional.name), **kwargs)
        if not fusable(bidirectional):
            raise ValueError(f"{bidirectional.name}: not a Bidirectional(LSTM) the fused path reproduces")
        self.bidirectional = bidirectional
        self.matmul_dtype = matmul_dtype
        self.built = True

    def call(self, inputs, mask=None, training=None):
        inputs = tf.cast(inputs, FLOAT32)
        frames = tf.shape(inputs)[1]
        lengths = (tf.reduce_sum(tf.cast(mask, tf.int32), axis=1) if mask is not None
                   else tf.fill([tf.shape(inputs)[0]], frames))
        forward, backward = self.bidirectional.forward_layer.cell, self.bidirectional.backward_layer.cell

        def project(cell):
            product = tf.matmul(tf.cast(inputs, self.matmul_dtype), tf.cast(cell.kernel, self.matmul_dtype))
            return tf.cast(product, FLOAT32) + tf.cast(cell.bias, FLOAT32)

        reverse = {"seq_lengths": lengths, "seq_axis": 1, "batch_axis": 0}
        projected = tf.stack([project(forward), tf.reverse_sequence(project(backward), **reverse)])
        recurrent = tf.stack([tf.cast(forward.recurrent_kernel, FLOAT32), tf.cast(backward.recurrent_kernel,
                                                                                   FLOAT32)])
        states = lstm_recurrence(tf.transpose(projected, [2, 0, 1, 3]), recurrent, self.matmul_dtype)
        # Keras's Bidirectional zeroes the outputs on masked frames; the padding's states are never read.
        real = tf.sequence_mask(lengths, frames, dtype=FLOAT32)[:, :, None]
        states = tf.transpose(states, [1, 2, 0, 3])  # [2, B, T, U]
        outputs = tf.concat([states[0] * real, tf.reverse_sequence(states[1] * real, **reverse)], -1)
        return tf.cast(outputs, self.compute_dtype)

    def compute_output_spec(self, inputs, mask=None, training=None):
        units = self.bidirectional.forward_layer.units + self.bidirectional.backward_layer.units
        return keras.KerasTensor((*inputs.shape[:2], units), dtype=self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):  # for completeness: this layer is rebuilt around a live layer, never deserialised
        return {**super().get_config(), "matmul_dtype": self.matmul_dtype}


def fast_training_network(network: keras.Model, matmul_dtype: str = FLOAT32) -> keras.Model:
    """`network` with its Bidirectional LSTMs computed by the fused CPU path, sharing every variable.

    Returns `network` itself when a GPU is visible (cuDNN is faster and is what a GPU run must use) or when
    no layer qualifies.
    """
    if tf.config.list_physical_devices("GPU") or not any(fusable(layer) for layer in network.layers):
        return network

    def swap(layer):
        return FusedBidirectionalLSTM(layer, matmul_dtype) if fusable(layer) else layer

    return keras.models.clone_model(network, clone_function=swap)


def cpu_has_bf16_matmul(cpuinfo: Path | None = None) -> bool:
    """Whether this CPU multiplies bfloat16 natively (Linux's flags, `CPUINFO` unless given; False where they
    cannot be read)."""
    try:
        text = (cpuinfo or CPUINFO).read_text()
        flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return False
    return bool(BF16_CPU_FLAGS & set(flags))


def resolved_cpu_lstm(path: str) -> str:
    """`train.cpu_lstm` with "auto" decided for this machine."""
    if path != "auto":
        return path
    return "fused_bf16" if cpu_has_bf16_matmul() else "fused"


def training_network(network: keras.Model, config) -> keras.Model:
    """What a run steps, from `train.cpu_lstm` (see `asr.config.TrainConfig`)."""
    path = resolved_cpu_lstm(config.train.cpu_lstm)
    if path == "keras":
        return network
    return fast_training_network(network, BFLOAT16 if path == "fused_bf16" else FLOAT32)
