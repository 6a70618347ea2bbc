"""The BetaE/KGReasoning export of FB15k-237 against the plain-Python reference, one run.

- kg2tool: :func:`kg2tool.betae.export_betae` of FB15k-237 (train + valid + test, the 14
  types, KGReasoning's released counts: about 996,000 queries, pickles + Parquet) with
  ``KG2TOOL_BENCH_FULL=1``; else the same at 1% of the counts (1p always complete), quick
  enough for CI with ``--benchmark-disable``. Threads: ``KG2TOOL_BENCH_THREADS`` (2).
- Reference: the same algorithm in plain Python (dict-of-sets graphs; the answer-first
  sampler of ``bench/baselines.py``, the answers re-evaluated on the smaller graph, the
  same hardness, negation, cap and no-repeat rules), on a fraction of the counts
  (``KG2TOOL_BENCH_BETAE_REF_SCALE``, 0.2% of the full counts by default), its time per
  query (CPU seconds, one thread) extrapolated to the full export. Graph building is not
  timed for either; kg2tool reports wall and CPU seconds (all threads), whose ratio to the
  reference's CPU seconds is the speedup (on a shared machine wall time depends on load).
- A sample of the exported valid/test queries is re-evaluated with the reference's
  executor on the matching graphs (easy and hard answers must match).

Run (the summary is printed; ``KG2TOOL_BENCH_OUT=path.json`` writes it):

    KG2TOOL_BENCH_FULL=1 python -m pytest bench/test_bench_betae.py --benchmark-only -s
"""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bench.baselines import PySampler
from kg2tool.benchmark import machine_info
from kg2tool.betae import (
    BETAE_NAMES,
    NEGATION_TYPES,
    SPLITS,
    BetaEGraphs,
    default_counts,
    export_betae,
    load_splits,
)
from kg2tool.engine import resolve_pattern

FULL = os.environ.get("KG2TOOL_BENCH_FULL", "") not in ("", "0")
THREADS = int(os.environ.get("KG2TOOL_BENCH_THREADS", "2"))
REF_SCALE = float(os.environ.get("KG2TOOL_BENCH_BETAE_REF_SCALE", "0.002"))
CAP = 100
SUMMARY: dict = {}


def _reference_export(graphs: BetaEGraphs, counts: dict, cap: int, seed: int) -> dict:
    """The export's algorithm in plain Python; returns (split, type) -> (written, seconds)."""
    stages = {}
    nent = graphs.num_entities
    edges = {}
    for k, split in enumerate(SPLITS):
        e = np.concatenate([graphs.edges[s] for s in SPLITS[: k + 1]])
        edges[split] = PySampler(e[:, 0], e[:, 1], e[:, 2], nent)
    smaller = {"valid": "train", "test": "valid"}
    used: dict[str, set] = {}
    for split in SPLITS:
        big = edges[split]
        small = edges.get(smaller.get(split, ""))
        for name, n in counts[split].items():
            t0 = time.process_time()
            if name == "1p":
                own = graphs.edges[split]
                pairs = {(int(h), int(r)) for h, r in own[:, :2].tolist()}
                written = 0
                for h, r in pairs:
                    ans = big.adj[0].get(r, {}).get(h, frozenset())
                    easy = small.adj[0].get(r, {}).get(h, frozenset()) if small else frozenset()
                    if ans - easy:
                        written += 1
                stages[(split, name)] = (written, time.process_time() - t0)
                continue
            plan = resolve_pattern(name)
            seen = used.setdefault(name, set())
            kept, round_ = [], 0
            while len(kept) < n and round_ < 50:
                draw = big.sample(plan, max(64, 2 * (n - len(kept))), seed=seed * 1000 + round_)
                round_ += 1
                rel, anc = draw["relation_ids"], draw["anchor_ids"]
                easy_sets = (
                    small.execute_batch(plan, rel, anc) if small else [frozenset()] * len(rel)
                )
                for i, answers in enumerate(draw["answers"]):
                    easy = easy_sets[i]
                    hard, lost = answers - easy, easy - answers
                    if not hard or max(len(hard), len(lost)) > cap:
                        continue
                    if small is not None and name in NEGATION_TYPES and not lost:
                        continue
                    key = (tuple(rel[i].tolist()), tuple(anc[i].tolist()))
                    if key in seen:
                        continue
                    seen.add(key)
                    kept.append((key, easy, hard))
                    if len(kept) == n:
                        break
            stages[(split, name)] = (len(kept), time.process_time() - t0)
    return stages


@pytest.fixture(scope="module")
def fb15k237(bench_data):
    bench_data.require(bench_data.shared / "fb15k-237" / "train.txt")
    return load_splits("fb15k-237")


def test_export_fb15k237(benchmark, fb15k237, tmp_path_factory):
    counts = default_counts(1.0 if FULL else 0.01)
    out = tmp_path_factory.mktemp("betae") / "fb15k-237"
    c0, t0 = time.process_time(), time.perf_counter()
    report = benchmark.pedantic(
        lambda: export_betae(
            fb15k237, out, counts=counts, threads=THREADS, overwrite=True, max_answers=CAP
        ),
        rounds=1,
        iterations=1,
    )
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    written = sum(c["written"] for per in report.counts.values() for c in per.values())
    assert not report.short, report.short
    assert report.counts["valid"]["1p"]["written"] == 20_101
    SUMMARY["kg2tool"] = {
        "queries": written,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "queries_per_s": round(written / seconds),
        "threads": THREADS,
        "full_counts": FULL,
    }
    _check_against_reference(out)


def _check_against_reference(out: Path) -> None:
    """Easy/hard answers of exported valid/test queries equal the reference executor's."""
    graphs = {
        s: [tuple(map(int, x.split("\t"))) for x in (out / f"{s}.txt").read_text().split("\n") if x]
        for s in SPLITS
    }
    nent = int((out / "stats.txt").read_text().split()[1])
    py = {}
    for k, split in enumerate(SPLITS):
        e = np.array([t for s in SPLITS[: k + 1] for t in graphs[s]], dtype=np.int32)
        py[split] = PySampler(e[:, 0], e[:, 1], e[:, 2], nent)
    frame = pl.read_parquet(out / "queries.parquet").filter(pl.col("split") != "train")
    sample = frame.group_by("split", "type", maintain_order=True).head(20)
    for row in sample.iter_rows(named=True):
        plan = resolve_pattern(row["type"])
        rel = np.array([row["relation_ids"]], np.int32)
        anc = np.array([row["anchor_ids"]], np.int32)
        small = "train" if row["split"] == "valid" else "valid"
        big_ans = py[row["split"]].execute_batch(plan, rel, anc)[0]
        easy = py[small].execute_batch(plan, rel, anc)[0]
        assert set(row["easy_answers"]) == easy
        assert set(row["hard_answers"]) == big_ans - easy
    hard = pickle.loads((out / "test-hard-answers.pkl").read_bytes())
    assert all(hard.values())


def test_reference_export_fb15k237(benchmark, fb15k237):
    graphs = BetaEGraphs.build(*fb15k237, threads=THREADS)
    full = default_counts(1.0)
    counts = default_counts(REF_SCALE)
    counts = {s: {t: n for t, n in per.items() if t != "1p"} for s, per in counts.items()}
    for s in SPLITS:
        counts[s]["1p"] = None
    stages = benchmark.pedantic(
        lambda: _reference_export(graphs, counts, CAP, seed=0), rounds=1, iterations=1
    )
    total_full = 0.0
    assert {t for _, t in stages} == set(BETAE_NAMES)
    for (split, name), (written, seconds) in stages.items():
        assert written > 0, (split, name)
        asked = full[split][name]
        scale = 1.0 if asked is None else asked / written
        total_full += seconds * scale
    SUMMARY["reference"] = {
        "scale": REF_SCALE,
        "cpu_seconds_measured": round(sum(s for _, s in stages.values()), 2),
        "cpu_seconds_extrapolated_full": round(total_full),
    }


@pytest.fixture(scope="module", autouse=True)
def summary():
    """Print (and with KG2TOOL_BENCH_OUT write) the results once the module is done."""
    yield
    if "kg2tool" in SUMMARY and "reference" in SUMMARY:
        kg = SUMMARY["kg2tool"]
        full_seconds = kg["seconds"] if FULL else None
        SUMMARY["speedup_full_export_per_cpu_second"] = (
            round(SUMMARY["reference"]["cpu_seconds_extrapolated_full"] / kg["cpu_seconds"], 1)
            if full_seconds
            else None
        )
    SUMMARY["machine"] = machine_info()
    print(json.dumps(SUMMARY, indent=2))
    target = os.environ.get("KG2TOOL_BENCH_OUT")
    if target:
        Path(target).write_text(json.dumps(SUMMARY, indent=2) + "\n")
