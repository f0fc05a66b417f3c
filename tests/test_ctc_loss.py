"""asr.ctc_trainer.ctc_loss: TensorFlow's C++ CTC kernel (sparse labels) gives the losses and gradients of
keras.ops.ctc_loss (dense labels) on padded batches, empty transcripts included."""

from __future__ import annotations

import numpy as np

from asr.backend import tf
from asr.ctc_trainer import ctc_loss, keras_ctc_loss
from asr.text import BLANK_INDEX


def padded_batch(seed: int, batch: int = 5, frames: int = 40, width: int = 12, classes: int = 9):
    rng = np.random.default_rng(seed)
    label_lengths = rng.integers(0, width + 1, batch)
    label_lengths[0] = 0  # a silence clip's empty transcript
    label_lengths[1] = width
    labels = rng.integers(1, classes, (batch, width)) * (np.arange(width) < label_lengths[:, None])
    logit_lengths = rng.integers(2 * width + 2, frames + 1, batch)
    logits = rng.standard_normal((batch, frames, classes)).astype("float32")
    return (tf.constant(labels, tf.int32), tf.Variable(logits), tf.constant(label_lengths, tf.int32),
            tf.constant(logit_lengths, tf.int32))


def losses_and_gradients(loss_fn, labels, logits, label_lengths, logit_lengths):
    with tf.GradientTape() as tape:
        losses = loss_fn(labels, logits, label_lengths, logit_lengths)
    return losses.numpy(), tape.gradient(losses, logits).numpy()


def test_losses_and_gradients_match_keras_on_padded_batches():
    for seed in range(3):
        batch = padded_batch(seed)
        ours, our_gradient = losses_and_gradients(ctc_loss, *batch)
        theirs, their_gradient = losses_and_gradients(keras_ctc_loss, *batch)
        assert np.all(np.isfinite(ours)) and ours.shape == (5,)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)
        np.testing.assert_allclose(our_gradient, their_gradient, atol=1e-4)  # float32 sums in another order
        # padded frames beyond each utterance's output length get no gradient
        logit_lengths = batch[3].numpy()
        for row, length in enumerate(logit_lengths):
            assert not our_gradient[row, length:].any()


def test_an_empty_transcript_costs_the_all_blank_path():
    labels, logits, label_lengths, logit_lengths = padded_batch(0)
    log_probs = tf.nn.log_softmax(logits[0, :logit_lengths[0]]).numpy()
    expected = -log_probs[:, BLANK_INDEX].sum()
    np.testing.assert_allclose(ctc_loss(labels, logits, label_lengths, logit_lengths).numpy()[0], expected, rtol=1e-5)


def test_a_label_too_long_for_its_frames_is_infinite_and_the_rest_of_the_batch_is_scored():
    labels, logits, label_lengths, logit_lengths = padded_batch(1)
    short = tf.tensor_scatter_nd_update(logit_lengths, [[1]], [5])  # row 1's 12 labels cannot fit in 5 frames
    losses = ctc_loss(labels, logits, label_lengths, short).numpy()
    assert np.isinf(losses[1]) and np.isfinite(np.delete(losses, 1)).all()
    np.testing.assert_allclose(np.delete(losses, 1), np.delete(ctc_loss(labels, logits, label_lengths,
                                                                        logit_lengths).numpy(), 1), rtol=1e-6)


def test_the_gpu_branch_marks_a_label_too_long_for_its_frames_infinite_too(monkeypatch):
    """On a GPU `ctc_loss` takes keras's dense path, which has no notion of an impossible label."""
    labels, logits, label_lengths, logit_lengths = padded_batch(1)
    short = tf.tensor_scatter_nd_update(logit_lengths, [[1]], [5])
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    losses = ctc_loss(labels, logits, label_lengths, short).numpy()
    assert np.isinf(losses[1]) and np.isfinite(np.delete(losses, 1)).all()
    np.testing.assert_allclose(np.delete(losses, 1), np.delete(keras_ctc_loss(labels, logits, label_lengths,
                                                                              short).numpy(), 1), rtol=1e-6)
