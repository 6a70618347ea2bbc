"""Runners of a run's shards: in this process, on a local process pool, or as Ray tasks.

A runner takes the driver's stream of :class:`~kg2tool.pipeline.worker.ShardTask` and yields
each shard's marker info; what a shard does is :func:`kg2tool.pipeline.worker.build_and_write_shard`
wherever it runs, so a new runner touches no step and the output is the same on any of them.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sys
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from kg2tool.dataset.merge import MARKERS
from kg2tool.errors import InputError
from kg2tool.pipeline.config import GenerateConfig
from kg2tool.pipeline.worker import (
    ShardTask,
    build_and_write_shard,
    init_worker,
    shard_in_worker,
    shipped_context,
)

# ``engine="auto"`` uses the process pool from this many samples (and more than 2 shards, more
# than one CPU): below it, starting workers costs more than it saves.
AUTO_PROCESS_MIN_SAMPLES = 100_000
# jemalloc (Polars' allocator) settings of process-pool workers; see _ProcessRunner.
JEMALLOC_ENV = "_RJEM_MALLOC_CONF"
WORKER_JEMALLOC_CONF = "dirty_decay_ms:5000,muzzy_decay_ms:5000"
# Polars' thread pool size in process-pool workers (unless the user set it): the CPUs per
# worker. Workers already keep every CPU busy; a pool per worker as large as the machine
# only adds threads that contend for them on Polars' many small operations.
POLARS_THREADS_ENV = "POLARS_MAX_THREADS"


class _LocalRunner:
    """Shards one after another in this process (the C++ parts use the threads asked for)."""

    def __init__(self, cfg: GenerateConfig, kg: Any, context: Future[Any] | None = None) -> None:
        self.cfg, self.kg, self.context = cfg, kg, context

    def run(self, tasks: Iterator[ShardTask]) -> Iterator[dict[str, Any]]:
        for task in tasks:
            if self.context is not None:  # the driver's, being built on a thread
                self.context.result()
            yield build_and_write_shard(self.kg, self.cfg.to_dict(), task)

    def close(self) -> None:
        pass


def _kg_source_for_workers(cfg: GenerateConfig, kg: Any) -> str:
    """A path workers can open: the KG itself when it is a snapshot, else one written once."""
    from kg2tool.kg.snapshot import is_snapshot

    if Path(cfg.kg).is_dir() and is_snapshot(cfg.kg):
        return str(Path(cfg.kg).resolve())
    snap = Path(cfg.out) / MARKERS / "kg-snapshot"
    if not is_snapshot(snap):
        kg.save_snapshot(snap)
    return str(snap.resolve())


class _ProcessRunner:
    """Shards on a local process pool; each worker memory-maps the KG snapshot once.

    The pool can start before the KG is open (:func:`start_pool`), so that the workers'
    imports run while the driver opens the KG and builds its catalogue; :meth:`bind` then
    gives it the KG, and each task carries the driver's catalogue (``ShardTask.context``)."""

    def __init__(self, cfg: GenerateConfig, kg: Any = None, *, start_now: bool = False) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self.cfg = cfg
        self.workers = cfg.workers or os.cpu_count() or 1
        import multiprocessing as mp

        # Workers keep the memory Polars frees for a while (jemalloc's dirty, then
        # MADV_FREE'd pages) instead of returning it to the kernel and faulting it back in for
        # the next shard. Polars puts its own setting in the environment when imported (later
        # keys win); only processes started while the pool lives get ours (jemalloc reads it
        # at start), and the same holds for Polars' thread count.
        self._env_old = {k: os.environ.get(k) for k in (JEMALLOC_ENV, POLARS_THREADS_ENV)}
        os.environ[JEMALLOC_ENV] = ",".join(
            filter(None, (self._env_old[JEMALLOC_ENV], WORKER_JEMALLOC_CONF))
        )
        if self._env_old[POLARS_THREADS_ENV] is None:
            cpus = os.cpu_count() or 1
            os.environ[POLARS_THREADS_ENV] = str(max(1, cpus // self.workers))
        self.pool = ProcessPoolExecutor(
            self.workers,
            mp_context=mp.get_context("spawn"),
            initializer=init_worker,
            initargs=(os.getpid(),),
        )
        self.closed = False
        self.source: str | None = None
        self.kg: Any = None
        self.context: bytes | None = None
        self._building: Future[Any] | None = None
        if start_now:
            self._start_workers()
        if kg is not None:
            self.bind(kg)

    def bind(self, kg: Any, context: Future[Any] | None = None) -> _ProcessRunner:
        """The run's KG: the snapshot the workers open, and the driver's catalogue and inflect
        answers that every task carries (no worker builds the catalogue or imports inflect);
        ``context``: the driver's, still being built (:func:`~kg2tool.pipeline.worker.start_context`),
        shipped once it is ready, at the first task."""
        self.source = _kg_source_for_workers(self.cfg, kg)
        self.kg, self._building = kg, context
        return self

    def shipped(self) -> bytes:
        """The context every task carries (waiting for the driver's, when it is being built)."""
        if self.context is None:
            if self._building is not None:
                self._building.result()
            self.context = shipped_context(self.kg, self.cfg.overrides)
        return self.context

    def _start_workers(self) -> None:
        """Start every worker now, without re-running the caller's ``__main__`` in them.

        The workers only run :func:`shard_in_worker`, so they need not import the main
        script; not doing so lets ``engine="auto"`` pick the pool for a script that calls
        :func:`generate` without an ``if __name__ == "__main__":`` guard (spawn would re-run it).
        The pool starts one worker per submission until it has all of them (``start()`` runs
        in the submission, so the swap covers it). The driver does not wait for them: their
        imports run while it samples; a worker that cannot start fails the first shard."""
        import types

        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            for _ in range(self.workers):
                self.pool.submit(int, 0)
        finally:
            sys.modules["__main__"] = main

    def run(self, tasks: Iterator[ShardTask]) -> Iterator[dict[str, Any]]:
        if self.source is None:
            raise RuntimeError("_ProcessRunner.run before bind(kg)")
        pending = []
        for task in tasks:
            task.context = self.shipped()
            pending.append(self.pool.submit(shard_in_worker, self.source, self.cfg.to_dict(), task))
            while len(pending) >= 2 * self.workers:  # bounded: a few shards in flight
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.pool.shutdown(cancel_futures=True)
        for key, value in self._env_old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _RayRunner:
    """Shards as Ray tasks; workers open the KG snapshot (memory-mapped) and write to the shared output."""

    def __init__(self, cfg: GenerateConfig, kg: Any) -> None:
        try:
            import ray
        except ImportError:
            raise InputError(
                "--engine ray needs the ray extra: pip install 'kg2tool[ray]'"
            ) from None
        self.ray = ray
        self.cfg = cfg
        self.source = _kg_source_for_workers(cfg, kg)
        self.started = False
        if not ray.is_initialized():
            _check_ray_address(cfg.ray_address)
            try:
                ray.init(
                    address=cfg.ray_address,
                    include_dashboard=False,
                    log_to_driver=False,
                    ignore_reinit_error=True,
                    num_cpus=None if cfg.ray_address else (cfg.workers or None),
                )
            except (ConnectionError, ValueError) as exc:  # no cluster there, bad address
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InputError(f"cannot start or join Ray: {first}") from None
            self.started = True
        self.remote = ray.remote(shard_in_worker)
        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def run(self, tasks: Iterator[ShardTask]) -> Iterator[dict[str, Any]]:
        pending: list[Any] = []
        config = self.cfg.to_dict()
        try:
            for task in tasks:
                pending.append(self.remote.remote(self.source, config, task))
                while len(pending) >= 2 * self.slots:
                    yield self.ray.get(pending.pop(0))
            while pending:
                yield self.ray.get(pending.pop(0))
        finally:  # a failed or interrupted run: its shards must not write on after it
            for ref in pending:
                with contextlib.suppress(Exception):
                    self.ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def _check_ray_address(address: str | None) -> None:
    """Fail fast on a HOST:PORT (or ray://HOST:PORT) nobody listens on: ray.init would
    retry the connection for minutes."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise InputError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}"
        ) from None


def resolve_engine(cfg: GenerateConfig) -> str:
    """The engine a run uses: ``cfg.engine``, with ``"auto"`` made ``"process"`` or ``"local"``."""
    if cfg.engine != "auto":
        return cfg.engine
    cpus = os.cpu_count() or 1
    num_shards = math.ceil(cfg.num_samples / cfg.shard_size)
    workers = cfg.workers or cpus
    if cpus > 1 and workers > 1 and num_shards > 2 and cfg.num_samples >= AUTO_PROCESS_MIN_SAMPLES:
        return "process"
    return "local"


def driver_threads(cfg: GenerateConfig) -> int:
    """Native threads of the driver's sampling: ``cfg.threads``, but 1 (instead of every CPU)
    when a local process pool is running, since its workers keep every CPU busy: more sampling
    threads then cost CPU time for no gain in wall time. The queries are the same at any
    thread count."""
    if cfg.threads == 0 and resolve_engine(cfg) == "process":
        return 1
    return cfg.threads


def start_pool(cfg: GenerateConfig) -> _ProcessRunner | None:
    """The run's process pool, started now (before the KG is open) when the run will use one;
    None otherwise. Give it to :func:`make_runner`; close it if the run fails before."""
    if resolve_engine(cfg) != "process":
        return None
    return _ProcessRunner(cfg, start_now=cfg.engine == "auto")


def make_runner(
    cfg: GenerateConfig,
    kg: Any,
    pool: _ProcessRunner | None = None,
    context: Future[Any] | None = None,
) -> Any:
    """The runner of a run's shards (``pool``: the one :func:`start_pool` started; ``context``:
    the driver's sample context being built, :func:`~kg2tool.pipeline.worker.start_context`)."""
    engine = resolve_engine(cfg)
    if engine == "ray":
        return _RayRunner(cfg, kg)
    if engine == "process":
        return (pool or _ProcessRunner(cfg, start_now=cfg.engine == "auto")).bind(kg, context)
    return _LocalRunner(cfg, kg, context)
