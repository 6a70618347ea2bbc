"""``generate``: sharded, resumable, streaming dataset generation, in-process or on Ray.

The shard is the unit of work, of resume and of distribution:

1. The driver draws each pattern's grounded queries from one :class:`~kg2tool.engine.QueryStream`
   per pattern, shard after shard (the C++ sampler; de-duplicated across shards). A
   stream's output does not depend on how it is cut, so shard contents depend only on
   (config, seed, shard id).
2. A worker turns a shard's groundings into verified samples (exact sets re-executed
   natively, questions, trajectories, the chosen format; samples it drops are replaced by
   queries it draws itself, see :func:`kg2tool.dataset.assemble.build_from_batches`) and writes its Parquet files
   atomically (temporary name, then rename), its JSONL records into the split files being
   assembled in shard order (:class:`_SplitParts`), then a completion marker.
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
import hashlib
import json
import math
import os
import resource
import shutil
import socket
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kg2tool import atomic
from kg2tool.dataset import outdir, paraphrase
from kg2tool.errors import InputError, Kg2ToolError
from kg2tool.patterns import pattern_counts
from kg2tool.progress import ProgressBar
from kg2tool.tools import lexicon

try:  # the split-file lock (_SplitParts); without it only the driver merges records
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

FORMATS = ("openai", "toolbench", "sharegpt", "xlam", "verl")
ENGINES = ("auto", "local", "process", "ray")
# ``engine="auto"`` uses the process pool from this many samples (and more than 2 shards, more
# than one CPU): below it, starting workers costs more than it saves.
AUTO_PROCESS_MIN_SAMPLES = 100_000
# jemalloc (Polars' allocator) settings of process-pool workers; see _ProcessRunner.
JEMALLOC_ENV = "_RJEM_MALLOC_CONF"
WORKER_JEMALLOC_CONF = "dirty_decay_ms:5000,muzzy_decay_ms:5000"
DEFAULT_PATTERNS = "1p,2p,3p,2i,3i,ip,pi,2in,3in,inp,pin,pni,2u,up"
MARKERS = ".progress"


@dataclass
class GenerateConfig:
    """Everything a run depends on; written next to the data and hashed for resume.

    ``engine``: ``"auto"`` (the default) runs shards on a local process pool of ``workers``
    (0: all CPUs) when the run is large (at least ``AUTO_PROCESS_MIN_SAMPLES`` samples and more
    than 2 shards) and the machine has more than one CPU, else in this process (``"local"``).
    The sample building is mostly single-threaded Python/Polars work, so on 2 cores two worker
    processes give up to ~1.8x the throughput of one (measured on an idle-ish machine: 200k
    openai samples on codex-s, 6.4k -> 11.3k samples/s; less when other work shares the
    cores) for the price of a few seconds of start-up and, per worker, one KG mapping and
    ~0.8-1 GB peak RSS (20k-sample shards). The output is byte-identical whatever the engine.
    ``"process"`` always uses the pool, ``"ray"`` a Ray cluster.
    """

    out: str = ""
    kg: str = "codex-s"
    patterns: str = DEFAULT_PATTERNS
    num_samples: int = 1000
    seed: int = 0
    format: str = "openai"
    shard_size: int = 20_000
    threads: int = 0
    engine: str = "auto"
    ray_address: str | None = None
    workers: int = 0
    min_answers: int = 1
    max_answers: int = 20
    max_intermediate: int = 20
    relation_choice: str = "uniform"
    jsonl: bool = True
    options: dict[str, Any] = field(default_factory=dict)  # passed to the sample builder
    # "thought": set operations explained in the thoughts; "tools": calls of the set-operation
    # APIs (get_intersection_of, ...). Left out of to_dict (dumps, resume hash) at the default.
    set_ops: str = "thought"
    # "single": one relation call per entity; "batched": one list-API call per projection op
    # (kg2tool.samples.calls). Left out of to_dict (dumps, resume hash) at the default.
    call_style: str = "single"
    # Show entities without a name (opaque keys such as Q42) in samples; off by default, when
    # such samples are dropped (raw_key_entity). Left out of to_dict at the default.
    allow_raw_keys: bool = False
    # Comma-separated shell-style patterns of relation / entity keys or labels to leave out
    # (kg2tool.dataset.assemble.build_from_batches). Left out of to_dict while empty.
    exclude_relations: str = ""
    exclude_entities: str = ""
    # A relation lexicon / overrides file (docs/LEXICONS.md) winning over the shipped ones.
    # Left out of to_dict while unset.
    overrides: str | None = None
    # Paraphrasing through an OpenAI-compatible endpoint (kg2tool.dataset.paraphrase); off unless
    # paraphrase_url is set. Left out of to_dict (dumps, resume hash) while off.
    paraphrase_url: str | None = None
    paraphrase_model: str | None = None
    # Defaults are ParaphraseConfig's (one place); the key is never stored, only its
    # variable's name.
    paraphrase_ratio: float = paraphrase.ParaphraseConfig.ratio
    paraphrase_key_env: str = paraphrase.ParaphraseConfig.key_env
    paraphrase_temperature: float = paraphrase.ParaphraseConfig.temperature
    paraphrase_batch: int = paraphrase.ParaphraseConfig.batch_size
    paraphrase_concurrency: int = paraphrase.ParaphraseConfig.max_concurrency
    paraphrase_timeout: float = paraphrase.ParaphraseConfig.timeout
    paraphrase_retries: int = paraphrase.ParaphraseConfig.retries
    paraphrase_lenient: bool = paraphrase.ParaphraseConfig.lenient
    paraphrase_cache: str | None = None  # default: OUT/.paraphrase-cache

    # Settings that change no byte of the output; left out of the resume hash.
    _RUNTIME_ONLY = ("out", "threads", "engine", "ray_address", "workers")

    def check_types(self) -> None:
        """Raise InputError when a setting has the wrong type (a config file can do that)."""
        for name, value in self.to_dict().items():  # e.g. num_samples = "ten" in a config
            want = _FIELD_TYPES.get(name)
            if want and (not isinstance(value, want) or (want is int and type(value) is bool)):
                raise InputError(f"{name} must be {want.__name__}, got {value!r}")
        if not isinstance(self.patterns, str) or not isinstance(self.kg, str | os.PathLike):
            raise InputError('patterns and kg must be strings (e.g. patterns = "1p,2p:2")')

    def validate(self) -> None:
        """Raise InputError naming the first bad setting."""
        self.check_types()
        if not self.out:
            raise InputError("no output directory given (--out)")
        if self.num_samples <= 0:
            raise InputError(f"num_samples must be positive, got {self.num_samples}")
        if self.shard_size <= 0:
            raise InputError(f"shard_size must be positive, got {self.shard_size}")
        if self.format not in FORMATS:
            raise InputError(f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.engine not in ENGINES:
            raise InputError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        if self.threads < 0 or self.workers < 0:
            raise InputError("threads and workers must be >= 0")
        if self.min_answers < 0 or self.max_answers < max(1, self.min_answers):
            raise InputError(
                f"impossible answer bounds: min_answers={self.min_answers}, max_answers={self.max_answers}"
            )
        if self.max_intermediate < 1:
            raise InputError("max_intermediate must be >= 1")
        if self.relation_choice not in ("uniform", "degree"):
            raise InputError("relation_choice must be 'uniform' or 'degree'")
        if self.set_ops not in ("thought", "tools"):
            raise InputError(f"set_ops must be 'thought' or 'tools', got {self.set_ops!r}")
        if self.call_style not in ("single", "batched"):
            raise InputError(f"call_style must be 'single' or 'batched', got {self.call_style!r}")
        paraphrase.check_generate_config(self)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if not paraphrase.enabled(self):  # same dumps and resume hash as without the feature
            for k in paraphrase.FIELDS:
                d.pop(k)
        if d.get("set_ops") == "thought":  # likewise for the default set_ops
            d.pop("set_ops")
        if d.get("call_style") == "single":  # and the default call_style
            d.pop("call_style")
        for name in ("allow_raw_keys", "exclude_relations", "exclude_entities", "overrides"):
            if not d.get(name):
                d.pop(name, None)
        return d

    def content_hash(self) -> str:
        """Hash of the settings that decide the output bytes (resume refuses a different one)."""
        skip = (*self._RUNTIME_ONLY, *paraphrase.RUNTIME_ONLY)
        d = {k: v for k, v in self.to_dict().items() if k not in skip}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> GenerateConfig:
        """Read a TOML config (keys as the fields, or under [generate]); overrides win."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("config file not found", path=str(p)) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"invalid TOML: {exc}", path=str(p)) from None
        except OSError as exc:
            raise InputError(f"cannot read the config file: {exc.strerror}", path=str(p)) from None
        data = data.get("generate", data)
        if not isinstance(data, dict):
            raise InputError("[generate] must be a table of settings", path=str(p))
        data = {k.replace("-", "_"): v for k, v in data.items()}  # flag spelling works too
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"unknown setting(s) {', '.join(unknown)}", path=str(p))
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            cfg = cls(**data)
            cfg.check_types()
        except TypeError as exc:
            raise InputError(str(exc), path=str(p)) from None
        except InputError as exc:
            raise InputError(str(exc), path=str(p)) from None
        return cfg


# Settings whose type a config file can get wrong (the others are checked by value).
_FIELD_TYPES: dict[str, type] = {
    "num_samples": int,
    "seed": int,
    "shard_size": int,
    "threads": int,
    "workers": int,
    "min_answers": int,
    "max_answers": int,
    "max_intermediate": int,
    "jsonl": bool,
    "options": dict,
    "set_ops": str,
    "call_style": str,
    "allow_raw_keys": bool,
    "exclude_relations": str,
    "exclude_entities": str,
    "overrides": str,
}


@dataclass
class ShardTask:
    """What a worker needs for one shard: its id and each pattern's groundings."""

    shard_id: int
    num_shards: int
    groundings: list[
        dict[str, Any]
    ]  # per pattern: name, plan spec text, relation_ids, anchor_ids, query_index
    # JSONL runs on this machine: the worker writes its records straight into the split files
    # when the shard is next in line (see _SplitParts); else into records/ files to merge.
    direct_records: bool = False
    # per pattern name: hashes of stream queries (of other shards) this shard must not redraw
    avoid: dict[str, np.ndarray] | None = None


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


def shard_counts(count: int, num_shards: int) -> list[int]:
    """Split ``count`` evenly over shards, the first ones taking the remainder."""
    base, extra = divmod(count, num_shards)
    return [base + (1 if s < extra else 0) for s in range(num_shards)]


def _atomic_write_text(path: Path, text: str) -> None:
    atomic.write_text(path, text, fsync=True)


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


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

    # ----- layout -------------------------------------------------------------------
    def marker(self, shard: int) -> Path:
        return self.out / MARKERS / f"shard-{shard:05d}.json"

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
            _atomic_write_text(
                state,
                json.dumps(
                    {"hash": self.hash, "config": self.config.to_dict()}, indent=1, default=str
                ),
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
        mode = str(cfg.options.get("xlam_mode", "independent"))
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
        from kg2tool.engine import QueryStream
        from kg2tool.kg.graph import KnowledgeGraph
        from kg2tool.patterns import parse_patterns

        t0 = time.perf_counter()
        cfg = self.config
        specs = parse_patterns(cfg.patterns)
        not_expressible = self._expressible_only(specs)
        specs = [s for s in specs if (s[0].name or s[0].formula) not in not_expressible]
        kg = KnowledgeGraph.load(cfg.kg, threads=cfg.threads)
        sample_opts = {
            "min_answers": cfg.min_answers,
            "max_answers": cfg.max_answers,
            "max_intermediate": cfg.max_intermediate,
            "relation_choice": cfg.relation_choice,
            "threads": _driver_threads(cfg),
            "sets": "answers",  # workers re-execute the groundings; the driver keeps none
        }
        # bad patterns or constraints (unknown relation, ...) fail here, before any state
        streams = [QueryStream(kg, spec, seed=cfg.seed, **sample_opts) for spec, _ in specs]
        for stream in streams:
            kg.relation_ids([k for k in stream.plan.fixed_relations if k is not None])
            kg.entity_ids([k for k in stream.plan.fixed_entities if k is not None])
        self._prepare_out()
        num_shards = math.ceil(cfg.num_samples / cfg.shard_size)
        per_pattern = pattern_counts([w for _, w in specs], cfg.num_samples)
        per_shard = [shard_counts(c, num_shards) for c in per_pattern]
        parts = _SplitParts(self.out, self.hash, num_shards) if appends_records(cfg) else None
        done = self.done_shards(num_shards)
        if parts is not None:
            done = parts.restore(done)
        # workers write the split files themselves on this machine (under the lock), else
        # (Ray: another machine's filesystem semantics) the driver merges what they leave
        engine = resolve_engine(cfg)
        direct = parts is not None and (
            engine == "local" or (engine == "process" and fcntl is not None)
        )
        report = GenerateReport(
            out=self.out,
            shards=num_shards,
            shards_skipped=len(done),
            asked=cfg.num_samples,
            not_expressible=not_expressible,
        )
        worker_exhausted: set[str] = set()

        def shard_short(info: dict[str, Any]) -> None:
            """A shard's patterns still short after redrawing: shortfall, exhausted."""
            report.shortfall += sum(info.get("short", {}).values())
            worker_exhausted.update(info.get("exhausted", []))

        for info in done.values():
            report.written += info["written"]
            _merge(report.paraphrase, info.get("paraphrase", {}))
            _merge(report.dropped, info.get("dropped", {}))
            shard_short(info)
        # the driver's catalogue first: its inflect answers go to the workers (lexicon memo)
        namable = _namable_anchors(kg, cfg.overrides)
        runner = _make_runner(cfg, kg)
        excluded = _excluded(kg, cfg)
        # Samples a shard drops are replaced by queries it draws itself, each only among the
        # groundings it owns (a hash, so no two shards redraw the same one). When drops are
        # likely (entities without names, exclusions, cyclic patterns), a first pass over the
        # streams tells each shard the groundings it owns that the streams gave to shards, so
        # its redraws repeat none of them either; the samples written are then all distinct.
        avoid = None
        if _drops_likely(kg, cfg, specs, excluded):
            avoid = _owned_stream_queries(
                _ShardDraws(
                    kg, cfg, specs, sample_opts, namable, excluded, per_shard, num_shards, {}
                ),
                num_shards,
            )
        draws = _ShardDraws(
            kg, cfg, specs, sample_opts, namable, excluded, per_shard, num_shards, report.rejected
        )
        draws.streams = streams  # the ones checked above

        def tasks() -> Iterator[ShardTask]:
            for s, parts, deficit in draws:
                report.shortfall += deficit
                if s in done:
                    continue
                groundings = []
                for p in sorted(parts):
                    spec = specs[p][0]
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
                task = ShardTask(s, num_shards, groundings, direct_records=direct)
                if avoid is not None:
                    task.avoid = avoid.pop(s, {})
                yield task

        bar = ProgressBar(
            "generate",
            cfg.num_samples,
            enabled=self.progress,
            completed=report.written,
            unit="samples",
        )
        try:
            for result in runner.run(tasks()):
                report.written += result["written"]
                _merge(report.dropped, result.get("dropped", {}))
                shard_short(result)
                _merge(report.paraphrase, result.get("paraphrase", {}))
                bar.advance(result["written"])
                if parts is not None and not direct:  # e.g. Ray: merge what the workers wrote
                    parts.drain()
        finally:
            bar.close()
            runner.close()
        report.exhausted = [
            spec.name or spec.formula
            for (spec, _), ex in zip(specs, draws.exhausted, strict=True)
            if ex or (spec.name or spec.formula) in worker_exhausted
        ]
        if report.written == 0:  # e.g. impossible answer bounds, or a KG without names
            top = sorted(report.rejected.items(), key=lambda kv: -kv[1])[:5]
            rej = ", ".join(f"{k}: {v:,}" for k, v in top if v) or "none"
            drop = ", ".join(f"{k}: {v:,}" for k, v in report.dropped.items() if v) or "none"
            if any(k.startswith("xlam") for k in report.dropped):
                hint = f"The {cfg.format} format cannot express these samples."
            elif top and top[0][0] == "unnamable_anchor":
                hint = "Use a KG with entity names (questions cannot name these anchors)."
            else:
                hint = "Loosen the constraints (answer bounds, max_intermediate, patterns)."
            raise Kg2ToolError(
                f"no sample could be made; sampling rejections: {rej}; dropped: {drop}. {hint}"
            )
        merged = parts.finish() if parts is not None else None
        report.files = self.finalize(kg, num_shards, report, merged=merged)
        report.seconds = time.perf_counter() - t0
        report.peak_rss_mb = _peak_rss_mb()
        return report

    def finalize(
        self,
        kg: Any,
        num_shards: int,
        report: GenerateReport,
        merged: tuple[dict[str, Path], dict[str, int]] | None = None,
    ) -> list[str]:
        """Manifest, config and dataset card, once every shard is complete. ``merged``: the
        split files assembled from every shard's records and their sizes (see
        :class:`_SplitParts`), renamed into place here."""
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
        if paraphrase.enabled(self.config):
            manifest["paraphrase"] = report.paraphrase
        _atomic_write_text(self.out / "manifest.json", json.dumps(manifest, indent=1, default=str))
        _atomic_write_text(self.out / "config.toml", _to_toml(self.config))
        sections = []
        if paraphrase.enabled(self.config):
            parquet = [self.out / f for f in files if f.endswith(".parquet")]
            model = str(self.config.paraphrase_model)
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


def appends_records(cfg: GenerateConfig) -> bool:
    """Whether shards' records go into the split files while the run goes on (JSONL formats);
    ToolBench (one JSON array per split) and runs without JSON(L) merge at the end."""
    return bool(cfg.jsonl) and cfg.format != "toolbench"


class _SplitParts:
    """The split files of a JSONL run, assembled in shard order while shards are built.

    ``.progress/{split}.jsonl.part`` holds the records of shards 0..k-1 back to back and
    ``.progress/merge.json`` the size of every part after each of them. A worker that finishes
    shard k when shards 0..k-1 are in (the usual case: shards are handed out in order) writes
    its records straight into the parts at their end; otherwise it leaves them in
    ``records/{split}-{k:05d}-of-{n:05d}.jsonl``, and whoever next holds the lock with
    shard k next in line (a worker, or the driver) appends that file and deletes it. Every step
    is under an exclusive ``flock`` on ``.progress/merge.lock``; the bytes are written before
    the state that counts them, and a shard's marker (with its records' size per split) only
    after that, so a restart cuts the parts back to the recorded sizes, takes back out of them
    (into ``records/``) the shards after the first one to redo, and carries on: the final files
    are the same bytes as an uninterrupted run's. The records of a 1M-sample openai run
    (~5 GB) are thus written once, instead of into per-shard files and then copied again.
    """

    def __init__(self, out: Path, run_hash: str, num_shards: int) -> None:
        self.out, self.hash, self.num_shards = out, run_hash, num_shards
        self.state_path = out / MARKERS / "merge.json"

    # ----- files ------------------------------------------------------------------------
    def part(self, split: str) -> Path:
        return self.out / MARKERS / f"{split}.jsonl.part"

    def shard_file(self, split: str, shard: int) -> Path:
        return self.out / "records" / f"{split}-{shard:05d}-of-{self.num_shards:05d}.jsonl"

    def marker(self, shard: int) -> Path:
        return self.out / MARKERS / f"shard-{shard:05d}.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive access to the parts and the state (a no-op where ``flock`` is missing:
        then only the driver merges, see ``direct`` in :meth:`Generator.run`)."""
        fd = os.open(self.out / MARKERS / "merge.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def load(self) -> list[dict[str, int]]:
        """Per merged shard, every part's size after it ([] when there is no valid state)."""
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return []
        if state.get("hash") != self.hash or state.get("num_shards") != self.num_shards:
            return []
        return [dict(x) for x in state.get("sizes", [])]

    def save(self, sizes: list[dict[str, int]]) -> None:
        state = {"hash": self.hash, "num_shards": self.num_shards, "sizes": sizes}
        _atomic_write_text(self.state_path, json.dumps(state))

    def _info(self, shard: int) -> dict[str, Any] | None:
        try:
            info = json.loads(self.marker(shard).read_text())
        except (OSError, ValueError):
            return None
        return info if info.get("hash") == self.hash else None

    def _files_intact(self, shard: int, records: dict[str, int]) -> bool:
        for split, size in records.items():
            f = self.shard_file(split, shard)
            if not f.is_file() or f.stat().st_size != size:
                return False
        return True

    # ----- a worker's shard -----------------------------------------------------------
    def write_shard(
        self, shard: int, records: dict[str, Any], info: dict[str, Any], *, direct: bool
    ) -> None:
        """Put a shard's records (per split, :class:`kg2tool.dataset.assemble.Lines`) in place, then
        write its marker (``info`` plus
        ``records``: bytes per split). ``direct``: into the parts when the shard is next in
        line (else, and always without ``direct``, into ``records/`` files to be merged)."""
        from kg2tool.dataset.output import write_lines_at

        if direct:
            with self.locked():
                sizes = self.load()
                if len(sizes) == shard:
                    new = dict(sizes[-1]) if sizes else {}
                    info["records"] = {}
                    for split, lines in sorted(records.items()):
                        at = new.get(split, 0)
                        new[split] = write_lines_at(self.part(split), at, lines)
                        info["records"][split] = new[split] - at
                    sizes.append(new)
                    self.save(sizes)
                    _atomic_write_text(self.marker(shard), json.dumps(info, indent=1))
                    self._drain(sizes)
                    return
        info["records"] = {}
        for split, lines in sorted(records.items()):
            path = self.shard_file(split, shard)
            info["records"][split] = write_lines_at(path, 0, lines, atomic=True)
        _atomic_write_text(self.marker(shard), json.dumps(info, indent=1))
        if direct:
            self.drain()

    # ----- merging ------------------------------------------------------------------------
    def drain(self) -> list[dict[str, int]]:
        """Append every shard next in line whose records wait in ``records/`` files."""
        with self.locked():
            return self._drain(self.load())

    def _drain(self, sizes: list[dict[str, int]]) -> list[dict[str, int]]:
        from kg2tool.dataset.output import append_file as _append_file

        while len(sizes) < self.num_shards:
            k = len(sizes)
            info = self._info(k)
            if info is None or "records" not in info or not self._files_intact(k, info["records"]):
                break
            new = dict(sizes[-1]) if sizes else {}
            for split in sorted(info["records"]):
                new[split] = _append_file(
                    self.shard_file(split, k), self.part(split), new.get(split, 0)
                )
            sizes.append(new)
            self.save(sizes)
            for split in info["records"]:
                self.shard_file(split, k).unlink(missing_ok=True)
        return sizes

    # ----- resume -------------------------------------------------------------------------
    def restore(self, done: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """At the start of a run: of the shards whose marker and Parquet files are intact
        (``done``), those whose records are in the parts or in intact ``records/`` files. The
        parts are cut back to the state, the state to the shards before the first one to redo
        (the records of done shards after it go back into ``records/`` files)."""
        with self.locked():
            sizes = self.load()
            last = sizes[-1] if sizes else {}
            for split in last:  # a finished run started again: take its split files back
                final = self.out / f"{split}.jsonl"
                if not self.part(split).exists() and final.exists():
                    os.replace(final, self.part(split))
            for split, size in last.items():
                part = self.part(split)
                if not part.exists() or part.stat().st_size < size:
                    sizes = []  # the parts do not hold what the state says: start over
                    break

            def complete(s: int, info: dict[str, Any]) -> bool:
                rec = info.get("records")
                if not isinstance(rec, dict):
                    return False
                if s < len(sizes):
                    prev = sizes[s - 1] if s else {}
                    return all(
                        sizes[s].get(k, 0) - prev.get(k, 0) == rec.get(k, 0)
                        for k in set(rec) | set(sizes[s])
                    )
                return self._files_intact(s, rec)

            done = {s: info for s, info in done.items() if complete(s, info)}
            first_missing = min(set(range(self.num_shards)) - set(done), default=self.num_shards)
            for k in range(first_missing + 1, len(sizes)):  # merged, but after a shard to redo
                if k in done:
                    for split, size in done[k]["records"].items():
                        src, at = self.part(split), sizes[k - 1].get(split, 0)
                        _copy_range(src, at, size, self.shard_file(split, k))
            sizes = sizes[: min(len(sizes), first_missing)]
            keep = sizes[-1] if sizes else {}
            for part in (self.out / MARKERS).glob("*.jsonl.part"):
                split = part.name[: -len(".jsonl.part")]
                if split in keep:
                    with open(part, "r+b") as fh:
                        fh.truncate(keep[split])
                else:
                    part.unlink()
            for s in range(len(sizes)):  # records files left by a kill after their merge
                for split in done[s]["records"]:
                    self.shard_file(split, s).unlink(missing_ok=True)
            self.save(sizes)
            self._drain(sizes)
        return done

    def finish(self) -> tuple[dict[str, Path], dict[str, int]]:
        """The complete parts and their sizes, once every shard is in."""
        sizes = self.drain()
        if len(sizes) != self.num_shards:
            missing = len(sizes)
            raise Kg2ToolError(
                f"the records of shard {missing} were not merged; run the same command again "
                "to resume"
            )
        last = sizes[-1] if sizes else {}
        return {split: self.part(split) for split in last}, last


def _copy_range(src: Path, at: int, size: int, dst: Path) -> None:
    """Bytes [at, at + size) of ``src`` into a new file ``dst`` (atomically)."""
    with atomic.atomic_file(dst) as tmp, open(src, "rb") as fh, open(tmp, "wb") as out:
        fh.seek(at)
        left = size
        while left:
            chunk = fh.read(min(left, 1 << 22))
            if not chunk:
                raise OSError(f"{src}: shorter than its recorded size")
            out.write(chunk)
            left -= len(chunk)


class _ShardDraws:
    """The driver's draws, shard after shard: iterating gives (shard, {pattern position:
    [_Drawn]}, samples no pattern could supply). Each pattern's queries come from one stream
    (de-duplicated across shards); a pattern out of distinct queries is marked exhausted and
    hands its share to the others. Rejection counts go to ``rejected``."""

    def __init__(
        self,
        kg: Any,
        cfg: GenerateConfig,
        specs: list[tuple[Any, float]],
        sample_opts: dict[str, Any],
        namable: np.ndarray | None,
        excluded: tuple[np.ndarray, np.ndarray] | None,
        per_shard: list[list[int]],
        num_shards: int,
        rejected: dict[str, int],
    ) -> None:
        from kg2tool.engine import QueryStream

        self.streams = [QueryStream(kg, spec, seed=cfg.seed, **sample_opts) for spec, _ in specs]
        self.names = [spec.name or spec.formula for spec, _ in specs]
        self.exhausted = [False] * len(specs)
        self.namable, self.excluded = namable, excluded
        self.per_shard, self.num_shards = per_shard, num_shards
        self.rejected = rejected

    def take(self, p: int, n: int, parts: dict[int, list[Any]]) -> int:
        """Draw n more usable queries of pattern p; a stream that runs short is marked
        exhausted. Queries with an anchor a question cannot name (a shared label or a raw
        id, see :func:`kg2tool.dataset.assemble.namable_entities`) are skipped and drawn again, so
        shards hold the samples asked for; which ones depends only on the streams."""
        namable, excluded, exhausted = self.namable, self.excluded, self.exhausted
        got = rounds = 0
        while got < n and not exhausted[p] and rounds < 8:  # few rounds unless most drop
            rounds += 1
            batch = self.streams[p].take(n - got, strict=False)
            _merge(self.rejected, batch.rejected)
            if len(batch) < n - got:
                exhausted[p] = True
            drawn = _Drawn(batch.relation_ids, batch.anchor_ids, batch.query_index)
            if namable is not None and len(batch):
                ok = namable[batch.anchor_ids].all(axis=1)
                if not ok.all():
                    bad = int((~ok).sum())
                    _merge(self.rejected, {"unnamable_anchor": bad})
                    drawn = _Drawn(
                        batch.relation_ids[ok], batch.anchor_ids[ok], batch.query_index[ok]
                    )
            if excluded is not None and len(drawn.query_index):
                bad_rel, bad_ent = excluded  # drawn again, like unnamable anchors
                ok = ~bad_rel[drawn.relation_ids].any(axis=1)
                ok &= ~bad_ent[drawn.anchor_ids].any(axis=1)
                if not ok.all():
                    _merge(self.rejected, {"excluded": int((~ok).sum())})
                    drawn = _Drawn(
                        drawn.relation_ids[ok], drawn.anchor_ids[ok], drawn.query_index[ok]
                    )
            if len(drawn.query_index):
                parts.setdefault(p, []).append(drawn)
            got += len(drawn.query_index)
        return got

    def __iter__(self) -> Iterator[tuple[int, dict[int, list[Any]], int]]:
        specs = range(len(self.streams))
        for s in range(self.num_shards):
            parts: dict[int, list[Any]] = {}
            deficit = 0
            for p in specs:
                n = self.per_shard[p][s]
                if n and not self.exhausted[p]:
                    deficit += n - self.take(p, n, parts)
                else:
                    deficit += n
            # A pattern out of distinct queries hands its share to the others, in order.
            while deficit > 0:
                live = [p for p in specs if not self.exhausted[p]]
                if not live:
                    break
                share = shard_counts(deficit, len(live))
                deficit = sum(
                    n - self.take(p, n, parts) for p, n in zip(live, share, strict=True) if n
                )
            yield s, parts, deficit


def _drops_likely(
    kg: Any,
    cfg: GenerateConfig,
    specs: list[tuple[Any, float]],
    excluded: tuple[np.ndarray, np.ndarray] | None,
) -> bool:
    """Whether shards will likely drop (and redraw) samples: entities without a name shown
    unless allowed, exclusions, cyclic (JOIN) patterns, or the xLAM format."""
    from kg2tool.dataset.exclusions import unlabelled_entities
    from kg2tool.engine import resolve_pattern
    from kg2tool.patterns import JOIN

    if excluded is not None or cfg.format == "xlam":
        return True
    if not cfg.allow_raw_keys and unlabelled_entities(kg).any():
        return True
    return any(JOIN in {int(x) for x in resolve_pattern(spec).op_kind} for spec, _ in specs)


def _owned_stream_queries(draws: _ShardDraws, num_shards: int) -> dict[int, dict[str, np.ndarray]]:
    """Per shard: per pattern name, the hashes of the stream queries (of any shard) whose
    grounding the shard owns (see :func:`kg2tool.dataset.assemble.grounding_hashes`); its redraws skip
    them."""
    from kg2tool.dataset.assemble import grounding_hashes

    owned: dict[int, dict[str, list[np.ndarray]]] = {}
    names = draws.names
    for _, parts, _ in draws:
        for p, batches in parts.items():
            for b in batches:
                h = grounding_hashes(b.relation_ids, b.anchor_ids)
                owner = (h % np.uint64(num_shards)).astype(np.int64)
                for o in np.unique(owner):
                    owned.setdefault(int(o), {}).setdefault(names[p], []).append(h[owner == o])
    return {
        o: {name: np.unique(np.concatenate(hs)) for name, hs in d.items()} for o, d in owned.items()
    }


@dataclass
class _Drawn:
    """Queries the driver drew for a shard (one pattern): groundings and stream indices."""

    relation_ids: np.ndarray
    anchor_ids: np.ndarray
    query_index: np.ndarray


def _namable_anchors(kg: Any, overrides: str | None = None) -> np.ndarray | None:
    """Per entity: whether a question can name it; None when every entity can, or none can (a KG
    without names: the samples are dropped and the run says why). From the driver's one
    :func:`_worker_context`, which local shards and the process pool's warm-up reuse."""
    ok = _worker_context(kg, overrides).namable
    return None if ok.all() or not ok.any() else ok


def _excluded(kg: Any, cfg: GenerateConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """(relation mask, entity mask) of what the run excludes (patterns and the lexicon's
    ``exclude = true``), so such draws are replaced; None when nothing is excluded."""
    from kg2tool.dataset.exclusions import exclusion_masks
    from kg2tool.tools.lexicon import select_shipped

    fields = select_shipped(kg.relations["key"])
    if cfg.overrides:  # the user's file wins, field by field
        from kg2tool.tools.lexicon import read_lexicon

        for key, f in read_lexicon(cfg.overrides).items():
            if isinstance(f, dict):
                fields[key] = {**fields.get(key, {}), **f}
    flagged = [k for k, f in fields.items() if f.get("exclude")]
    return exclusion_masks(
        kg,
        [p for p in cfg.exclude_relations.split(",") if p.strip()],
        [p for p in cfg.exclude_entities.split(",") if p.strip()],
        flagged,
    )


def _merge(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + int(v)


def _to_toml(cfg: GenerateConfig) -> str:
    import tomli_w

    d = {k: v for k, v in cfg.to_dict().items() if v is not None}
    return tomli_w.dumps({"generate": d})


# ----- shard work (runs in the driver, a worker process or a Ray task) ---------------

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
    para = paraphrase.from_generate_config(cfg)  # None unless paraphrasing is configured
    # JSONL runs hand the records (per split) to _SplitParts instead of writing shard files;
    # openai lines are then written from the messages and tools columns (no record column)
    records: dict[str, Any] | None = {} if appends_records(cfg) else None
    try:
        frame, report = dataset.build_from_batches(
            kg,
            [(g["name"], b) for g, b in zip(task.groundings, batches, strict=True)],
            seed=cfg.seed,
            format=cfg.format,
            context=_worker_context(kg, cfg.overrides),
            paraphraser=para,
            redraw={  # dropped samples are replaced by queries the shard draws itself
                "shard": task.shard_id,
                "num_shards": task.num_shards,
                "avoid": task.avoid or {},
                "sample": {
                    "min_answers": cfg.min_answers,
                    "max_answers": cfg.max_answers,
                    "max_intermediate": cfg.max_intermediate,
                    "relation_choice": cfg.relation_choice,
                    "threads": 1,
                },
            },
            **({"set_ops": cfg.set_ops} if cfg.set_ops != "thought" else {}),
            **({"call_style": cfg.call_style} if cfg.call_style != "single" else {}),
            **({"allow_raw_keys": True} if cfg.allow_raw_keys else {}),
            **{
                name: [p for p in getattr(cfg, name).split(",") if p.strip()]
                for name in ("exclude_relations", "exclude_entities")
                if getattr(cfg, name)
            },
            **({"with_record": False} if records is not None else {}),
            **cfg.options,
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
        parts = _SplitParts(out, info["hash"], task.num_shards)
        parts.write_shard(task.shard_id, records, info, direct=task.direct_records)
    else:
        marker = out / MARKERS / f"shard-{task.shard_id:05d}.json"
        _atomic_write_text(marker, json.dumps(info, indent=1))
    return info


_WORKER_CONTEXT: dict[tuple[int, str | None], Any] = {}


def _worker_context(kg: Any, overrides: str | None = None) -> Any:
    """Catalogue, runtime and lexicon of a KG (and a user lexicon), built once per process."""
    from kg2tool import dataset

    key = (id(kg), overrides)
    if key not in _WORKER_CONTEXT:
        _WORKER_CONTEXT.clear()
        _WORKER_CONTEXT[key] = dataset.Context(kg, overrides=overrides)
    return _WORKER_CONTEXT[key]


def _shard_in_worker(source: str, config: dict[str, Any], task: ShardTask) -> dict[str, Any]:
    return build_and_write_shard(_worker_kg(source), config, task)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _init_worker(parent: int, inflections: dict[tuple[str, str], Any]) -> None:
    """Process-pool worker initializer: die with the driver; take its inflect answers."""
    _die_with_parent(parent)
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


class _LocalRunner:
    """Shards one after another in this process (the C++ parts use the threads asked for)."""

    def __init__(self, cfg: GenerateConfig, kg: Any) -> None:
        self.cfg, self.kg = cfg, kg

    def run(self, tasks: Iterator[ShardTask]) -> Iterator[dict[str, Any]]:
        for task in tasks:
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
    """Shards on a local process pool; each worker memory-maps the KG snapshot once."""

    def __init__(self, cfg: GenerateConfig, kg: Any, *, start_now: bool = False) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self.cfg = cfg
        self.source = _kg_source_for_workers(cfg, kg)
        self.workers = cfg.workers or os.cpu_count() or 1
        import multiprocessing as mp

        # Workers keep the memory Polars frees (jemalloc's dirty pages for 5 s, then MADV_FREE'd
        # ones for 5 s more) instead of returning it to the kernel and faulting it back in for
        # the next shard: ~0.5 CPU-s of page faults per 20k-sample shard (a quarter of the
        # shard) with Polars' own 0.5 s / 1 s, ~0.1 CPU-s less again with 5 s dirty (peak RSS
        # +35 MB per worker). Polars puts its own setting in the
        # environment when imported (later keys win); only processes started while the pool
        # lives get ours (jemalloc reads it at start).
        self._env_old = os.environ.get(JEMALLOC_ENV)
        os.environ[JEMALLOC_ENV] = ",".join(filter(None, (self._env_old, WORKER_JEMALLOC_CONF)))
        # The driver builds the workers' catalogue and question lexicon once, so that every
        # inflect answer they need travels with the initializer (no worker imports inflect).
        _worker_context(kg, cfg.overrides)
        self.pool = ProcessPoolExecutor(
            self.workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(os.getpid(), lexicon.inflections()),
        )
        if start_now:
            self._start_workers()

    def _start_workers(self) -> None:
        """Start every worker now, without re-running the caller's ``__main__`` in them.

        The workers only run :func:`_shard_in_worker`, so they need not import the main
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
        pending = []
        for task in tasks:
            pending.append(
                self.pool.submit(_shard_in_worker, self.source, self.cfg.to_dict(), task)
            )
            while len(pending) >= 2 * self.workers:  # bounded: a few shards in flight
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)
        if self._env_old is None:
            os.environ.pop(JEMALLOC_ENV, None)
        else:
            os.environ[JEMALLOC_ENV] = self._env_old


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
        self.remote = ray.remote(_shard_in_worker)
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


def _driver_threads(cfg: GenerateConfig) -> int:
    """Native threads of the driver's sampling: ``cfg.threads``, but 1 (instead of every CPU)
    when a local process pool is running, since its workers keep every CPU busy: two sampling
    threads then cost ~25% more CPU time (FB15k-237, 1M samples: 19.7 -> 25.9 CPU-s) for no
    gain in wall time. The queries are the same at any thread count."""
    if cfg.threads == 0 and resolve_engine(cfg) == "process":
        return 1
    return cfg.threads


def _make_runner(cfg: GenerateConfig, kg: Any) -> Any:
    engine = resolve_engine(cfg)
    if engine == "ray":
        return _RayRunner(cfg, kg)
    if engine == "process":
        return _ProcessRunner(cfg, kg, start_now=cfg.engine == "auto")
    return _LocalRunner(cfg, kg)


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
