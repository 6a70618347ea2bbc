"""Runtime throughput on CoDEx-S: single and batched calls vs a plain Python dict-of-sets lookup.

Each benchmark group pairs the runtime with the dict-of-sets baseline doing the same work
(name -> id, neighbour set, (label, key)-sorted names), measured in the same run. The
baseline is also the verifier: the first test checks both give identical answers.
Run: ``python -m pytest bench/test_bench_runtime.py --benchmark-only`` (CI: ``--benchmark-disable``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.tools.catalog import ApiCatalog
from kg2tool.tools.runtime import ToolRuntime

N_CALLS = 1000


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    """CoDEx-S graph, runtime, a seeded workload of forward/inverse calls and the baseline."""
    kg = KnowledgeGraph.load("codex-s")
    cat = ApiCatalog.from_graph(kg)
    rt = ToolRuntime(kg, cat)
    t = kg.triples
    rows = np.random.default_rng(0).choice(t.height, size=N_CALLS, replace=False)
    keys = kg.relations["key"].to_list()
    calls, ref_calls = [], []
    for k, (h, r, tl) in enumerate(t[rows].iter_rows()):
        direction, ent = ("forward", h) if k % 2 == 0 else ("inverse", tl)
        api = cat.api_for(keys[r], direction)
        calls.append((api.name, {api.param_names[0]: rt.names[ent]}))
        ref_calls.append((rt.names[ent], r, direction == "inverse"))
    adj: dict[tuple[int, int, bool], set[int]] = defaultdict(set)
    for h, r, tl in t.iter_rows():
        adj[(h, r, False)].add(tl)
        adj[(tl, r, True)].add(h)
    by_name = {n: i for i, n in enumerate(rt.names)}
    sort_key = [(lab, key) for lab, key in zip(rt.labels, rt.keys, strict=True)]
    names = rt.names

    def baseline(name: str, rel: int, inverse: bool) -> list[str]:
        """Plain Python: name -> id, set lookup, sort by (label, key), names."""
        ids = adj.get((by_name[name], rel, inverse), ())
        return [names[i] for i in sorted(ids, key=sort_key.__getitem__)]

    fwd_api = cat.api_for(keys[int(t["relation"][0])])
    ids = np.arange(kg.num_entities, dtype=np.int32)
    rel0 = int(t["relation"][0])
    return dict(
        rt=rt,
        calls=calls,
        ref_calls=ref_calls,
        baseline=baseline,
        adj=adj,
        fwd_api=fwd_api,
        ids=ids,
        rel0=rel0,
    )


def test_runtime_matches_baseline(setup: dict[str, Any]) -> None:
    rt, baseline = setup["rt"], setup["baseline"]
    got = [r.result for r in rt.call_many(setup["calls"])]
    assert got == [baseline(*c) for c in setup["ref_calls"]]


@pytest.mark.benchmark(group="single-call")
def test_single_runtime(benchmark: Any, setup: dict[str, Any]) -> None:
    rt, calls = setup["rt"], setup["calls"]
    benchmark(lambda: [rt.call(n, a) for n, a in calls])
    benchmark.extra_info["calls"] = len(calls)


@pytest.mark.benchmark(group="single-call")
def test_single_dict_of_sets(benchmark: Any, setup: dict[str, Any]) -> None:
    baseline, ref = setup["baseline"], setup["ref_calls"]
    benchmark(lambda: [baseline(*c) for c in ref])
    benchmark.extra_info["calls"] = len(ref)


@pytest.mark.benchmark(group="batched-calls")
def test_batched_runtime_call_many(benchmark: Any, setup: dict[str, Any]) -> None:
    rt, calls = setup["rt"], setup["calls"]
    benchmark(rt.call_many, calls)
    benchmark.extra_info["calls"] = len(calls)


@pytest.mark.benchmark(group="batched-calls")
def test_batched_dict_of_sets(benchmark: Any, setup: dict[str, Any]) -> None:
    baseline, ref = setup["baseline"], setup["ref_calls"]
    benchmark(lambda: [baseline(*c) for c in ref])
    benchmark.extra_info["calls"] = len(ref)


@pytest.mark.benchmark(group="batched-ids")
def test_ids_runtime_call_ids(benchmark: Any, setup: dict[str, Any]) -> None:
    rt, api, ids = setup["rt"], setup["fwd_api"], setup["ids"]
    benchmark(rt.call_ids, api.name, ids)
    benchmark.extra_info["calls"] = len(ids)


@pytest.mark.benchmark(group="batched-ids")
def test_ids_dict_of_sets(benchmark: Any, setup: dict[str, Any]) -> None:
    adj, ids, rel = setup["adj"], setup["ids"].tolist(), setup["rel0"]
    empty: set[int] = set()
    benchmark(lambda: [sorted(adj.get((i, rel, False), empty)) for i in ids])
    benchmark.extra_info["calls"] = len(ids)
