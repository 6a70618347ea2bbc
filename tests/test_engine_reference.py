"""Issue 3 checks: every library pattern sampled on CoDEx-S and FB15k-237 (1,000 queries
each) against the independent plain-Python evaluator (every query) and DuckDB SQL (a
subset), with every sampling constraint verified on every query."""

from __future__ import annotations

import itertools
from dataclasses import replace

import duckdb
import numpy as np
import polars as pl
import pytest

from kg2tool.engine import QueryBatch, execute_queries, sample_queries
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.patterns import (
    ANCHOR,
    DIFFERENCE,
    INTERSECT,
    JOIN,
    PROJECT,
    TYPE_FILTER,
    UNION,
    Conjunction,
    Formula,
    get_pattern,
    list_patterns,
)
from kg2tool.patterns.syntax import is_anchor
from kg2tool.testing.reference import ReferenceKG, evaluate, to_sql

N = 1000
SEED = 20240611
MAX_ANSWERS = 100
MAX_INTERMEDIATE = 100
SQL_SUBSET = 60
KG_NAMES = ["codex_s", "fb15k237"]
PATTERNS = list_patterns()
# Doubled-edge patterns need a (head, tail) pair linked by two distinct relations (the same
# relation twice is one atom twice, which the sampler rejects as trivial). CoDEx-S has only
# 275 such pairs among ~30,000 linked pairs, so answer-first grounding from a uniform answer
# rarely finds one: fewer than 1,000 queries there (3mp has at most 859 grounded queries at
# all). The test asserts that reason instead of the count.
SCARCE_ON_CODEX = {"2m", "3mp", "3pm", "3cm", "im"}
# A negated atom between two variables (pni_fit, 2nm) must remove some other answer: its
# relation has to link the terms of a second match but not of the sampled one. Such pairs
# are rare too, so the sampler runs out of candidates first ("nothing_to_negate").
SCARCE_NEGATION = {("codex_s", "pni_fit"), ("codex_s", "2nm"), ("fb15k237", "pni_fit")}


def is_scarce(kg_name: str, pattern: str) -> bool:
    return (kg_name == "codex_s" and pattern in SCARCE_ON_CODEX) or (
        (kg_name, pattern) in SCARCE_NEGATION
    )


def grounding(batch: QueryBatch, i: int) -> dict[str, int]:
    plan = batch.plan
    g = {s: int(batch.relation_ids[i, j]) for j, s in enumerate(plan.relation_slots)}
    g.update({s: int(batch.anchor_ids[i, j]) for j, s in enumerate(plan.anchor_slots)})
    return g


def multi_relation_pairs(kg: KnowledgeGraph) -> tuple[int, int]:
    t = kg.triples
    pairs = t.group_by(["head", "tail"]).agg(pl.col("relation").n_unique().alias("k"))
    return int((pairs["k"] >= 2).sum()), pairs.height


@pytest.fixture(scope="session")
def batches(kgs):
    cache: dict[tuple[str, str], QueryBatch] = {}

    def get(kg_name: str, pattern: str) -> QueryBatch:
        if (kg_name, pattern) not in cache:
            kg, _ = kgs(kg_name)
            scarce = is_scarce(kg_name, pattern)
            cache[kg_name, pattern] = sample_queries(
                kg,
                pattern,
                N,
                seed=SEED,
                threads=2,
                max_answers=MAX_ANSWERS,
                max_intermediate=MAX_INTERMEDIATE,
                strict=not scarce,
            )
        return cache[kg_name, pattern]

    return get


@pytest.fixture(scope="session")
def duck(kgs):
    cache: dict[str, duckdb.DuckDBPyConnection] = {}

    def get(kg_name: str) -> duckdb.DuckDBPyConnection:
        if kg_name not in cache:
            kg, _ = kgs(kg_name)
            con = duckdb.connect()
            triples = kg.triples.select("head", "relation", "tail").to_arrow()  # noqa: F841
            con.execute("CREATE TABLE triples AS SELECT * FROM triples")
            cache[kg_name] = con
        return cache[kg_name]

    yield get
    for con in cache.values():
        con.close()


# ------------------------------------------------------------------------ helpers


def recompute_tree_sets(batch: QueryBatch, i: int, ref: ReferenceKG, kg: KnowledgeGraph):
    """Every op's set of query i recomputed with Python sets (None for JOIN ops)."""
    plan = batch.plan
    rel, anc = batch.relation_ids[i], batch.anchor_ids[i]
    sets: list[set[int] | None] = []
    for op in range(plan.num_ops):
        kind, arg, ins = int(plan.op_kind[op]), int(plan.op_arg[op]), plan.inputs(op)
        if kind == ANCHOR:
            s = {int(anc[arg])}
        elif kind == PROJECT:
            s = ref.image(int(rel[arg]), sets[ins[0]], forward=plan.op_dir[op] == 0)
        elif kind == INTERSECT:
            s = set.intersection(*(sets[j] for j in ins))
        elif kind == UNION:
            s = set.union(*(sets[j] for j in ins))
        elif kind == DIFFERENCE:
            s = sets[ins[0]] - sets[ins[1]]
        elif kind == TYPE_FILTER:
            t = plan.type_constraints[arg][1]
            typed = set(kg.entity_types.filter(kg.entity_types["type"] == t)["id"].to_list())
            s = sets[ins[0]] & typed
        else:
            assert kind == JOIN
            return None
        sets.append(s)
    return sets


def without_negation(formula: Formula, branch: int, which: tuple[str, int]) -> Formula:
    """The formula with one negated atom or negated conjunction of a branch dropped."""
    conj = formula.branches[branch]
    kind, k = which
    if kind == "atom":
        conj = replace(conj, negated_atoms=conj.negated_atoms[:k] + conj.negated_atoms[k + 1 :])
    else:
        conj = replace(conj, negations=conj.negations[:k] + conj.negations[k + 1 :])
    branches = list(formula.branches)
    branches[branch] = conj
    return Formula(tuple(branches))


def negations_of(formula: Formula) -> list[tuple[int, tuple[str, int]]]:
    out = []
    for b, conj in enumerate(formula.branches):
        out += [(b, ("atom", k)) for k in range(len(conj.negated_atoms))]
        out += [(b, ("conj", k)) for k in range(len(conj.negations))]
    return out


def canonical(formula: Formula, g: dict[str, int]) -> tuple:
    """The grounded query up to renaming existential variables and the order of atoms,
    intersection branches and union branches."""

    def conj_form(conj: Conjunction, outer: frozenset[str]) -> tuple:
        local = sorted(v for v in conj.positive_variables if v not in outer and v != "f")
        inner = outer | conj.positive_variables
        best = None
        for perm in itertools.permutations(range(len(local))):
            ren = {v: f"#{perm[k]}" for k, v in enumerate(local)}

            def term(t: str, ren=ren):
                return ("a", g[t]) if is_anchor(t) else ("v", ren.get(t, t))

            pos = sorted((g[a.relation], term(a.head), term(a.tail)) for a in conj.atoms)
            neg = sorted((g[a.relation], term(a.head), term(a.tail)) for a in conj.negated_atoms)
            subs = sorted(repr((ren, conj_form(n, inner))) for n in conj.negations)
            key = (tuple(pos), tuple(neg), tuple(subs))
            best = key if best is None or key < best else best
        return best

    return tuple(sorted(repr(conj_form(b, frozenset())) for b in formula.branches))


def backtrack_free_witness(plan, conj: Conjunction, sets, answers, ref, g) -> bool:
    """Some answer has a witness of the (tree) conjunction where no atom path goes straight
    back: for consecutive atoms x -> v -> w toward the answer, x != w."""
    op_of = {v: op for op, v in enumerate(plan.op_var) if v}
    adj: dict[str, list] = {}
    for a in conj.atoms:
        adj.setdefault(a.head, []).append((a, a.tail))
        adj.setdefault(a.tail, []).append((a, a.head))

    def cands(term: str) -> set[int]:
        return {g[term]} if is_anchor(term) else set(sets[op_of[term]])

    def sat(term: str, val: int, parent: str | None, pval: int) -> bool:
        for atom, child in adj[term]:
            if child == parent:
                continue
            forward = atom.head == term  # child is the tail: neighbours of val forward
            nbrs = ref.neighbors(g[atom.relation], val, forward) & cands(child)
            if not any(x != pval and sat(child, x, term, val) for x in nbrs):
                return False
        return True

    return any(sat("f", int(v), None, -1) for v in answers)


# ------------------------------------------------------------------------ the checks


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("kg_name", KG_NAMES)
def test_sampled_queries_are_exact_and_satisfy_every_constraint(kg_name, pattern, kgs, batches):
    kg, ref = kgs(kg_name)
    batch = batches(kg_name, pattern)
    plan, spec = batch.plan, get_pattern(pattern)
    formula = spec.parsed
    n = len(batch)
    if n < N:
        # Only the doubled-edge patterns on CoDEx-S, and only for the documented reason.
        assert is_scarce(kg_name, pattern), (n, batch.rejected)
        top = max(batch.rejected, key=batch.rejected.get)
        if (kg_name, pattern) in SCARCE_NEGATION:
            assert batch.exhausted and top in ("no_edge", "nothing_to_negate")
        else:
            multi, pairs = multi_relation_pairs(kg)
            assert multi < 0.01 * pairs
            assert batch.exhausted and top == "no_edge"
        assert n >= 100
    else:
        assert n == N
    assert batch.relation_ids.shape == (n, len(plan.relation_slots))
    assert batch.anchor_ids.shape == (n, len(plan.anchor_slots))
    assert len(batch.set_offsets) == n * plan.num_ops + 1
    has_join = JOIN in plan.op_kind.tolist()
    dropped = [(w, without_negation(formula, *w)) for w in negations_of(formula)]
    seen: dict[tuple, int] = {}
    for i in range(n):
        g = grounding(batch, i)
        answers = batch.answers(i)
        got = set(answers.tolist())
        # exact answers == the independent evaluator
        expected = evaluate(formula, ref, g)
        assert got == expected, (i, g, sorted(got), sorted(expected))
        assert np.all(np.diff(answers) > 0)  # sorted, no duplicates
        # answer bounds and every other op's set bounded
        assert 1 <= len(got) <= MAX_ANSWERS
        for op in range(plan.num_ops - 1):
            assert len(batch.set_of(i, op)) <= MAX_INTERMEDIATE, (i, op)
        # distinct anchors
        assert len(set(batch.anchor_ids[i].tolist())) == len(plan.anchor_slots)
        # intermediate sets of tree plans == plain recomputation; set non-triviality
        sets = recompute_tree_sets(batch, i, ref, kg)
        if sets is not None:
            for op in range(plan.num_ops):
                assert set(batch.set_of(i, op).tolist()) == sets[op], (i, op, g)
        for op in range(plan.num_ops):
            ins = [set(batch.set_of(i, j).tolist()) for j in plan.inputs(op)]
            if plan.op_kind[op] == INTERSECT and len(ins) >= 2:
                out = set(batch.set_of(i, op).tolist())
                for k in range(len(ins)):
                    others = set.intersection(*(s for j, s in enumerate(ins) if j != k))
                    assert others > out, ("intersection input removes nothing", i, op, k)
            if plan.op_kind[op] == UNION and len(ins) >= 2:
                for k in range(len(ins)):
                    others = set.union(*(s for j, s in enumerate(ins) if j != k))
                    assert ins[k] - others, ("union input adds nothing", i, op, k)
        # every negation removes at least one answer (tree plans; joins: see the xfail test)
        if not has_join:
            for which, f2 in dropped:
                assert evaluate(f2, ref, g) > got, ("negation removes nothing", i, which, g)
        # a doubled edge is two distinct relations (the same atom twice is trivial)
        for conj in formula.branches:
            for a, b in itertools.combinations(conj.atoms, 2):
                if a.terms == b.terms:
                    assert g[a.relation] != g[b.relation], (i, g)
        # no immediate back-track along the paths of a tree branch
        if not has_join and len(formula.branches) == 1:
            conj = formula.branches[0]
            if any(a.head not in ("s1", "s2", "s3") for a in conj.atoms):  # has a path
                assert backtrack_free_witness(plan, conj, sets, answers, ref, g), (i, g)
        # no duplicate grounded queries (up to branch order / variable names)
        key = canonical(formula, g)
        assert key not in seen, ("duplicate query", seen.get(key), i, g)
        seen[key] = i


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("kg_name", KG_NAMES)
def test_answers_equal_duckdb_sql(kg_name, pattern, kgs, batches, duck):
    batch = batches(kg_name, pattern)
    con = duck(kg_name)
    spec = get_pattern(pattern)
    rows = np.linspace(0, len(batch) - 1, min(SQL_SUBSET, len(batch))).astype(int)
    for i in sorted(set(rows.tolist())):
        sql = to_sql(spec, grounding(batch, i))
        got = sorted(r[0] for r in con.execute(sql).fetchall())
        assert got == batch.answers(i).tolist(), (i, grounding(batch, i))


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("kg_name", KG_NAMES)
def test_execute_reproduces_sampled_sets(kg_name, pattern, kgs, batches):
    kg, _ = kgs(kg_name)
    batch = batches(kg_name, pattern)
    again = execute_queries(kg, pattern, batch.relation_ids, batch.anchor_ids, threads=2)
    np.testing.assert_array_equal(again.set_offsets, batch.set_offsets)
    np.testing.assert_array_equal(again.set_ids, batch.set_ids)
    frame = batch.frame()
    assert frame.height == len(batch)
    keys = kg.entities["key"]
    for i in (0, len(batch) // 2, len(batch) - 1):
        assert frame["answers"][i].to_list() == keys.gather(batch.answers(i)).to_list()


JOIN_NEGATION = [p for p in PATTERNS if p in ("pni_fit", "2nm")]


@pytest.mark.parametrize("pattern", JOIN_NEGATION)
def test_negation_inside_join_removes_an_answer(pattern, kgs, batches):
    _, ref = kgs("codex_s")
    batch = batches("codex_s", pattern)
    formula = get_pattern(pattern).parsed
    trivial = 0
    for i in range(len(batch)):
        g = grounding(batch, i)
        got = set(batch.answers(i).tolist())
        for w in negations_of(formula):
            f2 = without_negation(formula, *w)
            trivial += evaluate(f2, ref, g) == got
    assert trivial == 0
