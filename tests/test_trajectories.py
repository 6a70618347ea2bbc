"""Trajectories replay exactly and recombine to the exact answers; error recovery is real."""

from __future__ import annotations

from functools import cache

import numpy as np
import orjson
import polars as pl
import pytest

from kg2tool.engine import resolve_pattern, sample_queries
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.patterns import BETAE_TYPES
from kg2tool.samples.calls import UnsupportedPlanError, check_plan
from kg2tool.samples.questions import build_lexicon
from kg2tool.samples.replay import verify, verify_many
from kg2tool.samples.trajectories import build_trajectories, build_trajectories_many
from kg2tool.tools.catalog import ApiCatalog
from kg2tool.tools.runtime import ToolRuntime


@cache
def env():
    """(kg, runtime, lexicon) of CoDEx-S."""
    kg = KnowledgeGraph.load("codex-s")
    cat = ApiCatalog.from_graph(kg)
    return kg, ToolRuntime(kg, cat), build_lexicon(kg, cat)


def _queries(pattern: str, n: int = 40) -> tuple:
    kg, _, _ = env()
    b = sample_queries(kg, pattern, n, seed=0, max_intermediate=10)
    q = b.frame().with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("sid"),
        pl.int_range(pl.len(), dtype=pl.UInt64).alias("qid"),
    )
    return b.plan, q


@pytest.mark.parametrize("pattern", list(BETAE_TYPES))
def test_replay_verifies_every_sample(pattern: str) -> None:
    _, rt, lex = env()
    plan, q = _queries(pattern)
    tr = build_trajectories(plan, q, rt, lex, seed=0)
    ok, failures = verify(plan, q, tr, rt)
    assert ok.all() and not failures
    # independent per-call replay of a few samples through runtime.call
    for row in tr.steps.head(20).iter_rows(named=True):
        assert rt.call(row["api"], row["arguments"]).to_json() == row["observation"]
    for names, text in tr.samples.select("answer_names", "final_text").iter_rows():
        assert all(n in text for n in names)


def test_tampered_observation_is_caught() -> None:
    _, rt, lex = env()
    plan, q = _queries("2p")
    tr = build_trajectories(plan, q, rt, lex)
    tr.steps = tr.steps.with_columns(
        pl.when(pl.col("sid") == 0)
        .then(pl.lit("[]"))
        .otherwise(pl.col("observation"))
        .alias("observation")
    )
    ok, failures = verify(plan, q, tr, rt)
    assert not ok[0] and ok[1:].all() and failures["observation_mismatch"] == 1


def test_error_recovery_uses_real_errors() -> None:
    _, rt, lex = env()
    plan, q = _queries("2i")
    tr = build_trajectories(plan, q, rt, lex, error_ratio=1.0)
    ok, _ = verify(plan, q, tr, rt)
    assert ok.all() and tr.samples["recovery"].sum() > 0
    err = tr.steps.filter(pl.col("kind") == "error")
    for row in err.iter_rows(named=True):
        assert orjson.loads(row["observation"])["error"] == "unknown_entity"
        assert rt.call(row["api"], row["arguments"]).to_json() == row["observation"]


JOIN_PATTERNS = ["triangle", "square", "3c", "lollipop", "2m", "2nm", "3mp", "3pm", "im"]
JOIN_PATTERNS += ["pni_fit", "2il", "3il"]


@pytest.mark.parametrize("pattern", JOIN_PATTERNS)
def test_join_patterns_replay_to_the_exact_answers(pattern: str) -> None:
    _, rt, lex = env()
    plan, q = _queries(pattern, 25)
    check_plan(plan)
    tr = build_trajectories(plan, q, rt, lex, seed=0)
    ok, failures = verify(plan, q, tr, rt)
    assert ok.all() and not failures
    assert (tr.steps["sub"] >= 0).all()  # every call belongs to a JOIN sub-step
    for names, text in tr.samples.select("answer_names", "final_text").iter_rows():
        assert all(n in text for n in names)
    # dropping one call of a sample breaks its re-join (the candidates no longer match)
    victim = tr.steps.filter(pl.col("sub") == tr.steps["sub"].max()).row(0, named=True)
    tr.steps = tr.steps.filter(
        ~((pl.col("sid") == victim["sid"]) & (pl.col("step") == victim["step"]))
    )
    ok, failures = verify(plan, q, tr, rt)
    assert not ok[victim["sid"]] and failures["plan_mismatch"] >= 1


def test_unsupported_joins_are_refused_clearly() -> None:
    with pytest.raises(UnsupportedPlanError, match="TYPE_FILTER"):
        check_plan(resolve_pattern("r1(s1,e1)&r2(e1,f) where f:Q5"))
    with pytest.raises(UnsupportedPlanError, match="negated conjunction"):
        check_plan(resolve_pattern("r1(s1,e1)&r2(e1,f)&r3(e1,f)&!(r4(s2,e2)&r5(e2,e1))"))


@pytest.mark.parametrize("pattern", list(BETAE_TYPES))
def test_set_op_tool_calls_replay(pattern: str) -> None:
    _, rt, lex = env()
    plan, q = _queries(pattern, 30)
    tr = build_trajectories(plan, q, rt, lex, seed=0, set_ops="tools")
    ok, failures = verify(plan, q, tr, rt)
    assert ok.all() and not failures
    set_calls = tr.steps.filter(pl.col("param").is_null())
    n_setops = sum(int(k) in (2, 3, 4) for k in plan.op_kind)
    assert (set_calls.height > 0) == (n_setops > 0)
    for row in set_calls.head(10).iter_rows(named=True):
        assert rt.call(row["api"], row["arguments"]).to_json() == row["observation"]
    if n_setops:  # a tampered set-operation argument is caught
        first = set_calls.row(0, named=True)
        tr.steps = tr.steps.with_columns(
            pl.when((pl.col("sid") == first["sid"]) & (pl.col("step") == first["step"]))
            .then(pl.lit('{"first":[],"second":[]}'))
            .otherwise(pl.col("arguments"))
            .alias("arguments")
        )
        ok, failures = verify(plan, q, tr, rt)
        assert not ok[first["sid"]]


def test_default_set_ops_has_no_set_calls() -> None:
    _, rt, lex = env()
    plan, q = _queries("3in")
    tr = build_trajectories(plan, q, rt, lex, seed=0)
    assert tr.steps["param"].null_count() == 0
    with pytest.raises(ValueError, match="set_ops"):
        build_trajectories(plan, q, rt, lex, set_ops="calls")


def test_vectorised_replay_matches_runtime_call() -> None:
    """call_ids_batch + encode_results give runtime.call's observation, byte for byte."""
    kg, rt, _ = env()
    apis = [a.name for a in rt.catalog.apis if a.kind == "relation"]
    t = kg.triples
    ents = np.r_[t["head"].to_numpy()[:300], t["tail"].to_numpy()[:300]].astype(np.int64)
    names = [apis[i % len(apis)] for i in range(len(ents))]
    off, ids = rt.call_ids_batch(names, ents)
    obs = rt.encode_results(off, ids).to_list()
    for api, e, o in zip(names, ents.tolist(), obs, strict=True):
        param = rt.catalog[api].param_names[0]
        assert rt.call(api, {param: rt.names[e]}).to_json() == o


def test_many_patterns_at_once_equal_one_by_one() -> None:
    """Building and verifying several patterns together gives each pattern's own rows."""
    _, rt, lex = env()
    items = []
    base = 0
    for p in ("2p", "pi", "2in", "up"):
        plan, q = _queries(p, 25)
        items.append((plan, q.with_columns(pl.col("sid") + base)))
        base += 1000
    together = build_trajectories_many(items, rt, lex, seed=3)
    ok, failures = verify_many(items, together, rt)
    assert ok.all() and not failures
    for plan, q in items:
        alone = build_trajectories(plan, q, rt, lex, seed=3)
        sids = q["sid"].implode()
        part = together.steps.filter(pl.col("sid").is_in(sids))
        assert alone.steps.drop("uid").equals(part.drop("uid"))  # uid: internal call index
        assert alone.samples.equals(together.samples.filter(pl.col("sid").is_in(sids)))


def test_wrong_final_answer_is_caught() -> None:
    _, rt, lex = env()
    plan, q = _queries("2i")
    tr = build_trajectories(plan, q, rt, lex)
    tr.samples = tr.samples.with_columns(
        pl.when(pl.col("sid") == 1)
        .then(pl.lit(["Nobody"], pl.List(pl.String)))
        .otherwise(pl.col("answer_names"))
        .alias("answer_names")
    )
    ok, failures = verify(plan, q, tr, rt)
    assert not ok[1] and ok[0] and failures["plan_mismatch"] == 1


def test_wrong_engine_set_is_caught() -> None:
    """A query whose recorded intermediate set differs from the replayed calls fails."""
    _, rt, lex = env()
    plan, q = _queries("2p")
    tr = build_trajectories(plan, q, rt, lex)
    sets = q["sets"].to_list()
    sets[2][1] = [*sets[2][1][:-1], sets[2][1][-1] + 1] if sets[2][1] else [0]
    bad = q.with_columns(pl.Series("sets", sets, dtype=q["sets"].dtype))
    ok, failures = verify(plan, bad, tr, rt)
    assert not ok[2] and ok[[0, 1, 3]].all() and failures["plan_mismatch"] >= 1
