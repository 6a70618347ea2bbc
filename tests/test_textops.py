"""``kg2tool.textops`` / ``_core.concat_text``: native string building, JSON escaping as orjson,
and the checks at the native boundary."""

from __future__ import annotations

import random

import numpy as np
import orjson
import polars as pl
import pytest

from kg2tool import _core
from kg2tool.textops import Int, Join, Str, Strings, concat, concat_bytes, group_offsets
from kg2tool.trajectories import json_str

CHARS = [chr(i) for i in range(0x80)] + ["é", "\u2028", "\u0085", "\ufeff", "中", "😀"]


def test_json_escaping_equals_orjson_and_polars() -> None:
    rng = random.Random(0)
    vals = ["".join(rng.choice(CHARS) for _ in range(rng.randint(0, 12))) for _ in range(5000)]
    s = pl.Series(vals)
    got = concat(len(s), "<", Str(s, json=True), ">", Int(np.arange(len(s)) - 7))
    assert got.to_list() == [f"<{orjson.dumps(v).decode()}>{i - 7}" for i, v in enumerate(vals)]
    polars = pl.select(pl.concat_str(pl.lit("<"), json_str(pl.lit(s)), pl.lit(">"))).to_series()
    assert (concat(len(s), "<", Str(s, json=True), ">") == polars).all()


def test_json_escaping_of_long_values_word_at_a_time() -> None:
    """Values longer than the 8-byte words the escaper tests at once, specials at every offset
    (dense, sparse, none), multi-byte UTF-8 next to them."""
    rng = random.Random(1)
    plain = [c for c in CHARS if c >= " " and c not in '"\\']
    special = ['"', "\\", "\n", "\x00", "\x1f", "\t", "\x7f", "é"]
    vals = []
    for _ in range(3000):
        density = rng.choice([0.0, 0.02, 0.3, 1.0])
        n = rng.randint(0, 70)
        vals.append(
            "".join(
                rng.choice(special) if rng.random() < density else rng.choice(plain)
                for _ in range(n)
            )
        )
    s = pl.Series(vals)
    got = concat(len(s), Str(s, json=True), "|", Str(s))
    assert got.to_list() == [f"{orjson.dumps(v).decode()}|{v}" for v in vals]


def test_gather_join_and_bytes() -> None:
    col = pl.Series(list("abcdef"))
    assert concat(3, Str(col, index=np.array([5, 0, 0]))).to_list() == ["f", "a", "a"]
    groups, index = group_offsets(np.array([2, 0, 5, 1]), np.array([0, 0, 1, 2, 2, 2]))
    got = concat(4, "[", Join(col, groups, index, sep=", ", json=True, trailing=True), "]")
    assert got.to_list() == ['["d", "e", "f", ]', '["a", "b", ]', "[]", '["c", ]']
    assert concat(2, Join(col, np.array([0, 2, 6]), sep="+")).to_list() == ["a+b", "c+d+e+f"]
    assert bytes(concat_bytes(3, Str(col.head(3)), "\n")) == b"a\nb\nc\n"
    assert concat(0, "x").to_list() == []
    big = pl.Series(["x" * 1000] * 5000)  # a pooled (mapped) buffer, twice
    for _ in range(2):
        out = concat(len(big), Str(Strings(big)), "\n")
        assert out.str.len_bytes().sum() == 1001 * 5000


@pytest.mark.parametrize(
    ("parts", "error", "message"),
    [
        (
            [(1, np.array([0, 1], np.int64), np.zeros(1, np.uint8), None, False)],
            ValueError,
            "expected 2 strings",
        ),
        (
            [(1, np.array([0, 5, 9], np.int64), np.zeros(4, np.uint8), None, False)],
            IndexError,
            "past the end",
        ),
        (
            [(1, np.array([0, 3, 1], np.int64), np.zeros(4, np.uint8), None, False)],
            ValueError,
            "decrease",
        ),
        (
            [
                (
                    1,
                    np.array([0, 1], np.int64),
                    np.zeros(1, np.uint8),
                    np.array([0, 1], np.int64),
                    False,
                )
            ],
            IndexError,
            "out of range",
        ),
        (
            [
                (
                    1,
                    np.array([0, 1], np.int64),
                    np.zeros(1, np.uint8),
                    np.array([0, -1], np.int64),
                    False,
                )
            ],
            IndexError,
            "out of range",
        ),
        ([(2, np.arange(3, dtype=np.int64))], ValueError, "expected 2 integers"),
        (
            [
                (
                    3,
                    np.array([0, 1], np.int64),
                    np.zeros(1, np.uint8),
                    None,
                    False,
                    np.array([0, 1, 2], np.int64),
                    b",",
                    False,
                )
            ],
            IndexError,
            "past the 1 values",
        ),
        (
            [
                (
                    3,
                    np.array([0, 1], np.int64),
                    np.zeros(1, np.uint8),
                    None,
                    False,
                    np.array([1, 0, 1], np.int64),
                    b",",
                    False,
                )
            ],
            ValueError,
            "decrease",
        ),
        (
            [(1, np.array([0, 1], np.int32), np.zeros(1, np.uint8), None, False)],
            ValueError,
            "dtype",
        ),
        ([(0, "not bytes")], TypeError, "bytes"),
        ([(7, b"")], ValueError, "unknown kind"),
        ([(0,)], ValueError, "takes 2 fields"),
    ],
)
def test_bad_input_raises(parts, error, message) -> None:
    with pytest.raises(error, match=message):
        _core.concat_text(2, parts)


def test_nulls_are_refused() -> None:
    with pytest.raises(ValueError, match="nulls"):
        Strings(pl.Series(["a", None]))
