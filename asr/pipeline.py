"""tf.data input pipeline: manifest rows -> padded, length-bucketed batches of normalised features.

Order of work, and why:
  shuffle file order -> decode (parallel) -> waveform augmentation (train) -> log-mel + per-utterance
  normalisation (parallel, the same functions the model's front-end layers call) -> optional cache ->
  shuffle buffer -> bucket by length and pad -> SpecAugment (train) -> prefetch.
Each batch is a dict with `features` [B, T, D], `feature_lengths` [B], `labels` [B, L] (0-padded, 0 is also
the CTC blank, so the true `label_lengths` [B] are what the loss reads).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from asr.audio import load_audio, resample
from asr.backend import tf
from asr.config import AugmentConfig, Config
from asr.data import Utterance, load_features
from asr.features import FeatureConfig, log_mel, normalize_utterances

AUTOTUNE = tf.data.AUTOTUNE
MAX_BUCKET_RATIO = 1.3  # longest / shortest frame count that may share a bucket


class PipelineError(ValueError):
    pass


def make_dataset(rows: Sequence[Utterance], config: Config, training: bool,
                 bucketing: bool | None = None) -> tf.data.Dataset:
    """Batches for `fit` (training=True: shuffled and augmented) or for evaluation (fixed order, clean)."""
    if not rows:
        raise PipelineError("no utterances to build a dataset from")
    uses_features = _uses_precomputed_features(rows)
    alphabet = config.alphabet()
    labels = tf.ragged.constant([alphabet.encode(row.text) for row in rows], dtype=tf.int32)
    sources = tf.constant([row.source for row in rows])
    parallel = config.data.num_parallel_calls if config.data.num_parallel_calls > 0 else AUTOTUNE
    augment = config.augment if training else None
    if augment and augment.changes_waveform and uses_features:
        raise PipelineError("augment.noise_probability/speed_factors need audio, but the manifest has features")
    if config.data.cache and augment and augment.changes_waveform:
        raise PipelineError("data.cache stores features before augmentation; turn off noise/speed augmentation "
                            "or the cache")

    dataset = tf.data.Dataset.from_tensor_slices((sources, labels))
    if training:
        dataset = dataset.shuffle(len(rows), seed=config.train.seed, reshuffle_each_iteration=True)
    if uses_features:
        dataset = dataset.map(_feature_loader(config.input_dim), num_parallel_calls=parallel)
    else:
        dataset = dataset.map(_audio_loader(config.features.sample_rate), num_parallel_calls=parallel)
        if augment and augment.changes_waveform:
            dataset = dataset.map(_waveform_augmenter(augment, config.features.sample_rate, config.train.seed),
                                  num_parallel_calls=parallel)
        dataset = dataset.map(_featurizer(config.features), num_parallel_calls=parallel)
    dataset = dataset.map(_normalize, num_parallel_calls=parallel)
    if config.data.cache:
        dataset = dataset.cache("" if config.data.cache == "memory" else config.data.cache)
    if training and config.data.shuffle_buffer > 1:
        dataset = dataset.shuffle(config.data.shuffle_buffer, seed=config.train.seed + 1)
    use_buckets = (config.data.num_buckets > 1) if bucketing is None else bucketing
    dataset = _batch(dataset, rows, config, use_buckets)
    if augment and (augment.freq_masks or augment.time_masks):
        dataset = dataset.map(lambda batch: spec_augment(batch, augment), num_parallel_calls=parallel)
    return dataset.prefetch(AUTOTUNE)


def _uses_precomputed_features(rows: Sequence[Utterance]) -> bool:
    with_features = sum(1 for row in rows if row.feature_filepath)
    if 0 < with_features < len(rows):
        raise PipelineError(f"manifest mixes audio ({len(rows) - with_features} rows) and precomputed features "
                            f"({with_features} rows); use one kind per manifest")
    return with_features > 0


def _audio_loader(sample_rate: int):
    def load(path):
        return load_audio(path.decode(), sample_rate)

    def fn(source, label):
        samples = tf.numpy_function(load, [source], tf.float32, stateful=False)
        samples.set_shape([None])
        return {"waveform": samples, "labels": label}

    return fn


def _feature_loader(dims: int):
    def load(path):
        array = load_features(path.decode())
        if array.shape[1] != dims:
            raise PipelineError(f"{path.decode()}: features have {array.shape[1]} dims, the model expects {dims}")
        return array

    def fn(source, label):
        features = tf.numpy_function(load, [source], tf.float32, stateful=False)
        features.set_shape([None, dims])
        return {"features": features, "feature_lengths": tf.shape(features)[0], "labels": label}

    return fn


def _featurizer(features: FeatureConfig):
    mel_matrix = tf.constant(features.mel_matrix())

    def fn(element):
        waveform = element.pop("waveform")
        mel, lengths = log_mel(waveform[None], tf.shape(waveform)[:1], features, mel_matrix)
        return {**element, "features": mel[0], "feature_lengths": lengths[0]}

    return fn


def _normalize(element):
    features = normalize_utterances(element["features"][None], element["feature_lengths"][None])[0]
    labels = element["labels"]
    return {"features": features, "feature_lengths": element["feature_lengths"],
            "labels": labels, "label_lengths": tf.shape(labels)[0]}


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

    def fn(element):
        samples = tf.numpy_function(perturb, [element["waveform"]], tf.float32)
        samples.set_shape([None])
        return {**element, "waveform": samples}

    return fn


def _padded_shapes_and_values(dims: int):
    shapes = {"features": [None, dims], "feature_lengths": [], "labels": [None], "label_lengths": []}
    values = {"features": 0.0, "feature_lengths": 0, "labels": 0, "label_lengths": 0}
    return shapes, values


def _batch(dataset: tf.data.Dataset, rows: Sequence[Utterance], config: Config, use_buckets: bool):
    shapes, values = _padded_shapes_and_values(config.input_dim)
    batch_size = config.data.batch_size
    if not use_buckets:
        return dataset.padded_batch(batch_size, padded_shapes=shapes, padding_values=values)
    boundaries = bucket_boundaries(rows, config)
    if config.data.max_frames_per_batch:
        # Same number of padded frames per batch in every bucket, never more than batch_size utterances.
        upper = [*boundaries, boundaries[-1] * 2]
        sizes = [max(1, min(batch_size, config.data.max_frames_per_batch // b)) for b in upper]
    else:
        sizes = [batch_size] * (len(boundaries) + 1)
    return dataset.bucket_by_sequence_length(
        element_length_func=lambda element: element["feature_lengths"],
        bucket_boundaries=boundaries, bucket_batch_sizes=sizes,
        padded_shapes=shapes, padding_values=values, pad_to_bucket_boundary=False)


def bucket_boundaries(rows: Sequence[Utterance], config: Config) -> list[int]:
    """Frame-count boundaries at quantiles of the manifest's durations, so buckets fill evenly, with gaps
    wider than MAX_BUCKET_RATIO split geometrically so the long tail is not padded to its longest member."""
    rate = config.features.frames_per_second
    frames = np.array([max(1, round(row.duration * rate)) for row in rows])
    quantiles = np.linspace(0, 100, config.data.num_buckets + 1)[1:-1]
    edges = sorted({int(q) + 1 for q in np.percentile(frames, quantiles)} | {int(frames.max()) + 1})
    boundaries = [edges[0]]
    for edge in edges[1:]:
        while edge > boundaries[-1] * MAX_BUCKET_RATIO:
            boundaries.append(int(boundaries[-1] * MAX_BUCKET_RATIO) + 1)
        if edge > boundaries[-1]:
            boundaries.append(edge)
    return boundaries[:-1] or boundaries


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
