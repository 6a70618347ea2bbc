"""The worker side of a run: one shard from groundings to files (in the driver, a process-pool
worker or a Ray task), with what each worker process keeps between shards."""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kg2tool.dataset import paraphrase
from kg2tool.dataset.merge import SplitParts, appends_records, write_marker
from kg2tool.pipeline.config import GenerateConfig
from kg2tool.tools import lexicon


@dataclass
class ShardTask:
    """What a worker needs for one shard: its id and each pattern's groundings."""

    shard_id: int
    num_shards: int
    groundings: list[
        dict[str, Any]
    ]  # per pattern: name, plan spec text, relation_ids, anchor_ids, query_index
    # JSONL runs on this machine: the worker writes its records straight into the split files
    # when the shard is next in line (see kg2tool.dataset.merge.SplitParts); else into records/ files to merge.
    direct_records: bool = False
    # per pattern name: hashes of stream queries (of other shards) this shard must not redraw
    avoid: dict[str, np.ndarray] | None = None
    # the driver's catalogue and inflect answers (:func:`shipped_context`), for a worker
    # process that has not built its context yet
    context: bytes | None = None


_WORKER_KG: dict[str, Any] = {}


def _worker_kg(source: str) -> Any:
    """Each worker opens the KG once (a snapshot is memory-mapped) and keeps it."""
    from kg2tool.kg.graph import KnowledgeGraph

    if source not in _WORKER_KG:
        _WORKER_KG.clear()
        _WORKER_KG[source] = KnowledgeGraph.load(source)
    return _WORKER_KG[source]


def build_and_write_shard(kg: Any, config: dict[str, Any], task: ShardTask) -> dict[str, Any]:
    """Build one shard's verified samples and write its files, then its marker (atomically)."""
    from kg2tool import dataset
    from kg2tool.engine import execute_queries

    cfg = GenerateConfig(**config)
    out = Path(cfg.out)
    batches = [
        execute_queries(
            kg,
            g["pattern"],
            g["relation_ids"],
            g["anchor_ids"],
            threads=1,
            query_index=g["query_index"],
        )
        for g in task.groundings
    ]
    para = paraphrase.paraphraser_of_run(cfg.paraphrase, cfg.out, cfg.seed)  # None while off
    # JSONL runs hand the records (per split) to SplitParts instead of writing shard files;
    # openai lines are then written from the messages and tools columns (no record column)
    records: dict[str, Any] | None = {} if appends_records(cfg.format, cfg.jsonl) else None
    try:
        frame, report = dataset.build_from_batches(
            kg,
            [(g["name"], b) for g, b in zip(task.groundings, batches, strict=True)],
            seed=cfg.seed,
            format=cfg.format,
            context=worker_context(kg, cfg.overrides, shipped=task.context),
            paraphraser=para,
            redraw={  # dropped samples are replaced by queries the shard draws itself
                "shard": task.shard_id,
                "num_shards": task.num_shards,
                "avoid": task.avoid or {},
                "sample": cfg.sampler_options(threads=1),
            },
            **cfg.builder_options(),
            **({"with_record": False} if records is not None else {}),
        )
    finally:
        if para is not None:
            para.close()
    dropped = dict(report["dropped"])
    for name in report["skipped_patterns"]:
        dropped[f"skipped:{name}"] = dropped.get(f"skipped:{name}", 0) + 1
    files = (  # a shard left without queries (every pattern exhausted) has no files
        dataset.write_shard(
            frame,
            out,
            task.shard_id,
            task.num_shards,
            cfg.format,
            jsonl=cfg.jsonl,
            records=records,
        )
        if frame.height
        else []
    )
    info = {
        "hash": cfg.content_hash(),
        "shard": task.shard_id,
        "written": frame.height,
        "dropped": dropped,
        "files": {str(Path(f).relative_to(out)): Path(f).stat().st_size for f in files},
    }
    if "paraphrase" in report:
        info["paraphrase"] = report["paraphrase"]
    if report.get("short"):  # patterns still short after redrawing (only then in the marker)
        info["short"] = report["short"]
        info["exhausted"] = report.get("exhausted", [])
    del frame
    if records is not None:
        parts = SplitParts(out, info["hash"], task.num_shards)
        parts.write_shard(task.shard_id, records, info, direct=task.direct_records)
    else:
        write_marker(out, task.shard_id, info)
    return info


_WORKER_CONTEXT: dict[tuple[int, str | None], Any] = {}


def _kg_shape(kg: Any) -> tuple[int, int, int]:
    return (int(kg.num_entities), int(kg.num_relations), int(kg.triples.height))


def worker_context(kg: Any, overrides: str | None = None, shipped: bytes | None = None) -> Any:
    """Catalogue, runtime and lexicon of a KG (and a user lexicon), built once per process;
    from the driver's catalogue, lexicon and inflect answers when it ``shipped`` them
    (:func:`shipped_context`) for a KG of this shape (building the catalogue is most of a
    context's cost)."""
    from kg2tool import dataset

    key = (id(kg), overrides)
    if key not in _WORKER_CONTEXT:
        _WORKER_CONTEXT.clear()
        built: dict[str, Any] = {}
        if shipped is not None:
            import pickle
            import zlib

            shape, their_overrides, cat, lex, inflections = pickle.loads(zlib.decompress(shipped))
            lexicon.seed_inflections(inflections)
            if shape == _kg_shape(kg) and their_overrides == overrides:
                built = {"catalog": cat, "lexicon": lex}
        _WORKER_CONTEXT[key] = dataset.SampleContext(kg, overrides=overrides, **built)
    return _WORKER_CONTEXT[key]


def start_context(kg: Any, overrides: str | None = None) -> Future[Any]:
    """:func:`worker_context` built on a thread of this process, so that the driver draws the
    first shards (native code, without the GIL) while the catalogue is built; its errors
    come out of ``.result()``. Nothing else may build this context meanwhile."""
    got: Future[Any] = Future()

    def build() -> None:
        try:
            got.set_result(worker_context(kg, overrides))
        except BaseException as exc:  # handed to whoever waits for the context
            got.set_exception(exc)

    threading.Thread(target=build, name="kg2tool-context", daemon=True).start()
    return got


def shipped_context(kg: Any, overrides: str | None = None) -> bytes:
    """This process's catalogue and question lexicon of ``kg`` and its inflect answers,
    pickled and compressed, for the tasks sent to other processes (:func:`worker_context`):
    they then build neither again, nor import inflect or load lemminflect's tables."""
    import pickle
    import zlib

    ctx = worker_context(kg, overrides)
    payload = (_kg_shape(kg), overrides, ctx.catalog, ctx.lexicon, lexicon.inflections())
    return zlib.compress(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL), 1)


def shard_in_worker(source: str, config: dict[str, Any], task: ShardTask) -> dict[str, Any]:
    return build_and_write_shard(_worker_kg(source), config, task)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def init_worker(parent: int, inflections: dict[tuple[str, str], Any] | None = None) -> None:
    """Process-pool worker initializer: die with the driver; take inflect answers if given
    (the driver's come with each task, :attr:`ShardTask.context`)."""
    _die_with_parent(parent)
    if inflections:
        lexicon.seed_inflections(inflections)


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this process when the driver ``parent`` dies, however it dies
    (a SIGKILL runs no shutdown code; a worker left waiting for tasks would live forever).
    Linux: the kernel sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``); elsewhere a
    daemon thread watches the parent id."""
    import signal

    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the driver died before the signal was armed
                os._exit(1)
            return
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="kg2tool-parent-watch", daemon=True).start()
