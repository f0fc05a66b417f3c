"""The acoustic model: normalised features -> time subsampling -> N × bidirectional RNN -> CTC logits.

`build_network` makes a functional Keras model with inputs `features` [B, T, D] and `feature_lengths` [B]
and outputs `logits` [B, T', classes] and `output_lengths` [B] (T' = ceil(T / subsampling), exactly the
length `asr.features.subsampled_length` gives). `build_inference_model` puts the log-mel front end in
front, so a saved model takes raw waveforms. Every layer is a registered Keras layer (no `Lambda`), so
models load with `safe_mode=True`.

cuDNN: LSTM and GRU layers keep tanh/sigmoid, recurrent_dropout=0, unroll=False, use_bias=True (and GRU
reset_after=True); the mask passed to them comes from true lengths, so it is strictly right-padded and,
as every utterance has at least one frame, never fully masked. Dropout sits *between* layers instead.
"""

from __future__ import annotations

from asr.backend import keras, tf
from asr.config import Config, ModelConfig
from asr.features import LogMelSpectrogram, UtteranceNormalization, subsampled_length

IRNN_INPUT_STDDEV = 0.001  # Le et al. 2015: small Gaussian input weights, identity recurrence, zero bias
NETWORK_NAME = "bilstm_ctc"  # the features-in network, nested by name inside a saved waveform-in model


@keras.saving.register_keras_serializable(package="asr")
class SubsampledLengths(keras.layers.Layer):
    """Feature lengths -> output lengths after subsampling by `factor` (ceil division, as the layers pad)."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, lengths):
        return subsampled_length(tf.cast(lengths, tf.int32), self.factor)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="asr")
class LengthMask(keras.layers.Layer):
    """(sequence [B, T, ...], lengths [B]) -> boolean mask [B, T], True on real frames (right padding)."""

    def call(self, inputs):
        sequence, lengths = inputs
        return tf.sequence_mask(lengths, tf.shape(sequence)[1])

    def compute_output_spec(self, inputs):
        sequence, _ = inputs
        return keras.KerasTensor(sequence.shape[:2], dtype="bool")


@keras.saving.register_keras_serializable(package="asr")
class ZeroPadding(keras.layers.Layer):
    """Zero the frames past each utterance's length, so padding cannot leak into later convolutions."""

    def call(self, inputs):
        sequence, lengths = inputs
        mask = tf.sequence_mask(lengths, tf.shape(sequence)[1], dtype=sequence.dtype)
        return sequence * mask[:, :, None]

    def compute_output_spec(self, inputs):
        sequence, _ = inputs
        return keras.KerasTensor(sequence.shape, dtype=sequence.dtype)


@keras.saving.register_keras_serializable(package="asr")
class FrameStack(keras.layers.Layer):
    """Concatenate each run of `factor` frames: [B, T, D] -> [B, ceil(T / factor), factor · D]."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, sequence):
        frames, dims = tf.shape(sequence)[1], sequence.shape[-1]
        padded = tf.pad(sequence, [[0, 0], [0, (-frames) % self.factor], [0, 0]])
        return tf.reshape(padded, [tf.shape(sequence)[0], -1, self.factor * dims])

    def compute_output_spec(self, sequence):
        return keras.KerasTensor((sequence.shape[0], None, self.factor * sequence.shape[-1]), dtype=sequence.dtype)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def recurrent_layer(model: ModelConfig, name: str) -> keras.layers.Layer:
    common = {"units": model.units, "return_sequences": True, "name": name}
    if model.cell == "lstm":
        return keras.layers.LSTM(activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                                 recurrent_dropout=0.0, unroll=False, **common)
    if model.cell == "gru":
        return keras.layers.GRU(activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                                recurrent_dropout=0.0, unroll=False, reset_after=True, **common)
    if model.cell == "rnn":
        return keras.layers.SimpleRNN(activation="tanh", **common)
    if model.cell == "irnn":
        return keras.layers.SimpleRNN(
            activation="relu", recurrent_initializer=keras.initializers.Identity(),
            kernel_initializer=keras.initializers.RandomNormal(stddev=IRNN_INPUT_STDDEV),
            bias_initializer="zeros", **common)
    raise ValueError(f"model.cell: unknown cell {model.cell!r}")


def build_network(config: Config) -> keras.Model:
    model, classes = config.model, config.alphabet().num_classes
    features = keras.Input(shape=(None, config.input_dim), name="features")
    feature_lengths = keras.Input(shape=(), dtype="int32", name="feature_lengths")
    lengths = SubsampledLengths(model.subsampling, name="output_lengths")(feature_lengths)
    if model.subsampling_kind == "stack":
        x = FrameStack(model.subsampling, name="frame_stack")(features) if model.subsampling > 1 else features
    else:
        # Fixed padding, not padding="same": "same" splits its padding by the *batch's* length, which would
        # shift an utterance's frames depending on what it is batched with. With s on each side and kernel
        # 2s + 1, output t is centred on input frame t·s and there are exactly ceil(T / s) outputs.
        x = keras.layers.ZeroPadding1D((model.subsampling, model.subsampling), name="subsample_pad")(features)
        x = keras.layers.Conv1D(model.conv_channels, kernel_size=2 * model.subsampling + 1,
                                strides=model.subsampling, padding="valid", activation="relu",
                                name="subsample_conv")(x)
        x = ZeroPadding(name="subsample_mask")((x, lengths))
    mask = LengthMask(name="mask")((x, lengths))
    for index in range(model.layers):
        if index and model.dropout:
            x = keras.layers.Dropout(model.dropout, name=f"dropout_{index}")(x)
        x = keras.layers.Bidirectional(recurrent_layer(model, f"{model.cell}_{index}"), merge_mode="concat",
                                       name=f"bi{model.cell}_{index}")(x, mask=mask)
        if model.layer_norm:
            x = keras.layers.LayerNormalization(name=f"layer_norm_{index}")(x)
    if model.dropout:
        x = keras.layers.Dropout(model.dropout, name="dropout_out")(x)
    logits = keras.layers.Dense(classes, dtype="float32", name="logits")(x)  # float32 even under mixed precision
    return keras.Model({"features": features, "feature_lengths": feature_lengths},
                       {"logits": logits, "output_lengths": lengths}, name=NETWORK_NAME)


def acoustic_network(model: keras.Model) -> keras.Model:
    """The features-in network of a saved model: nested in a waveform-in model, or the model itself."""
    return model.get_layer(NETWORK_NAME) if NETWORK_NAME in {layer.name for layer in model.layers} else model


def build_inference_model(network: keras.Model, config: Config) -> keras.Model:
    """Waveform [B, samples] + sample counts [B] -> logits and output lengths, front end included."""
    waveform = keras.Input(shape=(None,), name="waveform")
    waveform_lengths = keras.Input(shape=(), dtype="int32", name="waveform_lengths")
    features, frames = LogMelSpectrogram.from_config_object(config.features, name="log_mel")(
        (waveform, waveform_lengths))
    normalized = UtteranceNormalization(name="normalize")((features, frames))
    outputs = network({"features": normalized, "feature_lengths": frames})
    return keras.Model({"waveform": waveform, "waveform_lengths": waveform_lengths}, outputs, name="asr")


def cudnn_violations(network: keras.Model) -> list[str]:
    """Every reason a recurrent layer of `network` would not run on cuDNN (empty list: all eligible)."""
    problems = []
    for layer in network.layers:
        inner = [layer.forward_layer, layer.backward_layer] if isinstance(layer, keras.layers.Bidirectional) \
            else [layer]
        for rnn in inner:
            if not isinstance(rnn, keras.layers.LSTM | keras.layers.GRU):
                continue
            cell = rnn.cell
            checks = {
                "activation is tanh": cell.activation is keras.activations.tanh,
                "recurrent_activation is sigmoid": cell.recurrent_activation is keras.activations.sigmoid,
                "recurrent_dropout is 0": cell.recurrent_dropout == 0,
                "unroll is False": not rnn.unroll,
                "use_bias is True": cell.use_bias,
            }
            if isinstance(rnn, keras.layers.GRU):
                checks["reset_after is True"] = cell.reset_after
            problems += [f"{layer.name}/{rnn.name}: {name} fails" for name, ok in checks.items() if not ok]
    return problems
