"""Hardening at the native boundary: every ``_core`` entry point fed bad input must raise a
Python exception (ValueError / IndexError / TypeError), never read or write out of bounds.

CI runs this file a second time against an AddressSanitizer + UBSan build (``.ci/run``),
so a case here that merely "does not crash" in a normal build is still checked for silent
out-of-bounds reads there. Also: determinism of the generated Parquet across thread counts.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from kg2tool import _core
from kg2tool import engine as engine_module
from kg2tool.engine import SamplingError, execute_queries, native_plan, sample_queries
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.tables import KGTables
from kg2tool.patterns import compile_pattern, get_pattern

BAD_INPUT = (ValueError, IndexError, TypeError)


@pytest.fixture(scope="module")
def tiny() -> KnowledgeGraph:
    """8 entities, 3 relations, 2 types: small enough that every path is cheap under ASan."""
    triples = [
        ("a", "r", "b"), ("b", "r", "c"), ("c", "s", "a"), ("a", "s", "d"), ("d", "r", "e"),
        ("e", "t", "f"), ("f", "r", "g"), ("g", "s", "h"), ("h", "t", "a"), ("b", "t", "d"),
    ]  # fmt: skip
    tables = KGTables(
        triples=pl.DataFrame(triples, schema=["head", "relation", "tail"], orient="row"),
        entity_types=pl.DataFrame({"key": ["a", "b", "c", "d"], "type": ["T", "T", "U", "U"]}),
    )
    return KnowledgeGraph.from_tables(tables)


@contextlib.contextmanager
def captured_specs() -> Iterator[list[dict[str, Any]]]:
    """Record the spec dicts ``native_plan`` hands to ``_core.Plan``."""
    specs: list[dict[str, Any]] = []
    real = _core.Plan

    def record(spec: dict[str, Any]) -> Any:
        specs.append(spec)
        return real(spec)

    engine_module._core.Plan = record  # type: ignore[misc]
    try:
        yield specs
    finally:
        engine_module._core.Plan = real  # type: ignore[misc]


def spec_of(kg: KnowledgeGraph, pattern: str) -> dict[str, Any]:
    """A fresh, valid plan spec (deep enough copy to mutate)."""
    with captured_specs() as specs:
        native_plan(kg, compile_pattern(get_pattern(pattern)))
    spec = specs[0]
    out = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in spec.items()}
    out["joins"] = [
        {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in j.items()}
        for j in spec["joins"]
    ]
    return out


def run_plan(kg: KnowledgeGraph, spec: dict[str, Any], *, join: bool) -> None:
    """Construct the plan and push it through execute, sample and (with ``join``) match_count."""
    plan = _core.Plan(spec)
    nr, na = plan.num_relation_slots, plan.num_anchor_slots
    rel = np.zeros((1, nr), np.int32)
    anc = np.zeros((1, na), np.int32)
    _core.execute(kg.native, plan, rel, anc, 1)
    _core.sample(kg.native, plan, 3, 0, max_candidates=50, threads=1)
    if join:
        _core.match_count(kg.native, plan, 0, rel, anc, 10, 1)


# ----- build_arrays / build_type_arrays --------------------------------------------------


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int32)


def test_build_arrays_empty_input_gives_a_valid_empty_graph() -> None:
    e = np.zeros(0, np.int32)
    for n_ent, n_rel in ((0, 0), (3, 2)):
        arrays, dups = _core.build_arrays(e, e, e, n_ent, n_rel, 1)
        assert dups == 0
        g = _core.Graph(n_ent, n_rel, 0, arrays, validate=True)
        assert g.num_edges == 0
        assert g.degrees().tolist() == [0] * n_ent
    g = _core.Graph(3, 2, 0, _core.build_arrays(e, e, e, 3, 2)[0])
    off, nb = g.neighbors(ids(0, 1, 2), ids(1))
    assert off.tolist() == [0, 0, 0, 0] and nb.size == 0


@pytest.mark.parametrize(
    ("heads", "rels", "tails", "n_ent", "n_rel", "error"),
    [
        (ids(0, 1).reshape(2, 1), ids(0, 0), ids(1, 0), 2, 1, ValueError),  # 2-D
        (ids(0, 1), ids(0, 0).reshape(1, 2), ids(1, 0), 2, 1, ValueError),
        (np.array([0.0, 1.0]), ids(0, 0), ids(1, 0), 2, 1, TypeError),  # float ids
        (np.array([0, 1], np.int64), ids(0, 0), ids(1, 0), 2, 1, TypeError),  # int64 ids
        (["x", "y"], ids(0, 0), ids(1, 0), 2, 1, BAD_INPUT),
        (ids(0, 1), ids(0), ids(1, 0), 2, 1, ValueError),  # lengths differ
        (ids(0, 2), ids(0, 0), ids(1, 0), 2, 1, ValueError),  # head >= N
        (ids(0, -5), ids(0, 0), ids(1, 0), 2, 1, ValueError),
        (ids(0, 1), ids(0, 1), ids(1, 0), 2, 1, ValueError),  # relation >= R
        (ids(0, 1), ids(0, 0), ids(1, 0), -1, 1, ValueError),  # negative counts
        (ids(0, 1), ids(0, 0), ids(1, 0), 2, -3, ValueError),
        (ids(0, 1), ids(0, 0), ids(1, 0), 2**31, 1, TypeError),  # not an int32
        (None, ids(0, 0), ids(1, 0), 2, 1, TypeError),
    ],
)
def test_build_arrays_rejects_bad_columns(heads, rels, tails, n_ent, n_rel, error) -> None:
    with pytest.raises(error):
        _core.build_arrays(heads, rels, tails, n_ent, n_rel, 1)


def test_build_arrays_non_contiguous_input_equals_contiguous() -> None:
    rng = np.random.default_rng(0)
    cols = [rng.integers(0, 9, 80).astype(np.int32) for _ in range(3)]
    cols[1] %= 3
    strided = [np.repeat(c, 2)[::2] for c in cols]
    assert not strided[0].flags.c_contiguous
    a, d1 = _core.build_arrays(*cols, 9, 3, 2)
    b, d2 = _core.build_arrays(*strided, 9, 3, 2)
    assert d1 == d2
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("ents", "tys", "n_ent", "n_typ", "error"),
    [
        (ids(0, 1), ids(0), 2, 1, ValueError),
        (ids(0, 1).reshape(1, 2), ids(0, 0), 2, 1, ValueError),
        (ids(0, 2), ids(0, 0), 2, 1, ValueError),
        (ids(0, 1), ids(0, 1), 2, 1, ValueError),
        (ids(-1, 1), ids(0, 0), 2, 1, ValueError),
        (np.array([0.5, 1.0]), ids(0, 0), 2, 1, TypeError),
    ],
)
def test_build_type_arrays_rejects_bad_columns(ents, tys, n_ent, n_typ, error) -> None:
    with pytest.raises(error):
        _core.build_type_arrays(ents, tys, n_ent, n_typ)


def test_build_type_arrays_empty() -> None:
    e = np.zeros(0, np.int32)
    d = _core.build_type_arrays(e, e, 4, 0)
    assert d["type_off"].tolist() == [0] * 5 and d["types"].size == 0


# ----- Graph ---------------------------------------------------------------------------


def arrays_of(kg: KnowledgeGraph) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in kg.native.arrays.items()}


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize(("n_ent", "n_rel", "n_typ"), [(-1, 3, 2), (8, -1, 2), (8, 3, -1)])
def test_graph_negative_counts(tiny, validate, n_ent, n_rel, n_typ) -> None:
    with pytest.raises(ValueError):
        _core.Graph(n_ent, n_rel, n_typ, arrays_of(tiny), validate=validate)


@pytest.mark.parametrize("arrays", [None, [], {"out.nbr": 1}, "arrays"])
def test_graph_rejects_non_dict_or_incomplete_arrays(arrays) -> None:
    with pytest.raises(BAD_INPUT):
        _core.Graph(2, 1, 0, arrays, True)


def test_graph_with_partial_type_arrays(tiny) -> None:
    arrays = arrays_of(tiny)
    del arrays["types"]
    with pytest.raises((KeyError, ValueError)):
        _core.Graph(tiny.num_entities, tiny.num_relations, 2, arrays, True)


def test_graph_counts_too_large_for_int32(tiny) -> None:
    with pytest.raises(TypeError):
        _core.Graph(2**31, 1, 0, arrays_of(tiny), True)


@pytest.mark.parametrize(
    ("entities", "relations", "error"),
    [
        ([0, 8], [0], IndexError),
        ([-1], [0], IndexError),
        ([0], [3], IndexError),
        ([0], [-1], IndexError),
        ([0, 1, 2], [0, 1], ValueError),  # neither one relation nor one per entity
        ([0, 1], [], ValueError),
        (["x"], [0], (*BAD_INPUT,)),
    ],
)
def test_neighbors_bad_ids(tiny, entities, relations, error) -> None:
    with pytest.raises(error):
        tiny.native.neighbors(np.array(entities), np.array(relations, dtype=np.int32), False)


def test_neighbors_empty_2d_and_strided_inputs(tiny) -> None:
    g = tiny.native
    off, nb = g.neighbors(np.zeros(0, np.int32), np.zeros(0, np.int32), False)
    assert off.tolist() == [0] and nb.size == 0
    off, nb = g.neighbors(np.zeros(0, np.int32), ids(0), True)
    assert off.tolist() == [0]
    flat = np.arange(8, dtype=np.int32)
    want = g.neighbors(flat, ids(0), False)
    two_d = g.neighbors(flat.reshape(2, 4), ids(0), False)  # taken as its flat ids
    strided = g.neighbors(np.repeat(flat, 2)[::2], ids(0), False)
    for got in (two_d, strided):
        assert all(np.array_equal(x, y) for x, y in zip(want, got, strict=True))
    for r in range(3):
        off, nb = g.neighbors(flat, ids(r), False)
        assert np.all((nb >= 0) & (nb < 8)) and off[-1] == nb.size


@pytest.mark.parametrize(
    ("u", "r", "error"),
    [(8, 0, IndexError), (-1, 0, IndexError), (0, 3, IndexError), (0, -1, IndexError),
     (2**70, 0, TypeError), (0, "r", TypeError), (None, 0, TypeError)],
)  # fmt: skip
def test_neighbor_view_bad_ids(tiny, u, r, error) -> None:
    with pytest.raises(error):
        tiny.native.neighbor_view(u, r)


def test_neighbor_view_is_read_only_and_keeps_the_graph_alive(tiny) -> None:
    arrays = arrays_of(tiny)
    g = _core.Graph(tiny.num_entities, tiny.num_relations, 2, arrays, True)
    view = g.neighbor_view(0, int(tiny.relation_ids(["r"])[0]))
    expected = view.copy()
    with pytest.raises(ValueError):
        view[0] = 5
    del g, arrays
    import gc

    gc.collect()
    assert np.array_equal(view, expected)  # still valid memory (ASan would flag a use-after-free)


# ----- Plan specs ----------------------------------------------------------------------


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda s: s.__setitem__(key, value)


def _del(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda s: s.pop(key)


def _join(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda s: s["joins"][0].__setitem__(key, value)


def _arr(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int32)


# (pattern the spec starts from, mutation)
BAD_PLANS: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "missing op_kind": ("2p", _del("op_kind")),
    "missing op_inputs": ("2p", _del("op_inputs")),
    "missing num_relation_slots": ("2p", _del("num_relation_slots")),
    "slots not an int": ("2p", _set("num_anchor_slots", "one")),
    "slots a float": ("2p", _set("num_anchor_slots", 1.5)),
    "negative slots": ("2p", _set("num_relation_slots", -1)),
    "absurd slots": ("2p", _set("num_relation_slots", 2**31 - 1)),
    "slots beyond int64": ("2p", _set("num_anchor_slots", 2**80)),
    "op_kind not numeric": ("2p", _set("op_kind", "abc")),
    "op_kind None": ("2p", _set("op_kind", None)),
    "no ops": ("2p", lambda s: s.update(op_kind=_arr(), op_arg=_arr(), op_dir=_arr(),
                                        op_in_offsets=_arr(0), op_inputs=_arr())),
    "unknown op kind 7": ("2p", lambda s: s["op_kind"].__setitem__(-1, 7)),
    "negative op kind": ("2p", lambda s: s["op_kind"].__setitem__(0, -1)),
    "op arrays of different lengths": ("2p", lambda s: s.update(op_arg=s["op_arg"][:-1])),
    "op_dir too short": ("2p", lambda s: s.update(op_dir=s["op_dir"][:1])),
    "offsets do not span inputs": ("2p", lambda s: s["op_in_offsets"].__setitem__(-1, 9)),
    "offsets do not start at 0": ("2p", lambda s: s["op_in_offsets"].__setitem__(0, 1)),
    # a middle offset far past the inputs, then back down: must be caught before any read
    "offsets jump past the inputs": (
        "2i", lambda s: s["op_in_offsets"].__setitem__(slice(1, -1), 10**6)
    ),
    "offsets decreasing": ("3p", lambda s: s["op_in_offsets"].__setitem__(2, 0)),
    "input not earlier (self)": ("2p", lambda s: s["op_inputs"].__setitem__(-1, 2)),
    "input later": ("2p", lambda s: s["op_inputs"].__setitem__(0, 3)),
    "negative input": ("2p", lambda s: s["op_inputs"].__setitem__(0, -1)),
    "anchor arg out of range": ("2p", lambda s: s["op_arg"].__setitem__(0, 5)),
    "project slot out of range": ("2p", lambda s: s["op_arg"].__setitem__(1, 9)),
    "project dir 2": ("2p", lambda s: s["op_dir"].__setitem__(1, 2)),
    "project with two inputs": (
        "2i", lambda s: s["op_kind"].__setitem__(-1, 1)
    ),
    "difference with one input": ("2in", lambda s: s["op_kind"].__setitem__(-1, 4) or s.update(
        op_in_offsets=np.r_[s["op_in_offsets"][:-1], s["op_in_offsets"][-2] + 1].astype(np.int32),
        op_inputs=s["op_inputs"][: s["op_in_offsets"][-2] + 1])),
    "intersection without inputs": ("1p", lambda s: s.update(
        op_kind=_arr(0, 2), op_arg=_arr(0, 0), op_dir=_arr(0, 0),
        op_in_offsets=_arr(0, 0, 0), op_inputs=_arr())),
    "type filter without types": ("1p", lambda s: s.update(
        op_kind=_arr(0, 1, 6), op_arg=_arr(0, 0, 0), op_dir=_arr(0, 0, 0),
        op_in_offsets=_arr(0, 0, 1, 2), op_inputs=_arr(0, 1))),
    "type id out of range": ("1p", _set("type_ids", _arr(7))),
    "fixed relation out of range": ("2p", _set("fixed_relations", _arr(3, -1))),
    "fixed entity out of range": ("2p", _set("fixed_entities", _arr(8))),
    "fixed entity < -1": ("2p", _set("fixed_entities", _arr(-2))),
    "fixed slots of the wrong length": ("2p", _set("fixed_relations", _arr(-1, -1, -1))),
    "anchor types of the wrong length": ("2p", _set("anchor_types", _arr(-1, -1))),
    "anchor type out of range": ("2p", _set("anchor_types", _arr(2))),
    "negative key": ("2p", _set("key", -1)),
    "key not an int": ("2p", _set("key", "k")),
    # joins (the triangle compiles to one JOIN op)
    "joins not a list": ("triangle", _set("joins", 5)),
    "join not a dict": ("triangle", _set("joins", [[1, 2]])),
    "join op without a join": ("triangle", _set("joins", [])),
    "join missing atoms": ("triangle", lambda s: s["joins"][0].pop("atoms")),
    "join missing num_vars": ("triangle", lambda s: s["joins"][0].pop("num_vars")),
    "join atoms not k x 3": ("triangle", _join("atoms", _arr(0, -1, 0, 1))),
    "join relation slot out of range": ("triangle", _join("atoms", _arr(9, -1, 0, 1, 0, 1))),
    "join term below the anchors": ("triangle", _join("atoms", _arr(0, -5, 0, 1, 0, 1))),
    "join term above the variables": ("triangle", _join("atoms", _arr(0, -1, 7, 1, 0, 1))),
    "join zero variables": ("triangle", _join("num_vars", 0)),
    "join absurd variables": ("triangle", _join("num_vars", 2**30)),
    "join answer var out of range": ("triangle", _join("answer_var", 5)),
    "join answer var negative": ("triangle", _join("answer_var", -1)),
    # the answer variable bound by no positive atom: the matcher would read var[-1]
    "join answer var in no atom": ("triangle", lambda s: s["joins"][0].update(
        num_vars=3, var_types=np.full(3, -1, np.int32), answer_var=2)),
    "join answer var only negated": ("triangle", lambda s: s["joins"][0].update(
        negated=np.array([0, 0, 1], np.uint8),
        atoms=np.array([0, -1, 0, 1, 0, -1, 2, -1, 1], np.int32))),
    "join negation flags wrong length": ("triangle", _join("negated", np.zeros(1, np.uint8))),
    "join var types wrong length": ("triangle", _join("var_types", _arr(-1))),
    "join var type index out of range": ("triangle", _join("var_types", _arr(4, -1))),
    "join exclude var out of range": ("triangle", _join("exclude_vars", _arr(9))),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_PLANS))
def test_malformed_plan_specs_raise(tiny, case) -> None:
    pattern, mutate = BAD_PLANS[case]
    spec = spec_of(tiny, pattern)
    join = pattern == "triangle"
    run_plan(tiny, spec, join=join)  # the unmutated spec is fine
    mutate(spec)
    with pytest.raises(BAD_INPUT):
        run_plan(tiny, spec, join=join)


def test_plan_spec_not_a_dict() -> None:
    for bad in (None, [], "plan", 5):
        with pytest.raises(TypeError):
            _core.Plan(bad)


def test_plan_validated_against_the_graph_it_runs_on(tiny, codex_s) -> None:
    # ids valid on CoDEx-S but not on the tiny graph
    spec = spec_of(codex_s, "2p")
    spec["fixed_entities"] = _arr(codex_s.num_entities - 1)
    plan = _core.Plan(spec)
    _core.execute(codex_s.native, plan, np.zeros((1, 2), np.int32), np.zeros((1, 1), np.int32), 1)
    with pytest.raises(ValueError, match="fixed entity id out of range"):
        _core.execute(tiny.native, plan, np.zeros((1, 2), np.int32), np.zeros((1, 1), np.int32))
    with pytest.raises(ValueError, match="fixed entity id out of range"):
        _core.sample(tiny.native, plan, 1, 0)


# ----- execute / sample / match_count arguments ------------------------------------------


@pytest.fixture(scope="module")
def plans(tiny) -> dict[str, Any]:
    return {p: _core.Plan(spec_of(tiny, p)) for p in ("2p", "triangle", "2u")}


@pytest.mark.parametrize(
    ("rel", "anc", "error"),
    [
        (_arr(0, 0, 0), _arr(0), ValueError),  # 3 relation ids for 2 slots
        (_arr(0, 0), _arr(0, 1), ValueError),  # rows differ
        (_arr(0, 3), _arr(0), IndexError),
        (_arr(-1, 0), _arr(0), IndexError),
        (_arr(0, 0), _arr(8), IndexError),
        (_arr(0, 0), _arr(-1), IndexError),
        (np.array(["a", "b"]), _arr(0), (*BAD_INPUT,)),
        (None, _arr(0), (*BAD_INPUT,)),
    ],
)
def test_execute_bad_bindings(tiny, plans, rel, anc, error) -> None:
    with pytest.raises(error):
        _core.execute(tiny.native, plans["2p"], rel, anc, 1)


@pytest.mark.parametrize(
    ("array", "index", "value"),
    [("out.rel_dir", 0, 10**6), ("in.rel_dir", -1, 2**32 - 1), ("out.ent_dir", 3, -5)],
)
def test_engine_arrays_of_an_unvalidated_graph_are_range_checked(
    tiny, plans, array, index, value
) -> None:
    """The engine's own arrays (relation entry owners, built on first use) come from the
    graph's arrays; a corrupt graph opened without validation gives an error, not a crash."""
    arrays = arrays_of(tiny)
    arrays[array][index] = value
    g = _core.Graph(tiny.num_entities, tiny.num_relations, 2, arrays, validate=False)
    with pytest.raises(ValueError, match="invalid graph arrays"):
        _core.execute(g, plans["2p"], _arr(0, 0).reshape(1, 2), _arr(0).reshape(1, 1), 1)
    with pytest.raises(ValueError, match="invalid graph arrays"):
        _core.sample(g, plans["2p"], 5, 0)


def test_execute_empty_2d_strided_bindings(tiny, plans) -> None:
    p = plans["2p"]
    off, got = _core.execute(tiny.native, p, np.zeros((0, 2), np.int32), np.zeros((0, 1), np.int32))
    assert off.tolist() == [0] and got.size == 0
    rel = np.array([[0, 1], [2, 0], [1, 1]], np.int32)
    anc = np.array([[0], [3], [7]], np.int32)
    want = _core.execute(tiny.native, p, rel, anc, 1)
    for r, a in (
        (rel.ravel(), anc.ravel()),  # 1-D
        (np.asfortranarray(rel), anc),  # not C-contiguous
        (rel.astype(np.int64), anc.astype(np.int16)),  # other integer dtypes, in range
    ):
        got = _core.execute(tiny.native, p, r, a, 2)
        assert all(np.array_equal(x, y) for x, y in zip(want, got, strict=True))
    assert np.all((want[1] >= 0) & (want[1] < tiny.num_entities))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"n": -1}, ValueError),
        ({"max_tries": 0}, ValueError),
        ({"start_candidate": -1}, ValueError),
        ({"seed": -1}, TypeError),
        ({"n": 2**63}, TypeError),
        ({"seen": "not a set"}, TypeError),
    ],
)
def test_sample_bad_arguments(tiny, plans, kwargs, error) -> None:
    args = {"n": 3, "seed": 0, **kwargs}
    with pytest.raises(error):
        _core.sample(tiny.native, plans["2p"], **args)


@pytest.mark.parametrize("pattern", ["2p", "triangle", "2u"])
def test_sample_extreme_but_legal_arguments(tiny, plans, pattern) -> None:
    p = plans[pattern]
    for kwargs in (
        {"n": 0},
        {"n": 5, "seed": 2**64 - 1},
        {"n": 5, "min_answers": 10**9, "max_candidates": 200},
        {"n": 5, "max_answers": 0, "max_candidates": 200},
        {"n": 5, "max_intermediate": 0, "max_candidates": 200},
        {"n": 5, "match_steps": 0, "max_candidates": 200},
        {"n": 5, "match_steps": -1, "max_candidates": 200},
        {"n": 5, "threads": -3, "max_candidates": 200},
        {"n": 5, "start_candidate": 2**63 - 2, "max_candidates": 200},
        {"n": 10**15, "max_candidates": 300, "threads": 2},
        {"n": 5, "degree_weighted": True, "distinct_anchors": False, "no_backtrack": False},
    ):
        out = _core.sample(tiny.native, p, seed=kwargs.pop("seed", 1), **kwargs)
        got = len(out["candidate_index"])
        assert out["relation_bindings"].shape == (got, p.num_relation_slots)
        assert out["set_offsets"].size == got * p.num_ops + 1
        ids_ = out["set_ids"]
        assert np.all((ids_ >= 0) & (ids_ < tiny.num_entities))
        assert out["candidates"] <= max(kwargs.get("max_candidates", 0), 0) or not kwargs.get(
            "max_candidates"
        )


def test_huge_n_stops_by_the_default_candidate_budget(tiny) -> None:
    """n = 10**12 on an 8-entity KG: stops after about a million candidates, in seconds,
    without allocating anything proportional to n."""
    t0 = time.perf_counter()
    with pytest.raises(SamplingError, match=r"of 1,000,000,000,000 distinct queries") as info:
        sample_queries(tiny, "1p", 10**12, max_answers=None, threads=2)
    assert time.perf_counter() - t0 < 60
    assert "duplicate" in str(info.value)
    batch = sample_queries(tiny, "1p", 10**12, max_answers=None, strict=False, threads=1)
    assert batch.exhausted and 0 < len(batch) <= tiny.num_triples
    assert batch.candidates <= 2**20 + 20 * len(batch)


@pytest.mark.parametrize(
    ("join", "rel", "anc", "error"),
    [
        (1, _arr(-1, -1, -1), _arr(0), IndexError),
        (-1, _arr(-1, -1, -1), _arr(0), IndexError),
        (0, _arr(-1, -1), _arr(0), ValueError),
        (0, _arr(-1, -1, -1), _arr(0, 1), ValueError),
        (0, _arr(-1, 3, -1), _arr(0), IndexError),
        (0, _arr(-2, -1, -1), _arr(0), IndexError),
        (0, _arr(-1, -1, -1), _arr(8), IndexError),
        (0, _arr(-1, -1, -1), _arr(-2), IndexError),
    ],
)
def test_match_count_bad_arguments(tiny, plans, join, rel, anc, error) -> None:
    with pytest.raises(error):
        _core.match_count(tiny.native, plans["triangle"], join, rel, anc, -1, 1)


def test_match_count_free_slots_and_limits(tiny, plans) -> None:
    p = plans["triangle"]
    free = _core.match_count(tiny.native, p, 0, _arr(-1, -1, -1), _arr(-1), -1, 2)
    assert free.shape == (1,) and free[0] >= 0
    assert _core.match_count(tiny.native, p, 0, np.zeros((0, 3), np.int32),
                             np.zeros((0, 1), np.int32)).size == 0  # fmt: skip
    capped = _core.match_count(tiny.native, p, 0, _arr(-1, -1, -1), _arr(-1), 1, 1)
    assert capped[0] == min(1, free[0])
    with pytest.raises(IndexError):
        _core.match_count(tiny.native, plans["2p"], 0, _arr(-1, -1), _arr(0))  # no joins


def test_engine_python_layer_rejects_mismatched_rows(tiny) -> None:
    with pytest.raises(ValueError, match="same number of rows"):
        execute_queries(tiny, "2p", np.zeros((2, 2), np.int32), np.zeros((3, 1), np.int32))
    with pytest.raises(ValueError, match="one entry per grounding"):
        execute_queries(tiny, "1p", _arr(0), _arr(0), query_index=np.arange(2))
    with pytest.raises(IndexError):
        execute_queries(tiny, "1p", _arr(0), _arr(99))


# ----- determinism ----------------------------------------------------------------------


def parquet_digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((out / "data").glob("*.parquet"))
    }


def test_parquet_is_byte_identical_across_thread_counts(tmp_path: Path) -> None:
    from kg2tool.pipeline.driver import generate

    digests = []
    for threads in (1, 2):
        out = tmp_path / f"t{threads}"
        generate(
            out=str(out),
            kg="codex-s",
            patterns="1p,2p,2in,up,triangle",
            num_samples=40,
            shard_size=20,
            seed=11,
            threads=threads,
            progress=False,
        )
        digests.append(parquet_digests(out))
        assert len(digests[-1]) >= 2
    assert digests[0] == digests[1]
