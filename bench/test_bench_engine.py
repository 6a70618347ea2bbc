"""Engine throughput on FB15k-237 against the baselines a user would otherwise pick, one run.

- Sampling: verified queries/s per BetaE type, on FB15k-237 train with inverse edges added
  as BetaE does (``rel_inv`` for every triple reversed), no answer or intermediate cap,
  duplicates rejected; the engine with 1 and 2 threads and the plain-Python reference
  sampler of the same algorithm (bench/baselines.py), each drawing a fixed number of
  queries per type: 50,000 with ``KG2TOOL_BENCH_FULL=1``, else 500 (fast enough for CI
  with ``--benchmark-disable``); in full mode each is run ``KG2TOOL_BENCH_ROUNDS`` times
  (default 3; the engine, whose rounds take milliseconds, ``KG2TOOL_BENCH_ENGINE_ROUNDS``
  times, default 9, taken round-robin over the types, a type's 1- and 2-thread rounds back
  to back) and its fastest round kept.
- Execution: answer sets/s for the same grounded queries, engine vs DuckDB's batched SQL
  at the same thread count, on 2p/3p/2i/pi.
- Matching: 2-hop path counts per anchor on a single-relation projection (engine
  ``count_matches`` vs rustworkx and igraph) and triangles of its undirected simple
  graph (engine vs igraph).
- Scale curves (full mode only): sampling throughput and memory on synthetic KGs of 1M,
  10M and 50M triples (with the product's default caps, max 100 answers and intermediate
  sets, so that power-law hubs cannot blow up memory; no inverse edges added).

Every measurement is timed inside the test as well (pytest-benchmark times the same call),
so ratios come out of one run; the summary is printed at the end of the module and, with
``KG2TOOL_BENCH_OUT=path.json``, written there. Run (bench/README.md has the figures):

    KG2TOOL_BENCH_FULL=1 KG2TOOL_BENCH_OUT=bench/results/engine.json \\
        python -m pytest bench/test_bench_engine.py --benchmark-only -s
"""

from __future__ import annotations

import functools
import gc
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

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
from kg2tool.benchmark import machine_info
from kg2tool.engine import count_matches, execute_queries, resolve_pattern, sample_queries
from kg2tool.kg.bundled import load_dataset
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.tables import KGTables
from kg2tool.patterns import BETAE_TYPES
from kg2tool.testing.graphs import graph_from_ids

FULL = os.environ.get("KG2TOOL_BENCH_FULL", "") not in ("", "0")
N_QUERIES = 50_000 if FULL else 500
# Sampling rounds per (type, implementation); the fastest is kept. The engine's rounds take
# milliseconds, so it gets 3x as many: on a shared machine a best-of-3 of a 50 ms run is
# still often a disturbed one.
ROUNDS = int(os.environ.get("KG2TOOL_BENCH_ROUNDS", "3" if FULL else "1"))
ENGINE_ROUNDS = int(os.environ.get("KG2TOOL_BENCH_ENGINE_ROUNDS", str(3 * ROUNDS)))
EXEC_TYPES = ("2p", "3p", "2i", "pi")
THREADS = (1, 2)
NO_CAP = {"max_answers": None, "max_intermediate": None}
SCALE_TRIPLES = (1_000_000, 10_000_000, 50_000_000)
SCALE_TYPES = ("1p", "2p", "3p", "2i", "pi", "2in", "up")
SCALE_QUERIES = 5_000
SCALE_CAPS = {"max_answers": 100, "max_intermediate": 100}  # bounded memory on hubs

RESULTS: dict[str, Any] = {
    "mode": "full" if FULL else "quick",
    "queries_per_type": N_QUERIES,
    "machine": machine_info(),
    "sampling": {},
    "execution": {},
    "matching": {},
    "scale": [],
}


def _load_fb15k237_with_inverses() -> KnowledgeGraph:
    tables, _ = load_dataset("fb15k-237")
    t = tables.triples
    inverse = t.select(
        pl.col("tail").alias("head"),
        (pl.col("relation") + "_inv").alias("relation"),
        pl.col("head").alias("tail"),
    )
    return KnowledgeGraph.from_tables(KGTables(triples=pl.concat([t, inverse])))


@pytest.fixture(scope="module")
def fb() -> dict[str, Any]:
    kg = _load_fb15k237_with_inverses()
    t = kg.triples
    ids = tuple(t.get_column(c).to_numpy() for c in ("head", "relation", "tail"))
    RESULTS["kg"] = {
        "name": "fb15k-237 train + inverses",
        "entities": kg.num_entities,
        "relations": kg.num_relations,
        "triples": kg.num_triples,
    }
    return {"kg": kg, "ids": ids, "py": PySampler(*ids, kg.num_entities), "groundings": {}}


@pytest.fixture(scope="module", autouse=True)
def summary() -> Any:
    yield
    _finish(RESULTS)


def _timed(fn: Any, store: dict[str, Any], key: str, work: Any) -> Any:
    """Run fn once; record wall seconds, work, rate and CPU seconds of the process (all
    threads): on a shared machine, rate per CPU-second separates the engine's scaling
    from cores taken by other jobs. Called once per round: the fastest round is kept (the
    one least disturbed by other jobs), with every round's seconds in ``round_seconds``."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    w = int(work(out))
    rounds = [*store.get(key, {}).get("round_seconds", []), dt]
    if key in store and store[key]["seconds"] <= dt:
        store[key]["round_seconds"] = rounds
        return out
    store[key] = {
        "seconds": dt,
        "cpu_seconds": cpu,
        "work": w,
        "rate": w / dt if dt else None,
        "rate_per_cpu_second": w / cpu if cpu else None,
        "round_seconds": rounds,
    }
    return out


# -------------------------------------------------------------------------- sampling

# engine-Nt: like the reference, keep the answer sets only (every set is still computed and
# checked); engine-1t-all also copies out every intermediate set (what trajectories need).
SAMPLING_IMPLS = ("engine-1t", "engine-2t", "engine-1t-all", "python")
SAMPLING_CASES = [(p, impl) for p in BETAE_TYPES for impl in SAMPLING_IMPLS]


ENGINE_IMPLS = tuple(i for i in SAMPLING_IMPLS if i.startswith("engine"))


def _engine_sample(kg: KnowledgeGraph, plan: Any, impl: str, n: int = N_QUERIES) -> Any:
    threads = int(impl.split("-")[1][:-1])
    sets = "all" if impl.endswith("-all") else "answers"
    return sample_queries(kg, plan, n, seed=0, threads=threads, sets=sets, **NO_CAP)


@pytest.fixture(scope="module")
def engine_rounds(request: Any, fb: dict[str, Any]) -> None:
    """All but the last of the engine's sampling rounds, taken round-robin over the
    selected types before their tests run (each test times the last round). A case's
    rounds are then spread over the whole run instead of one second: a spell of load on
    this shared machine slows a few rounds of every case, not every round of a few. A
    type's 1-thread and 2-thread rounds are taken back to back, so their ratio compares
    runs taken side by side."""
    selected = [
        item.callspec.params["pattern"]
        for item in request.session.items
        if item.originalname == "test_sampling" and item.callspec.params["impl"] in ENGINE_IMPLS
    ]
    plans = {p: resolve_pattern(p) for p in dict.fromkeys(selected)}
    for plan in plans.values():
        for impl in ENGINE_IMPLS:
            _engine_sample(fb["kg"], plan, impl, n=100)  # warm-up
    for _ in range(ENGINE_ROUNDS - 1):
        for p, plan in plans.items():
            store = RESULTS["sampling"].setdefault(p, {})
            for impl in ENGINE_IMPLS:
                _timed(functools.partial(_engine_sample, fb["kg"], plan, impl), store, impl, len)


@pytest.mark.parametrize(("pattern", "impl"), SAMPLING_CASES)
def test_sampling(
    benchmark: Any, fb: dict[str, Any], engine_rounds: None, pattern: str, impl: str
) -> None:
    kg, plan = fb["kg"], resolve_pattern(pattern)
    store = RESULTS["sampling"].setdefault(pattern, {})
    benchmark.group = f"sampling {pattern}"
    if impl in ENGINE_IMPLS:
        batch = benchmark.pedantic(
            lambda: _timed(functools.partial(_engine_sample, kg, plan, impl), store, impl, len),
            rounds=1,
            iterations=1,
            warmup_rounds=0,
        )
        assert len(batch) == N_QUERIES
        store[impl]["rejected"] = {k: v for k, v in batch.rejected.items() if v}
        store[impl]["attempts"] = int(batch.attempts)
        if impl == "engine-1t" and pattern in EXEC_TYPES:
            fb["groundings"][pattern] = (batch.relation_ids, batch.anchor_ids)
    else:
        py = fb["py"]

        def run() -> Any:
            return py.sample(plan, N_QUERIES, seed=0)

        out = benchmark.pedantic(
            lambda: _timed(run, store, impl, lambda o: len(o["answers"])),
            rounds=ROUNDS,
            iterations=1,
            warmup_rounds=0,
        )
        assert len(out["answers"]) == N_QUERIES
        store[impl]["rejected"] = out["rejected"]
        store[impl]["attempts"] = out["attempts"]
        del out
        gc.collect()


# ------------------------------------------------------------------------- execution


@pytest.fixture(scope="module")
def duck(fb: dict[str, Any]) -> DuckDBExecutor:
    return DuckDBExecutor(*fb["ids"], threads=1)


EXEC_CASES = [(p, impl, t) for p in EXEC_TYPES for t in THREADS for impl in ("engine", "duckdb")]


@pytest.mark.parametrize(("pattern", "impl", "threads"), EXEC_CASES)
def test_execution(
    benchmark: Any, fb: dict[str, Any], duck: DuckDBExecutor, pattern: str, impl: str, threads: int
) -> None:
    kg, plan = fb["kg"], resolve_pattern(pattern)
    if pattern not in fb["groundings"]:  # sampling tests deselected
        b = sample_queries(kg, plan, N_QUERIES, seed=0, threads=0, **NO_CAP)
        fb["groundings"][pattern] = (b.relation_ids, b.anchor_ids)
    rel, anc = fb["groundings"][pattern]
    store = RESULTS["execution"].setdefault(pattern, {})
    benchmark.group = f"execution {pattern} {threads}t"
    if impl == "engine":
        execute_queries(kg, plan, rel[:100], anc[:100], threads=threads)  # warm-up

        def run() -> Any:
            return execute_queries(kg, plan, rel, anc, threads=threads)

        out = benchmark.pedantic(
            lambda: _timed(run, store, f"engine-{threads}t", len), rounds=1, iterations=1
        )
        store[f"engine-{threads}t"]["answer_ids"] = int(
            sum(len(out.answers(i)) for i in range(len(out)))
        )
    else:
        duck.set_threads(threads)
        duck.answers(plan, rel[:100], anc[:100])  # warm-up

        def run() -> Any:
            return duck.answers(plan, rel, anc)

        _qid, x = benchmark.pedantic(
            lambda: _timed(run, store, f"duckdb-{threads}t", lambda _: len(rel)),
            rounds=1,
            iterations=1,
        )
        store[f"duckdb-{threads}t"]["answer_ids"] = len(x)
        engine = store.get(f"engine-{threads}t")
        if engine is not None:  # same answers, counted over all queries
            assert engine["answer_ids"] == len(x)


# -------------------------------------------------------------------------- matching


@pytest.fixture(scope="module")
def projection(fb: dict[str, Any]) -> dict[str, Any]:
    """The most frequent FB15k-237 relation (no inverses) as a single-relation digraph."""
    heads, rels, tails = fb["ids"]
    names = fb["kg"].relations.get_column("key")
    forward = ~names.str.ends_with("_inv").to_numpy()
    counts = np.bincount(rels, minlength=len(names)) * forward
    rel = int(counts.argmax())
    h, t = relation_projection(heads, rels, tails, rel)
    anchors = np.unique(h).astype(np.int32)
    return {"relation": rel, "name": names[rel], "heads": h, "tails": t, "anchors": anchors}


@pytest.mark.parametrize("impl", ["engine", "rustworkx", "igraph"])
def test_two_hop_counts(
    benchmark: Any, fb: dict[str, Any], projection: dict[str, Any], impl: str
) -> None:
    kg, n = fb["kg"], fb["kg"].num_entities
    anchors, rel = projection["anchors"], projection["relation"]
    store = RESULTS["matching"].setdefault("2-hop paths", {"relation": projection["name"]})
    benchmark.group = "matching 2-hop"
    if impl == "engine":
        rels = np.full((len(anchors), 2), rel, np.int32)

        def run() -> np.ndarray:
            return count_matches(kg, "2p", anchors.reshape(-1, 1), rels, threads=1)

        counts = benchmark.pedantic(
            lambda: _timed(run, store, impl, np.sum), rounds=1, iterations=1
        )
    else:
        fn = rustworkx_two_hop_counts if impl == "rustworkx" else igraph_two_hop_counts
        counts, seconds = benchmark.pedantic(
            lambda: fn(n, projection["heads"], projection["tails"], anchors), rounds=1, iterations=1
        )
        total = int(counts.sum())
        store[impl] = {
            "seconds": seconds,
            "work": total,
            "rate": total / seconds if seconds else None,
        }
    store["anchors"] = len(anchors)
    assert int(counts.sum()) == store[impl]["work"]
    if "engine" in store:
        assert int(counts.sum()) == store["engine"]["work"]


@pytest.mark.parametrize("impl", ["engine", "igraph"])
def test_triangles(
    benchmark: Any, fb: dict[str, Any], projection: dict[str, Any], impl: str
) -> None:
    n = fb["kg"].num_entities
    h, t = projection["heads"], projection["tails"]
    keep = h != t
    und = np.unique(np.sort(np.stack([h[keep], t[keep]], 1), axis=1), axis=0)
    store = RESULTS["matching"].setdefault("triangles", {"relation": projection["name"]})
    benchmark.group = "matching triangles"
    if impl == "engine":
        sym_h = np.r_[und[:, 0], und[:, 1]]
        sym_t = np.r_[und[:, 1], und[:, 0]]
        kg = graph_from_ids(sym_h, np.zeros(len(sym_h), np.int32), sym_t, n, 1)
        anchors = np.unique(sym_h).astype(np.int32).reshape(-1, 1)
        rels = np.zeros((len(anchors), 3), np.int32)

        def run() -> int:
            return int(count_matches(kg, "triangle", anchors, rels, threads=1).sum()) // 6

        count = benchmark.pedantic(
            lambda: _timed(run, store, impl, lambda c: c), rounds=1, iterations=1
        )
    else:
        count, seconds = benchmark.pedantic(
            lambda: igraph_triangles(n, und[:, 0], und[:, 1]), rounds=1, iterations=1
        )
        store[impl] = {
            "seconds": seconds,
            "work": count,
            "rate": count / seconds if seconds else None,
        }
    if "engine" in store and "igraph" in store:
        assert store["engine"]["work"] == store["igraph"]["work"]


# ---------------------------------------------------------------------------- scale


@pytest.mark.skipif(not FULL, reason="scale curves run in full mode (KG2TOOL_BENCH_FULL=1)")
@pytest.mark.parametrize("triples", SCALE_TRIPLES)
def test_scale(benchmark: Any, triples: int) -> None:
    from bench.synthetic import generate

    gc.collect()
    t0 = time.perf_counter()
    syn = generate(triples, seed=0)
    generate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    kg = graph_from_ids(syn.head, syn.relation, syn.tail, syn.num_entities, syn.num_relations)
    build_s = time.perf_counter() - t0
    native_bytes = int(kg.native.nbytes)
    del syn
    gc.collect()
    row: dict[str, Any] = {
        "triples": triples,
        "edges": kg.num_triples,
        "entities": kg.num_entities,
        "generate_s": generate_s,
        "build_s": build_s,
        "native_bytes": native_bytes,
        "sampling": {},
    }
    benchmark.group = "scale"

    def run_all() -> None:
        for pattern in SCALE_TYPES:
            plan = resolve_pattern(pattern)
            for threads in THREADS:
                sample_queries(kg, plan, 100, seed=99, threads=threads, strict=False, **SCALE_CAPS)
                t0 = time.perf_counter()
                b = sample_queries(
                    kg, plan, SCALE_QUERIES, seed=0, threads=threads, strict=False, **SCALE_CAPS
                )
                dt = time.perf_counter() - t0
                row["sampling"].setdefault(pattern, {})[f"{threads}t"] = {
                    "queries": len(b),
                    "seconds": dt,
                    "rate": len(b) / dt,
                }

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    RESULTS["scale"].append(row)
    print(f"\nscale row: {json.dumps(row)}")  # survives an interrupted run


# --------------------------------------------------------------------------- summary


def _rate(store: dict[str, Any], key: str) -> float | None:
    entry = store.get(key)
    return None if entry is None else entry["rate"]


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _finish(results: dict[str, Any]) -> None:
    lines = [
        f"\nengine benchmark ({results['mode']}, {results['queries_per_type']:,} queries per type)"
    ]
    lines.append(
        f"{'type':<5}{'engine 1t':>12}{'engine 2t':>12}{'1t all':>10}{'python':>10}"
        f"{'x python':>10}{'2t/1t':>8}{'cpu 2t':>8}{'all x py':>10}"
    )
    for pattern, s in results["sampling"].items():
        e1, e2, py = _rate(s, "engine-1t"), _rate(s, "engine-2t"), _rate(s, "python")
        ea = _rate(s, "engine-1t-all")
        s["ratio_engine_1t_vs_python"] = _ratio(e1, py)
        s["ratio_engine_1t_all_sets_vs_python"] = _ratio(ea, py)
        s["ratio_2t_vs_1t"] = _ratio(e2, e1)
        s["cpu_utilization_2t"] = _ratio(
            s.get("engine-2t", {}).get("cpu_seconds"), s.get("engine-2t", {}).get("seconds")
        )
        lines.append(
            f"{pattern:<5}{_fmt(e1):>12}{_fmt(e2):>12}{_fmt(ea):>10}{_fmt(py):>10}"
            f"{_fmt(s['ratio_engine_1t_vs_python'], 1):>10}{_fmt(s['ratio_2t_vs_1t'], 2):>8}"
            f"{_fmt(s['cpu_utilization_2t'], 2):>8}"
            f"{_fmt(s['ratio_engine_1t_all_sets_vs_python'], 1):>10}"
        )
    for pattern, s in results["execution"].items():
        for t in THREADS:
            s[f"ratio_engine_vs_duckdb_{t}t"] = _ratio(
                _rate(s, f"engine-{t}t"), _rate(s, f"duckdb-{t}t")
            )
        lines.append(
            f"exec {pattern}: "
            + ", ".join(
                f"{t}t engine {_fmt(_rate(s, f'engine-{t}t'))}/s duckdb {_fmt(_rate(s, f'duckdb-{t}t'))}/s "
                f"x{_fmt(s[f'ratio_engine_vs_duckdb_{t}t'], 1)}"
                for t in THREADS
            )
        )
    for name, s in results["matching"].items():
        rates = {
            k: _rate(s, k) for k in ("engine", "rustworkx", "igraph") if isinstance(s.get(k), dict)
        }
        lines.append(f"match {name}: " + ", ".join(f"{k} {_fmt(v)}/s" for k, v in rates.items()))
    for row in results["scale"]:
        rates = ", ".join(
            f"{p} {_fmt(v['1t']['rate'])}/{_fmt(v['2t']['rate'])}"
            for p, v in row["sampling"].items()
        )
        lines.append(
            f"scale {row['triples']:,}: {row['native_bytes'] / 2**20:,.0f} MiB, q/s 1t/2t: {rates}"
        )
    print("\n".join(lines))
    out = os.environ.get("KG2TOOL_BENCH_OUT")
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2, default=float) + "\n")


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"
