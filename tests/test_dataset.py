"""Assembly: columns, determinism, options, splits, writing with card and LLaMA-Factory info."""

from __future__ import annotations

import json
import re
from functools import cache

import polars as pl
import pytest

from kg2tool.dataset.assemble import COLUMNS, SampleContext, build_dataset, build_shard
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


@pytest.mark.parametrize("how", ["random", "pattern", "relation", "api"])
def test_splits(how: str) -> None:
    f = _build(60, split=how)
    assert set(f["split"].to_list()) <= {"train", "validation", "test"}
    if how != "random":
        assert "test" in set(f["split"].to_list())


def test_shard_is_pure() -> None:
    c = ctx()
    a, _ = build_shard(c.kg, ["2p"], 3, 8, 20, 7, "sharegpt", context=c)
    b, _ = build_shard(c.kg, ["2p"], 3, 8, 20, 7, "sharegpt", context=c)
    assert a.equals(b)


@pytest.mark.parametrize("fmt", ["sharegpt", "toolbench"])
def test_write_dataset(tmp_path, fmt: str) -> None:
    f = _build(30, format=fmt)
    out = write_dataset(f, tmp_path, fmt, config={"seed": 0})
    assert (out / "README.md").read_text().count("|") > 4
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
