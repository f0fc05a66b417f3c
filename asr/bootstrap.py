"""Bootstrap confidence intervals for error rates: one system's rate, and the paired difference of two.

Resampling is by utterance (errors within a recording are not independent), and the rate of each resample is
the corpus rate sum(errors) / sum(reference tokens), as the point estimate is.
"""

from __future__ import annotations

import numpy as np

DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 0
CONFIDENCE = 0.95
CI_LABEL = f"{CONFIDENCE:.0%} CI"  # how reports head an interval: "95% CI"
# Bounds the index matrix drawn per bootstrap block, so 1000 resamples of a large test set do not
# allocate gigabytes at once.
BOOTSTRAP_BLOCK_ELEMENTS = 2_000_000
BOOTSTRAP_METHOD = (
    "percentile bootstrap: utterances resampled with replacement, corpus rate = sum(errors) / "
    "sum(reference tokens) per resample"
)
PAIRED_METHOD = (
    "paired bootstrap: common utterances resampled with replacement, both systems scored on the same "
    "resample; delta = this - other; two-sided p = 2 * min(P(delta* <= 0), P(delta* >= 0)), i.e. twice "
    "the fraction of resamples where the sign of the difference flips (or ties), capped at 1"
)

Interval = tuple[float, float]


def bootstrap_interval(errors: np.ndarray, totals: np.ndarray, n_resamples: int, seed: int) -> Interval | None:
    """Percentile interval of sum(errors) / sum(totals) over utterance resamples; None if undefined."""
    if n_resamples <= 0 or len(errors) == 0:
        return None
    return percentile_interval(resampled_rates([(errors, totals)], n_resamples, seed)[0])


def percentile_interval(samples: np.ndarray) -> Interval | None:
    """The central CONFIDENCE interval of the finite samples; None when there are none."""
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return None
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def resampled_rates(systems: list[tuple[np.ndarray, np.ndarray]], n_resamples: int, seed: int
                    ) -> list[np.ndarray]:
    """Corpus rate of each (errors, totals) system on the same resamples; NaN where a resample is empty."""
    rng = np.random.default_rng(seed)
    n = len(systems[0][0])
    block = max(1, BOOTSTRAP_BLOCK_ELEMENTS // n)
    rates: list[list[np.ndarray]] = [[] for _ in systems]
    for start in range(0, n_resamples, block):
        index = rng.integers(0, n, size=(min(block, n_resamples - start), n))
        for out, (errors, totals) in zip(rates, systems, strict=True):
            err, tot = errors[index].sum(axis=1), totals[index].sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out.append(np.where(tot > 0, err / np.maximum(tot, 1), np.nan))
    return [np.concatenate(r) for r in rates]


def paired_bootstrap(this: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray],
                     n_resamples: int, seed: int) -> tuple[Interval | None, float | None]:
    """CONFIDENCE interval of rate(this) - rate(other) and the two-sided bootstrap p-value (see PAIRED_METHOD)."""
    if n_resamples <= 0 or len(this[0]) == 0:
        return None, None
    a, b = resampled_rates([this, other], n_resamples, seed)
    delta = (a - b)[np.isfinite(a - b)]
    if delta.size == 0:
        return None, None
    return percentile_interval(delta), min(1.0, 2 * min(float(np.mean(delta <= 0)), float(np.mean(delta >= 0))))
