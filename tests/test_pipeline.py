"""tf.data pipeline: true lengths, label round trip, bucketing, augmentation only in training."""

import numpy as np
import pytest

from asr.audio import write_audio
from asr.config import load_config
from asr.data import Utterance
from asr.dataset import PipelineError, make_dataset, plan_batches, spec_augment, steps_per_epoch
from asr.text import Alphabet

RATE = 8000
WORDS = ["yes", "no", "hello world", "press one", "a much longer sentence than the others", "stop"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    rows = []
    for index in range(24):
        seconds = 0.3 + 0.25 * (index % 12)
        path = folder / f"utt{index}.wav"
        write_audio(path, (0.1 * rng.normal(size=int(seconds * RATE))).astype(np.float32), RATE)
        rows.append(Utterance(str(path), seconds, WORDS[index % len(WORDS)], speaker=f"s{index % 3}"))
    return rows


def config(*overrides):
    return load_config(None, [f"features.sample_rate={RATE}", "features.n_mels=40", "data.batch_size=4",
                              *overrides])


def collect(dataset):
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset]


def test_batches_carry_true_lengths_and_labels(corpus):
    cfg = config()
    batches = collect(make_dataset(corpus, cfg, training=False))
    assert sum(len(b["feature_lengths"]) for b in batches) == len(corpus)
    alphabet = Alphabet()
    for indices, batch in zip(plan_batches(corpus, cfg), batches, strict=True):
        rows = [corpus[i] for i in indices]
        assert batch["features"].shape[2] == 40
        expected_frames = [cfg.features.num_frames(round(r.duration * RATE)) for r in rows]
        assert batch["feature_lengths"].tolist() == expected_frames
        assert batch["features"].shape[1] == max(expected_frames)
        for row, labels, length, frames, feats in zip(rows, batch["labels"], batch["label_lengths"],
                                                      batch["feature_lengths"], batch["features"], strict=True):
            assert alphabet.decode(labels[:length]) == row.text
            assert np.all(labels[length:] == 0)
            assert np.all(feats[frames:] == 0)
            np.testing.assert_allclose(feats[:frames].mean(axis=0), 0, atol=1e-4)  # normalised per utterance


def test_bucketing_reduces_padding(corpus):
    def padding(dataset):
        total = padded = 0
        for batch in collect(dataset):
            size = batch["features"].shape[0] * batch["features"].shape[1]
            total += size
            padded += size - batch["feature_lengths"].sum()
        return padded / total

    cfg = config()
    with_buckets = padding(make_dataset(corpus, cfg, training=True))
    without = padding(make_dataset(corpus, config("data.bucketing=false"), training=True))
    assert with_buckets < without
    assert with_buckets < 0.15


def test_plan_covers_every_row_once_and_epochs_shuffle_batch_order(corpus):
    cfg = config()
    plan = plan_batches(corpus, cfg)
    assert sorted(np.concatenate(plan).tolist()) == list(range(len(corpus)))
    first = [b["feature_lengths"].tolist() for b in collect(make_dataset(corpus, cfg, training=True))]
    second = [b["feature_lengths"].tolist() for b in collect(make_dataset(corpus, cfg, training=True, first_epoch=1))]
    assert sorted(map(sorted, first)) == sorted(map(sorted, second)) and first != second
    again = [b["feature_lengths"].tolist() for b in collect(make_dataset(corpus, cfg, training=True, first_epoch=1))]
    assert again == second  # an epoch's order depends only on the seed and the epoch: resumable


def test_resume_skips_exactly_the_batches_already_seen(corpus):
    cfg = config()
    steps = steps_per_epoch(corpus, cfg)
    full = [b["feature_lengths"].tolist() for b in collect(make_dataset(corpus, cfg, training=True, epochs=2))]
    assert len(full) == 2 * steps
    resumed = [b["feature_lengths"].tolist()
               for b in collect(make_dataset(corpus, cfg, training=True, epochs=2, skip_batches=3))]
    assert resumed == full[3:]


@pytest.mark.parametrize("bucketing", ["true", "false"])
def test_frames_budget_gives_smaller_batches_for_longer_audio(corpus, bucketing):
    cfg = config("data.max_frames_per_batch=600", "data.batch_size=8", f"data.bucketing={bucketing}")
    batches = collect(make_dataset(corpus, cfg, training=False))
    for batch in batches:
        assert batch["features"].shape[0] * batch["features"].shape[1] <= 600 or batch["features"].shape[0] == 1
    assert max(b["features"].shape[0] for b in batches) > min(b["features"].shape[0] for b in batches)


@pytest.mark.parametrize("bucketing", ["true", "false"])
def test_steps_per_epoch_is_what_the_dataset_yields(corpus, bucketing):
    # Before, the trainer planned with bucketing on whatever the config said, so with bucketing off and a frame
    # budget fit() waited for batches the dataset never made.
    cfg = config("data.max_frames_per_batch=600", "data.batch_size=8", f"data.bucketing={bucketing}")
    assert len(collect(make_dataset(corpus, cfg, training=True))) == steps_per_epoch(corpus, cfg)
    assert len(collect(make_dataset(corpus, cfg, training=True, epochs=2, shard=(1, 2)))) == \
        2 * steps_per_epoch(corpus, cfg, workers=2)


def test_spec_augment_masks_only_real_frames():
    features = np.ones((3, 100, 40), np.float32)
    lengths = np.array([100, 60, 20])
    features[1, 60:] = features[2, 20:] = 0
    augment = config("augment.freq_masks=2", "augment.time_masks=2", "augment.time_mask_max_fraction=0.2").augment
    out = spec_augment({"features": features, "feature_lengths": lengths}, augment)["features"].numpy()
    assert out[0].sum() < features[0].sum()  # something was masked
    assert np.all(out[1, 60:] == 0) and np.all(out[2, 20:] == 0)
    for row, length in enumerate(lengths):
        masked_frames = np.all(out[row, :length] == 0, axis=1).sum()
        assert masked_frames <= 2 * int(0.2 * length)  # time masks never exceed p of the utterance
        masked_bins = np.all(out[row, :length] == 0, axis=0).sum()
        assert masked_bins <= 2 * 15


def test_training_augments_and_evaluation_does_not(corpus):
    cfg = config("data.bucketing=false", "augment.speed_factors=[0.8]",
                 "augment.noise_probability=1.0")
    clean = collect(make_dataset(corpus, cfg, training=False))
    assert [b["feature_lengths"].tolist() for b in clean] == [
        b["feature_lengths"].tolist() for b in collect(make_dataset(corpus, cfg, training=False))]
    train_lengths = sorted(n for b in collect(make_dataset(corpus, cfg, training=True)) for n in b["feature_lengths"])
    clean_lengths = sorted(n for b in clean for n in b["feature_lengths"])
    # speed factor 0.8 slows speech down: every utterance gets longer, by about 1/0.8
    assert all(t > c for t, c in zip(train_lengths, clean_lengths, strict=True))
    assert sum(train_lengths) / sum(clean_lengths) == pytest.approx(1 / 0.8, rel=0.05)


def test_feature_cache_gives_identical_batches(corpus, tmp_path):
    uncached = collect(make_dataset(corpus, config(), training=False))
    cfg = config(f"data.cache={tmp_path / 'cache'}")
    first = collect(make_dataset(corpus, cfg, training=False))
    files = sorted((tmp_path / "cache").glob("*.npy"))
    assert len(files) == len(corpus)
    stamps = [f.stat().st_mtime_ns for f in files]
    second = collect(make_dataset(corpus, cfg, training=False))
    assert [f.stat().st_mtime_ns for f in files] == stamps  # reused, not recomputed
    for a, b, c in zip(uncached, first, second, strict=True):
        np.testing.assert_allclose(a["features"], b["features"], atol=1e-5)
        np.testing.assert_array_equal(b["features"], c["features"])


def test_precomputed_features(tmp_path):
    rows = []
    for index, frames in enumerate([30, 50, 40]):
        path = tmp_path / f"f{index}.npy"
        np.save(path, np.random.default_rng(index).normal(size=(frames, 13)).astype(np.float32))
        rows.append(Utterance(None, frames / 100, "go", feature_filepath=str(path)))
    cfg = load_config(None, ["model.input_dim=13", "data.bucketing=false", "data.batch_size=3"])
    (batch,) = collect(make_dataset(rows, cfg, training=False))
    assert batch["features"].shape == (3, 50, 13)
    assert sorted(batch["feature_lengths"].tolist()) == [30, 40, 50]


def test_mixed_manifest_and_cache_with_waveform_augmentation_are_errors(corpus, tmp_path):
    mixed = [*corpus[:2], Utterance(None, 1.0, "go", feature_filepath=str(tmp_path / "x.npy"))]
    with pytest.raises(PipelineError, match="mixes audio"):
        make_dataset(mixed, config(), training=False)
    with pytest.raises(PipelineError, match="cache"):
        make_dataset(corpus, config(f"data.cache={tmp_path}", "augment.speed_factors=[0.9,1.1]"), training=True)
