"""Throughput measurements of the native engine, behind ``kg2tool bench`` and ``bench/``.

Per pattern and thread count, with a warm-up run and several timed repetitions (median,
min, max and relative spread reported):

- **sampling**: verified queries/s of :func:`~kg2tool.engine.sample_queries` for a fixed
  number of queries (a fixed amount of work, not a fixed time: near exhaustion of a
  pattern's distinct queries duplicate rejection dominates), and rejection rates by reason
  (rejections / tries);
- **execution**: answer sets/s of :func:`~kg2tool.engine.execute_queries` for the grounded
  queries the sampler drew (every op's set is computed, as the sampler does);
- **matching**: groundings/s of :func:`~kg2tool.engine.count_matches` with the sampled
  anchors and relations fixed (conjunctions without negation only; else ``None``).

>>> from kg2tool.kg.graph import KnowledgeGraph
>>> report = run_bench(KnowledgeGraph.load("codex-s"), ["2p"], threads=[1], queries=200,
...                    repeat=2)
>>> sorted(report["results"][0])  # doctest: +NORMALIZE_WHITESPACE
['execution', 'formula', 'kg', 'matching', 'num_triples', 'pattern', 'sampling', 'threads']
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kg2tool.engine import (
    REJECT_REASONS,
    count_matches,
    execute_queries,
    resolve_pattern,
    sample_queries,
)
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.patterns import PatternSpec

__all__ = [
    "CSV_FIELDS",
    "machine_info",
    "measure",
    "plot_report",
    "run_bench",
    "summarize",
    "write_csv",
    "write_json",
]

CSV_FIELDS = [
    "kg",
    "num_triples",
    "pattern",
    "threads",
    "metric",
    "unit",
    "median",
    "min",
    "max",
    "spread",
    "repeat",
    "work",
]


def summarize(rates: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and relative spread ((max - min) / median) of repeated rates."""
    values = [float(r) for r in rates]
    if not values:
        return {"median": None, "min": None, "max": None, "spread": None, "runs": []}
    med = statistics.median(values)
    return {
        "median": med,
        "min": min(values),
        "max": max(values),
        "spread": (max(values) - min(values)) / med if med else None,
        "runs": values,
    }


def measure(fn: Callable[[], int], *, warmup: int = 1, repeat: int = 3) -> dict[str, Any]:
    """Rates (work units / second) of ``fn()``, which returns the work it did, summarized."""
    for _ in range(warmup):
        fn()
    rates, utilization = [], []
    work = 0
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        work = fn()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        rates.append(work / dt if dt > 0 else float("inf"))
        utilization.append(cpu / dt if dt > 0 else 0.0)
    out = summarize(rates)
    out["work"] = int(work)
    # CPU seconds of the process (all threads) per wall second: below the thread count,
    # the run waited (other jobs on the cores, or serial parts)
    out["cpu_utilization"] = statistics.median(utilization) if utilization else None
    return out


def machine_info() -> dict[str, Any]:
    """CPU model, core count, Python and date: what a figure needs to be reproduced."""
    model = platform.processor() or ""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in text.splitlines():
            if line.startswith("Model name"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": model,
        "nproc": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _matching_supported(plan: Any) -> bool:
    return "|" not in plan.formula and "!" not in plan.formula


def run_bench(
    kg: KnowledgeGraph,
    patterns: Sequence[str | PatternSpec],
    *,
    threads: Sequence[int] = (1,),
    queries: int = 0,
    seconds: float = 1.0,
    warmup: int = 1,
    repeat: int = 3,
    seed: int = 0,
    kg_name: str = "",
    match_anchors: int = 1000,
    sample_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Sampling, execution and matching throughput of every pattern at every thread count.

    ``queries`` fixes the number of queries per sampling run; 0 derives it from
    ``seconds`` (the target duration of one run) after a calibration run. Sampling
    options default to no answer or intermediate cap (``max_answers=None``,
    ``max_intermediate=None``); ``sample_options`` overrides them.
    """
    options: dict[str, Any] = {"max_answers": None, "max_intermediate": None}
    options.update(sample_options or {})
    results = []
    for pattern in patterns:
        plan = resolve_pattern(pattern)
        name = pattern if isinstance(pattern, str) else (pattern.name or pattern.formula)
        n = int(queries)
        if n <= 0:
            probe = 200
            t0 = time.perf_counter()
            got = sample_queries(
                kg, plan, probe, seed=seed, strict=False, threads=max(threads), **options
            )
            rate = len(got) / max(time.perf_counter() - t0, 1e-9)
            n = max(100, int(rate * seconds))
        for t in threads:
            results.append(
                _bench_one(
                    kg, plan, name, n, int(t), warmup, repeat, seed, options, match_anchors, kg_name
                )
            )
    return {
        "kg": {"name": kg_name, **_kg_stats(kg)},
        "machine": machine_info(),
        "settings": {
            "patterns": [p if isinstance(p, str) else (p.name or p.formula) for p in patterns],
            "threads": [int(t) for t in threads],
            "queries": int(queries),
            "seconds": float(seconds),
            "warmup": int(warmup),
            "repeat": int(repeat),
            "seed": int(seed),
            "sample_options": options,
        },
        "results": results,
    }


def _kg_stats(kg: KnowledgeGraph) -> dict[str, int]:
    return {
        "num_entities": int(kg.num_entities),
        "num_relations": int(kg.num_relations),
        "num_triples": int(kg.num_triples),
    }


def _bench_one(
    kg: KnowledgeGraph,
    plan: Any,
    name: str,
    n: int,
    threads: int,
    warmup: int,
    repeat: int,
    seed: int,
    options: dict[str, Any],
    match_anchors: int,
    kg_name: str,
) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def sample() -> int:
        batch = sample_queries(kg, plan, n, seed=seed, strict=False, threads=threads, **options)
        last["batch"] = batch
        return len(batch)

    sampling = measure(sample, warmup=warmup, repeat=repeat)
    batch = last["batch"]
    tries = max(int(batch.attempts), 1)
    sampling.update(
        queries=len(batch),
        requested=n,
        candidates=int(batch.candidates),
        attempts=int(batch.attempts),
        exhausted=bool(batch.exhausted),
        rejected={k: int(batch.rejected.get(k, 0)) for k in REJECT_REASONS},
        rejection_rates={k: batch.rejected.get(k, 0) / tries for k in REJECT_REASONS},
        acceptance_rate=len(batch) / tries,
    )
    rel, anc = batch.relation_ids, batch.anchor_ids
    execution = measure(
        lambda: len(execute_queries(kg, plan, rel, anc, threads=threads)),
        warmup=warmup,
        repeat=repeat,
    )
    execution["queries"] = len(rel)
    matching = None
    if _matching_supported(plan) and len(rel):
        m = min(match_anchors, len(rel))
        counts: dict[str, int] = {}

        def match() -> int:
            c = count_matches(kg, plan, anc[:m], rel[:m], threads=threads)
            counts["total"] = int(np.sum(c))
            return counts["total"]

        matching = measure(match, warmup=warmup, repeat=repeat)
        matching.update(anchors=m, groundings=counts["total"])
    return {
        "kg": kg_name,
        "num_triples": int(kg.num_triples),
        "pattern": name,
        "formula": plan.formula,
        "threads": threads,
        "sampling": {"unit": "queries/s", **sampling},
        "execution": {"unit": "answer sets/s", **execution},
        "matching": None if matching is None else {"unit": "groundings/s", **matching},
    }


# ------------------------------------------------------------------------------ output


def table_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per (pattern, threads, metric): the CSV and on-screen table."""
    rows = []
    for r in report["results"]:
        for metric in ("sampling", "execution", "matching"):
            m = r[metric]
            if m is None:
                continue
            rows.append(
                {
                    "kg": r["kg"],
                    "num_triples": r["num_triples"],
                    "pattern": r["pattern"],
                    "threads": r["threads"],
                    "metric": metric,
                    "unit": m["unit"],
                    "median": m["median"],
                    "min": m["min"],
                    "max": m["max"],
                    "spread": m["spread"],
                    "repeat": len(m["runs"]),
                    "work": m["work"],
                }
            )
    return rows


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table: rates per pattern and thread count, plus top rejection reasons."""
    lines = [
        f"{'pattern':<10}{'thr':>4}{'sample q/s':>14}{'±':>6}{'exec sets/s':>14}{'±':>6}"
        f"{'match gr/s':>14}{'±':>6}  top rejections (of tries)"
    ]

    def cell(m: dict[str, Any] | None) -> str:
        if m is None or m["median"] is None:
            return f"{'-':>14}{'':>6}"
        spread = f"{100 * m['spread']:.0f}%" if m["spread"] is not None else ""
        return f"{m['median']:>14,.0f}{spread:>6}"

    for r in report["results"]:
        s = r["sampling"]
        top = sorted(((v, k) for k, v in s["rejection_rates"].items() if v), reverse=True)[:3]
        rej = ", ".join(f"{k} {100 * v:.0f}%" for v, k in top) or "-"
        lines.append(
            f"{r['pattern']:<10}{r['threads']:>4}{cell(s)}{cell(r['execution'])}{cell(r['matching'])}  {rej}"
        )
    return "\n".join(lines)


def write_json(report: dict[str, Any] | list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_csv(reports: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for report in reports:
            writer.writerows(table_rows(report))
    return out


def plot_report(reports: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """PNG: sampling throughput against threads (left) and against KG size (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for rep in reports for r in rep["results"]]
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(11, 4.2))
    by_pattern: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_pattern.setdefault(r["pattern"], []).append(r)
    largest = max((r["num_triples"] for r in rows), default=0)
    for name, rs in by_pattern.items():
        at_largest = sorted(
            (r for r in rs if r["num_triples"] == largest), key=lambda r: r["threads"]
        )
        ax_t.plot(
            [r["threads"] for r in at_largest],
            [r["sampling"]["median"] for r in at_largest],
            marker="o",
            label=name,
        )
        one = min(r["threads"] for r in rs)
        by_size = sorted((r for r in rs if r["threads"] == one), key=lambda r: r["num_triples"])
        ax_s.plot(
            [r["num_triples"] for r in by_size],
            [r["sampling"]["median"] for r in by_size],
            marker="o",
            label=name,
        )
    ax_t.set_xticks(sorted({r["threads"] for r in rows}))
    ax_t.set(
        xlabel="threads", ylabel="verified queries/s", title="sampling vs threads", yscale="log"
    )
    ax_s.set(
        xlabel="triples",
        ylabel="verified queries/s",
        title="sampling vs KG size",
        xscale="log",
        yscale="log",
    )
    for ax in (ax_t, ax_s):
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
