"""Read and write KGs as files: triple files (TSV/CSV/Parquet), RDF dumps, canonical directories.

Every reader returns a :class:`~kg2tool.kg.tables.KGTables` of string keys; mapping keys to
ids is the graph build's job (``kg2tool.kg.graph``). Readers keep duplicate triples (the graph
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

TSV files have no quoting: a field runs from tab to tab, quotes are ordinary characters;
CSV files are read as CSV (double quotes). Empty label/description fields mean "none".
Label/type rows naming keys outside the triples are skipped and counted (``strict=True``:
an error). Writers replace tabs and newlines inside labels and descriptions by spaces
(:func:`kg2tool.kg.tables.clean_text`, the graph build does the same). Benchmark folders
(``train.txt`` ...) are read by :func:`read_benchmark_dir`, see its label file list.
"""

from __future__ import annotations

import csv
import gzip
import io as _io
import os
import urllib.parse
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import polars as pl

from kg2tool.atomic import atomic_dir
from kg2tool.errors import READ_ERRORS, InputError
from kg2tool.kg.tables import TEXT_SCHEMA, TRIPLE_SCHEMA, TYPE_SCHEMA, KGTables, clean_text

__all__ = [
    "SPLIT_FILES",
    "read_benchmark_dir",
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


def _fast_read(data: bytes | Path, sep: str, quoted: bool = False) -> pl.DataFrame | None:
    """Parse well-formed delimited text with Polars' CSV reader; None if anything looks off.

    Short lines, blank lines and empty fields come back as nulls and long lines raise, so a
    clean result means every line had the first line's field count and no empty field.
    """
    try:
        df = pl.read_csv(
            data if isinstance(data, Path) else _io.BytesIO(data),
            separator=sep,
            has_header=False,
            quote_char='"' if quoted else None,
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
        mixed = next(
            (c for c in _SEPARATOR_CANDIDATES if c != sep and len(bad["raw"].split(c)) == expected),
            None,
        )
        hint = f"; this line looks {mixed!r}-separated: the file mixes separators" if mixed else ""
        raise InputError(
            f"expected {expected} fields separated by {sep!r}, found {bad['n']}{hint}",
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
            return (
                f"; the file looks {cand!r}-separated, pass separator={cand!r} "
                f"(CLI: --separator {cand!r})"
            )
    return ""


# --------------------------------------------------------------------------------------
# triple files


#: Column names read by role (lower-cased), for headed text files and Parquet.
ROLE_NAMES = {
    "head": ("head", "subject", "h", "s", "subj", "source", "src"),
    "relation": ("relation", "predicate", "r", "p", "rel", "property"),
    "tail": ("tail", "object", "t", "o", "obj", "target", "dst"),
}


def _role_columns(names: Sequence[str]) -> list[int] | None:
    """Indices of the head, relation and tail columns named in ``names``, or None if none is.

    A name matches case-insensitively (see :data:`ROLE_NAMES`); when some roles are named
    but not all, that is an error a user must resolve with ``columns=``.
    """
    lowered = [str(n).strip().lower() for n in names]
    found: dict[str, int] = {}
    for role, aliases in ROLE_NAMES.items():
        for alias in aliases:
            if alias in lowered:
                found[role] = lowered.index(alias)
                break
    if not found:
        return None
    if len(found) < 3 or len(set(found.values())) < 3:
        missing = [r for r in ROLE_NAMES if r not in found]
        raise InputError(
            f"columns {list(names)!r} name {', '.join(found)} but no "
            f"{' or '.join(missing) or 'distinct columns'} column (names read: "
            + "; ".join(f"{r}: {'/'.join(a)}" for r, a in ROLE_NAMES.items())
            + "); pass columns= (CLI: --columns)"
        )
    return [found["head"], found["relation"], found["tail"]]


def read_triples(
    path: PathLike,
    *,
    format: str | None = None,
    separator: str | None = None,
    columns: Sequence[int] | Sequence[str] | None = None,
    has_header: bool | None = None,
    base_iri: str | None = None,
) -> KGTables:
    """Read (head, relation, tail) triples from a TSV/CSV/text, Parquet or RDF file (.gz too).

    ``format`` is one of tsv, txt, csv, parquet, nt, ttl, nq, trig (default: from the
    suffix, ``.gz`` stripped). ``separator`` defaults to tab (tsv/txt) or comma (csv). CSV is
    read as CSV (double-quoted fields may hold the separator); TSV and txt have no quoting.
    ``has_header=None`` detects a header line (all three roles named, see
    :data:`ROLE_NAMES`) and reports it as ``report["header_line"]``. ``columns`` picks the
    head, relation and tail columns by 0-based index or by header name; by default named
    columns (header or Parquet) are read by role name, by position only when no name
    matches. Blank lines are skipped; every other line must have as many fields as the
    first. Duplicate triples are kept here; the graph build drops and counts them.
    """
    p = Path(path)
    suffix, gz = _format_of(p)
    fmt = (format or suffix).lower().lstrip(".")
    if f".{fmt}" in RDF_FORMATS:
        return read_rdf(p, format=fmt, base_iri=base_iri)
    if columns is not None and len(columns) != 3:
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
    if not gz and not p.is_file():
        _read_bytes(p, gz)  # the one error for a missing path, a directory, no permission
    # Uncompressed files are parsed straight from disk (memory-mapped by Polars): no copy of
    # the file in Python, and the text is decoded only to name a bad line.
    triples, report = _parse_delimited_triples(
        p, _read_bytes(p, gz) if gz else p, sep, columns, has_header, quoted=fmt == "csv"
    )
    return KGTables(triples=triples, report=report, source=str(p))


def _csv_lines(text: str, sep: str, path: Path) -> pl.DataFrame:
    """CSV records (quotes honoured) as a frame of line, raw, fields, n; blank lines skipped."""
    rows: list[tuple[int, str, list[str]]] = []
    reader = csv.reader(_io.StringIO(text, newline=""), delimiter=sep, quotechar='"', strict=True)
    start = 1
    try:
        for rec in reader:
            if rec and any(f.strip() for f in rec):
                rows.append((start, sep.join(rec), rec))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"malformed CSV ({exc})", path=str(path), line=reader.line_num) from None
    return pl.DataFrame(
        {
            "line": [r[0] for r in rows],
            "raw": [r[1] for r in rows],
            "fields": [r[2] for r in rows],
        },
        schema={"line": pl.UInt32, "raw": pl.String, "fields": pl.List(pl.String)},
    ).with_columns(pl.col("fields").list.len().alias("n"))


def _looks_like_header(fields: Sequence[str]) -> bool:
    """True when a first line names all three roles (``head<TAB>relation<TAB>tail``)."""
    try:
        return _role_columns(fields) is not None
    except InputError:
        return False


def _parse_delimited_triples(
    path: Path,
    data: bytes | Path,
    sep: str,
    columns: Sequence[int] | Sequence[str] | None,
    has_header: bool | None,
    *,
    quoted: bool = False,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Parse delimited text into a triple frame, validating counts and empty fields."""
    fast = _fast_read(data, sep, quoted)
    if fast is not None:
        first = [str(v) for v in fast.row(0)]
        header_found = has_header is None and _looks_like_header(first)
        header = first if (has_header or header_found) else None
        body = fast.slice(1) if header is not None else fast
        indices = _column_indices(columns, header, path)
        if body.height and max(indices) < body.width:
            triples = body.select(
                pl.col(body.columns[i]).alias(name)
                for i, name in zip(indices, _TRIPLE_COLUMNS, strict=True)
            )
            if not quoted or not _has_empty(triples):
                return triples, _text_report(triples.height, header_found)
    # Slow path: something is off (or blank lines); split line by line to name the place.
    if isinstance(data, Path):
        data = _read_bytes(data, False)
    text = _decode(data, path)
    if quoted:
        df = _csv_lines(text, sep, path)
    else:
        df = _split_fields(_lines(text), sep)
    header = None
    header_found = False
    if df.height:
        first_fields = list(df["fields"][0])
        header_found = has_header is None and _looks_like_header(first_fields)
        if has_header or header_found:
            header = first_fields
            df = df.slice(1)
    if df.height == 0:
        raise InputError("empty file: no triples found", path=str(path))
    indices = _column_indices(columns, header, path)
    needed = max(indices) + 1
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
    return triples, _text_report(triples.height, header_found)


def _has_empty(triples: pl.DataFrame) -> bool:
    """True when any key is empty (a quoted ``""`` field is an empty string, not a null)."""
    return bool(
        triples.select(
            pl.any_horizontal(pl.col(c).str.len_bytes() == 0 for c in _TRIPLE_COLUMNS).any()
        ).item()
    )


def _text_report(n: int, header_found: bool) -> dict[str, int]:
    """The load report of a delimited file: triples, and whether a header line was detected."""
    return {"triples": n, **({"header_line": 1} if header_found else {})}


def _column_indices(
    columns: Sequence[int] | Sequence[str] | None, header: list[str] | None, path: Path
) -> list[int]:
    """Turn column indices or names (looked up in the header) into 0-based indices.

    ``columns=None`` reads a header's columns by role name, else by position (0, 1, 2).
    """
    if columns is None:
        named = _role_columns(header) if header is not None else None
        return named if named is not None else [0, 1, 2]
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


def _read_triples_parquet(
    path: Path, columns: Sequence[int] | Sequence[str] | None, gz: bool
) -> KGTables:
    """Read three columns of a Parquet file as string keys; nulls/empties name the row.

    Without ``columns`` the head, relation and tail columns are found by name
    (:data:`ROLE_NAMES`), by position (0, 1, 2) only when no column name matches.
    """
    data = _read_bytes(path, gz)
    try:
        df = pl.read_parquet(_io.BytesIO(data))
    except READ_ERRORS as exc:  # polars/pyarrow raise many types on corrupt input
        raise InputError(
            f"not a readable Parquet file ({type(exc).__name__})", path=str(path)
        ) from None
    if df.height == 0:
        raise InputError("empty file: no triples found", path=str(path))
    if columns is None:
        try:
            named = _role_columns(df.columns)
        except InputError as exc:
            raise InputError(str(exc), path=str(path)) from None
        columns = named if named is not None else [0, 1, 2]
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
    literal = unsupported = blank = 0
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
                    if not s.startswith("_:") and not ok.startswith("_:"):
                        typed.append((s, ok))
                elif s.startswith("_:") or ok.startswith("_:"):
                    blank += 1  # a blank node has no name a question could show
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
        "blank_node_triples": blank,
        "isolated_subjects": int((~subjects.is_in(known.implode())).sum()),
    }
    return KGTables(
        triples=triples,
        entities=_texts_for(text, entity_keys),
        relations=_texts_for(text, relation_keys),
        entity_types=entity_types if entity_types.height else None,
        type_labels=_texts_for(text, entity_types["type"].unique())
        if entity_types.height
        else None,
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


def iri_local_name(iri: str) -> str:
    """The readable end of an IRI: ``http://ex.org/knows`` and ``...#knows`` give ``knows``.

    Percent-escapes are decoded and underscores become spaces; an IRI without a local
    name is returned as it is.
    """
    body = iri.rstrip("/#")
    for sep in ("#", "/", ":"):
        cut = body.rfind(sep)
        if cut >= 0 and cut + 1 < len(body):
            name = urllib.parse.unquote(body[cut + 1 :]).replace("_", " ").strip()
            return name or iri
    return iri


def _texts_for(text: pl.DataFrame, keys: pl.Series) -> pl.DataFrame:
    """One text row per key of `keys` (sorted): its RDF label, else the IRI's local name."""
    base = pl.DataFrame({"key": keys.unique().sort()}, schema={"key": pl.String})
    out = base.join(text, on="key", how="left")
    return out.with_columns(
        label=pl.when(pl.col("label").is_null())
        .then(pl.col("key").map_elements(iri_local_name, return_dtype=pl.String))
        .otherwise(pl.col("label"))
    ).select(list(TEXT_SCHEMA))


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


_SPLIT_EXTS = (".tsv", ".parquet", ".tsv.gz")


def _split_path(root: Path, split: str) -> Path | None:
    """The file holding a split (tsv, tsv.gz or parquet), or None when absent."""
    if split not in SPLIT_FILES:
        raise InputError(
            f"unknown split {split!r}; use one of {sorted(SPLIT_FILES)}", path=str(root)
        )
    stem = SPLIT_FILES[split]
    for name in (f"{stem}{ext}" for ext in _SPLIT_EXTS):
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
    df: pl.DataFrame,
    known: pl.Series,
    what: str,
    file: Path,
    unique_keys: bool,
    *,
    strict: bool,
    report: dict[str, int],
) -> pl.DataFrame:
    """Rows naming unknown keys are skipped and counted (an error if ``strict``); repeated
    keys are an error naming the first offending line."""
    unknown = ~pl.col("key").is_in(known.implode())
    if strict:
        bad = _first_row(df, unknown)
        if bad is not None:
            raise InputError(
                f"key {bad['key']!r} is not {what} of the triples",
                path=str(file),
                line=bad["line"],
                column=1,
            )
    else:
        skipped = int(df.select(unknown.sum()).item())
        if skipped:
            _count_skipped(report, file.name, skipped)
            df = df.filter(~unknown)
    if unique_keys:
        bad = _first_row(df, ~pl.col("key").is_first_distinct())
        if bad is not None:
            raise InputError(
                f"duplicate key {bad['key']!r}", path=str(file), line=bad["line"], column=1
            )
    return df.drop("line")


def _count_skipped(report: dict[str, int], name: str, n: int) -> None:
    """Record label/type rows skipped because their key is not in the triples."""
    report[f"skipped_unknown_keys.{name}"] = report.get(f"skipped_unknown_keys.{name}", 0) + n
    report["skipped_unknown_keys"] = report.get("skipped_unknown_keys", 0) + n


def _layout_error(root: Path) -> InputError:
    """The error for a folder that is neither a canonical directory nor a benchmark folder."""
    canonical = ", ".join(f"triples{ext}" for ext in _SPLIT_EXTS)
    bench = ", ".join(f"train{ext}" for ext in BENCHMARK_TRIPLE_EXTS)
    return InputError(
        f"no known KG layout: looked for {canonical} (canonical directory), "
        f"{bench} (benchmark folder) and manifest.json (snapshot)",
        path=str(root),
    )


def read_kg_dir(
    path: PathLike,
    splits: Iterable[str] = ("train",),
    *,
    check_keys: bool = True,
    strict: bool = False,
) -> KGTables:
    """Read a canonical KG directory or a benchmark folder; the triples are ``splits`` joined.

    A canonical directory holds ``triples.tsv`` (see the module docstring); a benchmark
    folder ``train.txt`` or ``train.tsv`` with optional ``valid``/``test`` and the label
    files of :data:`BENCHMARK_LABEL_FILES`. Label/type rows whose key is in none of the
    split files are skipped and counted in ``report["skipped_unknown_keys"]`` (with
    ``strict=True`` they are an InputError with the line); a repeated key in a canonical
    table is an error. Splits not loaded are kept in ``held_out``; counts per split land in
    ``report["triples_<split>"]``.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError("not a directory (expected a canonical KG directory)", path=str(root))
    splits = tuple(splits)
    if not splits:
        raise InputError("no splits requested", path=str(root))
    for split in splits:
        if split not in SPLIT_FILES:
            raise InputError(
                f"unknown split {split!r}; use one of {sorted(SPLIT_FILES)}", path=str(root)
            )
    if _split_path(root, "train") is None:
        if _benchmark_split_path(root, "train") is not None:
            return read_benchmark_dir(root, splits, strict=strict)
        raise _layout_error(root)
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
        frames[split] = read_triples(file, has_header=False).triples
    triples = pl.concat([frames[s] for s in splits])
    report: dict[str, int] = {f"triples_{s}": frames[s].height for s in splits}
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
                tables[name] = _check_table_keys(
                    tables[name], known, what, root / name, unique, strict=strict, report=report
                )
        if tables["types.tsv"] is not None:
            type_keys = tables["entity_types.tsv"]["type"].unique()
            tables["types.tsv"] = _check_table_keys(
                tables["types.tsv"],
                type_keys,
                "a type used in entity_types.tsv",
                root / "types.tsv",
                True,
                strict=strict,
                report=report,
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
        held_out={s: df for s, df in frames.items() if s not in splits},
    )


# --------------------------------------------------------------------------------------
# benchmark folders (FB15k-237, WN18RR, CoDEx, YAGO3-10, KGE / PyKEEN exports)

#: Triple file names of a benchmark folder per split, first found wins.
BENCHMARK_SPLITS = {"train": ("train",), "valid": ("valid", "dev"), "test": ("test",)}
BENCHMARK_TRIPLE_EXTS = (".txt", ".tsv", ".txt.gz", ".tsv.gz")
#: Label files of a benchmark folder, most preferred first: entity files, relation files.
BENCHMARK_LABEL_FILES = {
    "entity": (
        "entity_names.tsv",
        "entity2name.tsv",
        "entity2name.txt",
        "entity2label.txt",
        "entity2text.txt",
        "entity2textlong.txt",
        "entity2description.txt",
        "wn-entity2text-new.txt",
        "entity_strings.del",
        "mid2name.tsv",
        "mid2name.txt",
        "FB15k_mid2name.txt",
        "entities.dict",
    ),
    "relation": (
        "relation_names.tsv",
        "relation2name.txt",
        "relation2label.txt",
        "relation2text.txt",
        "rel2text.txt",
        "relation_strings.del",
        "relations.dict",
    ),
}
#: Files whose text column is a description, not a label.
_DESCRIPTION_FILES = {"entity2textlong.txt", "entity2description.txt"}
_LABEL_COLUMNS = ("label", "name", "lemma", "title", "text")
_DESCRIPTION_COLUMNS = ("description", "desc", "definition", "gloss")
_GLOSS_SEPARATOR = " -- "


def _benchmark_split_path(root: Path, split: str) -> Path | None:
    """The file of a split in a benchmark folder (``train.txt``, ``valid.tsv``, ...)."""
    for stem in BENCHMARK_SPLITS[split]:
        for ext in BENCHMARK_TRIPLE_EXTS:
            if (root / f"{stem}{ext}").is_file():
                return root / f"{stem}{ext}"
    return None


def _label_file_columns(
    file: Path, known: pl.Series
) -> tuple[pl.DataFrame, str | None, str | None] | None:
    """Read a benchmark label file; return (rows with key/line, label column, description column).

    A header is recognised by a label column name (:data:`_LABEL_COLUMNS`); the key column
    is the one whose values cover the most known keys. Without a header the key column is
    the first or second (whichever covers more keys) and the other holds the text.
    """
    lines = _lines(_decode(_read_bytes(file, file.suffix == ".gz"), file))
    if lines.height == 0:
        return None
    df = _split_fields(lines, "\t")
    first = list(df["fields"][0])
    lowered = [f.strip().lower() for f in first]
    headed = any(c in lowered for c in _LABEL_COLUMNS)
    if headed:
        df = df.slice(1)
        if df.height == 0:
            return None
    width = int(df["n"][0])
    _check_field_counts(df, width, "\t", file)
    if width < 2:
        raise InputError(
            f"expected key<TAB>text lines, found {width} field",
            path=str(file),
            line=int(df["line"][0]),
        )
    cols = [f"c{i}" for i in range(width)]
    table = df.select("line", *(pl.col("fields").list.get(i).alias(c) for i, c in enumerate(cols)))
    implode = known.implode()
    cover = table.select(pl.col(c).is_in(implode).sum() for c in cols).row(0)
    if headed:
        label = next((cols[lowered.index(c)] for c in _LABEL_COLUMNS if c in lowered), None)
        desc = next((cols[lowered.index(c)] for c in _DESCRIPTION_COLUMNS if c in lowered), None)
        key = max((c for c in cols if c not in (label, desc)), key=lambda c: cover[cols.index(c)])
    else:
        key = cols[0] if cover[0] >= cover[1] else cols[1]
        text = cols[1] if key == cols[0] else cols[0]
        label, desc = (None, text) if file.name in _DESCRIPTION_FILES else (text, None)
    out = table.select(
        "line",
        pl.col(key).alias("key"),
        (pl.col(label) if label else pl.lit(None, pl.String)).alias("label"),
        (pl.col(desc) if desc else pl.lit(None, pl.String)).alias("description"),
    )
    # "NAME -- GLOSS" (WordNet style) is a label and a description; digits are ids, not names.
    gloss = pl.col("label").str.contains(_GLOSS_SEPARATOR, literal=True)
    parts = pl.col("label").str.split_exact(_GLOSS_SEPARATOR, 1)
    out = out.with_columns(
        pl.when(gloss)
        .then(parts.struct.field("field_0"))
        .otherwise(pl.col("label"))
        .alias("label"),
        pl.when(gloss & pl.col("description").is_null())
        .then(parts.struct.field("field_1"))
        .otherwise(pl.col("description"))
        .alias("description"),
    )
    if out["label"].drop_nulls().str.contains(r"^\s*\d+\s*$").all():
        out = out.with_columns(label=pl.lit(None, pl.String))  # an id column (entities.dict)
    return out, label, desc


def _benchmark_texts(
    root: Path, kind: str, known: pl.Series, strict: bool, report: dict[str, int]
) -> tuple[pl.DataFrame | None, list[str]]:
    """Labels from the first label file that has them, descriptions from the first with them."""
    found: list[pl.DataFrame] = []
    used: list[str] = []
    have_label = have_desc = False
    for name in BENCHMARK_LABEL_FILES[kind]:
        file = root / name
        if not file.is_file() or (have_label and have_desc):
            continue
        read = _label_file_columns(file, known)
        if read is None:
            continue
        rows, _, _ = read
        rows = _check_table_keys(
            rows,
            known,
            f"an {kind}" if kind == "entity" else "a relation",
            file,
            False,
            strict=strict,
            report=report,
        ).unique("key", keep="first", maintain_order=True)
        takes_label = not have_label and rows["label"].null_count() < rows.height
        takes_desc = not have_desc and rows["description"].null_count() < rows.height
        if not (takes_label or takes_desc):
            continue
        found.append(
            rows.select(
                "key",
                (pl.col("label") if takes_label else pl.lit(None, pl.String)).alias("label"),
                (pl.col("description") if takes_desc else pl.lit(None, pl.String)).alias(
                    "description"
                ),
            )
        )
        used.append(name)
        have_label |= takes_label
        have_desc |= takes_desc
    if not found:
        return None, used
    merged = (
        pl.concat(found)
        .group_by("key", maintain_order=True)
        .agg(pl.col("label").drop_nulls().first(), pl.col("description").drop_nulls().first())
    )
    return merged.sort("key"), used


def read_benchmark_dir(
    path: PathLike, splits: Iterable[str] = ("train",), *, strict: bool = False
) -> KGTables:
    """Read a benchmark folder: ``train.txt|tsv`` (+ ``valid``/``dev``, ``test``) and labels.

    Label files (:data:`BENCHMARK_LABEL_FILES`) are read when present: key<TAB>text files,
    or headed TSVs whose label column is named label/name/lemma/title/text (description:
    description/desc/definition/gloss). Rows whose key is not in any split are skipped and
    counted (``strict=True``: an error). Splits not loaded are kept in ``held_out``.
    """
    root = Path(path)
    splits = tuple(splits)
    frames: dict[str, pl.DataFrame] = {}
    headers = 0
    for split in SPLIT_FILES:
        file = _benchmark_split_path(root, split)
        if file is None:
            if split in splits:
                raise InputError(
                    f"missing {split}.txt (or .tsv) for split {split!r}", path=str(root)
                )
            continue
        read = read_triples(file, format="tsv")
        frames[split] = read.triples
        headers += read.report.get("header_line", 0)
    triples = pl.concat([frames[s] for s in splits])
    report: dict[str, int] = {f"triples_{s}": frames[s].height for s in splits}
    report["triples"] = triples.height
    if headers:
        report["header_line"] = headers
    every = pl.concat(frames.values())
    entity_keys = pl.concat([every["head"], every["tail"]]).unique()
    relation_keys = every["relation"].unique()
    entities, _ = _benchmark_texts(root, "entity", entity_keys, strict, report)
    relations, _ = _benchmark_texts(root, "relation", relation_keys, strict, report)
    return KGTables(
        triples=triples,
        entities=entities,
        relations=relations,
        report=report,
        source=str(root),
        held_out={s: df for s, df in frames.items() if s not in splits},
    )


def read_kg(path: PathLike, **options: object) -> KGTables:
    """Read a canonical directory, a benchmark folder or a single triple/RDF file."""
    p = Path(path)
    if p.is_dir():
        return read_kg_dir(p, **options)  # type: ignore[arg-type]
    return read_triples(p, **options)  # type: ignore[arg-type]


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
                clean_text(pl.col(c)).alias(c)
                if c in df.columns
                else pl.lit(None, pl.String).alias(c)
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
