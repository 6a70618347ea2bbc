"""KGReasoning's pickles written straight from id arrays, without a Python object per query.

KGReasoning loads ``defaultdict(set)`` objects: structure -> set of grounded query tuples,
and query tuple -> set of entity ids. Building a million tuples and tens of millions of
ints in Python only to pickle them dominates an export, so this module emits the pickle
opcodes (protocol 4, unframed, as :mod:`pickle` reads them) with NumPy: a query type's
tuples are one fixed byte layout with the ids poked in, an answer set is
``EMPTY_SET MARK (BININT id)* ADDITEMS``. ``pickle.load`` gives the same objects
``pickle.dump`` of the Python structures would (tests compare them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["encode_keys", "encode_object", "write_answers", "write_queries"]

_PROTO = b"\x80\x04"
_MARK = b"("
_STOP = b"."
_SETITEMS = b"u"
_EMPTY_SET = 0x8F
_ADDITEMS = 0x90
_BININT = 0x4A  # 'J', a signed 4-byte little-endian int
_TUPLES = {1: b"\x85", 2: b"\x86", 3: b"\x87"}
_DEFAULTDICT_OF_SET = b"ccollections\ndefaultdict\ncbuiltins\nset\n\x85R"


def encode_object(obj: Any) -> bytes:
    """Opcodes of a (nested) tuple of short str and int values, e.g. a query structure."""
    if isinstance(obj, tuple):
        body = b"".join(encode_object(x) for x in obj)
        if len(obj) in _TUPLES:
            return body + _TUPLES[len(obj)]
        return _MARK + body + b"t"
    if isinstance(obj, str):
        raw = obj.encode()
        if len(raw) > 255:
            raise ValueError("only short strings are encoded")
        return b"\x8c" + bytes([len(raw)]) + raw
    if isinstance(obj, int) and not isinstance(obj, bool):
        return bytes([_BININT]) + int(obj).to_bytes(4, "little", signed=True)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def encode_keys(template: Any, columns: dict[str, np.ndarray], n: int) -> np.ndarray:
    """The pickled tuples of ``n`` queries as a uint8 [n, L] matrix (one row per query).

    ``template`` is a nested tuple whose leaves are names of ``columns`` (int32 arrays of
    length n) or fixed ints (-2 for negation, -1 for union).
    """
    layout: list[tuple[int, str | None]] = []  # (offset of a BININT, column or None)
    static = bytearray()

    def walk(t: Any) -> None:
        if isinstance(t, tuple):
            if len(t) not in _TUPLES:
                static.extend(_MARK)
            for x in t:
                walk(x)
            static.extend(_TUPLES.get(len(t), b"t"))
        elif isinstance(t, int):
            static.extend(encode_object(t))
        else:
            layout.append((len(static), t))
            static.extend(b"J\x00\x00\x00\x00")

    walk(template)
    out = np.tile(np.frombuffer(bytes(static), np.uint8), (n, 1))
    for pos, name in layout:
        values = np.ascontiguousarray(columns[name], dtype="<i4")
        out[:, pos + 1 : pos + 5] = values.view(np.uint8).reshape(n, 4)
    return out


def _answer_bytes(keys: np.ndarray, offsets: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``key EMPTY_SET MARK (BININT id)* ADDITEMS`` for every query, concatenated."""
    width = keys.shape[1]
    lengths = np.diff(offsets).astype(np.int64)
    seg = width + 3 + 5 * lengths
    starts = np.r_[0, np.cumsum(seg)[:-1]].astype(np.int64)
    out = np.empty(int(seg.sum()), np.uint8)
    out[(starts[:, None] + np.arange(width)).ravel()] = keys.ravel()
    out[starts + width] = _EMPTY_SET
    out[starts + width + 1] = _MARK[0]
    out[starts + seg - 1] = _ADDITEMS
    total = int(lengths.sum())
    if total:
        first = np.repeat(starts + width + 2 - 5 * offsets[:-1], lengths) + 5 * np.arange(total)
        out[first] = _BININT
        raw = np.ascontiguousarray(ids, dtype="<i4").view(np.uint8).reshape(-1, 4)
        out[(first[:, None] + 1 + np.arange(4)).ravel()] = raw.ravel()
    return out


def write_queries(path: Path, groups: list[tuple[Any, np.ndarray]]) -> None:
    """``defaultdict(set)``: structure -> set of the tuples encoded in each [n, L] matrix."""
    with open(path, "wb") as f:
        f.write(_PROTO + _DEFAULTDICT_OF_SET + _MARK)
        for structure, keys in groups:
            f.write(encode_object(structure) + bytes([_EMPTY_SET]) + _MARK)
            f.write(np.ascontiguousarray(keys).tobytes())
            f.write(bytes([_ADDITEMS]))
        f.write(_SETITEMS + _STOP)


def write_answers(path: Path, groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """``defaultdict(set)``: query tuple -> answer set, from (keys, offsets, ids) groups."""
    with open(path, "wb") as f:
        f.write(_PROTO + _DEFAULTDICT_OF_SET + _MARK)
        for keys, offsets, ids in groups:
            if len(keys):
                f.write(_answer_bytes(keys, offsets, ids).tobytes())
        f.write(_SETITEMS + _STOP)
