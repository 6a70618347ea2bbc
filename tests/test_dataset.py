"""Assembly: columns, determinism, options, splits, writing with card and LLaMA-Factory info."""

from __future__ import annotations

import json
import re
from functools import cache

import polars as pl
import pytest

from kg2tool.dataset.assemble import (
    COLUMNS,
    SampleContext,
    assign_splits,
    build_dataset,
    build_shard,
)
from kg2tool.dataset.card import COLUMN_DOCS
from kg2tool.dataset.output import write_dataset
from kg2tool.kg.graph import KnowledgeGraph


@cache
def ctx() -> SampleContext:
    """Shared context over CoDEx-S."""
    return SampleContext(KnowledgeGraph.load("codex-s"))


def _build(n: int = 60, **kw) -> pl.DataFrame:
    c = ctx()
    return build_dataset(c.kg, ["1p", ("2p", 2), "2in"], n, seed=kw.pop("seed", 0), context=c, **kw)


def test_columns_and_determinism() -> None:
    a, b, c = _build(), _build(), _build(seed=1)
    assert set(COLUMNS) <= set(a.columns)
    assert a.equals(b) and not a.equals(c)
    assert a["id"].n_unique() == a.height
    for q in a["question"].to_list():
        assert not re.search(r"\b[QP]\d+\b|[{}]", q)


def test_mixing_ratio() -> None:
    counts = dict(_build(80).group_by("pattern").len().iter_rows())
    assert counts["2p"] > counts["1p"]


def test_empty_answer_option() -> None:
    f = _build(60, empty_ratio=0.5)
    empty = f.filter(pl.col("empty"))
    assert empty.height > 0 and (empty["answers"].list.len() == 0).all()
    assert empty["messages"].str.contains("no entity satisfies").all()


def test_error_recovery_option() -> None:
    f = _build(40, error_ratio=0.5)
    rec = f.filter(pl.col("recovery"))
    assert rec.height > 0 and rec["trace"].str.contains("unknown_entity").all()


def _ids(n: int) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"{i:016x}" for i in range(n)]})


def test_random_split_of_known_ids() -> None:
    halves = assign_splits(_ids(16), "random", 0, (0.5, 0.25, 0.25))["split"].to_list()
    t, v, x = "train", "validation", "test"
    assert halves == [t, t, t, v, t, t, t, t, v, t, t, t, x, t, x, t]
    assert assign_splits(_ids(16), "random", 1, (0.5, 0.25, 0.25))["split"].to_list() != halves
    # the hash is uniform in [0, 1): a fraction of 1 takes every id
    for fractions, only in (((1, 0, 0), t), ((0, 1, 0), v), ((0, 0, 1), x)):
        assert assign_splits(_ids(16), "random", 0, fractions)["split"].to_list() == [only] * 16


def test_random_split_follows_the_fractions() -> None:
    counts = dict(assign_splits(_ids(4000), "random", 0).group_by("split").len().iter_rows())
    assert set(counts) == {"train", "validation", "test"}
    assert abs(counts["train"] / 4000 - 0.9) < 0.02
    assert abs(counts["validation"] / 4000 - 0.05) < 0.01
    assert abs(counts["test"] / 4000 - 0.05) < 0.01


@pytest.mark.parametrize(
    ("how", "held", "touches"),
    [
        ("pattern", "2in", lambda row, held: row["pattern"] == held),
        ("api", "get_memberships_of", lambda row, held: held in row["apis"]),
        (
            "relation",
            "P463",
            lambda row, held: (
                ctx().kg.relations["key"].to_list().index(held) in row["relation_ids"]
            ),
        ),
    ],
)
def test_held_out_split_is_exactly_the_samples_touching_the_holdout(how, held, touches) -> None:
    f = _build(60, split=how, holdout=[held])
    want = ["test" if touches(row, held) else "train" for row in f.iter_rows(named=True)]
    assert f["split"].to_list() == want
    assert 0 < want.count("test") < f.height


@pytest.mark.parametrize("how", ["pattern", "relation", "api"])
def test_held_out_split_picks_a_holdout_when_none_is_given(how: str) -> None:
    f = _build(60, split=how)
    assert set(f["split"].to_list()) == {"train", "test"}


def test_shard_is_pure() -> None:
    c = ctx()
    a, _ = build_shard(c.kg, ["2p"], 3, 8, 20, 7, "sharegpt", context=c)
    b, _ = build_shard(c.kg, ["2p"], 3, 8, 20, 7, "sharegpt", context=c)
    assert a.equals(b)


@pytest.mark.parametrize("fmt", ["sharegpt", "toolbench"])
def test_write_dataset(tmp_path, fmt: str) -> None:
    f = _build(30, format=fmt)
    out = write_dataset(f, tmp_path, fmt, config={"seed": 0})
    card = (out / "README.md").read_text()
    for pattern, n in f.group_by("pattern").len().iter_rows():
        formula = f.filter(pl.col("pattern") == pattern)["formula"][0]
        assert f"| {pattern} | {n} | `{formula}` |" in card
    assert f"| `split` | {COLUMN_DOCS['split']} |" in card
    assert (out / "calls_hist.png").exists()
    assert list((out / "data").glob("train-00000-of-*.parquet"))
    if fmt == "sharegpt":
        info = json.loads((out / "dataset_info.json").read_text())
        assert info["kg2tool_train"]["formatting"] == "sharegpt"
        assert (
            len((out / "train.jsonl").read_text().splitlines())
            == f.filter(pl.col("split") == "train").height
        )
    else:
        data = json.loads((out / "train.json").read_text())
        assert all(r["id"].startswith("Step ") for r in data)
