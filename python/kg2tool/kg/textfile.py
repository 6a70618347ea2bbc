"""Low-level reading of text files for the KG readers: bytes (gunzipped), strict UTF-8, lines.

Shared by the triple-file, RDF and directory readers so each names a bad file, line and
column the same way (:class:`~kg2tool.errors.InputError`).
"""

from __future__ import annotations

import gzip
import io as _io
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from kg2tool.errors import InputError

PathLike = str | os.PathLike[str]

SEPARATOR_CANDIDATES = ("\t", ",", ";", "|", " ")
_SEPARATOR_ALIASES = {"\\t": "\t", "tab": "\t", "comma": ",", "space": " "}


def format_of(path: Path) -> tuple[str, bool]:
    """Return (suffix without .gz, gzipped) so .tsv.gz reads like .tsv."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    return (suffixes[-1] if suffixes else ""), gz


def read_bytes(path: Path, gz: bool) -> bytes:
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


def decode_utf8(data: bytes, path: Path) -> str:
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


def nonblank_lines(text: str) -> pl.DataFrame:
    """All non-blank lines as a frame (line: 1-based UInt32, raw: String), CRLF tolerated."""
    return (
        pl.DataFrame({"raw": text.split("\n")}, schema={"raw": pl.String})
        .with_row_index("line", offset=1)
        .with_columns(pl.col("raw").str.strip_suffix("\r"))
        .filter(pl.col("raw").str.strip_chars().str.len_bytes() > 0)
    )


def fast_read(data: bytes | Path, sep: str, quoted: bool = False) -> pl.DataFrame | None:
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


def normalise_separator(separator: str, path: Path) -> str:
    """Accept one character (or an alias such as '\\t'); anything else is an unknown separator."""
    sep = _SEPARATOR_ALIASES.get(separator, separator)
    if not isinstance(sep, str) or len(sep) != 1 or sep in '\r\n"':
        raise InputError(
            f"unknown separator {separator!r}: give one character such as '\\t' or ','",
            path=str(path),
        )
    return sep


def split_fields(lines: pl.DataFrame, sep: str) -> pl.DataFrame:
    """Add `fields` (list of strings) and `n` (their count) to a frame of lines."""
    return lines.with_columns(pl.col("raw").str.split(sep).alias("fields")).with_columns(
        pl.col("fields").list.len().alias("n")
    )


def first_row(df: pl.DataFrame, mask: pl.Expr) -> dict | None:
    """The first row where mask holds, as a dict, or None."""
    hit = df.filter(mask).head(1)
    return hit.row(0, named=True) if hit.height else None


def check_field_counts(df: pl.DataFrame, expected: int, sep: str, path: Path) -> None:
    """Every line must have exactly `expected` fields; report the first that does not."""
    bad = first_row(df, pl.col("n") != expected)
    if bad is not None:
        mixed = next(
            (c for c in SEPARATOR_CANDIDATES if c != sep and len(bad["raw"].split(c)) == expected),
            None,
        )
        hint = f"; this line looks {mixed!r}-separated: the file mixes separators" if mixed else ""
        raise InputError(
            f"expected {expected} fields separated by {sep!r}, found {bad['n']}{hint}",
            path=str(path),
            line=bad["line"],
        )


def check_empty_fields(
    df: pl.DataFrame, indices: Sequence[int], names: Sequence[str], path: Path
) -> None:
    """The fields at `indices` must be non-empty; report the first empty one (line, column)."""
    checks = [pl.col("fields").list.get(i).str.len_bytes() == 0 for i in indices]
    bad = first_row(df, pl.any_horizontal(checks))
    if bad is not None:
        for i, name in zip(indices, names, strict=True):
            if not bad["fields"][i]:
                raise InputError(
                    f"empty {name} field", path=str(path), line=bad["line"], column=i + 1
                )


def separator_hint(raw: str, needed: int) -> str:
    """Suggest a separator that would split `raw` into enough fields."""
    for cand in SEPARATOR_CANDIDATES:
        if len(raw.split(cand)) >= needed:
            return (
                f"; the file looks {cand!r}-separated, pass separator={cand!r} "
                f"(CLI: --separator {cand!r})"
            )
    return ""


# --------------------------------------------------------------------------------------
# triple files
