"""Many strings at once from string columns, literals, integers and grouped joins (native).

``concat(n, parts)`` returns a String Series of ``n`` rows, row ``i`` being the concatenation
of every part's text for row ``i``; parts are a ``str`` (the same literal in every row),
:class:`Str` (a value of a column, optionally gathered by an index and/or written as a JSON
string literal), :class:`Int` (decimal text) or :class:`Join` (a group of column values joined
by a separator). The work is one pass of ``kg2tool._core.concat_text`` (cpp/text.h) over Arrow
string buffers, with JSON escaping identical to orjson's (and :func:`json_str`'s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from kg2tool import _core

__all__ = [
    "Int",
    "Join",
    "Str",
    "Strings",
    "concat",
    "concat_bytes",
    "group_offsets",
    "json_str",
    "write_lines",
]


class Strings:
    """A String column as Arrow buffers, made once: large-string (``offsets`` int64, ``data``
    uint8), or for a Polars Series its own string views without a copy (``offsets`` None,
    ``views`` uint8 [16 per value], ``buffers``; converting ~100 MB of views to a large-string
    array costs ~0.03 s)."""

    __slots__ = ("_keep", "buffers", "data", "offsets", "views")

    def __init__(self, values: pl.Series | pa.Array | pa.ChunkedArray | Built) -> None:
        self.views: np.ndarray | None = None
        self.buffers: list[np.ndarray] = []
        if isinstance(values, Built):
            self.offsets, self.data, self._keep = values.offsets, values.data, values
            return
        if isinstance(values, pl.Series):
            arr = values.to_arrow(compat_level=pl.CompatLevel.newest())
        else:
            arr = values
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
        if arr.null_count:
            raise ValueError("string column with nulls")
        n = len(arr)
        if pa.types.is_string_view(arr.type):
            bufs = arr.buffers()
            self.offsets = None
            self.data = np.zeros(0, np.uint8)
            self.views = np.frombuffer(bufs[1], np.uint8, count=16 * n, offset=16 * arr.offset)
            self.buffers = [
                np.frombuffer(b, np.uint8) if b is not None and b.size else np.zeros(0, np.uint8)
                for b in bufs[2:]
            ]
            self._keep = arr
            return
        if not pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.large_string())
        bufs = arr.buffers()
        self.offsets = np.frombuffer(bufs[1], np.int64, count=n + 1, offset=arr.offset * 8)
        self.data = (
            np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
        )
        self._keep = arr

    def __len__(self) -> int:
        if self.offsets is None:
            return len(self.views) // 16  # type: ignore[arg-type]
        return len(self.offsets) - 1

    def native(self) -> tuple[Any, Any]:
        """(offsets, data) as ``_core.concat_text`` takes a column."""
        if self.offsets is None:
            return None, (self.views, self.buffers)
        return self.offsets, self.data


@dataclass
class Built:
    """Output buffers of :func:`concat_built` (usable as a column of a later concat)."""

    offsets: np.ndarray
    data: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def series(self, name: str = "") -> pl.Series:
        n = len(self)
        arr = pa.LargeStringArray.from_buffers(
            n, pa.py_buffer(self.offsets), pa.py_buffer(self.data)
        )
        return pl.Series(name, arr, dtype=pl.String)


def _strings(col: Any) -> Strings:
    return col if isinstance(col, Strings) else Strings(col)


@dataclass
class Str:
    """Value ``index[i]`` (or ``i``) of ``col``; ``json=True`` writes it as a JSON string literal."""

    col: Any
    index: np.ndarray | None = None
    json: bool = False


@dataclass
class Int:
    """The decimal text of ``values[i]``."""

    values: Any


@dataclass
class Join:
    """Values ``index[j]`` (or ``j``) of ``col`` for ``j`` in ``groups[i]:groups[i+1]``, joined by
    ``sep`` (then one more ``sep`` after a non-empty group when ``trailing``)."""

    col: Any
    groups: np.ndarray
    index: np.ndarray | None = None
    sep: str = ","
    json: bool = False
    trailing: bool = False


def _i64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a), dtype=np.int64)


def _native_parts(parts: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for p in parts:
        if isinstance(p, str):
            out.append((0, p.encode()))
        elif isinstance(p, Str):
            s = _strings(p.col)
            idx = None if p.index is None else _i64(p.index)
            out.append((1, *s.native(), idx, bool(p.json)))
        elif isinstance(p, Int):
            vals = p.values.to_numpy() if isinstance(p.values, pl.Series) else p.values
            out.append((2, _i64(vals)))
        elif isinstance(p, Join):
            s = _strings(p.col)
            idx = None if p.index is None else _i64(p.index)
            out.append(
                (
                    3,
                    *s.native(),
                    idx,
                    bool(p.json),
                    _i64(p.groups),
                    p.sep.encode(),
                    bool(p.trailing),
                )
            )
        else:
            raise TypeError(f"unknown text part {p!r}")
    return out


def concat_built(n: int, *parts: Any) -> Built:
    """Like :func:`concat`, as raw buffers (cheap to reuse as a column of another concat)."""
    off, data = _core.concat_text(int(n), _native_parts(parts))
    return Built(off, data)


def concat(n: int, *parts: Any, name: str = "") -> pl.Series:
    """``n`` strings, each the concatenation of ``parts`` (see the module docstring)."""
    return concat_built(n, *parts).series(name)


def write_lines(fd: int, n: int, *parts: Any, end: str = "\n") -> int:
    """The ``n`` strings :func:`concat` would build, each followed by ``end``, written to the
    file descriptor ``fd`` from its current offset (through a small reused buffer: no column of
    the whole text is built); returns the number of bytes written."""
    return int(_core.write_text(int(fd), int(n), _native_parts(parts), end.encode()))


def concat_bytes(n: int, *parts: Any) -> np.ndarray:
    """The ``n`` strings back to back as one uint8 array (e.g. JSONL lines ending in ``"\\n"``)."""
    return concat_built(n, *parts).data


def group_offsets(keys: np.ndarray, sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``keys``, the rows of ``sorted_keys`` equal to it, as (groups int64[n+1],
    index int64[...]) for :class:`Join`: group i lists the matching rows in their order."""
    keys = np.asarray(keys)
    start = np.searchsorted(sorted_keys, keys, side="left")
    end = np.searchsorted(sorted_keys, keys, side="right")
    counts = (end - start).astype(np.int64)
    groups = np.zeros(len(keys) + 1, np.int64)
    np.cumsum(counts, out=groups[1:])
    total = int(groups[-1])
    if total == 0:
        return groups, np.zeros(0, np.int64)
    index = np.repeat(start.astype(np.int64) - groups[:-1], counts) + np.arange(total)
    return groups, index


def json_str(expr: pl.Expr) -> pl.Expr:
    """JSON string literal of a String expression (same escaping as orjson/serde_json)."""
    return pl.struct(expr.alias("a")).struct.json_encode().str.slice(5).str.strip_suffix("}")
