"""Array helpers against plain NumPy: the per-group rank orders equal ``np.lexsort``'s."""

from __future__ import annotations

import numpy as np
import pytest

from kg2tool import arrays


@pytest.mark.parametrize("seed", range(5))
def test_rank_orders_equal_lexsort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(100):
        groups = int(rng.integers(1, 40))
        counts = rng.integers(0, 7, groups)
        n = int(rng.integers(1, 25))
        ids = rng.integers(0, n, int(counts.sum()))  # repeats inside a group: ties
        rank = rng.permutation(n) * int(rng.integers(1, 4)) - int(rng.integers(0, 3))
        seg = np.repeat(np.arange(groups), counts)
        want = ids[np.lexsort((rank[ids], seg))]
        assert np.array_equal(arrays.by_rank(counts, ids, rank), want)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        assert np.array_equal(arrays.sorted_lists(offsets, ids, rank), want)


def test_rank_order_falls_back_where_the_key_would_overflow() -> None:
    counts = np.array([2, 2])
    ids = np.array([0, 1, 1, 0])
    rank = np.array([1 << 61, -(1 << 61)])  # span beyond int64 once multiplied by the groups
    assert np.array_equal(arrays.by_rank(counts, ids, rank), np.array([1, 0, 1, 0]))
    assert len(arrays.by_rank(np.array([0]), np.array([], np.int64), rank)) == 0
