"""Multi-worker training on loopback: two CPU workers under MultiWorkerMirroredStrategy end identical."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from asr.data import write_manifest
from asr.distribute import cluster_spec
from tests.conftest import fsdd_rows

WORKER = """
import sys, numpy as np
from asr.config import load_config
from asr.train import train
import keras; keras.config.disable_traceback_filtering()
config = load_config(None, sys.argv[3:])
result = train(config, sys.argv[1], verbose=0)
np.savez(sys.argv[2], *result.network.get_weights(), steps=result.state.epoch)
"""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_to_identical_weights_and_only_the_chief_writes(tmp_path):
    manifest = tmp_path / "theo.jsonl"
    write_manifest(manifest, fsdd_rows("theo", takes=range(2)) * 2)  # 16 rows: 8 batches of 2, 4 per worker
    overrides = [f"data.train_manifest={manifest}", "data.batch_size=2", "features.sample_rate=8000",
                 "features.n_mels=20", "model.units=16", "model.layers=1", "model.conv_channels=8",
                 "model.dropout=0.0", "train.epochs=2", "train.early_stopping_patience=null"]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path / "run"), str(tmp_path / f"weights{index}.npz"), *overrides],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[output.find("Traceback"):][:3000]
    chief, worker = np.load(tmp_path / "weights0.npz"), np.load(tmp_path / "weights1.npz")
    assert chief.files == worker.files and len(chief.files) > 4
    for name in chief.files:
        np.testing.assert_allclose(chief[name], worker[name], atol=1e-6, err_msg=name)
    state = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
    assert state["finished"] and state["epoch"] == 2
    assert (tmp_path / "run" / "model.keras").exists()
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log[1:]] == ["0", "1"]  # one writer: each epoch logged once


def test_cluster_spec_reads_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cluster_spec() == (0, 1)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]},
                                                 "task": {"type": "worker", "index": 1}}))
    assert cluster_spec() == (2, 3)
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        cluster_spec()
