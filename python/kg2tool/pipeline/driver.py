"""``generate``: sharded, resumable, streaming dataset generation, in-process or on Ray.

The shard is the unit of work, of resume and of distribution:

1. The driver draws each pattern's grounded queries from one :class:`~kg2tool.engine.QueryStream`
   per pattern, shard after shard (the C++ sampler; de-duplicated across shards). A
   stream's output does not depend on how it is cut, so shard contents depend only on
   (config, seed, shard id).
2. A worker (:mod:`kg2tool.pipeline.worker`, run by one of :mod:`kg2tool.pipeline.runners`)
   turns a shard's groundings into verified samples (exact sets re-executed natively,
   questions, trajectories, the chosen format; samples it drops are replaced by queries it
   draws itself, see :func:`kg2tool.dataset.assemble.build_from_batches`) and writes its
   Parquet files atomically (temporary name, then rename), its JSONL records into the split
   files being assembled in shard order (:class:`~kg2tool.dataset.merge.SplitParts`), then a
   completion marker.
3. When every shard has its marker, the driver renames the split files into place and writes
   the manifest, the config and the dataset card.

A run killed at any moment and started again with the same config skips the shards whose
marker is there and redoes the rest, so the final files equal an uninterrupted run's.
Memory stays bounded: the driver holds only the streams' hashes of drawn queries and a
few shards of groundings at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import resource
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kg2tool import atomic
from kg2tool.dataset import card, outdir, paraphrase
from kg2tool.dataset.merge import (
    MARKERS,
    SplitParts,
    appends_records,
    can_merge_in_workers,
    marker_path,
)
from kg2tool.errors import InputError, Kg2ToolError
from kg2tool.patterns import pattern_counts
from kg2tool.pipeline.config import GenerateConfig, shard_counts
from kg2tool.pipeline.draws import (
    ShardDraws,
    add_counts,
    drops_likely,
    excluded_masks,
    namable_anchors,
    owned_stream_queries,
)
from kg2tool.pipeline.runners import driver_threads, make_runner, resolve_engine, start_pool
from kg2tool.pipeline.worker import ShardTask, start_context
from kg2tool.progress import ProgressBar


@dataclass
class GenerateReport:
    """What a run did: counts, files, rejection reasons, time and peak memory."""

    out: Path
    written: int = 0
    shards: int = 0
    shards_skipped: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    files: list[str] = field(default_factory=list)
    shortfall: int = 0  # samples no pattern could supply (every stream out of distinct queries)
    exhausted: list[str] = field(default_factory=list)
    paraphrase: dict[str, int] = field(default_factory=dict)  # counters when paraphrasing
    asked: int = 0  # num_samples of the run
    # patterns the format cannot express (decided up front; their share went to the others)
    not_expressible: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rej = ", ".join(
            f"{k} {v:,}" for k, v in sorted(self.rejected.items(), key=lambda x: -x[1]) if v
        )
        drop = ", ".join(f"{k} {v:,}" for k, v in self.dropped.items() if v)
        rate = self.written / self.seconds if self.seconds else 0.0
        return (
            f"wrote {self.written:,} samples in {self.shards} shard(s) "
            f"({self.shards_skipped} already done) to {self.out} in {self.seconds:.1f} s "
            f"({rate:,.0f} samples/s), peak RSS {self.peak_rss_mb:,.0f} MB\n"
            f"sampling rejections: {rej or 'none'}\n"
            f"dropped (other queries drawn in their place): {drop or 'none'}"
            + (
                f"\nout of distinct queries: {', '.join(self.exhausted)}"
                f"{f'; {self.shortfall:,} samples could not be drawn at all' if self.shortfall else ' (their share went to the other patterns)'}"
                if self.exhausted
                else ""
            )
            + (f"\n{paraphrase.summary_line(self.paraphrase)}" if self.paraphrase else "")
            + (
                f"\nnot expressible in this format, left out: {', '.join(self.not_expressible)} "
                "(their share went to the other patterns)"
                if self.not_expressible
                else ""
            )
            + (
                f"\nWARNING: wrote {self.written:,} of the {self.asked:,} samples asked "
                f"({self.asked - self.written:,} short; see the reasons above)"
                if 0 < self.written < self.asked
                else ""
            )
        )


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


@dataclass
class _Run:
    """What the phases of one run share: inputs, shard layout, progress and the report."""

    kg: Any
    specs: list[tuple[Any, float]]
    streams: list[Any]
    sample_opts: dict[str, Any]
    num_shards: int
    report: GenerateReport
    parts: SplitParts | None = None  # the split files, for JSONL runs
    done: dict[int, dict[str, Any]] = field(default_factory=dict)
    direct: bool = False  # workers append their records to the split files themselves
    worker_exhausted: set[str] = field(default_factory=set)

    def shard_done(self, info: dict[str, Any]) -> None:
        """Count a finished shard's drops and what its patterns were still short after
        redrawing (shortfall, exhausted)."""
        add_counts(self.report.dropped, info.get("dropped", {}))
        self.report.shortfall += sum(info.get("short", {}).values())
        self.worker_exhausted.update(info.get("exhausted", []))


class Generator:
    """Runs one ``generate`` job; see the module docstring for the flow."""

    def __init__(
        self,
        config: GenerateConfig,
        *,
        progress: bool | None = None,
        log: Callable[[str], None] | None = None,
        overwrite: bool = False,
    ) -> None:
        config.validate()
        self.config = config
        self.out = Path(config.out)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.log = log or (lambda msg: None)
        self.hash = config.content_hash()
        self.overwrite = (
            overwrite  # replace a previous run's own files (see kg2tool.dataset.outdir)
        )
        self._lock: outdir.OutputLock | None = None
        self._created = False  # whether this run made the output directory
        self._was_empty = False  # or found it empty
        self._pool: Any = None  # the run's process pool, started in _open_inputs

    # ----- layout -------------------------------------------------------------------
    def marker(self, shard: int) -> Path:
        return marker_path(self.out, shard)

    def _prepare_out(self) -> None:
        """Take the output directory: refuse one of the user's (or another run's, or of other
        settings), lock it, clear what --overwrite or an empty failed run left, write the state."""
        outdir.check_ownership(self.out)
        self._created = not self.out.exists()
        self._was_empty = self._created or (self.out.is_dir() and not any(self.out.iterdir()))
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            lock = outdir.OutputLock(self.out)
            self._lock = lock.acquire()
        except OSError as exc:
            raise InputError(
                f"cannot write to the output directory: {exc.strerror}", path=str(self.out)
            ) from None
        state = self.out / MARKERS / "config.json"
        if self.overwrite:
            outdir.remove_own_files(self.out)
        elif state.exists():
            try:
                old = json.loads(state.read_text())
            except (OSError, json.JSONDecodeError):
                old = {}
            if old.get("hash") != self.hash:
                if outdir.holds_samples(self.out):
                    finished = (self.out / "manifest.json").is_file()
                    shards = len(list((self.out / MARKERS).glob("shard-*.json")))
                    how = "a finished run" if finished else f"an unfinished run ({shards} shard(s))"
                    raise InputError(
                        f"holds a run with different settings ({how}); use the same settings "
                        "to resume, --overwrite to replace it, or a new --out",
                        path=str(self.out),
                    )
                outdir.remove_own_files(self.out)  # a run that wrote no sample: nothing to keep
        try:
            (self.out / "data").mkdir(exist_ok=True)
            (self.out / MARKERS).mkdir(exist_ok=True)
            probe = self.out / MARKERS / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise InputError(
                f"cannot write to the output directory: {exc.strerror}", path=str(self.out)
            ) from None
        if not state.exists():
            atomic.write_text(
                state,
                json.dumps(
                    {"hash": self.hash, "config": self.config.to_dict()}, indent=1, default=str
                ),
                fsync=True,
            )
        # leftovers of a killed run: temporary files of shards, markers, merged outputs, card
        for d in (self.out, self.out / "data", self.out / "records", self.out / MARKERS):
            for tmp in [*d.glob("*.tmp"), *d.glob("*.tmp.png")]:
                if tmp.is_file():
                    tmp.unlink(missing_ok=True)
        for tmp in (self.out / MARKERS).glob(".kg-snapshot.*"):  # an unfinished snapshot
            shutil.rmtree(tmp, ignore_errors=True)

    def done_shards(self, num_shards: int) -> dict[int, dict[str, Any]]:
        """Shards whose marker exists, names this run's hash and whose files are intact."""
        done: dict[int, dict[str, Any]] = {}
        for s in range(num_shards):
            m = self.marker(s)
            if not m.exists():
                continue
            try:
                info = json.loads(m.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if info.get("hash") != self.hash:
                continue
            if all(
                (self.out / f).exists() and (self.out / f).stat().st_size == size
                for f, size in info["files"].items()
            ):
                done[s] = info
        return done

    # ----- the run --------------------------------------------------------------------
    def run(self) -> GenerateReport:
        """Generate the dataset; the output directory is locked while the run lasts, and a run
        that fails before writing any sample leaves nothing that would block the next one."""
        try:
            return self._run()
        except BaseException:
            if self._lock is not None and not outdir.holds_samples(self.out):
                with contextlib.suppress(OSError):  # never hide the run's own error
                    self._discard()
            raise
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def _expressible_only(self, specs: list[tuple[Any, float]]) -> list[str]:
        """Names of the patterns the format cannot express at all (from their plans, before
        sampling: their share goes to the others, so the run still writes every sample asked);
        InputError when that is every pattern."""
        from kg2tool.samples.formats import xlam_expressible

        cfg = self.config
        if cfg.format != "xlam":
            return []
        mode = cfg.options.xlam_mode or "independent"
        bad = [s.name or s.formula for s, _ in specs if not xlam_expressible(s, mode)]
        if len(bad) == len(specs):
            raise InputError(
                f"the xlam format cannot express pattern(s) {', '.join(bad)}: its records are "
                "one set of parallel calls on the question's entities, and these patterns call "
                "on earlier results; use patterns such as 1p, 2i, 3i, 2in, 3in, 2u, or "
                'options = {xlam_mode = "first_hop"} for partial records'
            )
        if bad:
            self.log(
                f"the xlam format cannot express pattern(s) {', '.join(bad)}; they are left out "
                "and their share goes to the other patterns"
            )
        return bad

    def _discard(self) -> None:
        """Remove the state of a run that wrote no sample (and the directory if it made it)."""
        outdir.remove_own_files(self.out)
        if self._was_empty:
            (self.out / outdir.MARKER).unlink(missing_ok=True)
        if self._created:
            with contextlib.suppress(OSError):
                self.out.rmdir()

    def _run(self) -> GenerateReport:
        t0 = time.perf_counter()
        try:
            run = self._open_inputs()
            self._prepare_out()
            self._take_stock(run)
            # the card's plotting library loads while the shards are built, not after them
            threading.Thread(target=card.warm_up, name="kg2tool-card-warm-up", daemon=True).start()
            self._build_shards(run, self._pool)
        finally:
            if self._pool is not None:
                self._pool.close()
        self._check_written(run.report)
        merged = run.parts.finish() if run.parts is not None else None
        report = run.report
        report.files = self.finalize(run.kg, run.num_shards, report, merged=merged)
        report.seconds = time.perf_counter() - t0
        report.peak_rss_mb = _peak_rss_mb()
        return report

    def _open_inputs(self) -> _Run:
        """Patterns, KG and sampling streams; bad patterns or constraints (an unknown relation,
        ...) fail here, before the output directory is touched."""
        from kg2tool.engine import QueryStream
        from kg2tool.kg.bundled import bundled_names
        from kg2tool.kg.graph import KnowledgeGraph
        from kg2tool.patterns import parse_patterns

        cfg = self.config
        specs = parse_patterns(cfg.patterns)
        not_expressible = self._expressible_only(specs)
        specs = [s for s in specs if (s[0].name or s[0].formula) not in not_expressible]
        if Path(cfg.kg).exists() or cfg.kg in bundled_names():
            # a process pool's workers start now: their imports run while the KG is opened
            self._pool = start_pool(cfg)
        kg = KnowledgeGraph.load(cfg.kg, threads=cfg.threads)
        sample_opts = {
            **cfg.sampler_options(threads=driver_threads(cfg)),
            "sets": "answers",  # workers re-execute the groundings; the driver keeps none
        }
        streams = [QueryStream(kg, spec, seed=cfg.seed, **sample_opts) for spec, _ in specs]
        for stream in streams:
            kg.relation_ids([k for k in stream.plan.fixed_relations if k is not None])
            kg.entity_ids([k for k in stream.plan.fixed_entities if k is not None])
        num_shards = math.ceil(cfg.num_samples / cfg.shard_size)
        report = GenerateReport(
            out=self.out,
            shards=num_shards,
            asked=cfg.num_samples,
            not_expressible=not_expressible,
        )
        return _Run(kg, specs, streams, sample_opts, num_shards, report)

    def _take_stock(self, run: _Run) -> None:
        """The shards already done (markers, and records in the split files) and their counts;
        whether workers append to the split files themselves (on this machine, under the lock)
        or the driver merges what they leave (Ray: another machine's filesystem semantics)."""
        cfg = self.config
        if appends_records(cfg.format, cfg.jsonl):
            run.parts = SplitParts(self.out, self.hash, run.num_shards)
        run.done = self.done_shards(run.num_shards)
        if run.parts is not None:
            run.done = run.parts.restore(run.done)
        engine = resolve_engine(cfg)
        run.direct = run.parts is not None and (
            engine == "local" or (engine == "process" and can_merge_in_workers())
        )
        run.report.shards_skipped = len(run.done)
        for info in run.done.values():
            run.report.written += info["written"]
            add_counts(run.report.paraphrase, info.get("paraphrase", {}))
            run.shard_done(info)

    def _build_shards(self, run: _Run, pool: Any = None) -> None:
        """Draw every shard's groundings and have the runner build the shards not done yet."""
        cfg, kg, specs, report = self.config, run.kg, run.specs, run.report
        # the catalogue and lexicon are built on a thread while the first shards are drawn;
        # the tasks carry them to process-pool workers (see ShardTask.context)
        context = start_context(kg, cfg.overrides) if resolve_engine(cfg) != "ray" else None
        namable = namable_anchors(kg)
        runner = make_runner(cfg, kg, pool, context)
        excluded = excluded_masks(kg, cfg)
        per_pattern = pattern_counts([w for _, w in specs], cfg.num_samples)
        per_shard = [shard_counts(c, run.num_shards) for c in per_pattern]
        draw_args = (kg, cfg, specs, run.sample_opts, namable, excluded, per_shard, run.num_shards)
        # Samples a shard drops are replaced by queries it draws itself, each only among the
        # groundings it owns (a hash, so no two shards redraw the same one). When drops are
        # likely (entities without names, exclusions, cyclic patterns), a first pass over the
        # streams tells each shard the groundings it owns that the streams gave to shards, so
        # its redraws repeat none of them either; the samples written are then all distinct.
        draws = ShardDraws(*draw_args, report.rejected)
        draws.streams = run.streams  # the ones checked in _open_inputs
        shards: Iterable[tuple[int, dict[int, list[Any]], int]] = draws
        avoid = None
        if drops_likely(kg, cfg, specs, excluded):  # every shard drawn first, and kept
            # nothing else runs meanwhile: the draws take every CPU asked for (the queries
            # are the same at any thread count)
            for stream in draws.streams:
                stream.options = {**stream.options, "threads": cfg.threads}
            shards = list(draws)
            avoid = owned_stream_queries(shards, draws.names, run.num_shards)
        bar = ProgressBar(
            "generate",
            cfg.num_samples,
            enabled=self.progress,
            completed=report.written,
            unit="samples",
        )
        try:
            for result in runner.run(self._tasks(run, shards, avoid)):
                report.written += result["written"]
                run.shard_done(result)
                add_counts(report.paraphrase, result.get("paraphrase", {}))
                bar.advance(result["written"])
                if run.parts is not None and not run.direct:  # e.g. Ray: merge what they wrote
                    run.parts.drain()
        finally:
            bar.close()
            runner.close()
        report.exhausted = [
            spec.name or spec.formula
            for (spec, _), ex in zip(specs, draws.exhausted, strict=True)
            if ex or (spec.name or spec.formula) in run.worker_exhausted
        ]

    def _tasks(
        self,
        run: _Run,
        shards: Iterable[tuple[int, dict[int, list[Any]], int]],
        avoid: dict[int, dict[str, np.ndarray]] | None,
    ) -> Iterator[ShardTask]:
        """The tasks of the shards not done yet, in shard order (every shard is drawn, so the
        streams give each shard the same queries as in an uninterrupted run)."""
        for s, parts, deficit in shards:
            run.report.shortfall += deficit
            if s in run.done:
                continue
            groundings = []
            for p in sorted(parts):
                spec = run.specs[p][0]
                batches = parts[p]
                groundings.append(
                    {
                        "pattern": spec,
                        "name": spec.name or spec.formula,
                        "relation_ids": np.concatenate([b.relation_ids for b in batches]),
                        "anchor_ids": np.concatenate([b.anchor_ids for b in batches]),
                        "query_index": np.concatenate([b.query_index for b in batches]),
                    }
                )
            task = ShardTask(s, run.num_shards, groundings, direct_records=run.direct)
            if avoid is not None:
                task.avoid = avoid.pop(s, {})
            yield task

    def _check_written(self, report: GenerateReport) -> None:
        """Raise the reasons when the run could make no sample at all."""
        if report.written:
            return
        top = sorted(report.rejected.items(), key=lambda kv: -kv[1])[:5]
        rej = ", ".join(f"{k}: {v:,}" for k, v in top if v) or "none"
        drop = ", ".join(f"{k}: {v:,}" for k, v in report.dropped.items() if v) or "none"
        if any(k.startswith("xlam") for k in report.dropped):
            hint = f"The {self.config.format} format cannot express these samples."
        elif top and top[0][0] == "unnamable_anchor":
            hint = "Use a KG with entity names (questions cannot name these anchors)."
        else:
            hint = "Loosen the constraints (answer bounds, max_intermediate, patterns)."
        raise Kg2ToolError(
            f"no sample could be made; sampling rejections: {rej}; dropped: {drop}. {hint}"
        )

    def finalize(
        self,
        kg: Any,
        num_shards: int,
        report: GenerateReport,
        merged: tuple[dict[str, Path], dict[str, int]] | None = None,
    ) -> list[str]:
        """Manifest, config and dataset card, once every shard is complete. ``merged``: the
        split files assembled from every shard's records and their sizes (see
        :class:`~kg2tool.dataset.merge.SplitParts`), renamed into place here."""
        from kg2tool import dataset

        done = self.done_shards(num_shards)
        missing = sorted(set(range(num_shards)) - set(done))
        if missing:
            raise Kg2ToolError(
                f"shards {missing[:5]} did not complete; run the same command again to resume"
            )
        files = sorted(f for info in done.values() for f in info["files"])
        if merged is not None:  # the records are in the split files only
            files += sorted(f"{split}.jsonl" for split in merged[0])
        rl_files: list[str] = []
        if self.config.format == "verl":  # the RL rows and tool config, from the shards
            from kg2tool.dataset.verl import write_verl

            rl_files = write_verl(self.out, [self.out / f for f in files], kg, str(self.config.kg))
        manifest = {
            "format": self.config.format,
            "num_samples": report.written,
            "num_shards": num_shards,
            "files": files + rl_files,
            "config_hash": self.hash,
            "config": self.config.to_dict(),
            "sampling_rejections": report.rejected,
            "dropped": report.dropped,
        }
        if report.not_expressible:
            manifest["not_expressible"] = report.not_expressible
        if self.config.paraphrase.enabled:
            manifest["paraphrase"] = report.paraphrase
        atomic.write_text(
            self.out / "manifest.json", json.dumps(manifest, indent=1, default=str), fsync=True
        )
        atomic.write_text(self.out / "config.toml", self.config.to_toml(), fsync=True)
        sections = []
        if self.config.paraphrase.enabled:
            parquet = [self.out / f for f in files if f.endswith(".parquet")]
            model = str(self.config.paraphrase.model)
            sections.append(paraphrase.card_section(parquet, report.paraphrase, model))
        dataset.finalize_outputs(
            self.out,
            files,
            self.config.format,
            self.config.to_dict(),
            kg=kg,
            merged=merged,
            report={"dropped": report.dropped, "exhausted": report.exhausted},
            sections=sections,
        )
        return files + rl_files


def generate(
    config: GenerateConfig | None = None,
    /,
    *,
    progress: bool | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
    **settings: Any,
) -> GenerateReport:
    """Generate a dataset: ``generate(out="data", num_samples=10_000, format="openai")``.

    Takes a :class:`GenerateConfig` or its fields as keywords; returns a :class:`GenerateReport`.
    ``overwrite``: replace a previous run's files in ``out`` (only kg2tool's own, see
    :mod:`kg2tool.dataset.outdir`) instead of resuming it or refusing other settings.
    """
    cfg = config if config is not None else GenerateConfig(**settings)
    if config is not None and settings:
        cfg = dataclasses.replace(config, **settings)
    return Generator(cfg, progress=progress, overwrite=overwrite, log=log).run()
