"""The local process pool: it starts before the KG is open, its workers take the driver's
catalogue and lexicon with their tasks (not building their own) and run Polars on their share of the
CPUs; the driver's environment is left as it was."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import pytest

from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.pipeline import runners, worker
from kg2tool.pipeline.config import GenerateConfig
from kg2tool.testing.graphs import graph_from_ids
from kg2tool.tools.catalog import ApiCatalog


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the catalogue was built again")


def _worker_state(source: str, context: bytes) -> dict[str, Any]:
    """In a pool worker: its context from the shipped catalogue (building one fails here)."""
    import polars as pl

    from kg2tool.dataset import assemble

    ApiCatalog.from_graph = classmethod(_refuse)  # type: ignore[method-assign,assignment]
    assemble.build_lexicon = _refuse  # type: ignore[assignment]
    kg = worker._worker_kg(source)
    ctx = worker.worker_context(kg, None, shipped=context)
    return {
        "names": ctx.catalog.names,
        "lexicon": ctx.lexicon.frame,
        "inflect": "inflect" in sys.modules,
        "polars_threads": pl.thread_pool_size(),
        "env": os.environ.get(runners.POLARS_THREADS_ENV),
    }


def _run_in_pool(tmp_path: Any, workers: int) -> tuple[dict[str, Any], Any]:
    cfg = GenerateConfig(out=str(tmp_path / "out"), engine="process", workers=workers)
    pool = runners.start_pool(cfg)
    assert pool is not None and pool.source is None  # started before any KG is open
    try:
        kg = KnowledgeGraph.load(cfg.kg)
        runner = runners.make_runner(cfg, kg, pool, worker.start_context(kg))
        assert runner is pool and pool.source is not None
        context = pool.shipped()  # the driver's, built on a thread meanwhile
        assert context and pool.shipped() is context
        state = pool.pool.submit(_worker_state, pool.source, context).result()
    finally:
        pool.close()
        pool.close()  # closing twice is harmless
    return state, worker.worker_context(kg, None)


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_use_the_drivers_catalogue_and_their_share_of_cpus(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.delenv(runners.POLARS_THREADS_ENV, raising=False)
    state, ctx = _run_in_pool(tmp_path, workers)
    assert state["names"] == ctx.catalog.names
    assert state["lexicon"].equals(ctx.lexicon.frame)
    assert not state["inflect"]  # the driver's inflect answers came with the task
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


def test_no_pool_for_a_local_run(tmp_path: Any) -> None:
    cfg = GenerateConfig(out=str(tmp_path / "out"), engine="local")
    assert runners.start_pool(cfg) is None


def test_a_shipped_catalogue_is_used_only_for_a_kg_of_its_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kg = KnowledgeGraph.load("codex-s")
    other = graph_from_ids(np.array([0, 1]), np.array([0, 0]), np.array([1, 2]), 3, 1)
    worker._WORKER_CONTEXT.clear()
    shipped = worker.shipped_context(kg)
    names = worker.worker_context(kg).catalog.names
    try:
        worker._WORKER_CONTEXT.clear()
        mine = worker.worker_context(other, shipped=shipped).catalog.names
        assert mine == ApiCatalog.from_graph(other).names != names
        worker._WORKER_CONTEXT.clear()
        monkeypatch.setattr(ApiCatalog, "from_graph", classmethod(_refuse))
        assert worker.worker_context(kg, shipped=shipped).catalog.names == names
    finally:
        worker._WORKER_CONTEXT.clear()


def test_a_context_that_fails_on_its_thread_fails_the_run(tmp_path: Any) -> None:
    from concurrent.futures import Future

    from kg2tool.errors import InputError

    kg = KnowledgeGraph.load("codex-s")
    failed: Future[Any] = Future()
    failed.set_exception(InputError("lexicon file: bad entry"))
    cfg = GenerateConfig(out=str(tmp_path / "out"), engine="local")
    runner = runners.make_runner(cfg, kg, None, failed)
    task = worker.ShardTask(0, 1, [])
    with pytest.raises(InputError, match="bad entry"):
        next(iter(runner.run(iter([task]))))


def test_background_context_is_the_one_built_in_place() -> None:
    kg = KnowledgeGraph.load("codex-s")
    worker._WORKER_CONTEXT.clear()
    try:
        ctx = worker.start_context(kg).result(timeout=120)
        assert worker.worker_context(kg) is ctx  # cached for the shards of this process
    finally:
        worker._WORKER_CONTEXT.clear()
