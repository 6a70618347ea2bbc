"""The local process pool: its workers take the driver's catalogue (not building their own)
and run Polars on their share of the CPUs; the driver's environment is left as it was."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.pipeline import runners, worker
from kg2tool.pipeline.config import GenerateConfig
from kg2tool.testing.graphs import graph_from_ids


def _worker_state(source: str) -> dict[str, Any]:
    import polars as pl

    kg = worker._worker_kg(source)
    ctx = worker.worker_context(kg, None)
    shipped = list(worker._SHIPPED_CATALOG.values())
    return {
        "shipped": len(shipped) == 1 and ctx.catalog is shipped[0],
        "names": ctx.catalog.names,
        "polars_threads": pl.thread_pool_size(),
        "env": os.environ.get(runners.POLARS_THREADS_ENV),
    }


def _run_in_pool(tmp_path: Any, workers: int) -> tuple[dict[str, Any], list[str]]:
    cfg = GenerateConfig(out=str(tmp_path / "out"), engine="process", workers=workers)
    kg = KnowledgeGraph.load(cfg.kg)
    runner = runners._ProcessRunner(cfg, kg)
    try:
        state = runner.pool.submit(_worker_state, runner.source).result()
    finally:
        runner.close()
    return state, worker.worker_context(kg, None).catalog.names


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_use_the_drivers_catalogue_and_their_share_of_cpus(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.delenv(runners.POLARS_THREADS_ENV, raising=False)
    state, names = _run_in_pool(tmp_path, workers)
    assert state["shipped"]
    assert state["names"] == names
    share = max(1, (os.cpu_count() or 1) // workers)
    assert state["env"] == str(share)
    assert state["polars_threads"] == share
    assert runners.POLARS_THREADS_ENV not in os.environ  # the driver's own is unchanged


def test_a_users_polars_thread_count_is_kept(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(runners.POLARS_THREADS_ENV, "3")
    state, _ = _run_in_pool(tmp_path, 2)
    assert state["env"] == "3"
    assert state["polars_threads"] == 3
    assert os.environ[runners.POLARS_THREADS_ENV] == "3"


def test_a_shipped_catalogue_is_used_only_for_a_kg_of_its_shape() -> None:
    kg = KnowledgeGraph.load("codex-s")
    other = graph_from_ids(np.array([0, 1]), np.array([0, 0]), np.array([1, 2]), 3, 1)
    shape, overrides, catalog = worker.shipped_catalog(kg)
    saved = dict(worker._SHIPPED_CATALOG)
    try:
        worker._SHIPPED_CATALOG.clear()
        worker._SHIPPED_CATALOG[(shape, overrides)] = catalog
        worker._WORKER_CONTEXT.clear()
        assert worker.worker_context(other).catalog is not catalog
        assert worker.worker_context(other).catalog.names != catalog.names
        worker._WORKER_CONTEXT.clear()
        assert worker.worker_context(kg).catalog is catalog
    finally:
        worker._SHIPPED_CATALOG.clear()
        worker._SHIPPED_CATALOG.update(saved)
        worker._WORKER_CONTEXT.clear()
