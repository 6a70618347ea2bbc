"""Sorted keys, grouped ids and List columns as numpy arrays (no per-row Python).

Samples, replay and the plan's join steps work on flat arrays: per-row groups are
(counts, concatenated values) or sorted ``row << 31 | id`` keys; these helpers convert and
reorder them.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

__all__ = [
    "by_rank",
    "flat_lists",
    "list_matrix",
    "list_series",
    "ranges",
    "row_counts",
    "row_unique",
    "sorted_lists",
    "sorted_unique",
    "unique_inverse",
]


def sorted_unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based; numpy's hash-based unique is far slower here)."""
    if len(x) == 0:
        return x
    x = np.sort(x)
    return x[np.r_[True, x[1:] != x[:-1]]]


def unique_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each x in them)."""
    if len(x) == 0:
        return x, np.zeros(0, np.int64)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]]
    inv = np.empty(len(x), np.int64)
    inv[order] = np.cumsum(first) - 1
    return xs[first], inv


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(starts[i], starts[i] + counts[i])`` (no Python loop)."""
    counts = counts.astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    before = np.cumsum(counts) - counts
    return np.repeat(starts.astype(np.int64) - before, counts) + np.arange(total)


def row_unique(row: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row distinct ids: (row of each, ids), sorted by (row, id)."""
    key = sorted_unique((row.astype(np.int64) << 31) | ids.astype(np.int64))
    return key >> 31, key & ((1 << 31) - 1)


def row_counts(row: np.ndarray, n: int) -> np.ndarray:
    """Per-row counts of a sorted row array."""
    return np.bincount(row, minlength=n).astype(np.int64) if len(row) else np.zeros(n, np.int64)


def _order_in_groups(seg: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The stable order by (group, key) for ascending groups ``seg``: one argsort of a
    combined key (several times faster than ``np.lexsort`` of the two), the lexsort where
    the combined key could overflow."""
    lo, hi = int(key.min()), int(key.max())
    span = hi - lo + 1
    if (int(seg[-1]) + 1) * span < 1 << 62:
        return np.argsort(seg.astype(np.int64) * span + (key.astype(np.int64) - lo), kind="stable")
    return np.lexsort((key, seg))


def by_rank(counts: np.ndarray, ids: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Ids reordered by rank inside each consecutive group of ``counts``."""
    if len(ids) == 0:
        return ids
    seg = np.repeat(np.arange(len(counts)), counts)
    return ids[_order_in_groups(seg, rank[ids])]


def sorted_lists(offsets: np.ndarray, values: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Values reordered by rank inside each [offsets[i], offsets[i+1]) slice."""
    if len(values) == 0:
        return values
    seg = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    return values[_order_in_groups(seg, rank[values])]


def list_series(offsets: np.ndarray, values: pa.Array | np.ndarray, name: str) -> pl.Series:
    """A List column from offsets and flat values (no Python loop)."""
    arr = pa.LargeListArray.from_arrays(pa.array(offsets.astype(np.int64)), pa.array(values))
    return pl.Series(name, pl.from_arrow(arr))


def _arrow(col: pl.Series) -> pa.Array:
    arr = col.to_arrow()
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def flat_lists(col: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(lengths, concatenated values as int64) of a List(Int) column, through Arrow."""
    arr = _arrow(col)
    off = np.asarray(arr.offsets, dtype=np.int64)
    vals = np.asarray(arr.values, dtype=np.int64)[off[0] : off[-1]]
    return np.diff(off), vals


def list_matrix(col: pl.Series, width: int) -> np.ndarray:
    """A List(Int) column of fixed width as an [n, width] int64 matrix."""
    vals = np.asarray(_arrow(col).flatten(), dtype=np.int64)
    return vals.reshape(len(col), width)
