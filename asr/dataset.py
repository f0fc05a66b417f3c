"""tf.data input pipeline: manifest rows -> padded, length-sorted batches of normalised features.

Batches are planned in Python before any audio is read: rows sorted by duration and cut into batches
(of `batch_size` utterances, or fewer for long audio under `max_frames_per_batch`), so padding stays
small; in training the *order* of those batches is shuffled with a seed per epoch. A fixed plan gives a
fixed number of steps per epoch and lets a resumed run skip exactly the batches it has already seen
without decoding them. (This is the batch-sampler form of `bucket_by_sequence_length`, with one bucket
per batch.)

Per utterance, in parallel and in a deterministic order: decode -> waveform augmentation (training) ->
log-mel -> per-utterance normalisation (the same functions the model's front-end layers call). Then the
utterances of each planned batch are padded together, SpecAugment is applied (training) and batches are
prefetched. Each batch is a dict with `features` [B, T, D], `feature_lengths` [B], `labels` [B, L]
(0-padded; 0 is also the CTC blank, so the loss reads the true `label_lengths` [B]).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.audio import load_audio, resample
from asr.backend import tf
from asr.config import AugmentConfig, Config
from asr.data import Utterance, load_features
from asr.features import FeatureConfig, log_mel, normalize_utterances
from asr.utils import atomic_path

AUTOTUNE = tf.data.AUTOTUNE


class PipelineError(ValueError):
    pass


def make_dataset(rows: Sequence[Utterance], config: Config, training: bool, first_epoch: int = 0, epochs: int = 1,
                 skip_batches: int = 0, shard: tuple[int, int] = (0, 1)) -> tf.data.Dataset:
    """Batches for `epochs` passes starting at `first_epoch`, less the first `skip_batches` of it.

    shard=(i, n): this worker's share for multi-worker training, batches i, i + n, … of each epoch, cut to
    the same count on every worker (`steps_per_epoch`) so no worker waits for a step that never comes.

    training=True shuffles the batch order (seeded by train.seed and the epoch) and augments;
    training=False keeps the plan's order and the clean signal.
    """
    if not rows:
        raise PipelineError("no utterances to build a dataset from")
    augment = config.augment if training else None
    uses_features = _uses_precomputed_features(rows)
    if augment and augment.changes_waveform and uses_features:
        raise PipelineError("augment.noise_probability/speed_factors need audio, but the manifest has features")
    if config.data.cache and not uses_features:
        if augment and augment.changes_waveform:
            raise PipelineError("data.cache stores features before augmentation; turn off noise/speed "
                                "augmentation or the cache")
        rows = cache_features(rows, config.features, Path(config.data.cache))
        uses_features = True
    plan = plan_batches(rows, config)
    index, workers = shard
    per_worker = len(plan) // workers
    epoch_batches = [batch_order(len(plan), config, epoch, training)[index::workers][:per_worker]
                     for epoch in range(first_epoch, first_epoch + epochs)]
    order = np.concatenate([np.concatenate([plan[b] for b in batches]) for batches in epoch_batches])
    sizes = np.concatenate([[len(plan[b]) for b in batches] for batches in epoch_batches])
    skip_rows = int(sizes[:skip_batches].sum())
    order, sizes = order[skip_rows:], sizes[skip_batches:]
    batch_ids = np.repeat(np.arange(len(sizes)), sizes)

    alphabet = config.alphabet()
    labels = tf.ragged.constant([alphabet.encode(row.text) for row in rows], dtype=tf.int32)
    sources = tf.constant([row.source for row in rows])
    # A row without an offset reads its whole file (offset -1, duration 0 stand for "none" in a tensor).
    offsets = tf.constant([-1.0 if row.offset is None else row.offset for row in rows], tf.float64)
    durations = tf.constant([row.duration for row in rows], tf.float64)
    parallel = config.data.num_parallel_calls if config.data.num_parallel_calls > 0 else AUTOTUNE
    dataset = tf.data.Dataset.from_tensor_slices((order, batch_ids))
    if uses_features:
        dataset = dataset.map(lambda index, batch: (sources[index], labels[index], batch))
        dataset = dataset.map(_feature_loader(config.input_dim), num_parallel_calls=parallel)
    else:
        dataset = dataset.map(lambda index, batch: ((sources[index], offsets[index], durations[index]),
                                                    labels[index], batch))
        dataset = dataset.map(_audio_loader(config.features.sample_rate), num_parallel_calls=parallel)
        if augment and augment.changes_waveform:
            dataset = dataset.map(_waveform_augmenter(augment, config.features.sample_rate, config.train.seed),
                                  num_parallel_calls=parallel)
        dataset = dataset.map(_featurizer(config.features), num_parallel_calls=parallel)
    dataset = dataset.map(_normalize, num_parallel_calls=parallel)
    dataset = _group_batches(dataset, tf.constant(sizes, tf.int64), config.input_dim)
    if augment and (augment.freq_masks or augment.time_masks):
        dataset = dataset.map(lambda batch: spec_augment(batch, augment), num_parallel_calls=parallel)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF  # sharded above
    return dataset.prefetch(AUTOTUNE).with_options(options)


def plan_batches(rows: Sequence[Utterance], config: Config) -> list[np.ndarray]:
    """Row indices of each batch, at most data.batch_size rows and data.max_frames_per_batch padded frames.

    With data.bucketing, rows are taken shortest first (similar durations together, long audio in smaller
    batches); without, in a random order fixed for the run.
    """
    frames = [config.features.frames_for(row.duration, bool(row.feature_filepath)) for row in rows]
    if config.data.bucketing:
        indices = np.argsort(frames, kind="stable")
    else:
        indices = np.random.default_rng(config.train.seed).permutation(len(rows))
    budget = config.data.max_frames_per_batch
    batches, current, longest = [], [], 0
    for index in indices:
        padded = (len(current) + 1) * max(longest, frames[index])  # the batch pads to its longest row
        if current and (len(current) == config.data.batch_size or (budget and padded > budget)):
            batches.append(np.array(current))
            current, longest = [], 0
        current.append(index)
        longest = max(longest, frames[index])
    batches.append(np.array(current))
    return batches


def batch_order(num_batches: int, config: Config, epoch: int, training: bool) -> np.ndarray:
    if not training:
        return np.arange(num_batches)
    return np.random.default_rng([config.train.seed, epoch]).permutation(num_batches)


def predict_rows(rows: Sequence[Utterance], config: Config, predict: Callable[[dict], dict],
                 dataset: tf.data.Dataset | None = None) -> list[dict]:
    """`predict(batch)` over `rows` through the evaluation pipeline (features as in training), in row order.

    `predict` returns "logits" [B, T, C] and "output_lengths" [B], and may add per-utterance values [B]
    (e.g. "loss"). One dict per row: its logits cut to their true length and those values. `dataset`: the
    `make_dataset(rows, config, training=False)` to reuse, if the caller keeps one.
    """
    order = np.concatenate(plan_batches(rows, config))  # make_dataset(training=False) yields rows in this order
    results: list[dict] = []
    for batch in dataset if dataset is not None else make_dataset(rows, config, training=False):
        outputs = {name: np.asarray(value) for name, value in predict(batch).items()}
        for i, length in enumerate(outputs["output_lengths"]):
            row = {name: value[i] for name, value in outputs.items() if name not in ("logits", "output_lengths")}
            results.append({"logits": outputs["logits"][i, :int(length)], **row})
    by_row: list[dict] = [{}] * len(rows)
    for index, result in zip(order, results, strict=True):
        by_row[index] = result
    return by_row


def steps_per_epoch(rows: Sequence[Utterance], config: Config, workers: int = 1) -> int:
    """Batches each worker trains on per epoch: exactly what `make_dataset` yields it."""
    return len(plan_batches(rows, config)) // workers


def _group_batches(dataset: tf.data.Dataset, sizes: tf.Tensor, dims: int) -> tf.data.Dataset:
    shapes = {"features": [None, dims], "feature_lengths": [], "labels": [None], "label_lengths": []}
    values = {"features": 0.0, "feature_lengths": 0, "labels": 0, "label_lengths": 0}
    # Batch ids arrive in order and each window closes exactly when its planned size is reached.
    return dataset.group_by_window(
        key_func=lambda element, batch: batch,
        reduce_func=lambda batch, window: window.map(lambda element, _: element).padded_batch(
            sizes[batch], padded_shapes=shapes, padding_values=values),
        window_size_func=lambda batch: sizes[batch])


def cache_features(rows: Sequence[Utterance], features: FeatureConfig, folder: Path) -> list[Utterance]:
    """Compute each row's log-mel once into `folder` (keyed by file, size, mtime and front-end settings)."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = json.dumps(vars(features), sort_keys=True)
    mel_matrix = tf.constant(features.mel_matrix())
    compute = tf.function(lambda samples: log_mel(samples[None], tf.shape(samples)[:1], features, mel_matrix)[0][0],
                          reduce_retracing=True)
    cached = []
    for row in tqdm(rows, desc="feature cache", unit="utt", disable=len(rows) < 200):
        stat = Path(row.source).stat()
        key = hashlib.sha1(f"{Path(row.source).resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{row.segment}|"
                           f"{settings}".encode())
        target = folder / f"{key.hexdigest()}.npy"
        if not target.exists():
            array = compute(load_audio(row.source, features.sample_rate, *row.segment)).numpy()
            with atomic_path(target, ".npy") as temporary:
                np.save(temporary, array)
        # The features are the segment's own: the cached row reads all of them, from no offset.
        cached.append(Utterance(row.audio_filepath, row.duration, row.text, row.speaker, str(target),
                                row.split, row.original_text, row.extra))
    return cached


def _uses_precomputed_features(rows: Sequence[Utterance]) -> bool:
    with_features = sum(1 for row in rows if row.feature_filepath)
    if 0 < with_features < len(rows):
        raise PipelineError(f"manifest mixes audio ({len(rows) - with_features} rows) and precomputed features "
                            f"({with_features} rows); use one kind per manifest")
    return with_features > 0


def _audio_loader(sample_rate: int):
    def load(path, offset, duration):
        segment = (None, None) if offset < 0 else (float(offset), float(duration))
        return load_audio(path.decode(), sample_rate, *segment)

    def attach_waveform(source, label, batch):
        samples = tf.numpy_function(load, list(source), tf.float32, stateful=False)
        samples.set_shape([None])
        return {"waveform": samples, "labels": label}, batch

    return attach_waveform


def _feature_loader(dims: int):
    def load(path):
        array = load_features(path.decode())
        if array.shape[1] != dims:
            raise PipelineError(f"{path.decode()}: features have {array.shape[1]} dims, the model expects {dims}")
        return array

    def attach_features(source, label, batch):
        features = tf.numpy_function(load, [source], tf.float32, stateful=False)
        features.set_shape([None, dims])
        return {"features": features, "feature_lengths": tf.shape(features)[0], "labels": label}, batch

    return attach_features


def _featurizer(features: FeatureConfig):
    mel_matrix = tf.constant(features.mel_matrix())

    def add_log_mel(element, batch):
        waveform = element.pop("waveform")
        mel, lengths = log_mel(waveform[None], tf.shape(waveform)[:1], features, mel_matrix)
        return {**element, "features": mel[0], "feature_lengths": lengths[0]}, batch

    return add_log_mel


def _normalize(element, batch):
    features = normalize_utterances(element["features"][None], element["feature_lengths"][None])[0]
    labels = element["labels"]
    return {"features": features, "feature_lengths": element["feature_lengths"],
            "labels": labels, "label_lengths": tf.shape(labels)[0]}, batch


def _waveform_augmenter(augment: AugmentConfig, sample_rate: int, seed: int):
    rng = np.random.default_rng(seed)
    factors = [f for f in augment.speed_factors] or [1.0]

    def perturb(samples):
        factor = float(rng.choice(factors))
        if factor != 1.0:  # Kaldi-style speed perturbation: tempo and pitch change together
            samples = resample(samples, round(sample_rate * factor), sample_rate)
        if rng.random() < augment.noise_probability:
            snr_db = rng.uniform(*augment.noise_snr_db)
            power = float(np.mean(samples**2)) + 1e-10
            samples = samples + rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), samples.shape)
        return samples.astype(np.float32)

    def perturb_element(element, batch):
        samples = tf.numpy_function(perturb, [element["waveform"]], tf.float32)
        samples.set_shape([None])
        return {**element, "waveform": samples}, batch

    return perturb_element


def spec_augment(batch: dict, augment: AugmentConfig) -> dict:
    """SpecAugment (Park et al. 2019) frequency and time masks, inside each utterance's real frames.

    Masked values become 0, the per-utterance mean after normalisation.
    """
    features = batch["features"]
    shape = tf.shape(features)
    batch_size, frames, dims = shape[0], shape[1], shape[2]
    keep = tf.ones_like(features)
    for _ in range(augment.freq_masks):
        width = tf.random.uniform([batch_size], 0, augment.freq_mask_width + 1, dtype=tf.int32)
        width = tf.minimum(width, dims)
        start = _random_below(dims - width + 1)
        keep *= 1.0 - _band(start, width, dims)[:, None, :]
    lengths = batch["feature_lengths"]
    max_width = tf.minimum(augment.time_mask_width,
                           tf.cast(tf.cast(lengths, tf.float32) * augment.time_mask_max_fraction, tf.int32))
    for _ in range(augment.time_masks):
        width = _random_below(max_width + 1)
        start = _random_below(tf.maximum(lengths - width, 0) + 1)
        keep *= 1.0 - _band(start, width, frames)[:, :, None]
    return {**batch, "features": features * keep}


def _random_below(limits: tf.Tensor) -> tf.Tensor:
    """One uniform integer in [0, limit) per row; limits are >= 1."""
    draws = tf.random.uniform(tf.shape(limits), 0, 1)
    return tf.minimum(tf.cast(draws * tf.cast(limits, tf.float32), tf.int32), limits - 1)


def _band(start: tf.Tensor, width: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    positions = tf.range(size)[None, :]
    return tf.cast((positions >= start[:, None]) & (positions < (start + width)[:, None]), tf.float32)
