"""``kg2tool.textops`` / ``_core.concat_text``: native string building, JSON escaping as orjson,
and the checks at the native boundary."""

from __future__ import annotations

import random

import numpy as np
import orjson
import polars as pl
import pytest

from kg2tool import _core
from kg2tool.textops import (
    Int,
    Join,
    Str,
    Strings,
    concat,
    concat_bytes,
    group_offsets,
    json_str,
    write_lines,
)

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


def test_polars_string_views_are_read_in_place() -> None:
    """A Polars column is read through its own string views (inline values of <= 12 bytes,
    others in data buffers; slices and filtered columns too), with the same text as from
    Arrow large strings."""
    rng = random.Random(2)
    vals = [
        "".join(rng.choice(CHARS) for _ in range(rng.choice([0, 3, 12, 13, 40])))
        for _ in range(3000)
    ]
    base = pl.concat([pl.Series(vals[:1500]), pl.Series(vals[1500:])], rechunk=False)
    keep = pl.Series(np.arange(len(vals)) % 3 != 0)
    for col in (pl.Series(vals), base, base.slice(7, 900), base.filter(keep)):
        assert Strings(col).offsets is None  # views, no large-string copy
        want = col.to_list()
        large = Strings(col.to_arrow())  # the Arrow large-string path
        assert large.offsets is not None
        for s in (col, large):
            got = concat(len(want), "<", Str(s, json=True), "|", Str(s), ">")
            assert got.to_list() == [f"<{orjson.dumps(v).decode()}|{v}>" for v in want]
        idx = np.arange(len(want))[::-1].copy()
        assert concat(len(want), Str(col, index=idx)).to_list() == want[::-1]
        groups = np.array([0, 1, 1, len(want)], np.int64)
        got = concat(3, Join(col, groups, sep=";")).to_list()
        assert got == [want[0], "", ";".join(want[1:])]


def test_write_lines(tmp_path) -> None:
    """Rows written to a file descriptor from its offset, each then the end; rows longer than
    the 1 MB buffer too; the same bytes as concat."""
    col = pl.Series(["é" * 5, "x" * (3 << 20), "", 'a"b'] * 3)
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"head")
    with open(path, "r+b") as fh:
        fh.seek(4)
        n = write_lines(fh.fileno(), len(col), "{", Str(col, json=True), "}")
    want = "".join("{" + orjson.dumps(v).decode() + "}\n" for v in col.to_list()).encode()
    assert n == len(want) and path.read_bytes() == b"head" + want
    assert bytes(concat_bytes(len(col), "{", Str(col, json=True), "}\n")) == want
    with open(path, "rb") as fh, pytest.raises(OSError):  # read-only descriptor: EBADF
        write_lines(fh.fileno(), 1, "x")


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
        (
            [(1, None, (np.zeros(15, np.uint8), []), None, False)],
            ValueError,
            "16 bytes",
        ),
        (  # a 20-byte value in buffer 1 of 1
            [
                (
                    1,
                    None,
                    (np.array([20, 0, 0, 0, 0, 0, 0, 0, 1] + [0] * 7, np.uint8), []),
                    None,
                    False,
                )
            ],
            IndexError,
            "names buffer 1",
        ),
        (  # a 20-byte value at offset 0 of a 10-byte buffer
            [
                (
                    1,
                    None,
                    (np.array([20] + [0] * 15, np.uint8), [np.zeros(10, np.uint8)]),
                    None,
                    False,
                )
            ],
            IndexError,
            "past its buffer",
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
