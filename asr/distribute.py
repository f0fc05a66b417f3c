"""Choosing a tf.distribute strategy: one device, several GPUs on one host, or several workers (TF_CONFIG).

Multi-worker training is data-parallel and synchronous (MultiWorkerMirroredStrategy): every worker builds the
same model, reads its own share of each epoch's planned batches (worker i takes batches i, i + n, …), and
gradients are summed across workers every step, so all workers hold identical weights. One step therefore
consumes n planned batches: with the same config, an epoch has n times fewer steps, and the effective batch
is n × data.batch_size. Keep optim.learning_rate for small n, or scale it (linearly, with a longer warm-up)
when n is large. Only the chief (worker 0, or the task of type "chief") writes checkpoints, logs and models.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from asr.backend import tf
from asr.config import STRATEGIES


@dataclass(frozen=True)
class Cluster:
    """The tf.distribute strategy and this process's place among the workers (worker 0 is the chief)."""

    strategy: tf.distribute.Strategy
    worker_index: int = 0
    num_workers: int = 1

    @property
    def is_chief(self) -> bool:
        return self.worker_index == 0


def cluster_spec() -> tuple[int, int]:
    """(this worker's index, number of workers) from TF_CONFIG; (0, 1) without it."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0, 1
    try:
        tf_config = json.loads(raw)
        cluster, task = tf_config["cluster"], tf_config["task"]
        chiefs, workers = cluster.get("chief", []), cluster.get("worker", [])
        index = int(task["index"]) + (len(chiefs) if task["type"] == "worker" else 0)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"TF_CONFIG is not valid: {error}") from None
    return index, len(chiefs) + len(workers)


def choose(name: str = "auto") -> Cluster:
    """`auto`: several workers in TF_CONFIG -> multi_worker; else several GPUs -> mirrored; else default.

    Create it before any other TensorFlow work: collective ops must be configured at start-up.
    """
    if name not in STRATEGIES:
        raise ValueError(f"train.strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    index, workers = cluster_spec()
    if name == "multi_worker" or (name == "auto" and workers > 1):
        return Cluster(tf.distribute.MultiWorkerMirroredStrategy(), index, workers)
    if name == "mirrored" or (name == "auto" and len(tf.config.list_physical_devices("GPU")) > 1):
        return Cluster(tf.distribute.MirroredStrategy())
    return Cluster(tf.distribute.get_strategy())
