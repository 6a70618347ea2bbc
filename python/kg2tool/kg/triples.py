"""Read one triple file: TSV/CSV/text or Parquet (RDF files go to :mod:`kg2tool.kg.rdf`).

Text files are parsed with Polars in bulk: the whole file becomes one column of lines that
is split and checked with vectorised expressions, so the happy path has no Python loop.
TSV files have no quoting (a field runs from tab to tab); CSV files are read as CSV.
"""

from __future__ import annotations

import csv
import io as _io
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from kg2tool.errors import READ_ERRORS, InputError
from kg2tool.kg.rdf import RDF_FORMATS, read_rdf
from kg2tool.kg.tables import KGTables
from kg2tool.kg.textfile import (
    PathLike,
    check_empty_fields,
    check_field_counts,
    decode_utf8,
    fast_read,
    first_row,
    format_of,
    nonblank_lines,
    normalise_separator,
    read_bytes,
    separator_hint,
    split_fields,
)

TEXT_FORMATS = {".tsv": "\t", ".txt": "\t", ".csv": ","}
TRIPLE_COLUMNS = ("head", "relation", "tail")

#: Column names read by role (lower-cased), for headed text files and Parquet.
ROLE_NAMES = {
    "head": ("head", "subject", "h", "s", "subj", "source", "src"),
    "relation": ("relation", "predicate", "r", "p", "rel", "property"),
    "tail": ("tail", "object", "t", "o", "obj", "target", "dst"),
}


def role_columns(names: Sequence[str]) -> list[int] | None:
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
    suffix, gz = format_of(p)
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
    sep = normalise_separator(separator if separator is not None else TEXT_FORMATS[f".{fmt}"], p)
    if not gz and not p.is_file():
        read_bytes(p, gz)  # the one error for a missing path, a directory, no permission
    # Uncompressed files are parsed straight from disk (memory-mapped by Polars): no copy of
    # the file in Python, and the text is decoded only to name a bad line.
    triples, report = _parse_delimited_triples(
        p, read_bytes(p, gz) if gz else p, sep, columns, has_header, quoted=fmt == "csv"
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


def looks_like_header(fields: Sequence[str]) -> bool:
    """True when a first line names all three roles (``head<TAB>relation<TAB>tail``)."""
    try:
        return role_columns(fields) is not None
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
    fast = fast_read(data, sep, quoted)
    if fast is not None:
        first = [str(v) for v in fast.row(0)]
        header_found = has_header is None and looks_like_header(first)
        header = first if (has_header or header_found) else None
        body = fast.slice(1) if header is not None else fast
        indices = _column_indices(columns, header, path)
        if body.height and max(indices) < body.width:
            triples = body.select(
                pl.col(body.columns[i]).alias(name)
                for i, name in zip(indices, TRIPLE_COLUMNS, strict=True)
            )
            if not quoted or not _has_empty(triples):
                return triples, _text_report(triples.height, header_found)
    # Slow path: something is off (or blank lines); split line by line to name the place.
    if isinstance(data, Path):
        data = read_bytes(data, False)
    text = decode_utf8(data, path)
    if quoted:
        df = _csv_lines(text, sep, path)
    else:
        df = split_fields(nonblank_lines(text), sep)
    header = None
    header_found = False
    if df.height:
        first_fields = list(df["fields"][0])
        header_found = has_header is None and looks_like_header(first_fields)
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
            + separator_hint(first["raw"], needed),
            path=str(path),
            line=first["line"],
        )
    check_field_counts(df, first["n"], sep, path)
    check_empty_fields(df, indices, TRIPLE_COLUMNS, path)
    triples = df.select(
        pl.col("fields").list.get(i).alias(name)
        for i, name in zip(indices, TRIPLE_COLUMNS, strict=True)
    )
    return triples, _text_report(triples.height, header_found)


def _has_empty(triples: pl.DataFrame) -> bool:
    """True when any key is empty (a quoted ``""`` field is an empty string, not a null)."""
    return bool(
        triples.select(
            pl.any_horizontal(pl.col(c).str.len_bytes() == 0 for c in TRIPLE_COLUMNS).any()
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
        named = role_columns(header) if header is not None else None
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
    data = read_bytes(path, gz)
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
            named = role_columns(df.columns)
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
            for n, name in zip(names, TRIPLE_COLUMNS, strict=True)
        )
    except Exception as exc:
        raise InputError(
            f"columns {names!r} cannot be read as strings ({exc})", path=str(path)
        ) from None
    blank = pl.any_horizontal(
        pl.col(c).is_null() | (pl.col(c).str.len_bytes() == 0) for c in TRIPLE_COLUMNS
    )
    bad = first_row(triples.with_row_index("row", offset=1), blank)
    if bad is not None:
        col = next(i for i, c in enumerate(TRIPLE_COLUMNS) if not bad[c])
        raise InputError(
            f"empty {TRIPLE_COLUMNS[col]} value in row {bad['row']}",
            path=str(path),
            line=bad["row"],
            column=col + 1,
        )
    return KGTables(triples=triples, report={"triples": triples.height}, source=str(path))
