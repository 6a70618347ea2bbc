"""Engine checks: determinism across threads and seeds, execute_queries on unsampled
groundings vs the reference evaluator, slot/type constraints, and clean errors."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
from polars.testing import assert_frame_equal

from kg2tool import _core
from kg2tool.engine import (
    SamplingError,
    answer_spans,
    execute_queries,
    native_plan,
    resolve_pattern,
    sample_queries,
)
from kg2tool.errors import PatternError, UnknownNameError
from kg2tool.patterns import BETAE_TYPES, parse_spec
from kg2tool.testing.reference import evaluate, sample_grounding

DETERMINISM = ["2p", "3in", "inp", "pni", "up", "2pi", "triangle", "2il", "pni_fit", "lollipop"]


@pytest.mark.parametrize("pattern", DETERMINISM)
def test_same_output_for_1_2_4_threads_and_seed_dependence(codex_s, pattern):
    frames = [sample_queries(codex_s, pattern, 200, seed=3, threads=t).frame() for t in (1, 2, 4)]
    assert_frame_equal(frames[0], frames[1])
    assert_frame_equal(frames[0], frames[2])
    again = sample_queries(codex_s, pattern, 200, seed=3, threads=2).frame()
    assert_frame_equal(frames[0], again)
    other = sample_queries(codex_s, pattern, 200, seed=4, threads=2).frame()
    assert other["bindings"].to_list() != frames[0]["bindings"].to_list()


@pytest.mark.parametrize("pattern", [*BETAE_TYPES, "triangle", "square", "3c", "2il", "pni_fit"])
def test_execute_unsampled_groundings_equals_reference(kgs, pattern):
    kg, ref = kgs("codex_s")
    plan = resolve_pattern(pattern)
    spec = parse_spec(pattern)
    rng = random.Random(hash(pattern) & 0xFFFF)
    rows = []
    for k in range(60):
        g = sample_grounding(spec, ref, rng) if k % 3 else None
        if g is None:  # fully random grounding: mostly empty answers
            g = {r: rng.randrange(kg.num_relations) for r in plan.relation_slots}
            g |= {s: rng.randrange(kg.num_entities) for s in plan.anchor_slots}
        rows.append(g)
    rel = np.array([[g[r] for r in plan.relation_slots] for g in rows], dtype=np.int32)
    anc = np.array([[g[s] for s in plan.anchor_slots] for g in rows], dtype=np.int32)
    batch = execute_queries(kg, pattern, rel, anc, threads=2)
    empty = 0
    for i, g in enumerate(rows):
        expected = evaluate(spec, ref, g)
        assert set(batch.answers(i).tolist()) == expected, (i, g)
        empty += not expected
    assert 0 < empty < len(rows)


CONSTRAINED = [
    "2p[r1=P27]",
    "r1(s1,e1)&r2(e1,f) where s1:Q5, f:Q6256",
    "2i[s1=Q30]",
    "r1(s1,f)&r2(s2,f) where r1=P27, r2=P27, f:Q6256",
    "pni[r3=P27, s2:Q5]",
]


@pytest.mark.parametrize("text", CONSTRAINED)
def test_fixed_slots_and_types_hold_and_answers_are_exact(kgs, text):
    kg, ref = kgs("codex_s")
    spec = parse_spec(text)
    batch = sample_queries(kg, spec, 200, seed=1, threads=2, strict=False)
    assert len(batch) >= 20, batch.rejected
    plan = batch.plan
    typed: dict[str, set[int]] = {}
    for t in {*spec.types.values()}:
        typed[t] = set(kg.entity_types.filter(kg.entity_types["type"] == t)["id"].to_list())
    for j, key in enumerate(plan.fixed_relations):
        if key is not None:
            assert set(batch.relation_ids[:, j].tolist()) == {int(kg.relation_ids([key])[0])}
    for j, key in enumerate(plan.fixed_entities):
        if key is not None:
            assert set(batch.anchor_ids[:, j].tolist()) == {int(kg.entity_ids([key])[0])}
    for j, slot in enumerate(plan.anchor_slots):
        if slot in spec.types:
            assert set(batch.anchor_ids[:, j].tolist()) <= typed[spec.types[slot]]
    for i in range(len(batch)):
        g = {s: int(batch.relation_ids[i, j]) for j, s in enumerate(plan.relation_slots)}
        g |= {s: int(batch.anchor_ids[i, j]) for j, s in enumerate(plan.anchor_slots)}
        got = set(batch.answers(i).tolist())
        assert got == evaluate(spec, ref, g, typed_entities=typed), (i, g)
        if "f" in spec.types:
            assert got <= typed[spec.types["f"]]


def test_impossible_constraints_end_with_rejection_counts(codex_s):
    start = time.perf_counter()
    with pytest.raises(SamplingError, match="too_few_answers"):
        sample_queries(codex_s, "2p", 10, min_answers=10**6, max_answers=None, threads=2)
    assert time.perf_counter() - start < 30


def test_bad_arguments_raise_clean_errors(codex_s):
    with pytest.raises(PatternError):
        sample_queries(codex_s, "2p", 10, min_answers=5, max_answers=2)
    with pytest.raises(UnknownNameError):
        sample_queries(codex_s, "2p[r1=NO_SUCH_RELATION]", 10)
    with pytest.raises(UnknownNameError):
        sample_queries(codex_s, "2i[s1=NO_SUCH_ENTITY]", 10)
    with pytest.raises(IndexError):
        execute_queries(codex_s, "2p", np.array([[0, 10**6]]), np.array([[0]]))
    with pytest.raises(IndexError):
        execute_queries(codex_s, "2p", np.array([[0, 1]]), np.array([[codex_s.num_entities]]))
    with pytest.raises(IndexError):
        execute_queries(codex_s, "2p", np.array([[0, 1]]), np.array([[-1]]))


@pytest.mark.parametrize("pattern", BETAE_TYPES)
def test_answers_only_sampling_draws_the_same_queries(codex_s, pattern):
    """sets="answers" must change only what is copied out: same queries, rejections and
    answers as sets="all", with every non-answer set empty."""
    opts = dict(seed=5, max_answers=None, max_intermediate=None, strict=False)
    full = sample_queries(codex_s, pattern, 400, threads=2, **opts)
    lean = sample_queries(codex_s, pattern, 400, threads=1, sets="answers", **opts)
    assert len(full) > 0 and len(lean) == len(full)
    assert np.array_equal(full.relation_ids, lean.relation_ids)
    assert np.array_equal(full.anchor_ids, lean.anchor_ids)
    assert full.rejected == lean.rejected and lean.sets_kept == "answers"
    for i in range(len(full)):
        assert np.array_equal(full.answers(i), lean.answers(i))
        assert all(len(lean.set_of(i, o)) == 0 for o in range(lean.num_ops - 1))
    with pytest.raises(ValueError, match="sets must be"):
        sample_queries(codex_s, pattern, 1, sets="some")


@pytest.mark.parametrize("pattern", [*BETAE_TYPES, "triangle", "2il", "pni_fit"])
def test_answers_only_execute_equals_full_execute(codex_s, pattern):
    """execute(answers_only) / sets="answers" returns exactly the full execute's answer
    sets (sampled groundings, whose answers are non-empty, plus random ones, mostly empty),
    at any thread count, with every other set empty and no intermediate ids copied out."""
    plan = resolve_pattern(pattern)
    drawn = sample_queries(
        codex_s, pattern, 300, seed=11, max_answers=None, max_intermediate=None, strict=False
    )
    rng = np.random.default_rng(7)
    k = 100
    rel = np.concatenate(
        [
            drawn.relation_ids,
            rng.integers(0, codex_s.num_relations, (k, drawn.relation_ids.shape[1])),
        ]
    ).astype(np.int32)
    anc = np.concatenate(
        [drawn.anchor_ids, rng.integers(0, codex_s.num_entities, (k, drawn.anchor_ids.shape[1]))]
    ).astype(np.int32)
    full = execute_queries(codex_s, pattern, rel, anc, threads=2)
    total = 0
    for threads in (1, 2, 3):
        lean = execute_queries(codex_s, pattern, rel, anc, threads=threads, sets="answers")
        assert lean.sets_kept == "answers" and len(lean) == len(full)
        assert len(lean.set_offsets) == len(lean) * plan.num_ops + 1
        for i in range(len(full)):
            assert np.array_equal(full.answers(i), lean.answers(i)), (threads, i)
            assert all(len(lean.set_of(i, o)) == 0 for o in range(lean.num_ops - 1))
        total = sum(len(full.answers(i)) for i in range(len(full)))
        assert len(lean.set_ids) == total  # the answers and nothing else
        starts, ends = answer_spans(lean)
        assert np.array_equal(ends - starts, [len(full.answers(i)) for i in range(len(full))])
    assert total > 0
    # The native call itself: n + 1 offsets, the answers back to back.
    native = native_plan(codex_s, plan)
    offsets, ids = _core.execute(codex_s.native, native, rel, anc, 2, True)
    assert offsets.shape == (len(rel) + 1,) and offsets[0] == 0 and offsets[-1] == len(ids)
    assert np.array_equal(ids, np.concatenate([full.answers(i) for i in range(len(full))]))
    with pytest.raises(ValueError, match="sets must be"):
        execute_queries(codex_s, pattern, rel, anc, sets="some")


def _ragged(rng, n, universe, max_len):
    lengths = rng.integers(0, max_len + 1, n)
    rows = [np.sort(rng.choice(universe, size=m, replace=False)).astype(np.int32) for m in lengths]
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    return rows, offsets, np.concatenate(rows).astype(np.int32)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_diff_sets_equals_numpy_set_differences(threads):
    rng = np.random.default_rng(threads)
    n = 500
    a_rows, a_off, a_ids = _ragged(rng, n, 60, 40)
    b_rows, b_off, b_ids = _ragged(rng, n, 60, 40)
    # a strided view of a batch-like offsets array (two ops per query, the first empty)
    wide = np.repeat(a_off, 2)[1:]
    a_lo, a_hi = wide[0::2][:n], wide[1::2][:n]
    assert np.array_equal(a_lo, a_off[:-1]) and not a_lo.flags.c_contiguous
    for limit in (-1, 0, 3, 10, 1000):
        off, ids, added, lost = _core.diff_sets(
            a_lo, a_hi, a_ids, b_off[:-1], b_off[1:], b_ids, limit, threads
        )
        assert off.shape == (n + 1,) and off[-1] == len(ids)
        for i in range(n):
            hard = np.setdiff1d(a_rows[i], b_rows[i])
            gone = np.setdiff1d(b_rows[i], a_rows[i])
            over = limit >= 0 and max(len(hard), len(gone)) > limit
            if over:
                assert added[i] == lost[i] == limit + 1 and off[i] == off[i + 1], (limit, i)
            else:
                assert (added[i], lost[i]) == (len(hard), len(gone)), (limit, i)
                assert np.array_equal(ids[off[i] : off[i + 1]], hard), (limit, i)
    empty = np.zeros(0, np.int64)
    off, ids, added, lost = _core.diff_sets(empty, empty, a_ids, empty, empty, b_ids)
    assert off.tolist() == [0] and len(ids) == len(added) == len(lost) == 0


def test_diff_sets_checks_its_bounds():
    ids = np.arange(10, dtype=np.int32)
    lo, hi = np.array([0, 4], np.int64), np.array([4, 10], np.int64)
    with pytest.raises(IndexError, match="outside"):
        _core.diff_sets(lo, np.array([4, 11], np.int64), ids, lo, hi, ids)
    with pytest.raises(IndexError, match="outside"):
        _core.diff_sets(lo, hi, ids, np.array([-1, 4], np.int64), hi, ids)
    with pytest.raises(IndexError, match="outside"):
        _core.diff_sets(lo, hi, ids, np.array([5, 4], np.int64), hi, ids)  # start > end
    with pytest.raises(ValueError, match="rows"):
        _core.diff_sets(lo, hi, ids, lo[:1], hi[:1], ids)
    with pytest.raises(ValueError, match="rows"):
        _core.diff_sets(lo, hi[:1], ids, lo, hi, ids)
    with pytest.raises(ValueError, match="limit"):
        _core.diff_sets(lo, hi, ids, lo, hi, ids, -2)
