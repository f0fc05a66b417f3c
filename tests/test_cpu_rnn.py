"""The fused CPU BiLSTM path (asr.cpu_rnn) against Keras's own layers: outputs, gradients, checkpoints."""

import numpy as np
import pytest

from asr.backend import keras, tf
from asr.config import load_config
from asr.cpu_rnn import (
    BFLOAT16,
    FLOAT32,
    FusedBidirectionalLSTM,
    cpu_has_bf16_matmul,
    fast_training_network,
    fusable,
    resolved_cpu_lstm,
    training_network,
)
from asr.ctc_trainer import CTCTrainer
from asr.model import build_network, cudnn_violations
from asr.optim import make_optimizer

LENGTHS = [23, 17, 5, 1]  # right padding of every amount, down to a one-frame utterance
FRAMES = 23


def small_config(*overrides):
    return load_config(None, ["features.n_mels=20", "model.units=24", "model.layers=2", "model.conv_channels=16",
                              "model.dropout=0.0", *overrides])


def random_batch(config, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(len(LENGTHS), FRAMES * config.model.subsampling, config.input_dim))
    labels = rng.integers(1, config.alphabet().num_classes, size=(len(LENGTHS), 3))
    return {"features": tf.constant(features, tf.float32),
            "feature_lengths": tf.constant([n * config.model.subsampling for n in LENGTHS], tf.int32),
            "labels": tf.constant(labels, tf.int32), "label_lengths": tf.constant([3, 3, 2, 1], tf.int32)}


def logits_and_gradients(model, batch):
    inputs = {"features": batch["features"], "feature_lengths": batch["feature_lengths"]}
    with tf.GradientTape() as tape:
        outputs = model(inputs, training=True)
        real = tf.sequence_mask(outputs["output_lengths"], tf.shape(outputs["logits"])[1], dtype=tf.float32)
        weights = tf.range(1.0, outputs["logits"].shape[-1] + 1.0)  # a loss that weighs every class apart
        loss = tf.reduce_sum(tf.square(outputs["logits"]) * weights * real[:, :, None])
    return outputs["logits"].numpy(), [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]


def test_fused_layer_matches_keras_bidirectional_lstm_on_padded_input():
    rng = np.random.default_rng(1)
    inputs = tf.constant(rng.normal(size=(len(LENGTHS), FRAMES, 7)), tf.float32)
    mask = tf.sequence_mask(LENGTHS, FRAMES)
    standard = keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True))
    expected = standard(inputs, mask=mask).numpy()
    fused = FusedBidirectionalLSTM(standard)(inputs, mask=mask).numpy()
    np.testing.assert_allclose(fused, expected, atol=1e-5)
    assert np.all(fused[2, 5:] == 0.0) and np.any(fused[2, :5] != 0.0)  # padding zeroed, as Keras does


def test_fast_network_shares_variables_and_matches_outputs_and_gradients():
    config = small_config()
    network = build_network(config)
    fast = fast_training_network(network)
    assert [type(layer).__name__ for layer in fast.layers].count("FusedBidirectionalLSTM") == 2
    assert [id(v) for v in fast.trainable_variables] == [id(v) for v in network.trainable_variables]
    batch = random_batch(config)
    expected_logits, expected_gradients = logits_and_gradients(network, batch)
    logits, gradients = logits_and_gradients(fast, batch)
    for row, length in enumerate(LENGTHS):
        np.testing.assert_allclose(logits[row, :length], expected_logits[row, :length], atol=1e-5)
    for ours, theirs in zip(gradients, expected_gradients, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-4 * max(1.0, np.abs(theirs).max()))


def test_bfloat16_matmuls_stay_close_to_float32():
    config = small_config()
    network = build_network(config)
    batch = random_batch(config)
    expected, expected_gradients = logits_and_gradients(network, batch)
    logits, gradients = logits_and_gradients(fast_training_network(network, BFLOAT16), batch)
    scale = np.abs(expected).max()
    assert np.abs(logits - expected)[0].max() < 0.05 * scale  # bfloat16 has an 8-bit mantissa
    for ours, theirs in zip(gradients, expected_gradients, strict=True):
        cosine = np.dot(ours.ravel(), theirs.ravel()) / (np.linalg.norm(ours) * np.linalg.norm(theirs) + 1e-12)
        assert cosine > 0.99


def test_a_model_trained_on_the_fast_path_reloads_as_standard_layers_with_identical_logits(tmp_path):
    config = small_config()
    network = build_network(config)
    trainer = CTCTrainer(network, training_network(network, config))
    trainer.compile(optimizer=make_optimizer(config, 10))
    batch = random_batch(config)
    before = [w.numpy().copy() for w in network.trainable_variables]
    for _ in range(3):
        trainer.train_on_batch(batch)
    assert any(np.abs(w.numpy() - b).max() > 0 for w, b in zip(network.trainable_variables, before, strict=True))
    network.save(tmp_path / "network.keras")
    trainer.save_weights(tmp_path / "last.weights.h5")
    reloaded = keras.saving.load_model(tmp_path / "network.keras", safe_mode=True)
    assert all(type(layer).__name__ != "FusedBidirectionalLSTM" for layer in reloaded.layers)
    assert isinstance(reloaded.get_layer("bilstm_0").forward_layer, keras.layers.LSTM)
    assert cudnn_violations(reloaded) == []
    inputs = {"features": batch["features"], "feature_lengths": batch["feature_lengths"]}
    np.testing.assert_array_equal(reloaded(inputs)["logits"].numpy(), network(inputs)["logits"].numpy())
    # The trainer's checkpoint holds each variable once: it loads into a trainer on the standard layers.
    plain = CTCTrainer(build_network(config))
    plain.compile(optimizer=make_optimizer(config, 10))
    plain.optimizer.build(plain.network.trainable_variables)
    plain.load_weights(tmp_path / "last.weights.h5")
    np.testing.assert_array_equal(plain.network(inputs)["logits"].numpy(), network(inputs)["logits"].numpy())


@pytest.mark.parametrize("overrides", [["model.cell=gru"], ["model.cell=irnn"]])
def test_other_cells_keep_the_standard_layers(overrides):
    network = build_network(small_config(*overrides))
    assert fast_training_network(network) is network


def test_the_keras_path_and_ineligible_layers_are_left_alone():
    config = small_config("train.cpu_lstm=keras")
    network = build_network(config)
    assert training_network(network, config) is network
    odd = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True, activation="relu"))
    assert not fusable(odd)
    with pytest.raises(ValueError, match="not a Bidirectional"):
        FusedBidirectionalLSTM(odd)


def test_a_gpu_run_never_steps_the_fused_layers(monkeypatch):
    """With a GPU visible the standard layers (and so cuDNN) are what trains."""
    config = small_config()
    network = build_network(config)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    assert training_network(network, config) is network
    assert fast_training_network(network, FLOAT32) is network


def test_auto_takes_bfloat16_only_where_the_cpu_multiplies_it_natively(tmp_path, monkeypatch):
    with_amx, without = tmp_path / "amx", tmp_path / "plain"
    with_amx.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f amx_bf16 amx_tile\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert cpu_has_bf16_matmul(with_amx) and not cpu_has_bf16_matmul(without)
    assert not cpu_has_bf16_matmul(tmp_path / "missing")
    monkeypatch.setattr("asr.cpu_rnn.CPUINFO", without)
    assert resolved_cpu_lstm("auto") == "fused" and resolved_cpu_lstm("keras") == "keras"
    monkeypatch.setattr("asr.cpu_rnn.CPUINFO", with_amx)
    assert resolved_cpu_lstm("auto") == "fused_bf16"
