"""The decision's numpy shortcuts give numpy's own results, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from langchain_tiered_router.core.arrays import distinct_counts, unit


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint64])
@pytest.mark.parametrize("high", [2, 50, 2**16, 2**31 - 1])
def test_distinct_counts_is_numpys_unique_with_counts(dtype, high):
    rng = np.random.default_rng(high)
    for size in (1, 2, 3, 17, 500, 4_000):
        values = rng.integers(0, high, size).astype(dtype)
        values = np.frombuffer(values.tobytes(), dtype=dtype)  # read-only, as token ids are
        expected, expected_counts = np.unique(values, return_counts=True)
        got, counts = distinct_counts(values)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)
        assert counts.dtype == expected_counts.dtype and np.array_equal(counts, expected_counts)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unit_is_division_by_numpys_norm(dtype):
    rng = np.random.default_rng(3)
    for size in (1, 5, 256, 10_000):
        vector = (rng.standard_normal(size) * 10.0 ** rng.integers(-6, 6)).astype(dtype)
        expected = vector / np.linalg.norm(vector)
        assert unit(vector).dtype == expected.dtype and np.array_equal(unit(vector), expected)
    zeros = np.zeros(4, dtype)
    assert np.array_equal(unit(zeros), zeros)
