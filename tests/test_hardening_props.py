"""Property tests (hypothesis, bounded): random small KGs and random patterns.

- The native engine's answers (``execute_queries`` on random groundings, and every query
  ``sample_queries`` draws) equal the independent evaluator ``kg2tool.testing.reference.evaluate``,
  for library patterns and for random formulas built here (chains, intersections,
  negations, unions).
- Loading a snapshot whose files were randomly mutated (bytes flipped, cut or appended),
  with and without checksum verification, raises only SnapshotError; a load that succeeds
  gives a graph whose neighbours are valid ids.

The parser fuzz and the loaders' random-byte fuzz live in test_patterns_syntax.py and
test_io.py.
"""

from __future__ import annotations

import itertools
import random
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.exceptions import PanicException

from kg2tool.engine import execute_queries, sample_queries
from kg2tool.errors import PatternError, SnapshotError
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.tables import KGTables
from kg2tool.patterns import compile_pattern, get_pattern, list_patterns, parse_formula
from kg2tool.patterns.syntax import PatternSpec
from kg2tool.testing.reference import ReferenceKG, evaluate, sample_grounding

PROPS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# ----- random KGs ---------------------------------------------------------------------


@st.composite
def small_kgs(draw: st.DrawFn) -> tuple[KnowledgeGraph, ReferenceKG]:
    n_ent = draw(st.integers(5, 40))
    n_rel = draw(st.integers(1, 5))
    n_tri = draw(st.integers(1, 4 * n_ent))
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, n_ent - 1), st.integers(0, n_rel - 1), st.integers(0, n_ent - 1)
            ),
            min_size=n_tri,
            max_size=n_tri,
        )
    )
    # zero-padded keys sort like the ints, so key i gets id i when every entity occurs
    triples = pl.DataFrame(
        {
            "head": [f"e{h:03d}" for h, _, _ in rows],
            "relation": [f"r{r}" for _, r, _ in rows],
            "tail": [f"e{t:03d}" for _, _, t in rows],
        }
    )
    kg = KnowledgeGraph.from_tables(KGTables(triples=triples), threads=1)
    t = kg.triples
    ref = ReferenceKG.from_triples(
        zip(t["head"].to_list(), t["relation"].to_list(), t["tail"].to_list(), strict=True)
    )
    return kg, ref


# ----- random formulas ----------------------------------------------------------------


class _Names:
    def __init__(self) -> None:
        self.r = self.s = self.e = 0

    def rel(self) -> str:
        self.r += 1
        return f"r{self.r}"

    def anchor(self) -> str:
        self.s += 1
        return f"s{self.s}"

    def var(self) -> str:
        self.e += 1
        return f"e{self.e}"


@st.composite
def random_formulas(draw: st.DrawFn) -> str:
    """A random valid formula: a union of 1-2 branches, each a conjunction of 1-3 anchored
    chains (length 1-3) ending in f, plus optionally a negated atom or a negated chain."""
    names = _Names()

    def chain(end: str, length: int) -> list[str]:
        terms = [names.anchor()] + [names.var() for _ in range(length - 1)] + [end]
        return [f"{names.rel()}({a},{b})" for a, b in itertools.pairwise(terms)]

    branches = []
    for _ in range(draw(st.integers(1, 2))):
        atoms: list[str] = []
        for _ in range(draw(st.integers(1, 3))):
            atoms += chain("f", draw(st.integers(1, 3)))
        neg = draw(st.sampled_from(["none", "atom", "chain"]))
        if neg == "atom":
            atoms.append("!" + chain("f", 1)[0])
        elif neg == "chain":
            atoms.append("!(" + "&".join(chain("f", draw(st.integers(1, 2)))) + ")")
        branches.append("&".join(atoms))
    if len(branches) == 1:
        return branches[0]
    return "|".join(f"({b})" for b in branches)


PATTERN_NAMES = list(list_patterns())


def patterns() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(PATTERN_NAMES), random_formulas())


def spec_of(pattern: str) -> PatternSpec:
    if "(" in pattern:
        return PatternSpec(name="", formula=pattern)
    return get_pattern(pattern)


def compiled(pattern: str):
    try:
        return compile_pattern(spec_of(pattern))
    except PatternError:
        return None  # a random formula the compiler rejects cleanly (e.g. unsafe negation)


def engine_vs_reference(kg: KnowledgeGraph, ref: ReferenceKG, plan, rel, anc) -> None:
    batch = execute_queries(kg, plan, rel, anc, threads=1)
    for i in range(len(batch)):
        g = {s: int(rel[i, j]) for j, s in enumerate(plan.relation_slots)}
        g.update({s: int(anc[i, j]) for j, s in enumerate(plan.anchor_slots)})
        expected = evaluate(plan.formula, ref, g)
        got = batch.answers(i).tolist()
        assert got == sorted(expected), (plan.formula, g)
        assert all(0 <= x < kg.num_entities for x in got)


# ----- the properties -----------------------------------------------------------------


def test_random_formula_generator_makes_parseable_formulas() -> None:
    """The generator's output parses (so the property below exercises real formulas)."""

    @settings(max_examples=50, deadline=None)
    @given(random_formulas())
    def check(text: str) -> None:
        parse_formula(text)

    check()


@PROPS
@given(data=st.data(), kg_ref=small_kgs(), pattern=patterns())
def test_execute_on_random_groundings_equals_reference(data, kg_ref, pattern) -> None:
    kg, ref = kg_ref
    plan = compiled(pattern)
    if plan is None:
        return
    n = data.draw(st.integers(1, 6))
    rel = np.array(
        [[data.draw(st.integers(0, kg.num_relations - 1)) for _ in plan.relation_slots]
         for _ in range(n)],
        dtype=np.int32,
    ).reshape(n, len(plan.relation_slots))  # fmt: skip
    anc = np.array(
        [[data.draw(st.integers(0, kg.num_entities - 1)) for _ in plan.anchor_slots]
         for _ in range(n)],
        dtype=np.int32,
    ).reshape(n, len(plan.anchor_slots))  # fmt: skip
    # also a grounding likely to have answers (a random walk from an answer)
    g = sample_grounding(plan.formula, ref, random.Random(data.draw(st.integers(0, 2**16))))
    if g is not None:
        rel = np.vstack([rel, [[g[s] for s in plan.relation_slots]]]).astype(np.int32)
        anc = np.vstack([anc, [[g[s] for s in plan.anchor_slots]]]).astype(np.int32)
    engine_vs_reference(kg, ref, plan, rel, anc)


@PROPS
@given(kg_ref=small_kgs(), pattern=patterns(), seed=st.integers(0, 2**32))
def test_sampled_queries_equal_reference(kg_ref, pattern, seed) -> None:
    kg, ref = kg_ref
    plan = compiled(pattern)
    if plan is None:
        return
    batch = sample_queries(
        kg,
        plan,
        8,
        seed=seed,
        strict=False,
        max_candidates=400,
        max_answers=None,
        max_intermediate=None,
        threads=1,
    )
    assert len(batch) <= 8 and batch.candidates <= 400
    if len(batch):
        engine_vs_reference(kg, ref, plan, batch.relation_ids, batch.anchor_ids)
        # the sampled sets are exactly what execute recomputes
        again = execute_queries(kg, plan, batch.relation_ids, batch.anchor_ids, threads=1)
        assert np.array_equal(again.set_offsets, batch.set_offsets)
        assert np.array_equal(again.set_ids, batch.set_ids)


# ----- mutated snapshots --------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    triples = pl.DataFrame(
        {
            "head": [f"e{i % 17}" for i in range(60)],
            "relation": [f"r{i % 3}" for i in range(60)],
            "tail": [f"e{(i * 7 + 3) % 19}" for i in range(60)],
        }
    )
    types = pl.DataFrame({"key": ["e1", "e2", "e3", "e3"], "type": ["A", "A", "B", "A"]})
    kg = KnowledgeGraph.from_tables(KGTables(triples=triples, entity_types=types))
    return kg.save_snapshot(tmp_path_factory.mktemp("snap") / "kg")


def snapshot_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_snapshot_table_that_panics_polars_raises_snapshot_error(
    pristine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polars' Parquet reader panics (a BaseException) on some corrupt files, as the
    property test below found in CI; the loader must still report a SnapshotError."""

    def panics(*args: object, **kwargs: object) -> None:
        raise PanicException("called `Result::unwrap()` on an `Err` value: OutOfSpec")

    monkeypatch.setattr(pl, "read_parquet", panics)
    with pytest.raises(SnapshotError, match=r"tables/.*\.parquet: unreadable"):
        KnowledgeGraph.open_snapshot(pristine, verify=False)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), verify=st.booleans())
def test_mutated_snapshot_only_raises_snapshot_error(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, data, verify: bool
) -> None:
    work = tmp_path_factory.mktemp("mut") / "kg"
    shutil.copytree(pristine, work)
    files = snapshot_files(work)
    for _ in range(data.draw(st.integers(1, 3))):
        rel = data.draw(st.sampled_from(files))
        path = work / rel
        raw = bytearray(path.read_bytes())
        how = data.draw(st.sampled_from(["flip", "truncate", "extend", "overwrite"]))
        if how == "flip" and raw:
            for _ in range(data.draw(st.integers(1, 4))):
                i = data.draw(st.integers(0, len(raw) - 1))
                raw[i] ^= data.draw(st.integers(1, 255))
        elif how == "truncate":
            raw = raw[: data.draw(st.integers(0, max(0, len(raw) - 1)))]
        elif how == "extend":
            raw += data.draw(st.binary(min_size=1, max_size=64))
        elif raw:  # overwrite a run of bytes in place (size kept: only the CRC can tell)
            i = data.draw(st.integers(0, len(raw) - 1))
            chunk = data.draw(st.binary(min_size=1, max_size=16))
            raw[i : i + len(chunk)] = chunk[: len(raw) - i]
        path.write_bytes(bytes(raw))
    try:
        kg = KnowledgeGraph.open_snapshot(work, verify=verify)
    except SnapshotError:
        return
    # A harmless mutation (e.g. manifest whitespace, or a byte the checks cannot see with
    # verify=False): whatever loaded must be a valid graph.
    n, r = kg.num_entities, kg.num_relations
    ents = np.repeat(np.arange(n, dtype=np.int32), r)
    rels = np.tile(np.arange(r, dtype=np.int32), n)
    for inverse in (False, True):
        off, ids = kg.neighbors(ents, rels, inverse=inverse)
        assert off[0] == 0 and np.all(np.diff(off) >= 0) and off[-1] == ids.size
        assert np.all((ids >= 0) & (ids < n))
    assert kg.entities.height == n
