"""Native KG core: load, snapshot open and build times, native bytes per triple, peak RSS.

Groups (each with its baseline measured in the same run):
- ``fb15k-237 load``: TSV -> queryable KnowledgeGraph, against Polars ``read_csv`` of the
  same file (parsing only, no ids, no graph), a Python dict-of-sets build and networkx.
- ``fb15k-237 open``: opening a snapshot (memory-mapped, validated), with/without CRC.
- ``native build``: ``_core.build_arrays`` from int32 ids, FB15k-237 and synthetic graphs.
- ``build subprocess``: a whole build in a fresh interpreter (``bench.memory``) for peak
  RSS; the string-key path (``from_tables``) and the id path, time split per phase.
Targets (issue 2): FB15k-237 TSV -> graph < 1 s; snapshot open < 50 ms; 50M triples built
under 24 GB peak RSS; <= 24 bytes of native memory per triple (both directions plus the
relation index). Byte and RSS targets are asserted; times are recorded, not asserted.

Run: ``python -m pytest bench/test_bench_graph.py`` (CI: ``--benchmark-disable``);
``KG2TOOL_BENCH_SCALE=1`` adds synthetic 1M/10M/50M triples.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import networkx as nx
import numpy as np
import polars as pl
import pytest

from bench.memory import measure
from bench.synthetic import generate
from kg2tool import _core
from kg2tool.kg.graph import KnowledgeGraph

FB15K237_TRIPLES = 272_115
MAX_BYTES_PER_TRIPLE = 24
MAX_PEAK_RSS_MB = 24 * 1024
SMALL = 100_000
LARGE = (1_000_000, 10_000_000, 50_000_000)
SIZES = (SMALL, *LARGE)


def graph_bytes_per_triple(native: _core.Graph) -> float:
    """Native bytes of both directions plus the relation index (no type arrays), per edge."""
    total = sum(int(v.nbytes) for k, v in native.arrays.items() if k.startswith(("out.", "in.")))
    return total / native.num_edges


def size_id(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def skip_unless_scale(bench_data, n: int) -> None:
    if n > SMALL and not bench_data.scale:
        pytest.skip("set KG2TOOL_BENCH_SCALE=1 for the 1M/10M/50M runs")


@pytest.fixture(scope="module")
def fb_path(bench_data) -> Path:
    return bench_data.require(bench_data.fb15k237_train)


@pytest.fixture(scope="module")
def fb_kg(fb_path: Path) -> KnowledgeGraph:
    return KnowledgeGraph.load(fb_path)


@pytest.fixture(scope="module")
def fb_snapshot(fb_kg: KnowledgeGraph, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fb_kg.save_snapshot(tmp_path_factory.mktemp("bench") / "fb15k-237.snapshot")


_synthetic_cache: dict[int, object] = {}


def synthetic(n: int):
    if n not in _synthetic_cache:
        _synthetic_cache.clear()  # keep one size in memory at a time
        _synthetic_cache[n] = generate(n, seed=0)
    return _synthetic_cache[n]


# ----- FB15k-237: TSV -> queryable graph, and baselines -------------------------------


@pytest.mark.benchmark(group="fb15k-237 load")
def test_fb15k237_tsv_to_graph(benchmark, fb_path: Path) -> None:
    kg = benchmark.pedantic(KnowledgeGraph.load, args=(fb_path,), rounds=5, warmup_rounds=1)
    assert kg.num_triples == FB15K237_TRIPLES
    offsets, _ = kg.neighbors(np.arange(100, dtype=np.int32), 0)  # queryable
    assert offsets[-1] == sum(len(kg.native.neighbor_view(u, 0)) for u in range(100))
    benchmark.extra_info.update(target_s=1.0, triples=kg.num_triples)


@pytest.mark.benchmark(group="fb15k-237 load")
def test_fb15k237_baseline_polars_read_csv(benchmark, fb_path: Path) -> None:
    def read() -> pl.DataFrame:
        return pl.read_csv(
            fb_path,
            separator="\t",
            has_header=False,
            quote_char=None,
            new_columns=["head", "relation", "tail"],
        )

    df = benchmark.pedantic(read, rounds=5, warmup_rounds=1)
    assert df.height == FB15K237_TRIPLES


def dict_of_sets(path: Path) -> dict[tuple[str, str, bool], set[str]]:
    adj: dict[tuple[str, str, bool], set[str]] = defaultdict(set)
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            h, r, t = line.rstrip("\n").split("\t")
            adj[(h, r, False)].add(t)
            adj[(t, r, True)].add(h)
    return adj


@pytest.mark.benchmark(group="fb15k-237 load")
def test_fb15k237_baseline_dict_of_sets(benchmark, fb_path: Path, fb_kg: KnowledgeGraph) -> None:
    adj = benchmark.pedantic(dict_of_sets, args=(fb_path,), rounds=3, warmup_rounds=0)
    assert sum(len(s) for (_, _, inv), s in adj.items() if not inv) == fb_kg.num_triples


@pytest.mark.benchmark(group="fb15k-237 load")
def test_fb15k237_baseline_networkx(benchmark, bench_data, fb_path: Path) -> None:
    if not bench_data.scale:
        pytest.skip("networkx baseline takes ~5 s; set KG2TOOL_BENCH_SCALE=1")

    def build() -> nx.MultiDiGraph:
        df = pl.read_csv(fb_path, separator="\t", has_header=False, quote_char=None)
        g = nx.MultiDiGraph()
        g.add_edges_from((h, t, r) for h, r, t in df.iter_rows())
        return g

    g = benchmark.pedantic(build, rounds=2, warmup_rounds=0)
    assert g.number_of_edges() == FB15K237_TRIPLES


# ----- snapshot open ------------------------------------------------------------------


@pytest.mark.benchmark(group="fb15k-237 open")
@pytest.mark.parametrize("verify", [True, False], ids=["crc", "no-crc"])
def test_fb15k237_snapshot_open(benchmark, fb_snapshot: Path, fb_kg, verify: bool) -> None:
    kg = benchmark.pedantic(
        KnowledgeGraph.open_snapshot,
        args=(fb_snapshot,),
        kwargs={"verify": verify},
        rounds=10,
        warmup_rounds=1,
    )
    assert kg.num_triples == fb_kg.num_triples
    np.testing.assert_array_equal(kg.native.arrays["in.nbr"], fb_kg.native.arrays["in.nbr"])
    benchmark.extra_info.update(target_s=0.05)


# ----- native build from ids, bytes per triple ----------------------------------------


@pytest.mark.benchmark(group="native build")
def test_fb15k237_native_build(benchmark, fb_kg: KnowledgeGraph) -> None:
    t = fb_kg.triples
    ids = [t[c].to_numpy() for c in ("head", "relation", "tail")]
    arrays, dups = benchmark.pedantic(
        _core.build_arrays,
        args=(*ids, fb_kg.num_entities, fb_kg.num_relations, 0),
        rounds=5,
        warmup_rounds=1,
    )
    native = _core.Graph(fb_kg.num_entities, fb_kg.num_relations, 0, arrays, validate=True)
    per_triple = graph_bytes_per_triple(native)
    benchmark.extra_info.update(bytes_per_triple=round(per_triple, 2), duplicates=int(dups))
    assert per_triple <= MAX_BYTES_PER_TRIPLE
    assert graph_bytes_per_triple(fb_kg.native) == per_triple


@pytest.mark.benchmark(group="native build")
@pytest.mark.parametrize("n", SIZES, ids=size_id)
def test_synthetic_native_build(benchmark, bench_data, n: int) -> None:
    skip_unless_scale(bench_data, n)
    kg = synthetic(n)
    args = (kg.head, kg.relation, kg.tail, kg.num_entities, kg.num_relations, 0)
    rounds = 3 if n <= 1_000_000 else 1
    arrays, dups = benchmark.pedantic(_core.build_arrays, args=args, rounds=rounds)
    native = _core.Graph(kg.num_entities, kg.num_relations, 0, arrays, validate=False)
    per_triple = graph_bytes_per_triple(native)
    benchmark.extra_info.update(
        triples=n, edges=int(native.num_edges), duplicates=int(dups), bytes_per_triple=per_triple
    )
    assert native.num_edges + dups == n
    assert per_triple <= MAX_BYTES_PER_TRIPLE


# ----- whole builds in a subprocess: peak RSS -----------------------------------------


@pytest.mark.benchmark(group="build subprocess")
@pytest.mark.parametrize("job", ["build_ids", "build_tables"])
@pytest.mark.parametrize("n", SIZES, ids=size_id)
def test_synthetic_build_peak_rss(benchmark, bench_data, tmp_path: Path, job: str, n: int) -> None:
    skip_unless_scale(bench_data, n)
    params = {"triples": n}
    if job == "build_tables":
        params["snapshot_dir"] = str(tmp_path / "snapshot")
    result = benchmark.pedantic(measure, args=(job,), kwargs=params, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert result["edges"] + result["duplicates"] == n
    assert result["graph_bytes_per_triple"] <= MAX_BYTES_PER_TRIPLE
    assert result["peak_rss_mb"] < MAX_PEAK_RSS_MB


def test_fb15k237_build_peak_rss(bench_data) -> None:
    path = bench_data.require(bench_data.fb15k237_train)
    result = measure("load_tsv", path=str(path))
    assert result["edges"] == FB15K237_TRIPLES
    assert result["graph_bytes_per_triple"] <= MAX_BYTES_PER_TRIPLE
    assert result["peak_rss_mb"] < 2048
