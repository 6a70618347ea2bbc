"""Logical-query benchmarks in the BetaE / KGReasoning layout, from any KG with held-out splits.

:func:`export_betae` writes what KGReasoning's ``create_queries.py`` produces and its
loaders (BetaE, Query2Box, ConE, GNN-QE, CQD, ...) read unchanged: ``{split}-queries.pkl``
(query structure -> set of grounded nested tuples), ``train-answers.pkl``,
``{valid,test}-{easy,hard}-answers.pkl``, the id maps, ``stats.txt`` and the id-form
graphs, plus every query as Parquet/JSONL with names and this project's DNF formula.

Semantics (the BetaE paper's): relation ``r`` becomes ids ``2r`` (``+r``, forward) and
``2r+1`` (``-r``, inverse), and every triple is an edge both ways. Train queries and
answers live on the train graph. A valid query is sampled on train+valid and kept only if
it has a *hard* answer, one not reachable on the train graph; its easy answers are its
answers on the train graph (KGReasoning's ``tp`` set), its hard answers the additional
ones. Test likewise on train+valid+test, easy answers from train+valid. A valid/test
query of a negation type must also lose an answer to the new edges (an answer on the
smaller graph that the larger graph's negation removes). The cap (KGReasoning's
``max_ans_num``; 100 for the multi-hop types, none for 1p by default, as in the released
FB15k-237 set) bounds the answers on train, and the hard and the lost answers on
valid/test. The sampler's own checks apply too: distinct anchors, no step straight back,
every intersection, union and negation branch changing the answers on the graph drawn from.
``1p`` is link prediction as KGReasoning writes it: every (entity, relation) pair of the
split's own edges, the same pair also being a train query when it has train edges; every
other type is sampled by the native engine, no grounded query repeated across splits.
Held-out triples naming an entity or relation absent from train are dropped (KGReasoning
indexes train only), and counted in the manifest.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import pickle
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from kg2tool import _core
from kg2tool.atomic import atomic_dir, write_text
from kg2tool.betae_pickle import encode_keys, write_answers, write_queries
from kg2tool.engine import QueryBatch, QueryStream, answer_spans, execute_queries, resolve_pattern
from kg2tool.errors import InputError, UnknownNameError
from kg2tool.kg.graph import KnowledgeGraph, _text_table
from kg2tool.kg.tables import KGTables
from kg2tool.patterns import get_pattern

__all__ = [
    "BETAE_NAMES",
    "BETAE_STRUCTURES",
    "DEFAULT_COUNTS",
    "NEGATION_TYPES",
    "SPLITS",
    "BetaEGraphs",
    "ExportReport",
    "default_counts",
    "export_betae",
    "grounded_tuple",
    "load_splits",
    "parse_counts",
]

SPLITS = ("train", "valid", "test")

# Per type: the KGReasoning nested tuple with this project's slot names (sN anchors, rN
# relation slots of the library formula), "n" negation and "u" union markers.
_TEMPLATES: dict[str, Any] = {
    "1p": ("s1", ("r1",)),
    "2p": ("s1", ("r1", "r2")),
    "3p": ("s1", ("r1", "r2", "r3")),
    "2i": (("s1", ("r1",)), ("s2", ("r2",))),
    "3i": (("s1", ("r1",)), ("s2", ("r2",)), ("s3", ("r3",))),
    "ip": ((("s1", ("r1",)), ("s2", ("r2",))), ("r3",)),
    "pi": (("s1", ("r1", "r2")), ("s2", ("r3",))),
    "2in": (("s1", ("r1",)), ("s2", ("r2", "n"))),
    "3in": (("s1", ("r1",)), ("s2", ("r2",)), ("s3", ("r3", "n"))),
    "inp": ((("s1", ("r1",)), ("s2", ("r2", "n"))), ("r3",)),
    "pin": (("s1", ("r1", "r2")), ("s2", ("r3", "n"))),
    "pni": (("s1", ("r1", "r2", "n")), ("s2", ("r3",))),
    "2u": (("s1", ("r1",)), ("s2", ("r2",)), ("u",)),
    "up": ((("s1", ("r1",)), ("s2", ("r2",)), ("u",)), ("r3",)),
}

BETAE_NAMES: tuple[str, ...] = tuple(_TEMPLATES)
NEGATION_TYPES = frozenset({"2in", "3in", "inp", "pin", "pni"})


def _structure(template: Any) -> Any:
    if isinstance(template, tuple):
        return tuple(_structure(x) for x in template)
    if template in ("n", "u"):
        return template
    return "e" if template.startswith("s") else "r"


#: Type name -> KGReasoning query structure (the key of ``*-queries.pkl``); 2u and up are
#: the DNF forms (``2u-DNF``, ``up-DNF`` in KGReasoning's ``query_name_dict``).
BETAE_STRUCTURES: dict[str, Any] = {name: _structure(t) for name, t in _TEMPLATES.items()}

#: KGReasoning's released FB15k-237 counts (BetaE paper, Table 7): ``None`` = every 1p
#: query (149,689 train, 20,101 valid, 22,812 test on FB15k-237); ip/pi/2u/up are
#: evaluation-only.
DEFAULT_COUNTS: dict[str, dict[str, int | None]] = {
    "train": {
        "1p": None,
        **dict.fromkeys(("2p", "3p", "2i", "3i"), 149_689),
        **dict.fromkeys(("2in", "3in", "inp", "pin", "pni"), 14_968),
    },
    "valid": {"1p": None, **dict.fromkeys(BETAE_NAMES[1:], 5_000)},
    "test": {"1p": None, **dict.fromkeys(BETAE_NAMES[1:], 5_000)},
}


def default_counts(scale: float = 1.0) -> dict[str, dict[str, int | None]]:
    """The default per-split, per-type counts, numbers multiplied by ``scale`` (1p stays all)."""
    return {
        split: {t: (None if n is None else max(1, round(n * scale))) for t, n in per.items()}
        for split, per in DEFAULT_COUNTS.items()
    }


def grounded_tuple(name: str, relation_ids: Iterable[int], anchor_ids: Iterable[int]) -> Any:
    """The KGReasoning nested tuple of one grounded query of type ``name`` (n = -2, u = -1).

    ``relation_ids`` / ``anchor_ids`` follow the slot order of the library pattern
    (r1, r2, ...; s1, s2, ...), in the augmented relation ids (2r forward, 2r+1 inverse).
    """
    rel = {f"r{i + 1}": int(x) for i, x in enumerate(relation_ids)}
    anc = {f"s{i + 1}": int(x) for i, x in enumerate(anchor_ids)}

    def fill(t: Any) -> Any:
        if isinstance(t, tuple):
            return tuple(fill(x) for x in t)
        if t == "n":
            return -2
        if t == "u":
            return -1
        return anc[t] if t.startswith("s") else rel[t]

    return fill(_TEMPLATES[name])


# ------------------------------------------------------------------------------ input


def load_splits(source: str | os.PathLike[str]) -> tuple[KGTables, dict[str, pl.DataFrame]]:
    """Train tables (with names) and the held-out ``valid``/``test`` triples of ``source``.

    ``source``: a shared dataset name (``fb15k-237``, ``codex-s``, ...), the bundled
    ``codex-s``, a canonical KG directory with ``valid.tsv``/``test.tsv``, or a benchmark
    folder holding ``train.txt``, ``valid.txt`` and ``test.txt``.
    """
    from kg2tool.kg import bundled as datasets
    from kg2tool.kg import io

    path = Path(source)
    if path.is_dir():
        if (
            any((path / f"train{s}").is_file() for s in (".txt", ".tsv"))
            and not (path / "triples.tsv").is_file()
        ):
            files = {}
            for split in SPLITS:
                hit = [
                    path / f"{split}{s}"
                    for s in (".txt", ".tsv")
                    if (path / f"{split}{s}").is_file()
                ]
                if not hit:
                    raise InputError(f"no {split}.txt in the benchmark folder", path=str(path))
                files[split] = io.read_triples(hit[0], separator="\t").triples
            return KGTables(triples=files["train"], source=str(path)), {
                "valid": files["valid"],
                "test": files["test"],
            }
        tables = io.read_kg_dir(path)
        return tables, {s: io.read_split(path, s) for s in ("valid", "test")}
    name = str(source)
    if name in datasets.bundled_names():
        folder = datasets.bundled_path(name)
        return load_splits(folder)
    if name.lower() in datasets.dataset_names():
        return datasets.load_dataset(name)
    close = difflib.get_close_matches(
        name.lower(), [*datasets.bundled_names(), *datasets.dataset_names()], n=3
    )
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownNameError(
        f"unknown KG {name!r}{hint} (not a directory with held-out splits, a bundled name "
        f"({', '.join(datasets.bundled_names())}) or a shared dataset "
        f"({', '.join(datasets.dataset_names())}))"
    )


@dataclass
class BetaEGraphs:
    """The three nested graphs (train, train+valid, train+valid+test) over shared ids.

    Entity ids follow the sorted train entity keys, relation ``r`` (sorted train relation
    keys) is ``2r`` (``+key``) and ``2r+1`` (``-key``); ``edges[split]`` holds the split's
    own edges in both directions as an int32 [n, 3] array (head, relation, tail).
    """

    entities: pl.DataFrame  # id, key, label, description
    relations: pl.DataFrame  # id (original r), key, label, description
    edges: dict[str, np.ndarray]
    graphs: dict[str, KnowledgeGraph]  # "train", "valid" (train+valid), "test" (all)
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def num_entities(self) -> int:
        """Entities (those of the train graph)."""
        return self.entities.height

    @property
    def num_relations(self) -> int:
        """Relation ids with inverses: twice the train relations."""
        return 2 * self.relations.height

    def relation_key(self, rid: int) -> str:
        """``+key`` for a forward id, ``-key`` for an inverse one (KGReasoning's id2rel)."""
        return ("-" if rid % 2 else "+") + self.relations["key"][rid // 2]

    @classmethod
    def build(
        cls, tables: KGTables, held_out: Mapping[str, pl.DataFrame], *, threads: int = 0
    ) -> BetaEGraphs:
        """Map keys to ids (train's), drop held-out triples with unseen keys, build the CSRs."""
        train = tables.triples
        if train.height == 0:
            raise InputError("the train split has no triples", path=tables.source or None)
        ent_keys = pl.concat([train["head"], train["tail"]]).unique().sort().rename("key")
        rel_keys = train["relation"].unique().sort().rename("key")
        entities = _text_table(ent_keys, tables.entities)
        relations = _text_table(rel_keys, tables.relations)
        ent_index = pl.DataFrame({"key": ent_keys, "eid": np.arange(len(ent_keys), dtype=np.int32)})
        rel_index = pl.DataFrame({"key": rel_keys, "rid": np.arange(len(rel_keys), dtype=np.int32)})
        edges: dict[str, np.ndarray] = {}
        dropped: dict[str, int] = {}
        for split in SPLITS:
            df = train if split == "train" else held_out.get(split)
            if df is None or df.height == 0:
                raise InputError(f"the KG has no {split} split (held-out triples are needed)")
            ids = (
                df.select(pl.col(c).cast(pl.String) for c in ("head", "relation", "tail"))
                .join(ent_index.rename({"key": "head", "eid": "h"}), on="head", how="left")
                .join(rel_index.rename({"key": "relation", "rid": "r"}), on="relation", how="left")
                .join(ent_index.rename({"key": "tail", "eid": "t"}), on="tail", how="left")
            )
            known = ids.drop_nulls(["h", "r", "t"]).unique(["h", "r", "t"], maintain_order=True)
            dropped[split] = ids.height - ids.drop_nulls(["h", "r", "t"]).height
            h, r, t = (known[c].to_numpy().astype(np.int32) for c in ("h", "r", "t"))
            both = np.empty((2 * len(h), 3), dtype=np.int32)
            both[0::2] = np.stack([h, 2 * r, t], axis=1)
            both[1::2] = np.stack([t, 2 * r + 1, h], axis=1)
            edges[split] = both
        n, m = len(ent_keys), 2 * len(rel_keys)
        aug_rel = pl.DataFrame(
            {
                "id": np.arange(m, dtype=np.int32),
                "key": [("-" if i % 2 else "+") + rel_keys[i // 2] for i in range(m)],
            }
        ).with_columns(label=pl.col("key"), description=pl.lit(None, pl.String))
        graphs = {}
        for k, split in enumerate(SPLITS):
            e = np.concatenate([edges[s] for s in SPLITS[: k + 1]])
            arrays, _dups = _core.build_arrays(
                np.ascontiguousarray(e[:, 0]),
                np.ascontiguousarray(e[:, 1]),
                np.ascontiguousarray(e[:, 2]),
                n,
                m,
                threads,
            )
            graphs[split] = KnowledgeGraph(
                _core.Graph(n, m, 0, arrays, validate=False),
                entities,
                aug_rel,
                pl.DataFrame(schema={"id": pl.Int32, "type": pl.String}),
                pl.DataFrame(
                    schema={"key": pl.String, "label": pl.String, "description": pl.String}
                ),
                source=f"{tables.source}:{'+'.join(SPLITS[: k + 1])}",
            )
        return cls(entities, relations, edges, graphs, dropped)


# --------------------------------------------------------------------------- sampling


@dataclass
class Ragged:
    """Per-row sorted id lists as one flat array: row i is ``ids[offsets[i]:offsets[i+1]]``."""

    offsets: np.ndarray  # int64 [n + 1]
    ids: np.ndarray  # int32

    @classmethod
    def empty(cls, n: int) -> Ragged:
        """``n`` empty rows."""
        return cls(np.zeros(n + 1, np.int64), np.zeros(0, np.int32))

    @classmethod
    def concat(cls, parts: list[Ragged]) -> Ragged:
        """Rows of ``parts`` one after another."""
        if not parts:
            return cls.empty(0)
        shifts = np.cumsum([0] + [len(p.ids) for p in parts[:-1]])
        offsets = np.concatenate(
            [np.zeros(1, np.int64)]
            + [p.offsets[1:] + s for p, s in zip(parts, shifts, strict=True)]
        )
        return cls(offsets.astype(np.int64), np.concatenate([p.ids for p in parts]))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, i: int) -> np.ndarray:
        """Row ``i`` (a view)."""
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        """Length of every row."""
        return np.diff(self.offsets)


@dataclass
class TypeQueries:
    """One split's queries of one type: groundings and answer sets as flat id arrays."""

    name: str
    split: str
    relation_ids: np.ndarray  # [n, slots] int32
    anchor_ids: np.ndarray  # [n, slots] int32
    easy: Ragged  # answers on the smaller graph (empty rows on train)
    hard: Ragged  # the additional answers (train: the answers)
    requested: int | None = None
    candidates: int = 0

    def __len__(self) -> int:
        return int(self.relation_ids.shape[0])


def _split_seed(seed: int, split: str) -> int:
    """The sampling seed of one split: a hash of (seed, split), so splits draw independently."""
    digest = hashlib.blake2b(f"kg2tool-betae/{seed}/{split}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFFFFFFFFFF


def _take_rows(starts: np.ndarray, ends: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> Ragged:
    """The sets ``ids[starts[i]:ends[i]]`` of the (sorted) query ``rows``, as a Ragged."""
    lo = starts[rows].astype(np.int64)
    lengths = ends[rows].astype(np.int64) - lo
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    take = np.repeat(lo - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)
    return Ragged(offsets, ids[take].astype(np.int32, copy=False))


def _hardness(
    big: QueryBatch, small: QueryBatch | None, cap: int | None, threads: int
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per query: hard answers (on ``big``, not on ``small``), their count and the count of
    lost answers (on ``small``, not on ``big``), compared natively (``_core.diff_sets``).

    Returns (hard counts, lost counts, hard sets as (starts, ends, ids)). A query whose
    answer sets differ by more than ``cap`` in size or either way has both counts
    ``cap + 1`` (and no hard set): it fails the cap whatever the exact counts.
    """
    b_lo, b_hi = answer_spans(big)
    if small is None:
        counts = (b_hi - b_lo).astype(np.int64)
        return counts, np.zeros(len(counts), np.int64), (b_lo, b_hi, big.set_ids)
    s_lo, s_hi = answer_spans(small)
    offsets, ids, hard_counts, lost_counts = _core.diff_sets(
        b_lo, b_hi, big.set_ids, s_lo, s_hi, small.set_ids, -1 if cap is None else cap, threads
    )
    return hard_counts, lost_counts, (offsets[:-1], offsets[1:], ids)


def _answers_of(batch: QueryBatch, rows: np.ndarray) -> Ragged:
    """The answer sets of the (sorted) query ``rows`` of ``batch``."""
    return _take_rows(*answer_spans(batch), batch.set_ids, rows)


def _row_keys(rel: np.ndarray, anc: np.ndarray) -> list[bytes]:
    both = np.ascontiguousarray(np.concatenate([rel, anc], axis=1), dtype=np.int32)
    width = both.shape[1] * 4
    raw = both.tobytes()
    return [raw[i : i + width] for i in range(0, len(raw), width)]


def _one_hop(
    graphs: BetaEGraphs, split: str, count: int | None, cap: int | None, seed: int, threads: int
) -> TypeQueries:
    """Every (entity, relation) pair of the split's own edges (KGReasoning's write_links)."""
    e = graphs.edges[split]
    # Distinct (entity, relation) pairs in (entity, relation) order, as one int64 key each
    # (np.unique(axis=0) sorts the same order several times slower).
    m = graphs.num_relations
    key = np.unique(e[:, 0].astype(np.int64) * m + e[:, 1])
    pairs = np.stack([key // m, key % m], axis=1).astype(np.int32)
    rel, anc = pairs[:, 1:2].astype(np.int32), pairs[:, 0:1].astype(np.int32)
    big = execute_queries(graphs.graphs[split], "1p", rel, anc, threads=threads, sets="answers")
    small = None
    if split != "train":
        prev = "train" if split == "valid" else "valid"
        small = execute_queries(
            graphs.graphs[prev], "1p", rel, anc, threads=threads, sets="answers"
        )
    hard_counts, _lost, hard_sets = _hardness(big, small, cap, threads)
    keep = hard_counts > 0
    if cap is not None:
        keep &= hard_counts <= cap
    rows = np.flatnonzero(keep)
    if count is not None and count < len(rows):
        rng = np.random.default_rng(_split_seed(seed, f"{split}/1p"))
        rows = np.sort(rng.choice(rows, size=count, replace=False))
    hard = _take_rows(*hard_sets, rows)
    easy = _answers_of(small, rows) if small is not None else Ragged.empty(len(rows))
    return TypeQueries("1p", split, rel[rows], anc[rows], easy, hard, count, len(pairs))


def _sampled(
    graphs: BetaEGraphs,
    name: str,
    split: str,
    count: int,
    cap: int | None,
    seed: int,
    threads: int,
    exclude: set[bytes],
    sampler: Mapping[str, Any],
) -> TypeQueries:
    """``count`` queries drawn on the split's graph, kept by the BetaE hardness rules."""
    plan = resolve_pattern(name)
    big_graph = graphs.graphs[split]
    small_graph = (
        None if split == "train" else graphs.graphs["train" if split == "valid" else "valid"]
    )
    options = {
        "max_answers": cap if split == "train" else None,
        "max_intermediate": None,
        "sets": "answers",
        "threads": threads,
        **sampler,
    }
    stream = QueryStream(big_graph, plan, seed=_split_seed(seed, split), **options)
    rels, ancs, easy, hard = [], [], [], []
    kept = candidates = 0
    chunk = max(256, count)
    while kept < count:
        batch = stream.take(chunk, strict=False)
        n = len(batch)
        candidates += n
        if n == 0:
            break
        small = (
            None
            if small_graph is None
            else execute_queries(
                small_graph,
                plan,
                batch.relation_ids,
                batch.anchor_ids,
                threads=threads,
                sets="answers",
            )
        )
        hard_counts, lost_counts, hard_sets = _hardness(batch, small, cap, threads)
        ok = hard_counts > 0
        if small is not None and name in NEGATION_TYPES:
            ok &= lost_counts > 0
        if cap is not None:
            ok &= np.maximum(hard_counts, lost_counts) <= cap
        good = np.flatnonzero(ok)
        if exclude:
            fresh = _row_keys(batch.relation_ids[good], batch.anchor_ids[good])
            good = good[np.fromiter((k not in exclude for k in fresh), bool, len(good))]
        rows = good[: count - kept]
        rels.append(batch.relation_ids[rows])
        ancs.append(batch.anchor_ids[rows])
        hard.append(_take_rows(*hard_sets, rows))
        easy.append(_answers_of(small, rows) if small is not None else Ragged.empty(len(rows)))
        kept += len(rows)
        if batch.exhausted or n < chunk:
            break
        rate = max(kept / max(candidates, 1), 0.01)
        chunk = int(min(max(256, (count - kept) / rate * 1.2), 4 * count + 1024))
    nr, na = len(plan.relation_slots), len(plan.anchor_slots)
    rel = np.concatenate(rels) if rels else np.zeros((0, nr), np.int32)
    anc = np.concatenate(ancs) if ancs else np.zeros((0, na), np.int32)
    return TypeQueries(
        name, split, rel, anc, Ragged.concat(easy), Ragged.concat(hard), count, candidates
    )


# ----------------------------------------------------------------------------- export


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
            if name not in _TEMPLATES:
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
    fmt = _json_format(_leaf_template(_TEMPLATES[tq.name]), leaves)
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
                tq = _one_hop(graphs, split, n, max_answers_1p, seed, threads)
            else:
                assert n is not None
                tq = _sampled(
                    graphs, name, split, n, max_answers, seed, threads, used[name], sampler or {}
                )
                used[name].update(_row_keys(tq.relation_ids, tq.anchor_ids))
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
            name: encode_keys(_leaf_template(_TEMPLATES[name]), _slot_columns(tq), len(tq))
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
