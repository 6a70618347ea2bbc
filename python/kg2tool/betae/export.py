"""``export_betae``: the KGReasoning files of every split and query type, with a report."""

from __future__ import annotations

import json
import os
import pickle
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from kg2tool.atomic import atomic_dir, write_text
from kg2tool.betae.pickles import encode_keys, write_answers, write_queries
from kg2tool.betae.queries import (
    BETAE_NAMES,
    BETAE_STRUCTURES,
    DEFAULT_COUNTS,
    SPLITS,
    TEMPLATES,
    BetaEGraphs,
    Ragged,
    TypeQueries,
    load_splits,
    one_hop_queries,
    row_keys,
    sample_type,
)
from kg2tool.engine import resolve_pattern
from kg2tool.errors import InputError
from kg2tool.kg.tables import KGTables
from kg2tool.patterns import get_pattern


@dataclass
class ExportReport:
    """What an export wrote: per split and type, queries asked for and written."""

    out: Path
    counts: dict[str, dict[str, dict[str, int | None]]]
    dropped: dict[str, int]
    seconds: float
    num_entities: int
    num_relations: int

    @property
    def short(self) -> list[str]:
        """``split/type: written of asked`` for every type that fell short."""
        return [
            f"{s}/{t}: {c['written']:,} of {c['requested']:,}"
            for s, per in self.counts.items()
            for t, c in per.items()
            if c["requested"] is not None and c["written"] < c["requested"]
        ]

    def summary(self) -> str:
        """One paragraph for the CLI."""
        total = sum(c["written"] for per in self.counts.values() for c in per.values())
        lines = [
            f"wrote {total:,} queries ({self.num_entities:,} entities, {self.num_relations:,} "
            f"relation ids) to {self.out} in {self.seconds:.1f} s"
        ]
        for split, per in self.counts.items():
            lines.append(
                f"  {split}: " + ", ".join(f"{t} {c['written']:,}" for t, c in per.items())
            )
        if self.short:
            lines.append("  fewer distinct queries than asked: " + "; ".join(self.short))
        if any(self.dropped.values()):
            lines.append(
                "  held-out triples with entities/relations absent from train, dropped: "
                + ", ".join(f"{s} {n:,}" for s, n in self.dropped.items() if n)
            )
        return "\n".join(lines)


def _check_counts(
    counts: Mapping[str, Mapping[str, int | None]],
) -> dict[str, dict[str, int | None]]:
    out: dict[str, dict[str, int | None]] = {}
    for split, per in counts.items():
        if split not in SPLITS:
            raise InputError(f"unknown split {split!r} in counts; use train, valid or test")
        out[split] = {}
        for name, n in per.items():
            if name not in TEMPLATES:
                get_pattern(name)  # a close-match message for typos
                raise InputError(
                    f"{name!r} is not a BetaE query type; use one of {', '.join(BETAE_NAMES)}"
                )
            if n is None and name != "1p":
                raise InputError(f"{split}/{name}: only 1p takes 'all' (every query)")
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
                raise InputError(f"{split}/{name}: a count must be an integer >= 0, got {n!r}")
            if n != 0:
                out[split][name] = n
    return out


def parse_counts(text: str) -> dict[str, dict[str, int | None]]:
    """Counts from ``split.type=N`` items (``train.2p=1000,valid.*=500,test.1p=all``),
    applied over the defaults; ``*`` means every type, ``all`` every 1p query."""
    counts = {s: dict(per) for s, per in DEFAULT_COUNTS.items()}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, eq, value = item.partition("=")
        split, dot, name = key.strip().partition(".")
        if not eq or not dot:
            raise InputError(f"--counts item {item!r}: expected split.type=N (e.g. valid.2p=500)")
        if split not in SPLITS and split != "*":
            raise InputError(f"--counts item {item!r}: unknown split {split!r}")
        value = value.strip()
        if value == "all":
            n: int | None = None
        else:
            try:
                n = int(value)
            except ValueError:
                raise InputError(
                    f"--counts item {item!r}: {value!r} is not a number or 'all'"
                ) from None
        for s in SPLITS if split == "*" else (split,):
            names = BETAE_NAMES if name == "*" else (name,)
            for t in names:
                if name == "*" and n is None and t != "1p":
                    continue
                if (
                    name == "*"
                    and s == "train"
                    and t in ("ip", "pi", "2u", "up")
                    and t not in counts[s]
                ):
                    continue
                counts[s][t] = n
    return _check_counts(counts)


def _leaf_template(t: Any) -> Any:
    """The template with the 'n' / 'u' markers as KGReasoning's -2 / -1."""
    if isinstance(t, tuple):
        return tuple(_leaf_template(x) for x in t)
    return {"n": -2, "u": -1}.get(t, t)


def _slot_columns(tq: TypeQueries) -> dict[str, np.ndarray]:
    cols = {f"r{j + 1}": tq.relation_ids[:, j] for j in range(tq.relation_ids.shape[1])}
    cols.update({f"s{j + 1}": tq.anchor_ids[:, j] for j in range(tq.anchor_ids.shape[1])})
    return cols


def _json_format(t: Any, leaves: list[str]) -> str:
    """A pl.format string writing the nested tuple as a JSON array ({} per slot leaf)."""
    if isinstance(t, tuple):
        return "[" + ", ".join(_json_format(x, leaves) for x in t) + "]"
    if isinstance(t, int):
        return str(t)
    leaves.append(t)
    return "{}"


def _list_column(r: Ragged, values: pl.Series | None = None) -> pl.Series:
    """A Ragged as a list column of ids, or of ``values[id]``."""
    flat = pa.array(r.ids) if values is None else values.gather(r.ids).to_arrow()
    dtype = pl.Int32 if values is None else values.dtype
    return pl.from_arrow(pa.LargeListArray.from_arrays(pa.array(r.offsets), flat)).cast(
        pl.List(dtype)
    )


def _query_frame(graphs: BetaEGraphs, tq: TypeQueries) -> pl.DataFrame:
    """One row per query: ids, names, nested tuple (JSON), formula and answers."""
    plan = resolve_pattern(tq.name)
    n = len(tq)
    ent_keys = graphs.entities["key"]
    rel_keys = graphs.graphs["train"].relations["key"]
    slots = pl.DataFrame({k: v for k, v in _slot_columns(tq).items()})
    leaves: list[str] = []
    fmt = _json_format(_leaf_template(TEMPLATES[tq.name]), leaves)
    query = slots.select(pl.format(fmt, *leaves).alias("query"))["query"]
    named = {s: rel_keys.gather(slots[s]) for s in plan.relation_slots}
    named.update({s: ent_keys.gather(slots[s]) for s in plan.anchor_slots})
    bindings = pl.DataFrame(named).select(pl.struct(pl.all()).struct.json_encode())
    anchors = Ragged(
        np.arange(0, n * tq.anchor_ids.shape[1] + 1, tq.anchor_ids.shape[1], dtype=np.int64),
        tq.anchor_ids.ravel(),
    )
    relations = Ragged(
        np.arange(0, n * tq.relation_ids.shape[1] + 1, tq.relation_ids.shape[1], dtype=np.int64),
        tq.relation_ids.ravel(),
    )
    return pl.DataFrame(
        {
            "split": pl.Series([tq.split] * n, dtype=pl.String),
            "type": pl.Series([tq.name] * n, dtype=pl.String),
            "structure": pl.Series([repr(BETAE_STRUCTURES[tq.name])] * n, dtype=pl.String),
            "query": query,
            "formula": pl.Series([plan.formula] * n, dtype=pl.String),
            "bindings": bindings.to_series(),
            "relation_ids": _list_column(relations),
            "relations": _list_column(relations, rel_keys),
            "anchor_ids": _list_column(anchors),
            "anchors": _list_column(anchors, ent_keys),
            "anchor_labels": _list_column(anchors, graphs.entities["label"]),
            "easy_answers": _list_column(tq.easy),
            "hard_answers": _list_column(tq.hard),
            "hard_answer_keys": _list_column(tq.hard, ent_keys),
        }
    )


def _dump(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


def export_betae(
    source: str | os.PathLike[str] | tuple[KGTables, Mapping[str, pl.DataFrame]],
    out: str | os.PathLike[str],
    *,
    counts: Mapping[str, Mapping[str, int | None]] | None = None,
    max_answers: int | None = 100,
    max_answers_1p: int | None = None,
    seed: int = 0,
    threads: int = 0,
    overwrite: bool = False,
    tables: bool = True,
    jsonl: bool = False,
    sampler: Mapping[str, Any] | None = None,
) -> ExportReport:
    """Write a KGReasoning-format dataset of ``source`` (name, folder or (tables, held-out)).

    ``counts`` maps split -> type -> number (``None``: every 1p query; absent or 0: none;
    defaults :data:`DEFAULT_COUNTS`). ``max_answers`` is KGReasoning's ``max_ans_num`` for
    the multi-hop types, ``max_answers_1p`` for 1p (None: no cap; the defaults, 100 and no
    cap, give the released FB15k-237 1p counts and answer sizes). ``tables`` also writes ``queries.parquet``, ``jsonl`` ``queries.jsonl``.
    ``sampler`` passes options to :func:`kg2tool.engine.sample_queries`. The output
    directory appears atomically; the same seed gives the same files at any thread count.
    """
    t0 = time.perf_counter()
    for what, cap in (("max_answers", max_answers), ("max_answers_1p", max_answers_1p)):
        if cap is not None and cap < 1:
            raise InputError(f"{what} must be >= 1 (or None for no cap), got {cap}")
    wanted = _check_counts(DEFAULT_COUNTS if counts is None else counts)
    root = Path(out)
    if root.exists() and not overwrite:
        raise InputError(
            "already exists; pass overwrite=True (--overwrite) to replace it", path=str(root)
        )
    kg_tables, held_out = source if isinstance(source, tuple) else load_splits(source)
    graphs = BetaEGraphs.build(kg_tables, held_out, threads=threads)

    results: dict[str, dict[str, TypeQueries]] = {s: {} for s in SPLITS}
    used: dict[str, set[bytes]] = defaultdict(set)
    for split in SPLITS:
        for name in BETAE_NAMES:
            if name not in wanted.get(split, {}):
                continue
            n = wanted[split][name]
            if name == "1p":
                tq = one_hop_queries(graphs, split, n, max_answers_1p, seed, threads)
            else:
                assert n is not None
                tq = sample_type(
                    graphs, name, split, n, max_answers, seed, threads, used[name], sampler or {}
                )
                used[name].update(row_keys(tq.relation_ids, tq.anchor_ids))
            results[split][name] = tq

    try:
        with atomic_dir(root) as tmp:
            _write_files(graphs, results, tmp, tables, jsonl)
            report_counts = {
                s: {
                    t: {"requested": q.requested, "written": len(q), "candidates": q.candidates}
                    for t, q in per.items()
                }
                for s, per in results.items()
            }
            manifest = {
                "format": "KGReasoning (BetaE) logical queries",
                "source": str(kg_tables.source),
                "seed": seed,
                "max_answers": max_answers,
                "max_answers_1p": max_answers_1p,
                "numentity": graphs.num_entities,
                "numrelations": graphs.num_relations,
                "dropped_held_out_triples": graphs.dropped,
                "counts": report_counts,
            }
            write_text(tmp / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        raise InputError(
            f"cannot write the export: {exc.strerror or exc}", path=str(root.parent)
        ) from None
    return ExportReport(
        root,
        report_counts,
        graphs.dropped,
        time.perf_counter() - t0,
        graphs.num_entities,
        graphs.num_relations,
    )


def _write_files(
    graphs: BetaEGraphs,
    results: dict[str, dict[str, TypeQueries]],
    tmp: Path,
    tables: bool,
    jsonl: bool,
) -> None:
    ent_keys = graphs.entities["key"].to_list()
    _dump(dict(enumerate(ent_keys)), tmp / "id2ent.pkl")
    _dump({k: i for i, k in enumerate(ent_keys)}, tmp / "ent2id.pkl")
    rel_keys = [graphs.relation_key(i) for i in range(graphs.num_relations)]
    _dump(dict(enumerate(rel_keys)), tmp / "id2rel.pkl")
    _dump({k: i for i, k in enumerate(rel_keys)}, tmp / "rel2id.pkl")
    (tmp / "stats.txt").write_text(
        f"numentity: {graphs.num_entities}\nnumrelations: {graphs.num_relations}"
    )
    for split in SPLITS:
        pl.DataFrame(graphs.edges[split], schema=["h", "r", "t"], orient="row").write_csv(
            tmp / f"{split}.txt", separator="\t", include_header=False
        )
    frames = []
    for split in SPLITS:
        per = results[split]
        keys = {
            name: encode_keys(_leaf_template(TEMPLATES[name]), _slot_columns(tq), len(tq))
            for name, tq in per.items()
        }
        write_queries(
            tmp / f"{split}-queries.pkl",
            [(BETAE_STRUCTURES[name], keys[name]) for name in per if len(per[name])],
        )
        hard = [(keys[name], tq.hard.offsets, tq.hard.ids) for name, tq in per.items()]
        if split == "train":
            write_answers(tmp / "train-answers.pkl", hard)
        else:
            easy = [(keys[name], tq.easy.offsets, tq.easy.ids) for name, tq in per.items()]
            write_answers(tmp / f"{split}-easy-answers.pkl", easy)
            write_answers(tmp / f"{split}-hard-answers.pkl", hard)
        if tables or jsonl:
            frames += [_query_frame(graphs, tq) for tq in per.values() if len(tq)]
    if tables or jsonl:
        frame = pl.concat(frames) if frames else pl.DataFrame()
        if tables:
            frame.write_parquet(tmp / "queries.parquet", compression="zstd", compression_level=1)
        if jsonl:
            frame.write_ndjson(tmp / "queries.jsonl")
