"""The knowledge graph: string keys mapped to dense int32 ids, and the native CSR over them.

``KnowledgeGraph`` is what every later stage takes: the engine runs on ``kg.native``; the
APIs, verbalizer and dataset writer read the ``entities`` / ``relations`` tables (Polars,
row i is id i). Ids are assigned by sorted key, so the same triples give the same ids in
whatever order they come.
"""

from __future__ import annotations

import difflib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from . import _core
from .errors import InputError, SnapshotError, UnknownNameError
from .lexicon import entity_name_expr
from .snapshot import is_snapshot, load_snapshot, save_snapshot
from .tables import KGTables

MAX_ENTITIES = 2**31 - 1


def _text_table(
    keys: pl.Series, source: pl.DataFrame | None, *, key_names: bool = False
) -> pl.DataFrame:
    """id/key/label/description frame for sorted ``keys``; label falls back to the key (with
    ``key_names``, a key made of words is turned into them: "population_group" ->
    "population group", see :func:`kg2tool.lexicon.entity_name_expr`)."""
    base = pl.DataFrame({"id": pl.int_range(0, len(keys), dtype=pl.Int32, eager=True), "key": keys})
    fallback = entity_name_expr(pl.col("key")) if key_names else pl.col("key")
    if source is None or source.height == 0:
        return base.with_columns(label=fallback, description=pl.lit(None, dtype=pl.String))
    src = source.select(
        pl.col("key").cast(pl.String),
        pl.col("label").cast(pl.String)
        if "label" in source.columns
        else pl.lit(None, pl.String).alias("label"),
        pl.col("description").cast(pl.String)
        if "description" in source.columns
        else pl.lit(None, pl.String).alias("description"),
    ).unique(subset="key", keep="first", maintain_order=True)
    out = base.join(src, on="key", how="left", maintain_order="left")
    return out.with_columns(
        label=pl.when(pl.col("label").is_null() | (pl.col("label").str.strip_chars() == ""))
        .then(fallback)
        .otherwise(pl.col("label"))
    ).select("id", "key", "label", "description")


def _checked_ids(values: Any, limit: int, what: str) -> np.ndarray:
    """Integer ids as int32, refusing floats and out-of-range values instead of wrapping them."""
    a = np.asarray(values)
    if a.size == 0:
        return np.zeros(0, dtype=np.int32)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{what} ids must be integers, got dtype {a.dtype}")
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= limit:
        bad = lo if lo < 0 else hi
        raise IndexError(f"{what} id {bad} out of range [0, {limit})")
    return np.ascontiguousarray(a, dtype=np.int32).ravel()


def _codes(col: pl.Series, keys: pl.Series) -> np.ndarray:
    """Dense int32 ids of ``col`` values in the sorted ``keys`` (all values must be present)."""
    return col.cast(pl.Enum(keys)).to_physical().cast(pl.Int32).to_numpy()


class KnowledgeGraph:
    """A KG with id tables (Polars) and a native CSR graph; build with ``load`` or ``from_tables``."""

    def __init__(
        self,
        native: _core.Graph,
        entities: pl.DataFrame,
        relations: pl.DataFrame,
        entity_types: pl.DataFrame,
        type_labels: pl.DataFrame,
        *,
        report: dict[str, Any] | None = None,
        source: str = "",
    ) -> None:
        self.native = native
        self.entities = entities
        self.relations = relations
        self.entity_types = entity_types
        self.type_labels = type_labels
        self.report = dict(report or {})
        self.source = source
        self._triples: pl.DataFrame | None = None
        self._entity_index: dict[str, int] | None = None
        self._relation_index: dict[str, int] | None = None

    # ----- construction -------------------------------------------------------------
    @classmethod
    def from_tables(cls, tables: KGTables, *, threads: int = 0) -> KnowledgeGraph:
        """Map string keys to ids and build the native CSR (duplicates dropped and counted)."""
        t0 = time.perf_counter()
        triples = tables.triples
        if triples.height == 0:
            raise InputError("the KG has no triples", path=tables.source or None)
        ent_keys = (
            pl.concat([triples.get_column("head"), triples.get_column("tail")])
            .unique()
            .sort()
            .rename("key")
        )
        if len(ent_keys) > MAX_ENTITIES:
            raise InputError(f"{len(ent_keys)} entities; at most {MAX_ENTITIES} are supported")
        rel_keys = triples.get_column("relation").unique().sort().rename("key")
        heads = _codes(triples.get_column("head"), ent_keys)
        rels = _codes(triples.get_column("relation"), rel_keys)
        tails = _codes(triples.get_column("tail"), ent_keys)
        arrays, duplicates = _core.build_arrays(
            heads, rels, tails, len(ent_keys), len(rel_keys), threads
        )
        entities = _text_table(ent_keys, tables.entities, key_names=True)
        relations = _text_table(rel_keys, tables.relations)
        if tables.entity_types is not None and tables.entity_types.height:
            et = tables.entity_types.select(
                pl.col("key").cast(pl.String), pl.col("type").cast(pl.String)
            )
            et = et.filter(pl.col("key").is_in(ent_keys.implode()))
            type_keys = et.get_column("type").unique().sort()
        else:
            et = pl.DataFrame(schema={"key": pl.String, "type": pl.String})
            type_keys = pl.Series("type", [], dtype=pl.String)
        type_labels = _text_table(type_keys.rename("key"), tables.type_labels)
        if et.height:
            arrays.update(
                _core.build_type_arrays(
                    _codes(et.get_column("key"), ent_keys),
                    _codes(et.get_column("type"), type_keys),
                    len(ent_keys),
                    len(type_keys),
                )
            )
        native = _core.Graph(len(ent_keys), len(rel_keys), len(type_keys), arrays, validate=False)
        entity_types = (
            et.join(entities.select("id", "key"), on="key")
            .select("id", "type")
            .unique()
            .sort("id", "type")
        )
        report = dict(tables.report)
        report.update(
            triples_read=triples.height,
            duplicates=int(duplicates),
            build_seconds=round(time.perf_counter() - t0, 4),
        )
        return cls(
            native,
            entities,
            relations,
            entity_types,
            type_labels,
            report=report,
            source=tables.source,
        )

    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike[str],
        *,
        splits: tuple[str, ...] = ("train",),
        threads: int = 0,
        verify: bool = True,
    ) -> KnowledgeGraph:
        """Load a bundled KG by name (``codex-s``), a snapshot, a canonical KG directory or a triples file."""
        from . import datasets, io

        path = Path(name_or_path)
        if path.is_dir():
            if is_snapshot(path):
                return cls.open_snapshot(path, verify=verify)
            return cls.from_tables(io.read_kg_dir(path, splits=splits), threads=threads)
        if path.is_file():
            return cls.from_tables(io.read_triples(path), threads=threads)
        name = str(name_or_path)
        if name in datasets.bundled_names():
            return cls.from_tables(
                io.read_kg_dir(datasets.bundled_path(name), splits=splits), threads=threads
            )
        close = difflib.get_close_matches(name, datasets.bundled_names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            f"unknown KG {name!r}: not a file, a directory or a bundled name "
            f"({', '.join(datasets.bundled_names())}){hint}"
        )

    # ----- snapshots ----------------------------------------------------------------
    def save_snapshot(self, path: str | os.PathLike[str]) -> Path:
        """Write the CSR arrays and id tables to a versioned, checksummed directory (atomically)."""
        tables = {
            "entities": self.entities,
            "relations": self.relations,
            "entity_types": self.entity_types,
            "type_labels": self.type_labels,
        }
        meta = {
            "num_entities": self.num_entities,
            "num_relations": self.num_relations,
            "num_types": self.native.num_types,
            "num_triples": self.num_triples,
            "report": self.report,
            "source": self.source,
        }
        arrays = {k: np.asarray(v) for k, v in self.native.arrays.items()}
        return save_snapshot(path, arrays, tables, meta)

    @classmethod
    def open_snapshot(cls, path: str | os.PathLike[str], *, verify: bool = True) -> KnowledgeGraph:
        """Memory-map a snapshot; every invariant is re-checked natively, so corruption is an error."""
        arrays, tables, meta = load_snapshot(path, verify=verify)
        try:
            n_ent, n_rel, n_typ = (
                int(meta[k]) for k in ("num_entities", "num_relations", "num_types")
            )
            native = _core.Graph(n_ent, n_rel, n_typ, dict(arrays), validate=True)
            ent, rel = tables["entities"], tables["relations"]
            et, tl = tables["entity_types"], tables["type_labels"]
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"{path}: inconsistent snapshot ({exc})") from None
        if ent.height != n_ent or rel.height != n_rel or tl.height != n_typ:
            raise SnapshotError(f"{path}: id tables do not match the graph's counts")
        return cls(native, ent, rel, et, tl, report=meta.get("report", {}), source=str(path))

    # ----- look-ups -----------------------------------------------------------------
    @property
    def num_entities(self) -> int:
        return int(self.native.num_entities)

    @property
    def num_relations(self) -> int:
        return int(self.native.num_relations)

    @property
    def num_triples(self) -> int:
        return int(self.native.num_edges)

    @property
    def triples(self) -> pl.DataFrame:
        """Distinct triples as int32 ids (head, relation, tail), sorted; rebuilt from the CSR."""
        if self._triples is None:
            a = self.native.arrays
            ent_dir, dir_rel, dir_off, nbr = (
                np.asarray(a[f"out.{k}"]) for k in ("ent_dir", "dir_rel", "dir_off", "nbr")
            )
            entry_sizes = np.diff(dir_off.astype(np.int64))
            entry_heads = np.repeat(np.arange(self.num_entities, dtype=np.int32), np.diff(ent_dir))
            self._triples = pl.DataFrame(
                {
                    "head": np.repeat(entry_heads, entry_sizes),
                    "relation": np.repeat(dir_rel, entry_sizes),
                    "tail": np.asarray(nbr, dtype=np.int32),
                }
            )
        return self._triples

    def _index(self, table: pl.DataFrame) -> dict[str, int]:
        return dict(zip(table.get_column("key").to_list(), range(table.height), strict=True))

    def entity_ids(self, keys: list[str] | pl.Series) -> np.ndarray:
        """int32 ids of entity keys; raises UnknownNameError naming the first unknown key."""
        if self._entity_index is None:
            self._entity_index = self._index(self.entities)
        return self._lookup(self._entity_index, keys, "entity")

    def relation_ids(self, keys: list[str] | pl.Series) -> np.ndarray:
        """int32 ids of relation keys; raises UnknownNameError naming the first unknown key."""
        if self._relation_index is None:
            self._relation_index = self._index(self.relations)
        return self._lookup(self._relation_index, keys, "relation")

    @staticmethod
    def _lookup(index: dict[str, int], keys: Any, what: str) -> np.ndarray:
        out = np.empty(len(keys), dtype=np.int32)
        for i, k in enumerate(keys):
            v = index.get(k)
            if v is None:
                close = difflib.get_close_matches(str(k), list(index), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise UnknownNameError(f"unknown {what} key {k!r}{hint}")
            out[i] = v
        return out

    def neighbors(
        self, entity_ids: np.ndarray | list[int], relation: int | np.ndarray, inverse: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batched neighbour sets: (offsets int64[n+1], ids int32), each slice sorted."""
        ids = _checked_ids(entity_ids, self.num_entities, "entity")
        rels = _checked_ids(np.atleast_1d(relation), self.num_relations, "relation")
        return self.native.neighbors(ids, rels, inverse)

    def stats(self) -> dict[str, Any]:
        """Counts for ``kg2tool stats``: entities, relations, triples, types, duplicates, bytes."""
        return {
            "source": self.source,
            "entities": self.num_entities,
            "relations": self.num_relations,
            "triples": self.num_triples,
            "types": int(self.native.num_types),
            "duplicates_dropped": int(self.report.get("duplicates", 0)),
            "native_bytes": int(self.native.nbytes),
        }

    def __repr__(self) -> str:
        return (
            f"KnowledgeGraph({self.num_entities} entities, {self.num_relations} relations, "
            f"{self.num_triples} triples)"
        )
