"""The tool runtime: executes catalogue APIs over the graph, by entity *name*, deterministically.

Entity names. A model sees and types names, not ids, so every entity has one *display name*:
its label when no other entity shares that label, else the label with a qualifier a reader
understands: a short form of the entity's description (``"Dallas (American television soap
opera)"``), the part of speech of a WordNet sense, or last a counter (``"Dallas (2)"``),
never the raw key. Results always use
display names, so feeding a result back into a later call resolves to exactly that entity
(replay is exact even in KGs where 219 labels are shared, like FB15k-237). Input names resolve
in this order: display name, exact label, exact key, then case-insensitively (display name or
label). A label shared by several entities is never guessed: the call returns an
``ambiguous_entity`` error listing the candidates (display name, key, description).

Determinism. Results are sorted by (label, key), the order of the precomputed ``rank`` array,
and serialised with orjson in a fixed key order, so recorded observations replay byte for byte.

Errors are values, never exceptions from deep inside: ``CallResult.error`` is
``{"error": kind, "message": ..., "suggestions": [...]}`` (plus ``candidates`` for ambiguity),
kinds: unknown_api, malformed_arguments, missing_argument, unexpected_argument,
invalid_argument, unknown_entity, ambiguous_entity. An entity inside a list argument (list
APIs, set operations) that is not a string or does not resolve is named with its position:
the message starts ``humans[2]: ...`` and the error adds ``"argument": "humans"`` and
``"position": 2`` (0-based); the first bad entity of the list is reported.

List APIs (``kind="relation_list"``, see :mod:`kg2tool.tools.catalog`) take a list of names and return
the *union* of every entity's neighbours as one flat list, in the same (label, key) order and
encoding as any result, without duplicates. A flat union, not a per-entity mapping: it is the
set the next step of a multi-hop query works on (the next list call takes it back as is), it
replays byte for byte like any other result, and a per-entity answer is what the single-entity
API is for. Duplicates in the argument are allowed; an empty list gives ``[]``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import polars as pl

from kg2tool.tools.catalog import LIST_KIND, Api, ApiCatalog, close_api_names

__all__ = ["CallResult", "ToolRuntime"]

_EMPTY = np.zeros(0, dtype=np.int32)


@dataclass(frozen=True)
class CallResult:
    """Outcome of one tool call: entity names and ids on success, a structured error otherwise."""

    api: str
    arguments: Any
    result: list[str] = field(default_factory=list)
    entity_ids: np.ndarray = field(default_factory=lambda: _EMPTY)
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.error is None

    def to_json(self) -> str:
        """The observation text: the JSON list of names, or the error object (stable order)."""
        return orjson.dumps(self.result if self.error is None else self.error).decode()


# Words a shortened description does not end on ("film directed by" -> "film").
_QUAL_STOP = frozenset(
    "of in by with to from at on for and or the a an that which who whose as near "
    "directed produced based adapted published located held starring".split()
)
_SYNSET_POS = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}
_SYNSET_KEY = re.compile(r"^.+\.([nvasr])\.(\d+)$")


def _short_description(desc: str, max_words: int) -> str:
    """The first clause of a description, at most ``max_words`` words, cut before a
    connecting word ("2002 film directed by Rob Marshall adapted from ..." -> "2002 film
    directed by Rob Marshall"); "" when there is none."""
    text = re.sub(r"\s*\([^()]*\)", "", desc.strip())  # "(physiology) moving of ..."
    text = re.split(r"[;,:(\[]| -- | - ", text, maxsplit=1)[0].strip().rstrip(".")
    words = text.split()
    if len(words) > max_words:
        cut = [k for k in range(2, max_words + 1) if words[k].lower() in _QUAL_STOP]
        rel = [k for k in cut if words[k].lower() in ("that", "which", "who", "whose")]
        words = words[: (rel or cut)[0 if rel else -1]] if cut else words[:max_words]
    while words and words[-1].lower() in _QUAL_STOP:
        words.pop()
    return " ".join(words)


def _display_names(ents: pl.DataFrame) -> list[str]:
    """Unique display names: the label, qualified where several entities share it (see the
    module doc). Each sharing entity takes the first qualifier unique within its label's
    group: a short description, a longer one, a WordNet sense's part of speech, a counter."""
    labels = ents["label"].to_list()
    keys = ents["key"].to_list()
    descs = ents["description"].to_list()
    names = list(labels)
    shared = ents.filter(pl.col("_shared") > 1).group_by("label").agg(pl.col("id").sort_by("key"))
    taken = set(labels)
    for label, ids in sorted(zip(shared["label"].to_list(), shared["id"].to_list(), strict=True)):
        left = list(ids)
        levels = [
            lambda i: _short_description(descs[i], 7),
            lambda i: _short_description(descs[i], 16),
            lambda i: _SYNSET_POS[m.group(1)] if (m := _SYNSET_KEY.match(keys[i])) else "",
        ]
        for qualify in levels:
            quals = {i: qualify(i) for i in left}
            counts: dict[str, int] = {}
            for q in quals.values():
                counts[q] = counts.get(q, 0) + 1
            for i in list(left):
                q = quals[i]
                name = f"{label} ({q})"
                if q and counts[q] == 1 and name not in taken:
                    names[i] = name
                    taken.add(name)
                    left.remove(i)
        for i in left:  # last resort: the entity's position among those sharing the label
            n = ids.index(i) + 1
            name = f"{label} ({n})"
            while name in taken:
                n += len(ids)
                name = f"{label} ({n})"
            names[i] = name
            taken.add(name)
    return names


class _CallError(Exception):
    """Internal: carries a structured error out of argument resolution."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload["message"])
        self.payload = payload


def _err(kind: str, message: str, suggestions: Sequence[str] = (), **extra: Any) -> dict:
    """A structured error value with a fixed key order."""
    return {"error": kind, "message": message, "suggestions": list(suggestions), **extra}


class ToolRuntime:
    """Executes the APIs of an :class:`ApiCatalog` over a KnowledgeGraph."""

    def __init__(self, kg: Any, catalog: ApiCatalog, max_candidates: int = 10) -> None:
        """Build the name lookup tables once (Polars), so calls are dict lookups + one CSR slice."""
        self.kg = kg
        self.catalog = catalog
        self.max_candidates = max_candidates
        self._api_hints: dict[str, list[str]] = {}  # unknown API name -> close names
        ents = kg.entities.select(
            pl.col("id").cast(pl.Int32),
            pl.col("key").cast(pl.String),
            pl.coalesce(pl.col("label"), pl.col("key")).cast(pl.String).alias("label"),
            pl.col("description").cast(pl.String).fill_null(""),
        ).sort("id")
        if ents.height and not np.array_equal(ents["id"].to_numpy(), np.arange(ents.height)):
            raise ValueError("entities frame must have dense ids 0..n-1")
        ents = ents.with_columns(pl.len().over("label").alias("_shared"))
        ents = ents.with_columns(pl.Series("name", _display_names(ents), dtype=pl.String))
        self.names: list[str] = ents["name"].to_list()
        self.labels: list[str] = ents["label"].to_list()
        self.keys: list[str] = ents["key"].to_list()
        self.descriptions: list[str] = ents["description"].to_list()
        order = ents.select("id", "label", "key").sort("label", "key", maintain_order=True)["id"]
        self.rank = np.empty(ents.height, dtype=np.int64)
        self.rank[order.to_numpy()] = np.arange(ents.height)
        self._by_name: dict[str, int] = dict(zip(self.names, range(ents.height), strict=True))
        self._by_key: dict[str, int] = dict(zip(self.keys, range(ents.height), strict=True))
        shared = (
            ents.filter(pl.col("_shared") > 1).group_by("label").agg(pl.col("id").sort_by("key"))
        )
        self._shared_label: dict[str, list[int]] = dict(
            zip(shared["label"], shared["id"].to_list(), strict=True)
        )
        folded = ents.select(
            "id",
            pl.col("name").str.to_lowercase().alias("n"),
            pl.col("label").str.to_lowercase().alias("l"),
        )
        fold = (
            pl.concat(
                [
                    folded.select("id", pl.col("n").alias("f")),
                    folded.select("id", pl.col("l").alias("f")),
                ]
            )
            .unique()
            .group_by("f")
            .agg(pl.col("id").sort())
        )
        self._by_fold: dict[str, list[int]] = dict(
            zip(fold["f"], fold["id"].to_list(), strict=True)
        )
        self._label_list: list[str] = sorted(set(self.labels))

    def with_catalog(self, catalog: ApiCatalog) -> ToolRuntime:
        """This runtime over another catalogue of the same KG (e.g. with list APIs), sharing
        the name tables (no rebuild)."""
        other = object.__new__(ToolRuntime)
        other.__dict__.update(self.__dict__)
        other.catalog = catalog
        other._api_hints = {}  # close names depend on the catalogue
        other.__dict__.pop("_api_tables_cache", None)
        return other

    # ---------------------------------------------------------------- names

    def resolve(self, name: str) -> int:
        """Entity id of a name (see module doc); raises _CallError with a structured error."""
        eid = self._by_name.get(name)
        if eid is not None:
            return eid
        if name in self._shared_label:
            raise _CallError(self._ambiguous(name, self._shared_label[name]))
        eid = self._by_key.get(name)
        if eid is not None:
            return eid
        ids = self._by_fold.get(name.lower())
        if ids:
            if len(ids) == 1:
                return ids[0]
            raise _CallError(self._ambiguous(name, ids))
        close = difflib.get_close_matches(name, self._label_list, n=5, cutoff=0.6)
        sugg = sorted({self.names[i] for lab in close for i in self._ids_of_label(lab)})
        return self._raise(
            _err("unknown_entity", f"no entity is named {name!r}", sugg[: self.max_candidates])
        )

    def _ids_of_label(self, label: str) -> list[int]:
        """Ids carrying a label (one unless shared)."""
        return self._shared_label.get(label) or [self._by_name[label]]

    def _ambiguous(self, name: str, ids: list[int]) -> dict[str, Any]:
        """Error listing the entities a name could mean, with descriptions to choose from."""
        ids = sorted(ids, key=lambda i: self.rank[i])
        cands = [
            {"name": self.names[i], "key": self.keys[i], "description": self.descriptions[i]}
            for i in ids[: self.max_candidates]
        ]
        return _err(
            "ambiguous_entity",
            f"{len(ids)} entities are named {name!r}; call again with one of the candidate names",
            [c["name"] for c in cands],
            candidates=cands,
        )

    @staticmethod
    def _raise(payload: dict[str, Any]) -> int:
        """Raise a structured error (typed as returning, for resolve's signature)."""
        raise _CallError(payload)

    def names_of(self, entity_ids: np.ndarray | Sequence[int]) -> list[str]:
        """Display names of entity ids, in the order given."""
        return [self.names[i] for i in np.asarray(entity_ids, dtype=np.int64).tolist()]

    def sort_ids(self, entity_ids: np.ndarray) -> np.ndarray:
        """Entity ids ordered by (label, key): the deterministic result order."""
        ids = np.asarray(entity_ids, dtype=np.int32)
        return ids[np.argsort(self.rank[ids], kind="stable")]

    # ---------------------------------------------------------------- calls

    def _parse(
        self, api_name: str, arguments: Mapping[str, Any] | str | bytes | None
    ) -> tuple[Api, dict]:
        """Validate the API name and arguments against its schema (structured errors)."""
        if api_name not in self.catalog:
            close = self._api_hints.get(str(api_name))
            if close is None:
                close = self._api_hints[str(api_name)] = close_api_names(
                    str(api_name), self.catalog.names
                )
            raise _CallError(_err("unknown_api", f"no API is named {api_name!r}", close))
        api = self.catalog[api_name]
        if isinstance(arguments, str | bytes | bytearray):
            try:
                arguments = orjson.loads(arguments) if arguments.strip() else {}
            except orjson.JSONDecodeError as exc:
                raise _CallError(
                    _err("malformed_arguments", f"arguments are not valid JSON: {exc}")
                ) from None
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise _CallError(
                _err("malformed_arguments", "arguments must be a JSON object of named parameters")
            )
        params = api.param_names
        extra = sorted(set(arguments) - set(params))
        missing = [p for p in params if p not in arguments]
        if missing:
            raise _CallError(
                _err(
                    "missing_argument",
                    f"{api.name} needs argument(s) {missing}" + (f"; got {extra}" if extra else ""),
                    list(params),
                )
            )
        if extra:
            raise _CallError(
                _err(
                    "unexpected_argument",
                    f"{api.name} takes only {list(params)}; got {extra}",
                    list(params),
                )
            )
        return api, dict(arguments)

    def _entity_arg(self, api: Api, param: str, value: Any) -> int:
        """Resolve one string argument to an entity id."""
        if not isinstance(value, str):
            raise _CallError(
                _err(
                    "invalid_argument",
                    f"argument {param!r} of {api.name} must be a string (an entity name)",
                )
            )
        return self.resolve(value)

    def _list_arg(self, api: Api, param: str, value: Any) -> np.ndarray:
        """Resolve a list-of-names argument to sorted unique entity ids; a bad item is named
        with its position (``param[i]: ...``, plus ``argument`` and ``position`` fields)."""
        if not isinstance(value, list):
            raise _CallError(
                _err(
                    "invalid_argument",
                    f"argument {param!r} of {api.name} must be a list of entity names",
                )
            )
        ids = np.empty(len(value), dtype=np.int32)
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise _CallError(
                    _err(
                        "invalid_argument",
                        f"{param}[{i}]: argument {param!r} of {api.name} must be a list of "
                        f"entity names; item {i} is {orjson.dumps(v).decode()[:40]}",
                        argument=param,
                        position=i,
                    )
                )
            try:
                ids[i] = self.resolve(v)
            except _CallError as exc:
                p = exc.payload
                raise _CallError(
                    {**p, "message": f"{param}[{i}]: {p['message']}", "argument": param,
                     "position": i}
                ) from None  # fmt: skip
        return np.unique(ids)

    def _list_relation(self, api: Api, args: dict) -> np.ndarray:
        """Execute a list API: the union of every listed entity's neighbours (sorted ids)."""
        param = api.param_names[0]
        heads = self._list_arg(api, param, args[param])
        if len(heads) == 0:
            return _EMPTY
        _, ids = self.kg.neighbors(heads, int(api.relation_id), inverse=api.direction == "inverse")
        return np.unique(np.asarray(ids, dtype=np.int32))

    def _ok(self, api: Api, arguments: Any, ids: np.ndarray) -> CallResult:
        """Success result with ids in the deterministic (label, key) order."""
        ids = self.sort_ids(ids)
        return CallResult(api.name, arguments, self.names_of(ids), ids)

    def _set_op(self, api: Api, args: dict) -> np.ndarray:
        """Execute a set-operation API on resolved name lists."""
        a = self._list_arg(api, "first", args["first"])
        b = self._list_arg(api, "second", args["second"])
        if api.operation == "intersection":
            return np.intersect1d(a, b, assume_unique=True)
        if api.operation == "union":
            return np.union1d(a, b)
        return np.setdiff1d(a, b, assume_unique=True)

    def call(self, api_name: str, arguments: Mapping[str, Any] | str | bytes | None) -> CallResult:
        """Execute one tool call by name with JSON (or dict) arguments; never raises on bad input."""
        try:
            api, args = self._parse(api_name, arguments)
            if api.kind == "set_operation":
                return self._ok(api, arguments, self._set_op(api, args))
            if api.kind == LIST_KIND:
                return self._ok(api, arguments, self._list_relation(api, args))
            eid = self._entity_arg(api, api.param_names[0], args[api.param_names[0]])
            offsets, ids = self.kg.neighbors(
                np.array([eid], dtype=np.int32),
                int(api.relation_id),
                inverse=api.direction == "inverse",
            )
            return self._ok(
                api, arguments, np.asarray(ids[offsets[0] : offsets[1]], dtype=np.int32)
            )
        except _CallError as exc:
            return CallResult(str(api_name), arguments, error=exc.payload)

    def call_many(
        self, calls: Iterable[tuple[str, Mapping[str, Any] | str] | Mapping[str, Any]]
    ) -> list[CallResult]:
        """Execute many calls; relation calls share one batched neighbors() per direction.

        Each call is ``(api_name, arguments)`` or ``{"name": ..., "arguments": ...}``.
        """
        results: list[CallResult | None] = []
        pending: dict[bool, list[tuple[int, Api, Any, int]]] = {False: [], True: []}
        for item in calls:
            if isinstance(item, Mapping):
                name, arguments = item.get("name", ""), item.get("arguments")
            else:
                name, arguments = item
            try:
                api, args = self._parse(name, arguments)
                if api.kind == "set_operation":
                    results.append(self._ok(api, arguments, self._set_op(api, args)))
                    continue
                if api.kind == LIST_KIND:
                    results.append(self._ok(api, arguments, self._list_relation(api, args)))
                    continue
                eid = self._entity_arg(api, api.param_names[0], args[api.param_names[0]])
                pending[api.direction == "inverse"].append((len(results), api, arguments, eid))
                results.append(None)
            except _CallError as exc:
                results.append(CallResult(str(name), arguments, error=exc.payload))
        for inverse, items in pending.items():
            if not items:
                continue
            heads = np.fromiter((it[3] for it in items), dtype=np.int32, count=len(items))
            rels = np.fromiter(
                (it[1].relation_id for it in items), dtype=np.int32, count=len(items)
            )
            offsets, ids = self.kg.neighbors(heads, rels, inverse=inverse)
            for j, (pos, api, arguments, _) in enumerate(items):
                results[pos] = self._ok(api, arguments, ids[offsets[j] : offsets[j + 1]])
        return results  # type: ignore[return-value]

    def call_ids(
        self, api_name: str, entity_ids: np.ndarray | Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fast path: (offsets, ids) of a relation API for many entity ids, slices sorted by id.

        Raises UnknownNameError for an unknown API and ValueError for a set operation: this is
        the programmatic path (sampling, verification), not the model-facing one.
        """
        api = self.catalog[api_name]
        if api.kind != "relation":
            raise ValueError(f"{api_name!r} is a set operation; call_ids takes relation APIs")
        ids = np.ascontiguousarray(entity_ids, dtype=np.int32)
        return self.kg.neighbors(ids, int(api.relation_id), inverse=api.direction == "inverse")

    # ---------------------------------------------------------------- vectorised (many calls)

    @property
    def encoded_names(self) -> pl.Series:
        """Each display name as a JSON string literal, exactly as orjson writes it in results."""
        enc = self.__dict__.get("_encoded_names")
        if enc is None:
            enc = pl.Series("name", [orjson.dumps(n).decode() for n in self.names], dtype=pl.String)
            self.__dict__["_encoded_names"] = enc
        return enc

    def _api_tables(self) -> tuple[pl.Series, np.ndarray, np.ndarray, np.ndarray]:
        """API names, relation ids, inverse flags and relation-kind flags, by catalogue index."""
        got = self.__dict__.get("_api_tables_cache")
        if got is None:
            apis = self.catalog.apis
            got = (
                pl.Series("api", [a.name for a in apis], dtype=pl.String),
                np.array([int(a.relation_id or 0) for a in apis], dtype=np.int32),
                np.array([a.direction == "inverse" for a in apis], dtype=bool),
                np.array([a.kind == "relation" for a in apis], dtype=bool),
            )
            self.__dict__["_api_tables_cache"] = got
        return got

    def call_ids_batch(
        self, api_names: Sequence[str] | pl.Series, entity_ids: np.ndarray | Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Many relation calls at once: (offsets int64[n+1], ids int32), call i's result in
        ``ids[offsets[i]:offsets[i+1]]`` in the runtime's (label, key) result order.

        Like :meth:`call_ids`, the programmatic path: unknown APIs raise UnknownNameError-like
        ``ValueError`` and set operations ``ValueError``.
        """
        names, rel_of, inv_of, is_rel = self._api_tables()
        api = pl.Series(api_names, dtype=pl.String)
        try:
            idx = api.replace_strict(names, pl.int_range(names.len(), eager=True)).to_numpy()
        except Exception:  # an unknown name: say which
            unknown = sorted(set(api.to_list()) - set(names.to_list()))
            raise ValueError(f"unknown API(s) {unknown[:5]}") from None
        if len(idx) and not is_rel[idx].all():
            raise ValueError("call_ids_batch takes relation APIs, not set operations")
        ents = np.ascontiguousarray(entity_ids, dtype=np.int32)
        n = len(ents)
        counts = np.zeros(n, np.int64)
        got = []
        for inverse in (False, True):
            sel = np.flatnonzero(inv_of[idx] == inverse)
            if len(sel) == 0:
                continue
            off, ids = self.kg.neighbors(ents[sel], rel_of[idx[sel]], inverse=inverse)
            off = np.asarray(off, np.int64)
            counts[sel] = np.diff(off)
            got.append((sel, off, np.asarray(ids, np.int32)))
        offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
        values = np.zeros(int(offsets[-1]), np.int32)
        for sel, off, ids in got:
            seg = np.diff(off)
            dst = np.repeat(offsets[sel] - off[:-1], seg) + np.arange(len(ids))
            values[dst] = ids
        seg_of = np.repeat(np.arange(n), counts)
        values = values[np.lexsort((self.rank[values], seg_of))] if len(values) else values
        return offsets, values

    def encode_results(self, offsets: np.ndarray, ids: np.ndarray) -> pl.Series:
        """The observation text of many successful calls: per slice of ``ids`` (already in
        result order) the JSON list of display names, byte for byte :meth:`CallResult.to_json`."""
        import pyarrow as pa

        enc = self.encoded_names.gather(np.asarray(ids, np.int64)).to_arrow()
        lists = pl.from_arrow(
            pa.LargeListArray.from_arrays(pa.array(np.asarray(offsets, np.int64)), enc)
        )
        return pl.select(
            pl.concat_str(pl.lit("["), pl.lit(lists).list.join(","), pl.lit("]")).alias("obs")
        ).to_series()
