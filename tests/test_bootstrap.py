"""Bootstrap intervals: the numbers they must give on cases worked out by hand."""

import numpy as np
import pytest

from asr.bootstrap import bootstrap_interval, paired_bootstrap, percentile_interval


def test_an_utterance_set_with_one_rate_has_that_rate_as_its_whole_interval():
    errors, totals = np.array([1, 2, 3]), np.array([10, 20, 30])  # every utterance at 10%
    assert bootstrap_interval(errors, totals, 200, seed=0) == pytest.approx((0.1, 0.1))
    assert bootstrap_interval(errors, totals, 0, seed=0) is None
    assert bootstrap_interval(np.array([]), np.array([]), 200, seed=0) is None


def test_percentile_interval_leaves_out_undefined_resamples():
    samples = np.concatenate([np.arange(101, dtype=np.float64), [np.nan, np.inf]])
    assert percentile_interval(samples) == pytest.approx((2.5, 97.5))
    assert percentile_interval(np.array([np.nan])) is None


def test_paired_bootstrap_of_a_system_against_itself_never_flips_sign():
    this = (np.array([0, 1, 2, 0]), np.array([5, 5, 5, 5]))
    interval, p_value = paired_bootstrap(this, this, 300, seed=1)
    assert interval == pytest.approx((0.0, 0.0)) and p_value == 1.0  # every delta is a tie


def test_paired_bootstrap_finds_a_system_that_is_worse_on_every_utterance():
    totals = np.full(30, 10)
    better, worse = (np.full(30, 1), totals), (np.full(30, 3), totals)
    interval, p_value = paired_bootstrap(worse, better, 500, seed=2)
    assert interval == pytest.approx((0.2, 0.2)) and p_value == 0.0
    assert paired_bootstrap(worse, better, 0, seed=2) == (None, None)
