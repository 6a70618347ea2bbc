"""Read and write KGs as files: triple files (TSV/CSV/Parquet), RDF dumps, canonical directories.

Every reader returns a :class:`~kg2tool.tables.KGTables` of string keys; mapping keys to
ids is the graph build's job (``kg2tool.graph``). Readers keep duplicate triples (the graph
build drops and counts them) and raise :class:`~kg2tool.errors.InputError` naming the file,
the 1-based line and, where it helps, the 1-based column of the first problem.

Text files are parsed with Polars in bulk: the whole file becomes one column of lines that
is split and checked with vectorised expressions, so the happy path has no Python loop.

Canonical KG directory (what :func:`read_kg_dir` reads and :func:`write_kg_dir` writes)::

    triples.tsv | triples.parquet   head<TAB>relation<TAB>tail, no header (the training graph)
    valid.tsv, test.tsv             optional held-out splits, same format, kept apart
    entities.tsv                    optional, header key<TAB>label<TAB>description
    relations.tsv                   optional, header key<TAB>label<TAB>description
    entity_types.tsv                optional, header key<TAB>type (one row per pair)
    types.tsv                       optional, header key<TAB>label<TAB>description (type keys)

TSV files have no quoting: a field runs from tab to tab, quotes are ordinary characters.
Empty label/description fields mean "none". Writers replace tabs and newlines inside
labels and descriptions by spaces.
"""

from __future__ import annotations

import gzip
import io as _io
import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import polars as pl

from kg2tool.atomic import atomic_dir
from kg2tool.errors import READ_ERRORS, InputError
from kg2tool.tables import TEXT_SCHEMA, TRIPLE_SCHEMA, TYPE_SCHEMA, KGTables

__all__ = [
    "SPLIT_FILES",
    "read_kg",
    "read_kg_dir",
    "read_rdf",
    "read_split",
    "read_triples",
    "write_kg_dir",
]

PathLike = str | os.PathLike[str]

TEXT_FORMATS = {".tsv": "\t", ".txt": "\t", ".csv": ","}
RDF_FORMATS = {".nt": "N_TRIPLES", ".ttl": "TURTLE", ".nq": "N_QUADS", ".trig": "TRIG"}
#: File stem of each split in a canonical directory.
SPLIT_FILES = {"train": "triples", "valid": "valid", "test": "test"}
_TRIPLE_COLUMNS = ("head", "relation", "tail")
_SEPARATOR_CANDIDATES = ("\t", ",", ";", "|", " ")
_SEPARATOR_ALIASES = {"\\t": "\t", "tab": "\t", "comma": ",", "space": " "}


# --------------------------------------------------------------------------------------
# low-level text handling


def _format_of(path: Path) -> tuple[str, bool]:
    """Return (suffix without .gz, gzipped) so .tsv.gz reads like .tsv."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    return (suffixes[-1] if suffixes else ""), gz


def _read_bytes(path: Path, gz: bool) -> bytes:
    """Read a file, gunzipping it if asked; I/O and gzip failures become InputError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from None
    if gz:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"not a valid gzip file ({exc})", path=str(path)) from None
    return data


def _decode(data: bytes, path: Path) -> str:
    """Decode UTF-8 strictly; on failure name the line and byte column of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at byte column {column}); "
            "re-encode the file as UTF-8",
            path=str(path),
            line=line,
            column=column,
        ) from None
    return text.removeprefix("\ufeff")


def _lines(text: str) -> pl.DataFrame:
    """All non-blank lines as a frame (line: 1-based UInt32, raw: String), CRLF tolerated."""
    return (
        pl.DataFrame({"raw": text.split("\n")}, schema={"raw": pl.String})
        .with_row_index("line", offset=1)
        .with_columns(pl.col("raw").str.strip_suffix("\r"))
        .filter(pl.col("raw").str.strip_chars().str.len_bytes() > 0)
    )


def _fast_read(data: bytes, sep: str) -> pl.DataFrame | None:
    """Parse well-formed delimited text with Polars' CSV reader; None if anything looks off.

    Short lines, blank lines and empty fields come back as nulls and long lines raise, so a
    clean result means every line had the first line's field count and no empty field.
    """
    try:
        df = pl.read_csv(
            _io.BytesIO(data),
            separator=sep,
            has_header=False,
            quote_char=None,
            infer_schema=False,
            raise_if_empty=False,
        )
    except Exception:  # any parser complaint: the slow path finds and names the bad line
        return None
    if df.height == 0 or any(n for n in df.null_count().row(0)):
        return None
    return df


def _normalise_separator(separator: str, path: Path) -> str:
    """Accept one character (or an alias such as '\\t'); anything else is an unknown separator."""
    sep = _SEPARATOR_ALIASES.get(separator, separator)
    if not isinstance(sep, str) or len(sep) != 1 or sep in '\r\n"':
        raise InputError(
            f"unknown separator {separator!r}: give one character such as '\\t' or ','",
            path=str(path),
        )
    return sep


def _split_fields(lines: pl.DataFrame, sep: str) -> pl.DataFrame:
    """Add `fields` (list of strings) and `n` (their count) to a frame of lines."""
    return lines.with_columns(pl.col("raw").str.split(sep).alias("fields")).with_columns(
        pl.col("fields").list.len().alias("n")
    )


def _first_row(df: pl.DataFrame, mask: pl.Expr) -> dict | None:
    """The first row where mask holds, as a dict, or None."""
    hit = df.filter(mask).head(1)
    return hit.row(0, named=True) if hit.height else None


def _check_field_counts(df: pl.DataFrame, expected: int, sep: str, path: Path) -> None:
    """Every line must have exactly `expected` fields; report the first that does not."""
    bad = _first_row(df, pl.col("n") != expected)
    if bad is not None:
        raise InputError(
            f"expected {expected} fields separated by {sep!r}, found {bad['n']}",
            path=str(path),
            line=bad["line"],
        )


def _check_empty_fields(
    df: pl.DataFrame, indices: Sequence[int], names: Sequence[str], path: Path
) -> None:
    """The fields at `indices` must be non-empty; report the first empty one (line, column)."""
    checks = [pl.col("fields").list.get(i).str.len_bytes() == 0 for i in indices]
    bad = _first_row(df, pl.any_horizontal(checks))
    if bad is not None:
        for i, name in zip(indices, names, strict=True):
            if not bad["fields"][i]:
                raise InputError(
                    f"empty {name} field", path=str(path), line=bad["line"], column=i + 1
                )


def _separator_hint(raw: str, needed: int) -> str:
    """Suggest a separator that would split `raw` into enough fields."""
    for cand in _SEPARATOR_CANDIDATES:
        if len(raw.split(cand)) >= needed:
            return f"; the file looks {cand!r}-separated, pass separator={cand!r}"
    return ""


# --------------------------------------------------------------------------------------
# triple files


def read_triples(
    path: PathLike,
    *,
    format: str | None = None,
    separator: str | None = None,
    columns: Sequence[int] | Sequence[str] = (0, 1, 2),
    has_header: bool = False,
    base_iri: str | None = None,
) -> KGTables:
    """Read (head, relation, tail) triples from a TSV/CSV/text, Parquet or RDF file (.gz too).

    ``format`` is one of tsv, txt, csv, parquet, nt, ttl, nq, trig (default: from the
    suffix, ``.gz`` stripped). ``separator`` defaults to tab (tsv/txt) or comma (csv); no
    quoting is applied, so quotes are part of the key. ``columns`` picks the head, relation
    and tail columns by 0-based index or, with ``has_header=True`` or Parquet, by name;
    further columns are ignored. Blank lines are skipped; every other line must have as many
    fields as the first. Duplicate triples are kept here; the graph build drops and counts
    them. RDF files go through :func:`read_rdf`.
    """
    p = Path(path)
    suffix, gz = _format_of(p)
    fmt = (format or suffix).lower().lstrip(".")
    if f".{fmt}" in RDF_FORMATS:
        return read_rdf(p, format=fmt, base_iri=base_iri)
    if len(columns) != 3:
        raise InputError(
            f"columns must name 3 columns (head, relation, tail), got {columns!r}", path=str(p)
        )
    if fmt == "parquet":
        return _read_triples_parquet(p, columns, gz)
    if f".{fmt}" not in TEXT_FORMATS:
        raise InputError(
            f"unknown triple file format {fmt or '(no suffix)'!r}; use .tsv, .txt, .csv, "
            ".parquet, .nt, .ttl (optionally .gz) or pass format=",
            path=str(p),
        )
    sep = _normalise_separator(separator if separator is not None else TEXT_FORMATS[f".{fmt}"], p)
    triples, report = _parse_delimited_triples(p, _read_bytes(p, gz), sep, columns, has_header)
    return KGTables(triples=triples, report=report, source=str(p))


def _parse_delimited_triples(
    path: Path, data: bytes, sep: str, columns: Sequence[int] | Sequence[str], has_header: bool
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Parse delimited text into a triple frame, validating counts and empty fields."""
    text = _decode(data, path)
    fast = _fast_read(data, sep)
    if fast is not None:
        header = [str(v) for v in fast.row(0)] if has_header else None
        body = fast.slice(1) if has_header else fast
        indices = _column_indices(columns, header, path)
        if body.height and max(indices) < body.width:
            triples = body.select(
                pl.col(body.columns[i]).alias(name)
                for i, name in zip(indices, _TRIPLE_COLUMNS, strict=True)
            )
            return triples, {"triples": triples.height}
    # Slow path: something is off (or blank lines); split line by line to name the place.
    lines = _lines(text)
    header: list[str] | None = None
    if has_header and lines.height:
        header = lines["raw"][0].split(sep)
        lines = lines.slice(1)
    if lines.height == 0:
        raise InputError("empty file: no triples found", path=str(path))
    indices = _column_indices(columns, header, path)
    needed = max(indices) + 1
    df = _split_fields(lines, sep)
    first = df.row(0, named=True)
    if first["n"] < needed:
        raise InputError(
            f"found {first['n']} field(s) separated by {sep!r}, need at least {needed}"
            + _separator_hint(first["raw"], needed),
            path=str(path),
            line=first["line"],
        )
    _check_field_counts(df, first["n"], sep, path)
    _check_empty_fields(df, indices, _TRIPLE_COLUMNS, path)
    triples = df.select(
        pl.col("fields").list.get(i).alias(name)
        for i, name in zip(indices, _TRIPLE_COLUMNS, strict=True)
    )
    return triples, {"triples": triples.height}


def _column_indices(
    columns: Sequence[int] | Sequence[str], header: list[str] | None, path: Path
) -> list[int]:
    """Turn column indices or names (looked up in the header) into 0-based indices."""
    out = []
    for col in columns:
        if isinstance(col, bool) or not isinstance(col, int | str):
            raise InputError(f"column {col!r} is neither an index nor a name", path=str(path))
        if isinstance(col, int):
            if col < 0:
                raise InputError(f"column index {col} is negative", path=str(path))
            out.append(col)
        elif header is None:
            raise InputError(f"column name {col!r} needs has_header=True", path=str(path))
        elif col not in header:
            raise InputError(f"no column {col!r} in header {header!r}", path=str(path), line=1)
        else:
            out.append(header.index(col))
    return out


def _read_triples_parquet(path: Path, columns: Sequence[int] | Sequence[str], gz: bool) -> KGTables:
    """Read three columns of a Parquet file as string keys; nulls/empties name the row."""
    data = _read_bytes(path, gz)
    try:
        df = pl.read_parquet(_io.BytesIO(data))
    except READ_ERRORS as exc:  # polars/pyarrow raise many types on corrupt input
        raise InputError(
            f"not a readable Parquet file ({type(exc).__name__})", path=str(path)
        ) from None
    if df.height == 0:
        raise InputError("empty file: no triples found", path=str(path))
    names = []
    for col in columns:
        if isinstance(col, int) and not isinstance(col, bool):
            if not 0 <= col < df.width:
                raise InputError(
                    f"column index {col} out of range ({df.width} columns)", path=str(path)
                )
            names.append(df.columns[col])
        elif isinstance(col, str) and col in df.columns:
            names.append(col)
        else:
            raise InputError(f"no column {col!r} in {df.columns!r}", path=str(path))
    try:
        triples = df.select(
            pl.col(n).cast(pl.String).alias(name)
            for n, name in zip(names, _TRIPLE_COLUMNS, strict=True)
        )
    except Exception as exc:
        raise InputError(
            f"columns {names!r} cannot be read as strings ({exc})", path=str(path)
        ) from None
    blank = pl.any_horizontal(
        pl.col(c).is_null() | (pl.col(c).str.len_bytes() == 0) for c in _TRIPLE_COLUMNS
    )
    bad = _first_row(triples.with_row_index("row", offset=1), blank)
    if bad is not None:
        col = next(i for i, c in enumerate(_TRIPLE_COLUMNS) if not bad[c])
        raise InputError(
            f"empty {_TRIPLE_COLUMNS[col]} value in row {bad['row']}",
            path=str(path),
            line=bad["row"],
            column=col + 1,
        )
    return KGTables(triples=triples, report={"triples": triples.height}, source=str(path))


# --------------------------------------------------------------------------------------
# RDF

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
#: Label predicates, most preferred first.
LABEL_PREDICATES = (
    "http://www.w3.org/2004/02/skos/core#prefLabel",
    "http://www.w3.org/2000/01/rdf-schema#label",
    "http://schema.org/name",
    "https://schema.org/name",
)
#: Description predicates, most preferred first.
DESCRIPTION_PREDICATES = (
    "http://schema.org/description",
    "https://schema.org/description",
    "http://www.w3.org/2000/01/rdf-schema#comment",
)


def _lang_rank(lang: str | None) -> int:
    """English first, then no language tag, then regional English, then anything else."""
    if lang is None or lang == "":
        return 1
    lang = lang.lower()
    if lang == "en":
        return 0
    return 2 if lang.startswith("en-") else 3


def read_rdf(path: PathLike, *, format: str | None = None, base_iri: str | None = None) -> KGTables:
    """Read an RDF dump (N-Triples, Turtle, N-Quads, TriG; .gz too) with pyoxigraph.

    IRIs are keys as written, blank nodes ``_:id``. Label predicates (skos:prefLabel,
    rdfs:label, schema:name) give labels, schema:description / rdfs:comment descriptions,
    preferring English, then untagged literals. ``rdf:type`` gives entity types (not
    edges). Other literal-valued triples are left out and counted in
    ``report["literal_triples"]``; graph names are ignored.
    """
    import pyoxigraph as ox

    p = Path(path)
    suffix, gz = _format_of(p)
    fmt = (format or suffix).lower().lstrip(".")
    if f".{fmt}" not in RDF_FORMATS:
        raise InputError(f"unknown RDF format {fmt!r}; use nt, ttl, nq or trig", path=str(p))
    data = _read_bytes(p, gz)
    _decode(data, p)  # precise line/column for bad bytes, same message as the text readers
    heads: list[str] = []
    rels: list[str] = []
    tails: list[str] = []
    typed: list[tuple[str, str]] = []
    texts: list[tuple[str, str, str, int, int]] = []  # key, kind, text, rank, order
    literal = unsupported = 0
    label_rank = {iri: i for i, iri in enumerate(LABEL_PREDICATES)}
    desc_rank = {iri: i for i, iri in enumerate(DESCRIPTION_PREDICATES)}

    def key_of(node: object) -> str | None:
        if isinstance(node, ox.NamedNode):
            return node.value
        if isinstance(node, ox.BlankNode):
            return "_:" + node.value
        return None  # RDF-star quoted triple or literal

    try:
        for i, t in enumerate(
            ox.parse(data, getattr(ox.RdfFormat, RDF_FORMATS[f".{fmt}"]), base_iri=base_iri)
        ):
            s = key_of(t.subject)
            pred = t.predicate.value
            o = t.object
            if s is None:
                unsupported += 1
            elif isinstance(o, ox.Literal):
                if pred in label_rank:
                    texts.append(
                        (s, "label", o.value, _lang_rank(o.language) * 8 + label_rank[pred], i)
                    )
                elif pred in desc_rank:
                    texts.append(
                        (s, "description", o.value, _lang_rank(o.language) * 8 + desc_rank[pred], i)
                    )
                else:
                    literal += 1
            else:
                ok = key_of(o)
                if ok is None:
                    unsupported += 1
                elif pred == RDF_TYPE:
                    typed.append((s, ok))
                else:
                    heads.append(s)
                    rels.append(pred)
                    tails.append(ok)
    except SyntaxError as exc:
        msg = str(exc.msg if hasattr(exc, "msg") else exc)
        raise InputError(
            f"malformed RDF: {msg}", path=str(p), line=exc.lineno, column=exc.offset
        ) from None
    except (ValueError, OSError) as exc:
        raise InputError(f"malformed RDF: {exc}", path=str(p)) from None
    if not heads:
        raise InputError(
            "no entity-to-entity triples found (empty file or only literals)", path=str(p)
        )
    triples = pl.DataFrame({"head": heads, "relation": rels, "tail": tails}, schema=TRIPLE_SCHEMA)
    entity_keys = pl.concat([triples["head"], triples["tail"]]).unique()
    relation_keys = triples["relation"].unique()
    types = pl.DataFrame(typed, schema=TYPE_SCHEMA, orient="row").unique(maintain_order=True)
    entity_types = types.filter(pl.col("key").is_in(entity_keys.implode()))
    text = _best_texts(texts)
    subjects = pl.concat([text["key"], types["key"]]).unique()
    known = pl.concat([entity_keys, relation_keys, types["type"]]).unique()
    report = {
        "triples": triples.height,
        "literal_triples": literal,
        "label_triples": len(texts),
        "type_triples": len(typed),
        "unsupported_triples": unsupported,
        "isolated_subjects": int((~subjects.is_in(known.implode())).sum()),
    }
    return KGTables(
        triples=triples,
        entities=_texts_for(text, entity_keys),
        relations=_texts_for(text, relation_keys),
        entity_types=entity_types if entity_types.height else None,
        type_labels=_texts_for(text, types["type"].unique()) if types.height else None,
        report=report,
        source=str(p),
    )


def _best_texts(rows: list[tuple[str, str, str, int, int]]) -> pl.DataFrame:
    """Pick the best label and description per key (lowest rank, then first seen)."""
    df = pl.DataFrame(
        rows,
        schema={
            "key": pl.String,
            "kind": pl.String,
            "text": pl.String,
            "rank": pl.Int64,
            "order": pl.Int64,
        },
        orient="row",
    )
    best = df.sort("rank", "order").unique(["key", "kind"], keep="first")
    label = best.filter(pl.col("kind") == "label").select("key", pl.col("text").alias("label"))
    desc = best.filter(pl.col("kind") == "description").select(
        "key", pl.col("text").alias("description")
    )
    return label.join(desc, on="key", how="full", coalesce=True).select(list(TEXT_SCHEMA))


def _texts_for(text: pl.DataFrame, keys: pl.Series) -> pl.DataFrame | None:
    """Rows of `text` whose key is in `keys`, or None when there are none."""
    out = text.filter(pl.col("key").is_in(keys.implode())).sort("key")
    return out if out.height else None


# --------------------------------------------------------------------------------------
# canonical directory

_TEXT_HEADER = ("key", "label", "description")
_TYPE_HEADER = ("key", "type")
#: Optional table files of a canonical directory: file name -> header.
TABLE_FILES = {
    "entities.tsv": _TEXT_HEADER,
    "relations.tsv": _TEXT_HEADER,
    "entity_types.tsv": _TYPE_HEADER,
    "types.tsv": _TEXT_HEADER,
}


def _split_path(root: Path, split: str) -> Path | None:
    """The file holding a split (tsv, tsv.gz or parquet), or None when absent."""
    if split not in SPLIT_FILES:
        raise InputError(
            f"unknown split {split!r}; use one of {sorted(SPLIT_FILES)}", path=str(root)
        )
    stem = SPLIT_FILES[split]
    for name in (f"{stem}.tsv", f"{stem}.parquet", f"{stem}.tsv.gz"):
        if (root / name).is_file():
            return root / name
    return None


def read_split(path: PathLike, split: str) -> pl.DataFrame:
    """Read one split (train, valid, test) of a canonical directory as a string triple frame."""
    root = Path(path)
    file = _split_path(root, split)
    if file is None:
        raise InputError(f"no {split} split ({SPLIT_FILES[split]}.tsv or .parquet)", path=str(root))
    return read_triples(file).triples


def _read_table(file: Path, header: Sequence[str]) -> pl.DataFrame:
    """Read a headed TSV table (columns `header`, trailing ones optional) with its line numbers."""
    lines = _lines(_decode(_read_bytes(file, False), file))
    if lines.height == 0:
        raise InputError(f"empty file: expected header {'<TAB>'.join(header)}", path=str(file))
    first = lines.row(0, named=True)
    got = first["raw"].split("\t")
    required = 2 if header == _TYPE_HEADER else 1
    if len(got) < max(required, 2) or got != list(header[: len(got)]):
        raise InputError(
            f"bad header {'<TAB>'.join(got)!r}, expected {'<TAB>'.join(header)!r}",
            path=str(file),
            line=first["line"],
        )
    df = _split_fields(lines.slice(1), "\t")
    _check_field_counts(df, len(got), "\t", file)
    _check_empty_fields(df, range(required), header[:required], file)
    # Missing optional columns and empty label/description fields mean "none".
    return df.select(
        "line",
        *(pl.col("fields").list.get(i).alias(name) for i, name in enumerate(header[:required])),
        *(
            pl.when(pl.col("fields").list.get(i, null_on_oob=True).str.len_bytes() > 0)
            .then(pl.col("fields").list.get(i, null_on_oob=True))
            .alias(name)
            if i < len(got)
            else pl.lit(None, dtype=pl.String).alias(name)
            for i, name in enumerate(header)
            if i >= required
        ),
    )


def _check_table_keys(
    df: pl.DataFrame, known: pl.Series, what: str, file: Path, unique_keys: bool
) -> pl.DataFrame:
    """Keys must be known (and unique if asked); name the first offending line."""
    bad = _first_row(df, ~pl.col("key").is_in(known.implode()))
    if bad is not None:
        raise InputError(
            f"key {bad['key']!r} is not {what} of the triples",
            path=str(file),
            line=bad["line"],
            column=1,
        )
    if unique_keys:
        bad = _first_row(df, ~pl.col("key").is_first_distinct())
        if bad is not None:
            raise InputError(
                f"duplicate key {bad['key']!r}", path=str(file), line=bad["line"], column=1
            )
    return df.drop("line")


def read_kg_dir(
    path: PathLike, splits: Iterable[str] = ("train",), *, check_keys: bool = True
) -> KGTables:
    """Read a canonical KG directory; the triples are the concatenation of ``splits``.

    Label/type files may only name keys found in the directory's split files (train, valid
    or test, whether loaded or not): an unknown key or a repeated key is an InputError with
    its line. Labels of entities that only occur in held-out splits are kept. Counts per
    split land in ``report["triples_<split>"]``.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError("not a directory (expected a canonical KG directory)", path=str(root))
    splits = tuple(splits)
    if not splits:
        raise InputError("no splits requested", path=str(root))
    frames: dict[str, pl.DataFrame] = {}
    for split in SPLIT_FILES:
        file = _split_path(root, split)
        if file is None:
            if split in splits:
                raise InputError(
                    f"missing {SPLIT_FILES[split]}.tsv (or .parquet) for split {split!r}",
                    path=str(root),
                )
            continue
        if split in splits or check_keys:
            frames[split] = read_triples(file).triples
    for split in splits:
        _split_path(root, split)  # unknown split names raise
    triples = pl.concat([frames[s] for s in splits])
    report = {f"triples_{s}": frames[s].height for s in splits}
    report["triples"] = triples.height

    every = pl.concat(frames.values()) if check_keys else triples
    entity_keys = pl.concat([every["head"], every["tail"]]).unique()
    relation_keys = every["relation"].unique()
    tables: dict[str, pl.DataFrame | None] = dict.fromkeys(TABLE_FILES)
    for name, header in TABLE_FILES.items():
        file = root / name
        if file.is_file():
            tables[name] = _read_table(file, header)
    if tables["types.tsv"] is not None and tables["entity_types.tsv"] is None:
        raise InputError(
            "types.tsv labels type keys but there is no entity_types.tsv",
            path=str(root / "types.tsv"),
        )
    if check_keys:
        checks = {
            "entities.tsv": (entity_keys, "an entity", True),
            "relations.tsv": (relation_keys, "a relation", True),
            "entity_types.tsv": (entity_keys, "an entity", False),
        }
        for name, (known, what, unique) in checks.items():
            if tables[name] is not None:
                tables[name] = _check_table_keys(tables[name], known, what, root / name, unique)
        if tables["types.tsv"] is not None:
            type_keys = tables["entity_types.tsv"]["type"].unique()
            tables["types.tsv"] = _check_table_keys(
                tables["types.tsv"],
                type_keys,
                "a type used in entity_types.tsv",
                root / "types.tsv",
                True,
            )
    for name, df in tables.items():
        if df is not None and "line" in df.columns:
            tables[name] = df.drop("line")
    if tables["entity_types.tsv"] is not None:
        before = tables["entity_types.tsv"].height
        tables["entity_types.tsv"] = tables["entity_types.tsv"].unique(maintain_order=True)
        report["duplicate_entity_types"] = before - tables["entity_types.tsv"].height
    return KGTables(
        triples=triples,
        entities=tables["entities.tsv"],
        relations=tables["relations.tsv"],
        entity_types=tables["entity_types.tsv"],
        type_labels=tables["types.tsv"],
        report=report,
        source=str(root),
    )


def read_kg(path: PathLike, **options: object) -> KGTables:
    """Read a canonical directory or a single triple/RDF file, whichever ``path`` is."""
    p = Path(path)
    if p.is_dir():
        return read_kg_dir(p, **options)  # type: ignore[arg-type]
    return read_triples(p, **options)  # type: ignore[arg-type]


def _clean_text(col: str) -> pl.Expr:
    """Labels/descriptions on one line: tabs and newlines become spaces."""
    return pl.col(col).cast(pl.String).str.replace_all(r"[\t\r\n]", " ")


def _check_writable_keys(df: pl.DataFrame, cols: Sequence[str], what: str) -> None:
    """Keys cannot hold tabs/newlines (they would break the layout) nor be empty/null."""
    for c in cols:
        bad = df.filter(
            pl.col(c).is_null()
            | pl.col(c).str.contains(r"[\t\r\n]")
            | (pl.col(c).str.len_bytes() == 0)
        ).head(1)
        if bad.height:
            raise InputError(
                f"{what}: {c} {bad[c][0]!r} is empty or contains a tab/newline "
                "and cannot be written to TSV"
            )


def _write_tsv(df: pl.DataFrame, file: Path, header: bool) -> None:
    """Write a frame as unquoted TSV (nulls as empty fields)."""
    df.write_csv(
        file,
        separator="\t",
        include_header=header,
        quote_style="never",
        null_value="",
        line_terminator="\n",
    )


def write_kg_dir(
    tables: KGTables,
    path: PathLike,
    *,
    splits: Mapping[str, pl.DataFrame] | None = None,
    overwrite: bool = False,
    triples_format: str = "tsv",
) -> Path:
    """Write a canonical KG directory atomically (temp dir, then rename); return its path.

    ``tables.triples`` becomes ``triples.tsv`` (or ``.parquet``); ``splits`` may add held-out
    ``valid``/``test`` frames. Label rows must name keys of the written triples (else
    InputError, so the result always reads back). Tabs/newlines in labels become spaces.
    """
    root = Path(path)
    if root.exists() and not overwrite:
        raise InputError("already exists; pass overwrite=True to replace it", path=str(root))
    if triples_format not in ("tsv", "parquet"):
        raise InputError(f"triples_format must be 'tsv' or 'parquet', not {triples_format!r}")
    all_splits = {"train": tables.triples, **(splits or {})}
    for split in all_splits:
        if split not in SPLIT_FILES:
            raise InputError(f"unknown split {split!r}; use one of {sorted(SPLIT_FILES)}")
    frames = {}
    for split, df in all_splits.items():
        df = df.select(pl.col(c).cast(pl.String) for c in _TRIPLE_COLUMNS)
        _check_writable_keys(df, _TRIPLE_COLUMNS, f"{split} triples")
        frames[split] = df
    every = pl.concat(frames.values())
    entity_keys = pl.concat([every["head"], every["tail"]]).unique()
    relation_keys = every["relation"].unique()

    def text_table(df: pl.DataFrame | None, known: pl.Series | None, what: str):
        if df is None:
            return None
        df = df.select(
            pl.col("key").cast(pl.String),
            *(
                _clean_text(c).alias(c) if c in df.columns else pl.lit(None, pl.String).alias(c)
                for c in ("label", "description")
            ),
        )
        _check_writable_keys(df, ["key"], what)
        if known is not None:
            unknown = df.filter(~pl.col("key").is_in(known.implode())).head(1)
            if unknown.height:
                raise InputError(f"{what}: key {unknown['key'][0]!r} is not in the triples")
        dup = df.filter(~pl.col("key").is_first_distinct()).head(1)
        if dup.height:
            raise InputError(f"{what}: duplicate key {dup['key'][0]!r}")
        return df

    entities = text_table(tables.entities, entity_keys, "entities")
    relations = text_table(tables.relations, relation_keys, "relations")
    entity_types = None
    if tables.entity_types is not None:
        entity_types = tables.entity_types.select(pl.col(c).cast(pl.String) for c in TYPE_SCHEMA)
        _check_writable_keys(entity_types, list(TYPE_SCHEMA), "entity_types")
        unknown = entity_types.filter(~pl.col("key").is_in(entity_keys.implode())).head(1)
        if unknown.height:
            raise InputError(f"entity_types: key {unknown['key'][0]!r} is not in the triples")
        entity_types = entity_types.unique(maintain_order=True)
    type_keys = (
        entity_types["type"].unique()
        if entity_types is not None
        else pl.Series([], dtype=pl.String)
    )
    type_labels = text_table(tables.type_labels, type_keys, "type_labels")

    with atomic_dir(root) as tmp:
        for split, df in frames.items():
            stem = SPLIT_FILES[split]
            if triples_format == "parquet":
                df.write_parquet(tmp / f"{stem}.parquet")
            else:
                _write_tsv(df, tmp / f"{stem}.tsv", header=False)
        for name, df in (
            ("entities.tsv", entities),
            ("relations.tsv", relations),
            ("entity_types.tsv", entity_types),
            ("types.tsv", type_labels),
        ):
            if df is not None:
                _write_tsv(df, tmp / name, header=True)
    return root
