# Build measurements in a fresh subprocess: wall time per phase, native bytes, peak RSS.
#
# Peak RSS (VmHWM) is a high-water mark of the whole process, so every measured build
# runs in its own interpreter: `measure(job, **params)` starts `python -m bench.memory`,
# which runs one job and prints one JSON line. RSS figures are in MiB; `rss_before_mb` is
# the resident size just before the measured build (input arrays/frames already in memory),
# `peak_rss_mb` the process high-water mark at the end.
#
# Jobs:
#   build_ids     synthetic ids -> kg2tool._core.build_arrays -> Graph (no string keys)
#   build_tables  synthetic string-keyed KGTables -> KnowledgeGraph.from_tables; the time of
#                 the native build inside it is split out by wrapping _core.build_arrays
#   load_tsv      a triples TSV -> read_triples -> from_tables (e.g. FB15k-237)
# Optional `snapshot_dir`: also save a snapshot there and time opening it (verify on/off).
#
# CLI: python -m bench.memory build_ids '{"triples": 1000000}'

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    """Current resident set size (MiB), from /proc (Linux); 0 where unavailable."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    """Peak RSS (MiB) of this process. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    an exec, so a child of a big pytest process would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _snapshot_times(kg: Any, snapshot_dir: str, out: dict[str, Any]) -> None:
    from kg2tool.kg.graph import KnowledgeGraph

    t0 = time.perf_counter()
    kg.save_snapshot(snapshot_dir)
    out["snapshot_save_s"] = time.perf_counter() - t0
    out["snapshot_bytes"] = sum(
        p.stat().st_size for p in Path(snapshot_dir).rglob("*") if p.is_file()
    )
    for verify in (True, False):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            KnowledgeGraph.open_snapshot(snapshot_dir, verify=verify)
            best = min(best, time.perf_counter() - t0)
        out[f"snapshot_open_s_verify_{str(verify).lower()}"] = best


def _graph_bytes(native: Any) -> dict[str, Any]:
    edges = int(native.num_edges)
    nbytes = int(native.nbytes)
    graph_bytes = sum(  # both directions + relation index, without the entity-type arrays
        int(v.nbytes) for k, v in native.arrays.items() if k.startswith(("out.", "in."))
    )
    return {
        "graph_bytes_per_triple": graph_bytes / max(edges, 1),
        "entities": int(native.num_entities),
        "relations": int(native.num_relations),
        "edges": edges,
        "native_bytes": nbytes,
        "bytes_per_triple": nbytes / max(edges, 1),
    }


def build_ids(triples: int, threads: int = 0, seed: int = 0, **_: Any) -> dict[str, Any]:
    """Native build straight from the generator's int32 id arrays."""
    from bench.synthetic import generate
    from kg2tool import _core

    t0 = time.perf_counter()
    kg = generate(triples, seed=seed)
    out: dict[str, Any] = {"generate_s": time.perf_counter() - t0, "rss_before_mb": _rss_mb()}
    t0 = time.perf_counter()
    arrays, dups = _core.build_arrays(
        kg.head, kg.relation, kg.tail, kg.num_entities, kg.num_relations, threads
    )
    native = _core.Graph(kg.num_entities, kg.num_relations, 0, arrays, validate=False)
    out["build_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = _peak_rss_mb()
    t0 = time.perf_counter()
    _core.Graph(kg.num_entities, kg.num_relations, 0, arrays, validate=True)
    out["validate_s"] = time.perf_counter() - t0
    out.update(_graph_bytes(native), triples=triples, duplicates=int(dups))
    return out


def build_tables(
    triples: int, threads: int = 0, seed: int = 0, snapshot_dir: str | None = None, **_: Any
) -> dict[str, Any]:
    """String keys (e<id>, r<id>) with labels and types -> KnowledgeGraph.from_tables."""
    from bench import synthetic
    from kg2tool import _core
    from kg2tool.kg import graph
    from kg2tool.kg.tables import KGTables

    t0 = time.perf_counter()
    kg = synthetic.generate(triples, seed=seed)
    side = synthetic.tables(kg)
    tables = KGTables(
        triples=synthetic.triples_frame(kg),
        entities=side["entities"],
        relations=side["relations"],
        entity_types=side["entity_types"],
        type_labels=side["types"],
    )
    del kg
    out: dict[str, Any] = {"prepare_s": time.perf_counter() - t0, "rss_before_mb": _rss_mb()}
    native_s: list[float] = []
    real_build = _core.build_arrays

    def timed_build(*args: Any) -> Any:
        t = time.perf_counter()
        try:
            return real_build(*args)
        finally:
            native_s.append(time.perf_counter() - t)

    graph._core.build_arrays = timed_build  # same module object: wraps the call in from_tables
    try:
        t0 = time.perf_counter()
        g = graph.KnowledgeGraph.from_tables(tables, threads=threads)
        out["build_s"] = time.perf_counter() - t0
    finally:
        graph._core.build_arrays = real_build
    out["peak_rss_mb"] = _peak_rss_mb()
    out["native_build_s"] = sum(native_s)
    out["keys_and_tables_s"] = out["build_s"] - out["native_build_s"]
    out.update(_graph_bytes(g.native), triples=triples, duplicates=g.report["duplicates"])
    if snapshot_dir:
        _snapshot_times(g, snapshot_dir, out)
    return out


def load_tsv(
    path: str, threads: int = 0, snapshot_dir: str | None = None, **_: Any
) -> dict[str, Any]:
    """A triples file -> queryable KnowledgeGraph (read + key mapping + native build)."""
    from kg2tool.kg.graph import KnowledgeGraph

    out: dict[str, Any] = {"rss_before_mb": _rss_mb()}
    t0 = time.perf_counter()
    kg = KnowledgeGraph.load(path, threads=threads)
    out["build_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = _peak_rss_mb()
    out.update(_graph_bytes(kg.native), triples=kg.report["triples_read"])
    if snapshot_dir:
        _snapshot_times(kg, snapshot_dir, out)
    return out


JOBS = {"build_ids": build_ids, "build_tables": build_tables, "load_tsv": load_tsv}


def measure(job: str, *, timeout: float | None = None, **params: Any) -> dict[str, Any]:
    """Run one job in a fresh interpreter and return its JSON result (raises on failure)."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; known: {', '.join(JOBS)}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.memory", job, json.dumps(params)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"bench.memory {job} {params} exited with {proc.returncode}:\n{proc.stderr[-4000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in JOBS:
        print(
            f"usage: python -m bench.memory {{{','.join(JOBS)}}} '<json params>'", file=sys.stderr
        )
        return 2
    params = json.loads(args[1]) if len(args) > 1 else {}
    result = JOBS[args[0]](**params)
    result = {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}
    print(json.dumps({"job": args[0], **params, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
