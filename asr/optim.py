"""The optimiser and its learning-rate schedule: warm-up, then cosine, constant or inverse-square-root decay."""

from __future__ import annotations

from asr.backend import keras, tf
from asr.config import Config


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
