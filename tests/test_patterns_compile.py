"""Compiled plans: shape, and answers equal to the reference evaluator on random and real KGs."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kg2tool.patterns import (
    ANCHOR,
    DIFFERENCE,
    INTERSECT,
    JOIN,
    LIBRARY,
    PROJECT,
    TYPE_FILTER,
    UNION,
    PatternSpec,
    Plan,
    compile_pattern,
)
from kg2tool.testing.reference import ReferenceKG, evaluate, sample_grounding


def run_plan(
    plan: Plan,
    kg: ReferenceKG,
    grounding: dict,
    typed: dict | None = None,
) -> set:
    """A tiny plan interpreter: sets per op, backtracking for JOIN ops."""
    typed = typed or {}
    rel = [grounding[r] for r in plan.relation_slots]
    anchors = [grounding[s] for s in plan.anchor_slots]
    sets: list[set] = []
    for i in range(plan.num_ops):
        kind, arg, ins = int(plan.op_kind[i]), int(plan.op_arg[i]), plan.inputs(i)
        if kind == ANCHOR:
            out = {anchors[arg]}
        elif kind == PROJECT:
            out = kg.image(rel[arg], sets[ins[0]], forward=plan.op_dir[i] == 0)
        elif kind == INTERSECT:
            out = set.intersection(*(sets[j] for j in ins))
        elif kind == UNION:
            out = set.union(*(sets[j] for j in ins))
        elif kind == DIFFERENCE:
            assert len(ins) == 2
            out = sets[ins[0]] - sets[ins[1]]
        elif kind == TYPE_FILTER:
            out = sets[ins[0]] & typed.get(plan.type_constraints[arg][1], set())
        else:
            assert kind == JOIN
            out = _run_join(plan, arg, [sets[j] for j in ins], kg, rel, anchors, typed)
        sets.append(out)
    return sets[-1]


def _run_join(plan, index, excluded, kg, rel, anchors, typed) -> set:
    join = plan.joins[index]
    n = len(join.join_vars)
    values: list = [None] * n
    answers: set = set()

    def val(t: int):
        return values[t] if t >= 0 else anchors[-1 - t]

    def ok(var: int) -> bool:
        if join.var_types[var] >= 0:
            wanted = plan.type_constraints[int(join.var_types[var])][1]
            if values[var] not in typed.get(wanted, set()):
                return False
        for j, ex in enumerate(join.exclude_vars):
            if ex == var and values[var] in excluded[j]:
                return False
        for table, want in ((join.atoms, True), (join.negated_atoms, False)):
            for r, h, t in table.tolist():
                if var in (h, t) and all(x < 0 or values[x] is not None for x in (h, t)):
                    if (val(t) in kg.neighbors(rel[r], val(h), True)) is not want:
                        return False
        return True

    def extend(depth: int) -> None:
        if depth == n:
            answers.add(values[join.answer_var])
            return
        var = int(join.var_order[depth])
        cands = None
        for r, h, t in join.atoms.tolist():
            for me, other, fwd in ((t, h, True), (h, t, False)):
                if me == var and other != var and (other < 0 or values[other] is not None):
                    nb = kg.neighbors(rel[r], val(other), fwd)
                    cands = set(nb) if cands is None else cands & nb
        assert cands is not None, "var_order must link each variable to a bound term"
        for c in cands:
            values[var] = c
            if ok(var):
                extend(depth + 1)
            values[var] = None

    extend(0)
    return answers


# ------------------------------------------------------------------------ plan shapes


@pytest.mark.parametrize("name", list(LIBRARY))
def test_library_patterns_compile_to_well_formed_plans(name: str) -> None:
    plan = compile_pattern(name)
    n = plan.num_ops
    for arr in (
        plan.op_kind,
        plan.op_arg,
        plan.op_dir,
        plan.op_in_offsets,
        plan.op_inputs,
        plan.op_atom,
    ):
        assert arr.dtype == np.int32
    assert len(plan.op_in_offsets) == n + 1 and len(plan.op_var) == n
    assert plan.op_var[-1] == "f"
    for i in range(n):
        ins = plan.inputs(i)
        assert all(j < i for j in ins)
        kind = int(plan.op_kind[i])
        if kind in (PROJECT, TYPE_FILTER):
            assert len(ins) == 1
        if kind == DIFFERENCE:
            assert len(ins) == 2
        if kind == PROJECT:
            rel, _head, _tail, _negated = plan.atoms[int(plan.op_atom[i])]
            assert plan.relation_slots[int(plan.op_arg[i])] == rel
        else:
            assert plan.op_atom[i] == -1
    for join in plan.joins:
        assert join.atoms.shape[1] == 3 and join.atoms.dtype == np.int32
        bound = set()
        for v in join.var_order.tolist():
            linked = any(
                v in (h, t) and all(x < 0 or x in bound for x in (h, t) if x != v)
                for _, h, t in join.atoms.tolist()
            )
            assert linked
            bound.add(v)
        assert sorted(bound) == list(range(len(join.join_vars)))
    assert "plan" in plan.describe()


def test_betae_types_compile_to_set_operators_only() -> None:
    for name in (
        "1p",
        "2p",
        "3p",
        "2i",
        "3i",
        "ip",
        "pi",
        "2in",
        "3in",
        "inp",
        "pin",
        "pni",
        "2u",
        "up",
    ):
        assert JOIN not in compile_pattern(name).op_kind.tolist(), name


def test_pni_is_a_difference_of_a_two_hop_path_and_fit_pni_a_join() -> None:
    plan = compile_pattern("pni")
    assert plan.op_kind.tolist()[-1] == DIFFERENCE
    fit = compile_pattern("pni_fit")
    assert fit.op_kind.tolist() == [JOIN]
    assert fit.joins[0].negated_atoms.shape == (1, 3)


def test_projection_directions_follow_the_answer() -> None:
    plan = compile_pattern("r1(e1,s1)&r2(f,e1)")
    projects = [i for i in range(plan.num_ops) if plan.op_kind[i] == PROJECT]
    assert plan.op_dir[projects].tolist() == [1, 1]


def test_triangle_as_join_or_as_sets() -> None:
    assert compile_pattern("triangle").op_kind.tolist() == [JOIN]
    sets = compile_pattern("triangle", join_anchor_cycles=False)
    assert JOIN not in sets.op_kind.tolist()
    assert sets.op_kind.tolist().count(ANCHOR) == 1  # one ANCHOR op per anchor slot


def test_types_become_type_filters_and_join_var_types() -> None:
    plan = compile_pattern(PatternSpec("t", "r1(s1,e1)&r2(e1,f)", types={"e1": "A", "s1": "B"}))
    assert plan.type_constraints == [("e1", "A"), ("s1", "B")]
    assert plan.anchor_types == ["B"]
    assert TYPE_FILTER in plan.op_kind.tolist()
    join = compile_pattern(PatternSpec("t", "r1(s1,e1)&r2(e1,f)&r3(e1,f)", types={"e1": "A"}))
    assert join.joins[0].var_types.tolist() == [0, -1]


# --------------------------------------------------------- plans equal the reference

EXTRA = [
    "r1(s1,f)&r2(s1,e1)&r3(s2,e1)",  # internal anchor
    "r1(s1,e1)&r2(e1,f)&!(r3(e1,e2)&r4(s2,e2))",  # negation attached at an existential
    "r1(s1,e1)&r2(e1,f)&r3(e1,f)&!(r4(s2,e2)&r5(e2,e1))",  # negation inside a join
    "r1(s1,e1)&r1(e1,f)",  # a relation slot used twice
    "(r1(s1,f)&!r2(s2,f))|(r3(s1,e1)&r4(e1,f))",
    "r1(s1,f)&!(r2(s2,e1)&r3(e1,f)&!(r4(s3,e1)))",  # nested negation
]
PATTERNS = list(LIBRARY) + EXTRA


def _random_kg(data: st.DataObject) -> ReferenceKG:
    n_ent = data.draw(st.integers(3, 9))
    n_rel = data.draw(st.integers(1, 3))
    triples = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, n_ent - 1), st.integers(0, n_rel - 1), st.integers(0, n_ent - 1)
            ),
            min_size=1,
            max_size=40,
        )
    )
    return ReferenceKG.from_triples(triples)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_plans_equal_reference_on_random_kgs(data: st.DataObject) -> None:
    kg = _random_kg(data)
    relations, _, _, entities = kg.catalogue()
    for text in PATTERNS:
        spec = LIBRARY.get(text) or PatternSpec(text, text)
        formula = spec.parsed
        grounding = {r: data.draw(st.sampled_from(relations)) for r in formula.relation_slots}
        grounding |= {s: data.draw(st.sampled_from(entities)) for s in formula.anchor_slots}
        expected = evaluate(formula, kg, grounding)
        for flag in (True, False):
            plan = compile_pattern(spec, join_anchor_cycles=flag)
            assert run_plan(plan, kg, grounding) == expected, (text, grounding, flag)


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_typed_plans_equal_reference_on_random_kgs(data: st.DataObject) -> None:
    kg = _random_kg(data)
    relations, _, _, entities = kg.catalogue()
    typed = {"A": set(data.draw(st.lists(st.sampled_from(entities), max_size=6)))}
    for text, var in (("2p", "e1"), ("ip", "f"), ("2m", "e1"), ("pni", "e1")):
        spec = PatternSpec(text, LIBRARY[text].formula, types={var: "A"})
        g = {r: data.draw(st.sampled_from(relations)) for r in spec.parsed.relation_slots}
        g |= {s: data.draw(st.sampled_from(entities)) for s in spec.parsed.anchor_slots}
        expected = evaluate(spec, kg, g, typed_entities=typed)
        assert run_plan(compile_pattern(spec), kg, g, typed) == expected, (text, g)


@pytest.mark.parametrize("text", PATTERNS)
def test_plans_equal_reference_on_codex_s(kgs, text: str) -> None:
    _, codex_s = kgs("codex_s")
    spec = LIBRARY.get(text) or PatternSpec(text, text)
    plan = compile_pattern(spec)
    rng = random.Random(text)
    nonempty = 0
    for _ in range(30):
        grounding = sample_grounding(spec, codex_s, rng)
        assert grounding is not None
        expected = evaluate(spec, codex_s, grounding)
        nonempty += bool(expected)
        assert run_plan(plan, codex_s, grounding) == expected, grounding
    assert nonempty > 0
