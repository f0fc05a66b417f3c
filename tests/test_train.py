"""Training: overfitting to CER 0, identical logits after a safe-mode reload, resume after SIGKILL, extension."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from asr.audio import load_audio
from asr.backend import keras
from asr.config import ConfigError, load_config
from asr.ctc_trainer import CTCTrainer
from asr.data import Utterance, read_manifest, write_manifest
from asr.dataset import steps_per_epoch
from asr.decoding import greedy_decode
from asr.model import build_network
from asr.model_folder import read_vad_options, write_vad_options
from asr.optim import make_optimizer
from asr.train import TrainingError, copy_weights_from, load_run_config, train
from asr.vad import VadOptions
from tests.conftest import DIGITS, SHARED, fsdd_rows


def fsdd_manifest(folder: Path, speaker: str, copies: int, takes: range = range(1)) -> Path:
    manifest = folder / f"{speaker}.jsonl"
    write_manifest(manifest, fsdd_rows(speaker, takes) * copies)
    return manifest


def tiny_config(manifest: Path, *overrides):
    return load_config(None, [
        f"data.train_manifest={manifest}", f"data.dev_manifest={manifest}", "data.batch_size=4",
        "features.sample_rate=8000", "features.n_mels=40", "model.units=64", "model.layers=1",
        "model.conv_channels=64", "model.dropout=0.0", "augment.freq_masks=0", "augment.time_masks=0",
        "optim.learning_rate=0.005", "optim.warmup_steps=10", "optim.schedule=constant", "optim.weight_decay=0",
        "train.early_stopping_patience=null", *overrides])


def test_overfits_a_handful_of_utterances_and_reloads_identically(trained_run):
    """The session fixture trained 12 epochs × 8 steps on four utterances and reached dev CER 0."""
    state = json.loads((trained_run / "checkpoints" / "state.json").read_text())
    assert state["finished"] and state["epoch"] == 12 and state["best_cer"] == 0.0
    config = load_config(trained_run / "config.yaml")
    model = keras.saving.load_model(trained_run / "model.keras", safe_mode=True)
    waves = [load_audio(r.audio_filepath, 8000) for r in fsdd_rows("theo")]
    batch = np.zeros((4, max(map(len, waves))), np.float32)
    for row, wave in enumerate(waves):
        batch[row, :len(wave)] = wave
    inputs = {"waveform": batch, "waveform_lengths": np.array([len(w) for w in waves])}
    first = model(inputs)
    assert greedy_decode(first["logits"].numpy(), first["output_lengths"].numpy(), config.alphabet()) == DIGITS
    again = keras.saving.load_model(trained_run / "model.keras", safe_mode=True)(inputs)
    np.testing.assert_array_equal(first["logits"].numpy(), again["logits"].numpy())

    log = (trained_run / "log.csv").read_text().splitlines()
    assert log[0].split(",") == ["epoch", "loss", "unusable", "val_cer", "val_loss", "val_wer"]
    assert len(log) == 13
    assert float(log[-1].split(",")[1]) < float(log[1].split(",")[1]) / 5  # the training loss really fell
    for name in ("config.yaml", "alphabet.json", "checkpoints/best.weights.h5", "checkpoints/last.weights.h5"):
        assert (trained_run / name).is_file(), name


def test_a_run_directory_is_never_overwritten(tmp_path):
    manifest = fsdd_manifest(tmp_path, "theo", copies=1)
    config = tiny_config(manifest, "train.epochs=1")
    train(config, tmp_path / "run", verbose=0)
    with pytest.raises(TrainingError, match="already holds a run"):
        train(config, tmp_path / "run", verbose=0)


def test_labels_too_long_for_the_audio_stop_training_before_it_starts(tmp_path):
    path = SHARED / "fsdd" / "recordings" / "0_theo_0.wav"
    manifest = tmp_path / "bad.jsonl"
    write_manifest(manifest, [Utterance(str(path), 0.3, "a sentence far too long for a third of a second")])
    with pytest.raises(TrainingError, match="labels too long.*--subsampling 4"):
        train(tiny_config(manifest, "model.subsampling=4"), tmp_path / "run", verbose=0)


def test_a_missing_file_stops_training_before_it_starts(tmp_path):
    manifest = fsdd_manifest(tmp_path, "theo", copies=1)
    rows = read_manifest(manifest)
    write_manifest(manifest, [*rows, Utterance(str(tmp_path / "moved.wav"), 0.5, "one")])
    with pytest.raises(TrainingError, match=r"1 file\(s\) not found, e.g. '.*moved.wav'"):
        train(tiny_config(manifest), tmp_path / "run", verbose=0)


def test_an_undecodable_file_met_mid_epoch_ends_the_run_with_its_name(tmp_path):
    """Not a TF traceback and a process that then hangs at exit (a py_function error left tf.data stuck)."""
    manifest = fsdd_manifest(tmp_path, "theo", copies=2)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF" + bytes(200))
    write_manifest(manifest, [*read_manifest(manifest), Utterance(str(broken), 0.5, "one")])
    overrides = [f"data.train_manifest={manifest}", f"data.dev_manifest={manifest}", "data.batch_size=3",
                 "features.sample_rate=8000", "features.n_mels=20", "model.units=16", "model.layers=1",
                 "model.conv_channels=16", "train.epochs=2"]
    process = _run_cli("--config", str(_write_empty_config(tmp_path)), "--out", str(tmp_path / "run"), "--quiet",
                       *overrides)
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 2, output
    assert f"asr train: error: {broken}: not an audio file" in output
    assert "checkpoint saved at epoch 1" in output and "Traceback" not in output
    assert (tmp_path / "run" / "checkpoints" / "state.json").is_file()


def test_nonfinite_losses_are_zeroed_and_counted(tmp_path):
    """An impossible label in a batch gives an infinite CTC loss; the step must not poison the weights."""
    from asr.ctc_trainer import CTCTrainer
    from asr.model import build_network
    from asr.optim import make_optimizer

    config = tiny_config(tmp_path / "unused.jsonl")
    network = build_network(config)
    trainer = CTCTrainer(network)
    trainer.compile(optimizer=make_optimizer(config, 10))
    rng = np.random.default_rng(0)
    batch = {"features": rng.normal(size=(2, 10, 40)).astype(np.float32),
             "feature_lengths": np.array([10, 10], np.int32),
             "labels": np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14], [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                                   0, 0]], np.int32),
             "label_lengths": np.array([14, 2], np.int32)}  # 14 labels cannot fit in 5 output frames
    logs = trainer.train_on_batch(batch, return_dict=True)
    assert logs["unusable"] == 1.0 and np.isfinite(logs["loss"])
    assert all(np.isfinite(w.numpy()).all() for w in network.trainable_weights)


def _run_cli(*args, timeout=300):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "asr", "train", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _start_and_wait_for_epoch_two(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """A CLI run checkpointing every batch, returned once it is 3 batches into its second epoch."""
    manifest = fsdd_manifest(tmp_path, "jackson", copies=3, takes=range(5))  # 60 rows: 30 steps of 2
    overrides = [f"data.train_manifest={manifest}", f"data.dev_manifest={manifest}", "data.batch_size=2",
                 "features.sample_rate=8000", "features.n_mels=20", "model.units=16", "model.layers=1",
                 "model.conv_channels=16", "train.epochs=3", "train.early_stopping_patience=null"]
    run = tmp_path / "run"
    state_file = run / "checkpoints" / "state.json"
    process = _run_cli("--config", str(_write_empty_config(tmp_path)), "--out", str(run), "--quiet",
                       "--checkpoint-every", "1", *overrides)
    deadline = time.time() + 240
    state = {}
    while time.time() < deadline and process.poll() is None:
        try:
            state = json.loads(state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            state = {}
        if state.get("epoch", 0) >= 1 and state.get("step_in_epoch", 0) >= 3:
            break
        time.sleep(0.02)
    return process, run


def test_sigterm_saves_a_checkpoint_at_the_current_batch_and_stops(tmp_path):
    process, run = _start_and_wait_for_epoch_two(tmp_path)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert process.returncode == 130, output
    assert f"checkpoint saved at epoch 2, batch {state['step_in_epoch']}" in output
    # stopped within the epoch it was signalled in, not at its end
    assert state["epoch"] == 1 and 3 <= state["step_in_epoch"] < 30 and not state["finished"]


def test_sigkill_mid_epoch_then_resume_finishes_the_run(tmp_path):
    process, run = _start_and_wait_for_epoch_two(tmp_path)
    state_file = run / "checkpoints" / "state.json"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = json.loads(state_file.read_text())
    assert killed_at["epoch"] < 3 and not killed_at["finished"], "the run ended before it could be killed"

    resumed = _run_cli("--out", str(run), "--resume", "--quiet")
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    final = json.loads(state_file.read_text())
    assert final["finished"] and final["epoch"] == 3
    epochs = [line.split(",")[0] for line in (run / "log.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2"]  # each epoch logged exactly once across the two processes
    keras.saving.load_model(run / "model.keras", safe_mode=True)
    keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert "trained 3 epochs" in output


def _write_empty_config(folder: Path) -> Path:
    path = folder / "config.yaml"
    path.write_text("{}\n")
    return path


def test_ctc_min_frames_tf_matches_the_python_rule():
    from asr.ctc_trainer import ctc_min_frames_tf
    from asr.text import ctc_min_frames

    labels = [[1, 1, 2, 0, 0], [3, 4, 4, 4, 5], [7, 0, 0, 0, 0]]
    lengths = [3, 5, 1]
    expected = [ctc_min_frames(row[:n]) for row, n in zip(labels, lengths, strict=True)]
    assert ctc_min_frames_tf(np.array(labels), np.array(lengths)).numpy().tolist() == expected == [4, 7, 1]


def test_a_finished_run_extended_with_more_epochs_restarts_its_cosine_warm(tmp_path):
    manifest = fsdd_manifest(tmp_path, "jackson", copies=2)
    run = tmp_path / "run"
    first = tiny_config(manifest, "train.epochs=2", "optim.schedule=cosine", "optim.warmup_steps=1")
    steps = steps_per_epoch(read_manifest(manifest), first)
    train(first, run, verbose=0)
    with pytest.raises(ConfigError, match="already trained 2 epochs"):
        load_run_config(run, None, [], resume=True, epochs=1)
    assert load_run_config(run, None, [], resume=True, epochs=2).train.epochs == 2  # the same budget: no change
    assert train(load_run_config(run, None, [], resume=True), run, resume=True, verbose=0).state.epoch == 2
    with pytest.raises(ConfigError, match="goes with --resume"):
        load_run_config(run, None, [], resume=False, epochs=3)

    config = load_run_config(run, None, [], resume=True, epochs=3)
    assert config.train.epochs == 3 and load_config(run / "config.yaml").train.epochs == 3  # later resumes agree
    state = train(config, run, resume=True, verbose=0).state
    assert state.finished and state.epoch == 3
    assert [line.split(",")[0] for line in (run / "log.csv").read_text().splitlines()[1:]] == ["0", "1", "2"]
    with h5py.File(run / "checkpoints" / "last.weights.h5") as weights:
        iterations = int(weights["optimizer/vars/0"][()])
    assert iterations == 3 * steps  # the optimiser kept counting, so the new schedule picks up at 2 * steps
    assert _learning_rate_at(first, 2 * steps, 2 * steps) < 1e-4  # the first run ended near zero ...
    assert _learning_rate_at(config, 3 * steps, 2 * steps) > 1e-3  # ... and the extension restarts warm


def _learning_rate_at(config, total_steps: int, step: int) -> float:
    optimizer = make_optimizer(config, total_steps)
    optimizer.iterations.assign(step)
    return float(optimizer.learning_rate)


def test_a_new_run_can_start_from_a_trained_models_weights(trained_run, tmp_path):
    manifest = fsdd_manifest(tmp_path, "theo", copies=1)
    config = tiny_config(manifest, "train.epochs=1", f"train.init_from={trained_run}",
                         "optim.learning_rate=1e-9", "optim.warmup_steps=0")
    result = train(config, tmp_path / "run", verbose=0)
    assert result.state.best_cer == 0.0  # right after one near-frozen epoch: it did not start from scratch
    trained = keras.saving.load_model(trained_run / "model.keras", safe_mode=True).get_layer("bilstm_ctc")
    for layer in result.network.layers:
        for ours, theirs in zip(layer.get_weights(), trained.get_layer(layer.name).get_weights(), strict=True):
            np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_a_finished_run_keeps_its_last_epochs_weights_beside_the_best(trained_run, tmp_path):
    """Epoch 1 stays best (epoch 2 only ties it), so the saved model and last.weights.h5 must differ."""
    manifest = fsdd_manifest(tmp_path, "theo", copies=1)
    config = tiny_config(manifest, "train.epochs=2", f"train.init_from={trained_run}",
                         "optim.learning_rate=1e-5", "optim.warmup_steps=0")
    result = train(config, tmp_path / "run", verbose=0)
    assert (result.state.best_epoch, result.state.epoch, result.state.best_cer) == (1, 2, 0.0)
    checkpoints = tmp_path / "run" / "checkpoints"
    best, last = build_network(config), build_network(config)
    best.load_weights(checkpoints / "best.weights.h5")
    trainer = CTCTrainer(last)
    trainer.compile(optimizer=make_optimizer(config, 2))
    trainer.optimizer.build(last.trainable_variables)
    trainer.load_weights(checkpoints / "last.weights.h5")
    assert int(trainer.optimizer.iterations) == 2 * steps_per_epoch(read_manifest(manifest), config)
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True).get_layer("bilstm_ctc")
    moved = 0.0
    for layer in best.layers:
        for ours, model, latest in zip(layer.get_weights(), saved.get_layer(layer.name).get_weights(),
                                       last.get_layer(layer.name).get_weights(), strict=True):
            np.testing.assert_array_equal(ours, model)  # model.keras holds the best epoch's weights
            moved = max(moved, float(np.abs(latest - ours).max()))
    assert moved > 1e-7  # ... and last.weights.h5 the second epoch's, one epoch further on


@pytest.mark.parametrize(("override", "message"), [
    ("model.units=32", "layer 'bilstm_0' has shapes"),
    ("model.layers=2", "no layer 'bilstm_1'"),
    ("alphabet_characters=' abcdefghijklmnopqrstuvwxyz'", "has alphabet"),
    ("features.n_mels=48", "other features"),
])
def test_starting_from_an_incompatible_model_names_the_difference(trained_run, tmp_path, override, message):
    config = tiny_config(tmp_path / "unused.jsonl", override)
    with pytest.raises(ConfigError, match=f"train.init_from: .*{message}"):
        copy_weights_from(trained_run, build_network(config), config)
    with pytest.raises(ConfigError, match="model not found"):
        copy_weights_from(tmp_path / "missing", build_network(config), config)


def test_starting_the_same_config_on_its_run_folder_continues_it_and_another_config_is_refused(
        trained_run, tmp_path):
    from asr.train import continues_run

    saved = load_config(trained_run / "config.yaml")
    assert continues_run(trained_run, saved)  # a re-run of the command that made it
    assert not continues_run(tmp_path / "empty", saved)
    wider = load_config(trained_run / "config.yaml", ["model.units=96", "train.epochs=13"])
    with pytest.raises(ConfigError, match=r"model\.units: 64 -> 96; train\.epochs: 12 -> 13"):
        continues_run(trained_run, wider)


def test_a_run_folder_with_checkpoints_but_no_config_says_to_delete_it(trained_run, tmp_path):
    from asr.train import continues_run, load_run_config

    saved = load_config(trained_run / "config.yaml")
    orphan = tmp_path / "orphan"
    shutil.copytree(trained_run / "checkpoints", orphan / "checkpoints")
    for attempt in (lambda: continues_run(orphan, saved), lambda: load_run_config(orphan, None, [], resume=True)):
        with pytest.raises(ConfigError, match=f"{orphan} holds checkpoints but no config.yaml.*delete {orphan}"):
            attempt()


def test_a_new_alphabet_starts_the_output_layer_afresh_and_keeps_every_other_layer(trained_run, tmp_path):
    manifest = fsdd_manifest(tmp_path, "theo", copies=1)
    fewer = "alphabet_characters=' abcdefghijklmnopqrstuvwxyz'"  # no apostrophe: one class less
    config = tiny_config(manifest, fewer, f"train.init_from={trained_run}")
    with pytest.raises(ConfigError, match="train.init_new_output=true"):
        copy_weights_from(trained_run, build_network(config), config)
    config = tiny_config(manifest, fewer, f"train.init_from={trained_run}", "train.init_new_output=true")
    network = build_network(config)
    fresh = [w.copy() for w in network.get_layer("logits").get_weights()]
    copy_weights_from(trained_run, network, config)
    trained = keras.saving.load_model(trained_run / "model.keras", safe_mode=True).get_layer("bilstm_ctc")
    assert network.get_layer("logits").get_weights()[0].shape[-1] == 28  # 27 characters + blank
    for ours, before in zip(network.get_layer("logits").get_weights(), fresh, strict=True):
        np.testing.assert_array_equal(ours, before)  # untouched by the source model
    for layer in network.layers:
        if layer.weights and layer.name != "logits":
            for ours, theirs in zip(layer.get_weights(), trained.get_layer(layer.name).get_weights(), strict=True):
                np.testing.assert_array_equal(ours, theirs)


def test_init_from_on_the_command_line_is_the_config_key_and_does_not_go_with_resume(trained_run, tmp_path):
    refused = _run_cli("--out", str(trained_run), "--resume", "--init-from", str(trained_run))
    output, _ = refused.communicate(timeout=120)
    assert refused.returncode == 2 and "--init-from starts a run" in output
    other = _run_cli("--config", str(trained_run / "config.yaml"), "--out", str(trained_run),
                     "--init-from", str(tmp_path / "elsewhere"))
    output, _ = other.communicate(timeout=120)  # the flag became train.init_from: another config than the run's
    assert other.returncode == 2 and "train.init_from" in output and "elsewhere" in output


def test_frozen_layers_keep_the_source_weights_while_the_layers_above_train(trained_run, tmp_path):
    manifest = fsdd_manifest(tmp_path, "jackson", copies=1)  # another speaker: the upper layers must move
    config = tiny_config(manifest, "train.epochs=1", f"train.init_from={trained_run}", "train.frozen_layers=1",
                         "optim.learning_rate=0.01", "optim.warmup_steps=0")
    result = train(config, tmp_path / "run", verbose=0)
    source = keras.saving.load_model(trained_run / "model.keras", safe_mode=True).get_layer("bilstm_ctc")
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True).get_layer("bilstm_ctc")
    for name, frozen in (("subsample_conv", True), ("bilstm_0", False), ("logits", False)):
        moved = max(float(np.abs(ours - theirs).max()) for ours, theirs
                    in zip(saved.get_layer(name).get_weights(), source.get_layer(name).get_weights(), strict=True))
        assert (moved == 0.0) == frozen, f"{name}: moved {moved}"
    assert all(layer.trainable for layer in saved.layers)  # the saved model is the standard, trainable one
    assert all(layer.trainable for layer in result.network.layers)
    with pytest.raises(ConfigError, match=r"train.frozen_layers: 3, but the network has 2 layers .*subsample_conv, "
                                          r"bilstm_0"):
        train(tiny_config(manifest, f"train.init_from={trained_run}", "train.frozen_layers=3"), tmp_path / "r3")
    with pytest.raises(ConfigError, match="train.frozen_layers: freezing needs trained weights"):
        tiny_config(manifest, "train.frozen_layers=1")


def test_an_adapted_run_is_served_with_its_sources_voice_activity_settings(trained_run, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(trained_run, source)
    write_vad_options(source, VadOptions(context_seconds=0.5, pad_seconds=0.5))
    manifest = fsdd_manifest(tmp_path, "theo", copies=1)
    train(tiny_config(manifest, "train.epochs=1", f"train.init_from={source / 'model.keras'}"), tmp_path / "run",
          verbose=0)
    assert read_vad_options(tmp_path / "run") == VadOptions(context_seconds=0.5, pad_seconds=0.5)
    train(tiny_config(manifest, "train.epochs=1"), tmp_path / "scratch", verbose=0)
    assert not (tmp_path / "scratch" / "vad.yaml").exists()  # from scratch: the library's defaults
