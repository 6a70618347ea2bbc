"""Read a Wikidata JSON dump (or a slice of one) into string-keyed KG tables, streaming.

The dump format is one JSON entity per line inside a JSON array: a line ``[``, then
``{...},`` lines, a last ``{...}`` and a line ``]`` (plain ``.json``, ``.json.gz`` or
``.json.bz2``). A slice (some entity lines, with or without the brackets) reads too.

What becomes what:

- item-to-item claims (main snak a ``wikibase-entityid`` of an item) of the chosen
  properties become triples ``Q… P… Q…``; claims of rank ``deprecated`` are left out,
  ``preferred`` and ``normal`` ones kept;
- ``P31`` (instance of) claims become entity types, not edges; type keys are labelled from
  the same dump;
- labels and descriptions come from the chosen language, else ``mul``, else ``en``; an
  entity without any of them is named by its key; property entities label the relations;
- qualifiers, literal values (strings, dates, quantities, coordinates, ...), values that
  are properties or lexemes, ``novalue``/``somevalue`` snaks, lexeme entities and other
  entity types are left out and counted in the report.

Memory holds the kept triples, types and texts (in compact chunks), never the file.
"""

from __future__ import annotations

import bz2
import gzip
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import orjson
import polars as pl

from kg2tool.errors import InputError
from kg2tool.kg.tables import TEXT_SCHEMA, TRIPLE_SCHEMA, TYPE_SCHEMA, KGTables

__all__ = ["INSTANCE_OF", "is_wikidata_dump", "read_wikidata_dump"]

#: The property whose claims become entity types.
INSTANCE_OF = "P31"
_SUFFIXES = (".json", ".json.gz", ".json.bz2")
_FALLBACK_LANGUAGES = ("mul", "en")
_CHUNK_ROWS = 1 << 19
_TEXT_ROW_SCHEMA = {**TEXT_SCHEMA, "fallback": pl.Boolean}


def is_wikidata_dump(path: str | os.PathLike[str]) -> bool:
    """True for an existing file named ``*.json``, ``*.json.gz`` or ``*.json.bz2``."""
    p = Path(path)
    return p.is_file() and p.name.lower().endswith(_SUFFIXES)


class _Chunks:
    """Rows collected in lists and turned into Polars frames every ``_CHUNK_ROWS`` rows."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.rows: list[tuple] = []
        self.frames: list[pl.DataFrame] = []

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= _CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.frames.append(pl.DataFrame(self.rows, schema=self.schema, orient="row"))
            self.rows = []

    def frame(self) -> pl.DataFrame:
        self.flush()
        return pl.concat(self.frames) if self.frames else pl.DataFrame(schema=self.schema)


def _pick(texts: dict[str, Any] | None, lang: str) -> tuple[str | None, bool]:
    """The text in ``lang``, else the first fallback language's; (text, used a fallback)."""
    if not texts:
        return None, False
    for i, code in enumerate((lang, *(c for c in _FALLBACK_LANGUAGES if c != lang))):
        entry = texts.get(code)
        if isinstance(entry, dict) and isinstance(entry.get("value"), str) and entry["value"]:
            return entry["value"], i > 0
    return None, False


def _item_id(value: Any) -> str | None:
    """The Q-id of a ``wikibase-entityid`` value that is an item, else None."""
    if not isinstance(value, dict) or value.get("entity-type") != "item":
        return None
    qid = value.get("id")
    if isinstance(qid, str) and qid:
        return qid
    num = value.get("numeric-id")
    return f"Q{num}" if isinstance(num, int) else None


def _open(path: Path, stack: ExitStack, progress: Any) -> tuple[IO[bytes], Any]:
    """The dump's decompressed byte stream (gzip/bzip2 by suffix) and the progress task id."""
    try:
        raw: IO[bytes] = stack.enter_context(open(path, "rb"))
    except FileNotFoundError:
        raise InputError("no such file", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from None
    task = None
    if progress is not None:
        task = progress.add_task("reading dump", total=path.stat().st_size)
        raw = stack.enter_context(progress.wrap_file(raw, task_id=task))
    name = path.name.lower()
    if name.endswith(".gz"):
        return stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb")), task
    if name.endswith(".bz2"):
        return stack.enter_context(bz2.BZ2File(raw, mode="rb")), task
    return raw, task


def _lines(stream: IO[bytes], path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(1-based line, byte offset in the uncompressed text, line bytes) of every line."""
    kind = "bzip2" if path.name.lower().endswith(".bz2") else "gzip"
    offset = 0
    number = 0
    while True:
        try:
            line = stream.readline()
        except (OSError, EOFError) as exc:
            what = "truncated" if isinstance(exc, EOFError) else f"not a valid {kind} file"
            raise InputError(
                f"{what} ({exc}) after byte {offset} of the uncompressed text; nothing was written",
                path=str(path),
            ) from None
        if not line:
            return
        number += 1
        yield number, offset, line
        offset += len(line)


_COUNTS = (
    "items",
    "property_entities",
    "lexemes",
    "other_entities",
    "deprecated_claims",
    "novalue_snaks",
    "somevalue_snaks",
    "literal_claims",
    "non_item_claims",
    "qualifiers",
    "other_property_claims",
    "type_claims",
)


def _property_filter(properties: Iterable[str] | None, path: Path) -> set[str] | None:
    """The P-ids to keep as relations (None: all); an empty or malformed list is an error."""
    keep = None if properties is None else {str(x).strip().upper() for x in properties}
    if keep is not None and not keep:
        raise InputError("no properties given", path=str(path))
    if keep is not None:
        bad = sorted(x for x in keep if not (x[:1] == "P" and x[1:].isdigit()))
        if bad:
            raise InputError(f"not Wikidata property ids: {', '.join(bad)}", path=str(path))
    return keep


def _progress_bar(stack: ExitStack) -> Any:
    """A transient rich bar with bytes/s, entered on ``stack``."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return stack.enter_context(
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
    )


def _entity(raw: bytes, number: int, offset: int, path: Path) -> dict[str, Any] | None:
    """The entity on one dump line (None for the array brackets and blank lines)."""
    line = raw.strip()
    if line in (b"", b"[", b"]"):
        return None
    if line.endswith(b","):
        line = line[:-1]
    try:
        entity = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        cut = not raw.endswith(b"\n")
        what = "cut off mid-line (truncated dump?)" if cut else f"not a JSON entity ({exc})"
        raise InputError(
            f"{what} at byte offset {offset} of the uncompressed text; nothing was written",
            path=str(path),
            line=number,
        ) from None
    if not isinstance(entity, dict) or not isinstance(entity.get("id"), str):
        raise InputError(
            f"not a Wikidata entity (no id) at byte offset {offset}",
            path=str(path),
            line=number,
        )
    return entity


def _read_claims(
    key: str,
    claims: dict[str, Any],
    keep: set[str] | None,
    counts: dict[str, int],
    triples: _Chunks,
    types: _Chunks,
) -> None:
    """Add an item's item-valued claims to ``triples`` (P31 to ``types``), counting the rest."""
    for pid, statements in claims.items():
        if not isinstance(statements, list):
            continue
        wanted = pid == INSTANCE_OF or keep is None or pid in keep
        for st in statements:
            if not isinstance(st, dict):
                continue
            if not wanted:
                counts["other_property_claims"] += 1
                continue
            if st.get("rank") == "deprecated":
                counts["deprecated_claims"] += 1
                continue
            quals = st.get("qualifiers")
            if isinstance(quals, dict):
                counts["qualifiers"] += sum(len(v) for v in quals.values() if isinstance(v, list))
            snak = st.get("mainsnak") or {}
            snaktype = snak.get("snaktype")
            if snaktype in ("novalue", "somevalue"):
                counts[f"{snaktype}_snaks"] += 1
                continue
            dv = snak.get("datavalue") or {}
            if dv.get("type") != "wikibase-entityid":
                counts["literal_claims"] += 1
                continue
            target = _item_id(dv.get("value"))
            if target is None:
                counts["non_item_claims"] += 1
            elif pid == INSTANCE_OF:
                counts["type_claims"] += 1
                types.add((key, target))
            else:
                triples.add((key, pid, target))


def _tables(
    triples: _Chunks,
    types: _Chunks,
    texts: _Chunks,
    counts: dict[str, int],
    keep: set[str] | None,
    path: Path,
) -> KGTables:
    """The collected rows as KG tables: texts and types only for keys of the triples."""
    triple_frame = triples.frame()
    if triple_frame.height == 0:
        raise InputError(
            "no item-to-item claims found"
            + (f" for properties {', '.join(sorted(keep))}" if keep else ""),
            path=str(path),
        )
    text = texts.frame().unique("key", keep="first", maintain_order=True)
    entity_keys = pl.concat([triple_frame["head"], triple_frame["tail"]]).unique()
    relation_keys = triple_frame["relation"].unique()
    type_frame = types.frame().unique(maintain_order=True)
    type_frame = type_frame.filter(pl.col("key").is_in(entity_keys.implode()))
    type_keys = type_frame["type"].unique()

    def texts_of(keys: pl.Series) -> pl.DataFrame | None:
        out = text.filter(pl.col("key").is_in(keys.implode())).sort("key")
        return out.select(list(TEXT_SCHEMA)) if out.height else None

    entities = texts_of(entity_keys)
    report = {
        "triples": triple_frame.height,
        **counts,
        "entities_without_label": int(
            entity_keys.len() - (0 if entities is None else entities["label"].is_not_null().sum())
        ),
        "labels_from_fallback_language": int(
            0 if entities is None else entities.join(text, on="key")["fallback"].sum()
        ),
    }
    return KGTables(
        triples=triple_frame,
        entities=entities,
        relations=texts_of(relation_keys),
        entity_types=type_frame if type_frame.height else None,
        type_labels=texts_of(type_keys),
        report=report,
        source=str(path),
    )


def read_wikidata_dump(
    path: str | os.PathLike[str],
    *,
    properties: Iterable[str] | None = None,
    lang: str = "en",
    progress: bool = False,
) -> KGTables:
    """Read a Wikidata JSON dump into :class:`KGTables` (see the module docstring for the rules).

    ``properties`` keeps only those P-ids as relations (default: every property with an
    item value); P31 always gives entity types. ``lang`` picks labels and descriptions
    (fallback ``mul``, then ``en``). A line that is not a JSON entity, including a last line
    cut off mid-way, is an InputError naming its line and byte offset. ``progress`` shows a
    bar with bytes/s and entity counts on stderr.
    """
    p = Path(path)
    keep = _property_filter(properties, p)
    triples = _Chunks(TRIPLE_SCHEMA)
    types = _Chunks(TYPE_SCHEMA)
    texts = _Chunks(_TEXT_ROW_SCHEMA)
    counts = dict.fromkeys(_COUNTS, 0)
    with ExitStack() as stack:
        bar = _progress_bar(stack) if progress else None
        stream, task = _open(p, stack, bar)
        for number, offset, raw in _lines(stream, p):
            if bar is not None and number % 10_000 == 0:
                bar.update(task, description=f"reading dump: {counts['items']:,} items")
            entity = _entity(raw, number, offset, p)
            if entity is None:
                continue
            key = entity["id"]
            kind = entity.get("type")
            if kind == "lexeme" or key.startswith("L"):
                counts["lexemes"] += 1
                continue
            if kind not in ("item", "property"):
                counts["other_entities"] += 1
                continue
            label, fb_label = _pick(entity.get("labels"), lang)
            desc, _ = _pick(entity.get("descriptions"), lang)
            if label is not None or desc is not None:
                texts.add((key, label, desc, fb_label))
            if kind == "property":
                counts["property_entities"] += 1
                continue
            counts["items"] += 1
            claims = entity.get("claims")
            if isinstance(claims, dict):
                _read_claims(key, claims, keep, counts, triples, types)
    return _tables(triples, types, texts, counts, keep, p)
