"""BetaE query types on a KG's splits: the graphs each split is sampled on, the sampled
queries with their easy and hard answers (ragged id arrays, no Python object per query)."""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kg2tool import _core
from kg2tool.engine import QueryBatch, QueryStream, answer_spans, execute_queries, resolve_pattern
from kg2tool.errors import InputError, UnknownNameError
from kg2tool.kg.graph import KnowledgeGraph, _text_table
from kg2tool.kg.tables import KGTables

SPLITS = ("train", "valid", "test")

# Per type: the KGReasoning nested tuple with this project's slot names (sN anchors, rN
# relation slots of the library formula), "n" negation and "u" union markers.
TEMPLATES: dict[str, Any] = {
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

BETAE_NAMES: tuple[str, ...] = tuple(TEMPLATES)
NEGATION_TYPES = frozenset({"2in", "3in", "inp", "pin", "pni"})


def _structure(template: Any) -> Any:
    if isinstance(template, tuple):
        return tuple(_structure(x) for x in template)
    if template in ("n", "u"):
        return template
    return "e" if template.startswith("s") else "r"


#: Type name -> KGReasoning query structure (the key of ``*-queries.pkl``); 2u and up are
#: the DNF forms (``2u-DNF``, ``up-DNF`` in KGReasoning's ``query_name_dict``).
BETAE_STRUCTURES: dict[str, Any] = {name: _structure(t) for name, t in TEMPLATES.items()}

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

    return fill(TEMPLATES[name])


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


def row_keys(rel: np.ndarray, anc: np.ndarray) -> list[bytes]:
    both = np.ascontiguousarray(np.concatenate([rel, anc], axis=1), dtype=np.int32)
    width = both.shape[1] * 4
    raw = both.tobytes()
    return [raw[i : i + width] for i in range(0, len(raw), width)]


def one_hop_queries(
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


def sample_type(
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
            fresh = row_keys(batch.relation_ids[good], batch.anchor_ids[good])
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
