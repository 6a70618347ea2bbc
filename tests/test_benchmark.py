"""The bench feature: `kg2tool bench` runs and reports every field; the baselines it is
measured against compute exactly the engine's answers (a benchmark of wrong answers is
worthless). Small graphs only: CoDEx-S and hand-made ones."""

from __future__ import annotations

import csv
import json
import os
import random

import numpy as np
import polars as pl
import pytest

from bench.baselines import (
    DuckDBExecutor,
    PySampler,
    igraph_triangles,
    igraph_two_hop_counts,
    relation_projection,
    rustworkx_two_hop_counts,
)
from kg2tool import benchmark
from kg2tool.cli import main
from kg2tool.engine import (
    REJECT_REASONS,
    count_matches,
    execute_queries,
    resolve_pattern,
    sample_queries,
)
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.tables import KGTables
from kg2tool.patterns import BETAE_TYPES
from kg2tool.testing.reference import ReferenceKG, evaluate

SAMPLING_FIELDS = {
    "unit", "median", "min", "max", "spread", "runs", "work", "queries", "requested",
    "candidates", "attempts", "cpu_utilization", "exhausted", "rejected", "rejection_rates", "acceptance_rate",
}  # fmt: skip
RATE_FIELDS = {"unit", "median", "min", "max", "spread", "runs", "work", "cpu_utilization"}


@pytest.fixture(scope="module")
def codex() -> KnowledgeGraph:
    return KnowledgeGraph.load("codex-s")


@pytest.fixture(scope="module")
def ids(codex: KnowledgeGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = codex.triples
    return tuple(t.get_column(c).to_numpy() for c in ("head", "relation", "tail"))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def py_sampler(codex: KnowledgeGraph, ids: tuple) -> PySampler:
    return PySampler(*ids, codex.num_entities)


def test_bench_command_writes_json_csv_and_plot(tmp_path) -> None:
    out, table, png = tmp_path / "b.json", tmp_path / "b.csv", tmp_path / "b.png"
    argv = ["bench", "--kg", "codex-s", "--patterns", "2p,2in,up,triangle", "--threads", "1,2"]
    argv += ["--queries", "50", "--repeat", "2", "--warmup", "0"]
    argv += ["--json", str(out), "--csv", str(table), "--plot", str(png)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"kg", "machine", "settings", "results"}
    assert report["kg"] == {
        "name": "codex-s",
        "num_entities": 2_034,
        "num_relations": 42,
        "num_triples": 32_888,
    }
    assert report["machine"]["nproc"] == os.cpu_count()
    assert {"cpu", "nproc", "python", "date"} <= set(report["machine"])
    assert [(r["pattern"], r["threads"]) for r in report["results"]] == [
        (p, t) for p in ("2p", "2in", "up", "triangle") for t in (1, 2)
    ]
    for r in report["results"]:
        s = r["sampling"]
        assert SAMPLING_FIELDS <= set(s)
        assert s["queries"] == 50 and len(s["runs"]) == 2 and s["median"] > 0
        assert set(s["rejection_rates"]) == set(REJECT_REASONS)
        assert all(0 <= v <= 1 for v in s["rejection_rates"].values())
        assert RATE_FIELDS <= set(r["execution"]) and r["execution"]["median"] > 0
        if r["pattern"] in ("2p", "triangle"):
            assert RATE_FIELDS | {"anchors", "groundings"} <= set(r["matching"])
            assert r["matching"]["groundings"] >= 50  # every sampled query has an answer
        else:  # union / negation: no grounding count
            assert r["matching"] is None
    with table.open() as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == set(benchmark.CSV_FIELDS)
    assert len(rows) == 2 * 2 * 3 + 2 * 2 * 2  # (pattern, threads) x metrics present
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_command_rejects_bad_threads(capsys) -> None:
    assert main(["bench", "--kg", "codex-s", "--patterns", "1p", "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err


def test_measure_summarizes_repetitions() -> None:
    calls = []
    stats = benchmark.measure(lambda: calls.append(1) or 10, warmup=2, repeat=3)
    assert len(calls) == 5 and len(stats["runs"]) == 3 and stats["work"] == 10
    assert stats["min"] <= stats["median"] <= stats["max"]
    assert benchmark.summarize([1.0, 2.0, 4.0])["spread"] == pytest.approx(1.5)


@pytest.mark.parametrize("pattern", BETAE_TYPES)
def test_python_reference_and_duckdb_match_engine(
    pattern: str, codex: KnowledgeGraph, ids: tuple, py_sampler: PySampler
) -> None:
    plan = resolve_pattern(pattern)
    batch = sample_queries(codex, pattern, 150, seed=3, max_answers=None, max_intermediate=None)
    engine = [set(batch.answers(i).tolist()) for i in range(len(batch))]
    # the Python reference executes the engine's groundings to the same answers ...
    assert [
        set(a) for a in py_sampler.execute_batch(plan, batch.relation_ids, batch.anchor_ids)
    ] == engine
    # ... and so does DuckDB's batched SQL
    duck = DuckDBExecutor(*ids, threads=1)
    assert duck.answer_sets(plan, batch.relation_ids, batch.anchor_ids) == engine
    # queries the Python reference samples are distinct and the engine agrees on their answers
    ref = py_sampler.sample(plan, 100, seed=5)
    assert len(ref["answers"]) == 100
    rows = {
        (tuple(r), tuple(a))
        for r, a in zip(ref["relation_ids"].tolist(), ref["anchor_ids"].tolist(), strict=True)
    }
    assert len(rows) == 100
    again = execute_queries(codex, pattern, ref["relation_ids"], ref["anchor_ids"])
    assert [set(again.answers(i).tolist()) for i in range(len(again))] == [
        set(a) for a in ref["answers"]
    ]
    assert set(ref["rejected"]) <= set(REJECT_REASONS)


def test_python_reference_agrees_with_formula_evaluator(
    codex: KnowledgeGraph, py_sampler: PySampler
) -> None:
    """An independent check of the yardstick: kg2tool.testing.reference.evaluate from the formula."""
    t = codex.triples
    ref_kg = ReferenceKG.from_triples(t.select("head", "relation", "tail").iter_rows())
    for pattern in ("2p", "3in", "pni", "up"):
        plan = resolve_pattern(pattern)
        out = py_sampler.sample(plan, 20, seed=11)
        for rel, anc, answers in zip(
            out["relation_ids"].tolist(), out["anchor_ids"].tolist(), out["answers"], strict=True
        ):
            grounding = dict(zip(plan.relation_slots, rel, strict=True))
            grounding.update(zip(plan.anchor_slots, anc, strict=True))
            assert evaluate(plan.formula, ref_kg, grounding) == set(answers)


def test_graph_library_baselines_match_count_matches(codex: KnowledgeGraph, ids: tuple) -> None:
    heads, rels, tails = ids
    rel = int(np.bincount(rels).argmax())
    h, t = relation_projection(heads, rels, tails, rel)
    anchors = np.unique(h)[:200].astype(np.int32)
    engine = count_matches(
        codex, "2p", anchors.reshape(-1, 1), np.full((len(anchors), 2), rel, np.int32)
    )
    assert np.array_equal(rustworkx_two_hop_counts(codex.num_entities, h, t, anchors)[0], engine)
    assert np.array_equal(igraph_two_hop_counts(codex.num_entities, h, t, anchors)[0], engine)


def test_triangle_count_matches_igraph() -> None:
    rng = random.Random(0)
    edges = {tuple(sorted(rng.sample(range(60), 2))) for _ in range(400)}
    keys = [(f"n{a}", "link", f"n{b}") for a, b in edges] + [
        (f"n{b}", "link", f"n{a}") for a, b in edges
    ]
    kg = KnowledgeGraph.from_tables(
        KGTables(triples=pl.DataFrame(keys, schema=["head", "relation", "tail"], orient="row"))
    )
    t = kg.triples
    heads, tails = t.get_column("head").to_numpy(), t.get_column("tail").to_numpy()
    anchors = np.arange(kg.num_entities, dtype=np.int32).reshape(-1, 1)
    per_anchor = count_matches(kg, "triangle", anchors, np.zeros((len(anchors), 3), np.int32))
    triangles, _ = igraph_triangles(kg.num_entities, heads, tails)
    assert triangles > 0 and int(per_anchor.sum()) == 6 * triangles
