"""The training wrapper: CTC on true label and output lengths, with unusable losses zeroed and counted."""

from __future__ import annotations

from asr.backend import keras, tf
from asr.text import BLANK_INDEX


def keras_ctc_loss(labels, logits, label_lengths, logit_lengths):
    """`keras.ops.ctc_loss` with our blank: what a GPU runs, and the reference the CPU path is checked against."""
    return keras.ops.ctc_loss(labels, logits, label_lengths, logit_lengths, mask_index=BLANK_INDEX)


def ctc_loss(labels, logits, label_lengths, logit_lengths):
    """Per-utterance CTC loss from logits on true label and output lengths; labels right-padded, blank 0.

    `keras.ops.ctc_loss` hands TensorFlow dense labels, and with dense labels `tf.nn.ctc_loss` runs a tf.scan
    over time with a [labels x labels] transition per step (O(T * L^2)): on a CPU, batches of sentence
    labels (150 characters, 330 frames) took 2.9 s against 0.07 s through TensorFlow's C++ CTC kernel, which
    sparse labels reach (benchmarks/bench_ctc_loss.py; the same losses to 5e-7 relative). A GPU keeps
    keras's path, whose dense form is vectorised there.
    """
    if tf.config.list_physical_devices("GPU"):
        losses = keras_ctc_loss(labels, logits, label_lengths, logit_lengths)
    else:
        losses = _kernel_ctc_loss(labels, logits, label_lengths, logit_lengths)
    # A label longer than its frames allow has no CTC path: infinite, whatever either kernel returns for it
    # (the C++ kernel, told to ignore such rows, gives 0; the dense path can give a large finite loss).
    feasible = ctc_min_frames_tf(labels, label_lengths) <= tf.cast(logit_lengths, tf.int32)
    return tf.where(feasible, losses, tf.constant(float("inf")))


def _kernel_ctc_loss(labels, logits, label_lengths, logit_lengths):
    """`ctc_loss` through TensorFlow's C++ kernel (sparse labels), empty transcripts given the all-blank loss."""
    logits = tf.cast(logits, tf.float32)
    label_lengths = tf.cast(label_lengths, tf.int32)
    # The kernel refuses an empty label (a silence clip's transcript): such rows get a one-token stand-in,
    # and their loss is replaced by the all-blank path's, -sum_t log p(blank).
    empty = tf.equal(label_lengths, 0)
    labels = tf.pad(tf.cast(labels, tf.int32), [[0, 0], [0, 1]])
    first_column = tf.equal(tf.range(tf.shape(labels)[1]), 0)[None, :]
    labels = tf.where(empty[:, None] & first_column, BLANK_INDEX + 1, labels)
    present = tf.where(tf.sequence_mask(tf.where(empty, 1, label_lengths), tf.shape(labels)[1]))
    # The v1 op takes the last class as blank (ours is 0: classes shift down by one) and, told to, gives a label
    # too long for its frames a zero loss instead of failing the batch (`ctc_loss` marks those rows).
    sparse = tf.SparseTensor(present, tf.gather_nd(labels, present) - 1, tf.shape(labels, out_type=tf.int64))
    blank_last = tf.concat([logits[:, :, BLANK_INDEX + 1:], logits[:, :, :BLANK_INDEX + 1]], axis=2)
    losses = tf.compat.v1.nn.ctc_loss(sparse, blank_last, tf.cast(logit_lengths, tf.int32), time_major=False,
                                      ignore_longer_outputs_than_inputs=True)
    frames = tf.sequence_mask(logit_lengths, tf.shape(logits)[1], dtype=tf.float32)
    all_blank = -tf.reduce_sum(tf.nn.log_softmax(logits)[:, :, BLANK_INDEX] * frames, axis=1)
    return tf.where(empty, all_blank, losses)


class _Untracked:
    """Holds a model out of Keras's attribute tracking, so checkpoints list each shared variable once."""

    def __init__(self, model: keras.Model):
        self.model = model


class CTCTrainer(keras.Model):
    """Wraps the network for `fit`: CTC on true label and output lengths, non-finite losses zeroed.

    `stepped` is what training steps: the network itself, or a clone on the same variables that computes
    faster (`asr.cpu_rnn.fast_training_network`). Weights are saved from `network`, evaluation runs it.
    """

    def __init__(self, network: keras.Model, stepped: keras.Model | None = None, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self._stepped = _Untracked(stepped if stepped is not None else network)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.unusable_tracker = keras.metrics.Sum(name="unusable")  # non-finite losses and infeasible labels
        self.built = True  # the wrapped functional network is built; this wrapper adds no weights of its own

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    @tf.function(reduce_retracing=True)
    def predict_with_loss(self, batch):
        """Logits, output lengths and each utterance's CTC loss, for `asr.dataset.predict_rows`."""
        outputs = self.network({"features": batch["features"], "feature_lengths": batch["feature_lengths"]},
                               training=False)
        loss = ctc_loss(batch["labels"], outputs["logits"], batch["label_lengths"], outputs["output_lengths"])
        return {"logits": outputs["logits"], "output_lengths": outputs["output_lengths"], "loss": loss}

    @property
    def metrics(self):
        return [self.loss_tracker, self.unusable_tracker]

    def ctc_losses(self, batch, training: bool):
        """Per-utterance CTC losses with unusable ones set to 0, and how many there were.

        Unusable: non-finite, which `ctc_loss` makes every label that cannot fit its output frames.
        """
        network = self._stepped.model if training else self.network
        outputs = network({"features": batch["features"], "feature_lengths": batch["feature_lengths"]},
                          training=training)
        losses = ctc_loss(batch["labels"], outputs["logits"], batch["label_lengths"], outputs["output_lengths"])
        usable = tf.math.is_finite(losses)
        return tf.where(usable, losses, 0.0), tf.reduce_sum(tf.cast(~usable, tf.float32))

    def train_step(self, data):
        batch, _, _ = keras.utils.unpack_x_y_sample_weight(data)  # fit passes the dict; train_on_batch a tuple
        with tf.GradientTape() as tape:
            losses, unusable = self.ctc_losses(batch, training=True)
            kept = tf.maximum(tf.cast(tf.size(losses), tf.float32) - unusable, 1.0)
            loss = tf.reduce_sum(losses) / kept
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(loss / replicas)
        variables = self.network.trainable_variables
        gradients = tape.gradient(scaled, variables)
        gradients = [tf.where(tf.math.is_finite(g), g, tf.zeros_like(g)) for g in gradients]
        self.optimizer.apply(gradients, variables)
        self.loss_tracker.update_state(loss)
        self.unusable_tracker.update_state(unusable)
        return self._logs()

    def _logs(self) -> dict:
        logs = {m.name: m.result() for m in self.metrics}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3.15 averages logs across workers with reduce(axis=0), which needs a dimension to reduce.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def test_step(self, data):
        batch, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        losses, unusable = self.ctc_losses(batch, training=False)
        self.loss_tracker.update_state(tf.reduce_mean(losses))
        self.unusable_tracker.update_state(unusable)
        return self._logs()


def ctc_min_frames_tf(labels: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """`asr.text.ctc_min_frames` for a padded batch: label length plus one blank per repeated pair."""
    labels, lengths = tf.cast(labels, tf.int32), tf.cast(lengths, tf.int32)
    inside = tf.sequence_mask(lengths, tf.shape(labels)[1])
    repeats = (labels[:, 1:] == labels[:, :-1]) & inside[:, 1:]
    return lengths + tf.reduce_sum(tf.cast(repeats, tf.int32), axis=1)
