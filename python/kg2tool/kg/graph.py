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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kg2tool import _core
from kg2tool.errors import InputError, SnapshotError, UnknownNameError
from kg2tool.kg.names import entity_name_expr
from kg2tool.kg.snapshot import is_snapshot, load_snapshot, save_snapshot
from kg2tool.kg.tables import KGTables, clean_text

MAX_ENTITIES = 2**31 - 1
#: A table, or a loader that reads it on first use.
Table = pl.DataFrame | Callable[[], pl.DataFrame]


def _text_table(
    keys: pl.Series, source: pl.DataFrame | None, *, key_names: bool = False
) -> pl.DataFrame:
    """id/key/label/description frame for sorted ``keys``; label falls back to the key (with
    ``key_names``, a key made of words is turned into them: "population_group" ->
    "population group", see :func:`kg2tool.kg.names.entity_name_expr`)."""
    base = pl.DataFrame({"id": pl.int_range(0, len(keys), dtype=pl.Int32, eager=True), "key": keys})
    fallback = entity_name_expr(pl.col("key")) if key_names else pl.col("key")
    if source is None or source.height == 0:
        return base.with_columns(
            label=clean_text(fallback), description=pl.lit(None, dtype=pl.String)
        )
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
        label=clean_text(
            pl.when(pl.col("label").is_null() | (pl.col("label").str.strip_chars() == ""))
            .then(fallback)
            .otherwise(pl.col("label"))
        ),
        description=clean_text(pl.col("description")),
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


def _key_series(offsets: np.ndarray, data: np.ndarray) -> pl.Series:
    """Keys handed over by the native reader (Arrow offsets + UTF-8 bytes) as a String Series."""
    import pyarrow as pa

    arr = pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data)
    )
    return pl.Series("key", arr, dtype=pl.String)


def _fast_tsv(path: Path, threads: int, options: dict[str, Any]) -> KnowledgeGraph | None:
    """A plain tab-separated triples file read natively (keys hashed once, no string frames).

    Only for what the native reader does exactly as :func:`kg2tool.kg.io.read_triples` would:
    an uncompressed .tsv/.txt, tab separator, columns 0, 1, 2; the header line is detected
    here. Anything else, and any file the native reader gives up on (a malformed line, a
    blank line, bytes that are not UTF-8), returns None: the general reader names the place.
    """
    from kg2tool.kg.textfile import format_of as _format_of
    from kg2tool.kg.triples import looks_like_header as _looks_like_header

    suffix, gz = _format_of(path)
    fmt = str(options.get("format") or suffix).lower().lstrip(".")
    if (
        gz
        or fmt not in ("tsv", "txt")
        or set(options) - {"format", "separator", "columns", "has_header"}
    ):
        return None
    if options.get("separator") not in (None, "\t", "\\t", "tab"):
        return None
    if options.get("columns") not in (None, (0, 1, 2), [0, 1, 2]):
        return None
    try:
        with open(path, "rb") as fh:
            first = fh.readline()
        fields = first.decode("utf-8").rstrip("\r\n").split("\t")
    except (OSError, UnicodeDecodeError):
        return None
    has_header = options.get("has_header")
    detected = has_header is None and options.get("columns") is None and _looks_like_header(fields)
    if detected and _role_order(fields) != [0, 1, 2]:
        return None  # named columns in another order: the general reader maps them
    start = len(first) if (has_header or detected) else 0
    t0 = time.perf_counter()
    try:
        got = _core.read_tsv_ids(str(path), start, threads)
    except RuntimeError:
        return None
    if not got["ok"]:
        return None
    ent_keys = _key_series(got["entity_offsets"], got["entity_bytes"])
    rel_keys = _key_series(got["relation_offsets"], got["relation_bytes"])
    report: dict[str, Any] = {"triples": len(got["heads"])}
    if detected:
        report["header_line"] = 1
    return KnowledgeGraph._from_ids(
        got["heads"],
        got["relations"],
        got["tails"],
        ent_keys,
        rel_keys,
        KGTables(triples=pl.DataFrame(schema={"head": pl.String}), report=report, source=str(path)),
        threads=threads,
        t0=t0,
    )


def _role_order(fields: list[str]) -> list[int] | None:
    from kg2tool.kg.triples import role_columns as _role_columns

    return _role_columns(fields)


def _codes(col: pl.Series, keys: pl.Series) -> np.ndarray:
    """Dense int32 ids of ``col`` values in the sorted ``keys`` (all values must be present)."""
    return col.cast(pl.Enum(keys)).to_physical().cast(pl.Int32).to_numpy()


class KnowledgeGraph:
    """A KG with id tables (Polars) and a native CSR graph; build with ``load`` or ``from_tables``."""

    def __init__(
        self,
        native: _core.Graph,
        entities: Table,
        relations: Table,
        entity_types: Table,
        type_labels: Table,
        *,
        report: dict[str, Any] | None = None,
        source: str = "",
        snapshot: str | None = None,
    ) -> None:
        """Tables are frames or loaders (called once, on first use: a snapshot's names)."""
        self.native = native
        self._tables: dict[str, Table] = {
            "entities": entities,
            "relations": relations,
            "entity_types": entity_types,
            "type_labels": type_labels,
        }
        self.report = dict(report or {})
        self.source = source
        self.snapshot = snapshot
        self._triples: pl.DataFrame | None = None
        self._entity_index: dict[str, int] | None = None
        self._relation_index: dict[str, int] | None = None

    def _table(self, name: str) -> pl.DataFrame:
        table = self._tables[name]
        if not isinstance(table, pl.DataFrame):
            table = self._tables[name] = table()
        return table

    @property
    def entities(self) -> pl.DataFrame:
        """id, key, label, description of every entity (row i is id i)."""
        return self._table("entities")

    @property
    def relations(self) -> pl.DataFrame:
        """id, key, label, description of every relation (row i is id i)."""
        return self._table("relations")

    @property
    def entity_types(self) -> pl.DataFrame:
        """(entity id, type key) pairs."""
        return self._table("entity_types")

    @property
    def type_labels(self) -> pl.DataFrame:
        """id, key, label, description of every type key."""
        return self._table("type_labels")

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
        return cls._from_ids(heads, rels, tails, ent_keys, rel_keys, tables, threads=threads, t0=t0)

    @classmethod
    def _from_ids(
        cls,
        heads: np.ndarray,
        rels: np.ndarray,
        tails: np.ndarray,
        ent_keys: pl.Series,
        rel_keys: pl.Series,
        tables: KGTables,
        *,
        threads: int,
        t0: float,
    ) -> KnowledgeGraph:
        """The CSR and id tables from int32 id columns over sorted keys (+ the label tables)."""
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
            triples_read=len(heads),
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
        verify: bool | None = None,
        strict: bool = False,
        **read_options: Any,
    ) -> KnowledgeGraph:
        """Load a bundled KG by name (``codex-s``), a snapshot, a canonical KG directory, a
        benchmark folder (``train.txt`` ...) or a triples file.

        ``strict`` makes label/type rows naming keys outside the triples an error instead of
        skipped and counted; ``read_options`` (``separator``, ``columns``, ``has_header``,
        ``format``) go to :func:`kg2tool.kg.io.read_triples` for a single file.
        """
        from kg2tool.kg import bundled as datasets
        from kg2tool.kg import io

        path = Path(name_or_path)
        if path.is_dir():
            if is_snapshot(path):
                return cls.open_snapshot(path, verify=verify)
            return cls.from_tables(
                io.read_kg_dir(path, splits=splits, strict=strict), threads=threads
            )
        if path.is_file():
            fast = _fast_tsv(path, threads, read_options)
            if fast is not None:
                return fast
            return cls.from_tables(io.read_triples(path, **read_options), threads=threads)
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
    def open_snapshot(
        cls, path: str | os.PathLike[str], *, verify: bool | None = None
    ) -> KnowledgeGraph:
        """Memory-map a snapshot. By default the cheap check only (manifest, sizes, headers,
        checksums of small files; see :mod:`kg2tool.kg.snapshot`) and names read on first use;
        ``verify=True`` (or :meth:`validate` later) checks every checksum and CSR invariant
        now, ``verify=False`` the invariants without checksums."""
        arrays, loaders, meta = load_snapshot(path, verify=verify)
        try:
            n_ent, n_rel, n_typ = (
                int(meta[k]) for k in ("num_entities", "num_relations", "num_types")
            )
            native = _core.Graph(n_ent, n_rel, n_typ, dict(arrays), validate=verify is not None)
            rows = meta["table_rows"]
            counts = (rows["entities"], rows["relations"], rows["type_labels"])
            tables = [loaders[k] for k in ("entities", "relations", "entity_types", "type_labels")]
            if verify is not None:
                tables = [load() for load in tables]
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"{path}: inconsistent snapshot ({exc})") from None
        if counts != (n_ent, n_rel, n_typ):
            raise SnapshotError(f"{path}: id tables do not match the graph's counts")
        return cls(
            native, *tables, report=meta.get("report", {}), source=str(path), snapshot=str(path)
        )

    def validate(self, *, threads: int = 0) -> None:
        """The full check: every CSR invariant (native) and, for a snapshot, every file's
        checksum, in parallel; raises SnapshotError (or ValueError for an in-memory graph)."""
        from concurrent.futures import ThreadPoolExecutor

        from kg2tool.kg.snapshot import verify_checksums

        with ThreadPoolExecutor(max_workers=1) as pool:
            crc = (
                pool.submit(verify_checksums, self.snapshot, threads=threads)
                if self.snapshot
                else None
            )
            try:
                _core.Graph(
                    self.num_entities,
                    self.num_relations,
                    int(self.native.num_types),
                    dict(self.native.arrays),
                    validate=True,
                )
            except ValueError as exc:
                if crc is not None:
                    crc.result()  # a checksum mismatch explains a broken invariant better
                    raise SnapshotError(f"{self.snapshot}: inconsistent snapshot ({exc})") from None
                raise
            if crc is not None:
                crc.result()

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
            **self.load_report(),
        }

    def load_report(self) -> dict[str, int]:
        """What the loader skipped or detected: unknown label keys, header line, literals, ..."""
        shown = ("skipped_unknown_keys", "header_line", "literal_triples", "blank_node_triples")
        return {
            k: int(v)
            for k, v in self.report.items()
            if isinstance(v, int) and v and k.startswith(shown)
        }

    def __repr__(self) -> str:
        return (
            f"KnowledgeGraph({self.num_entities} entities, {self.num_relations} relations, "
            f"{self.num_triples} triples)"
        )
