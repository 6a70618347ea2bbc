"""Read and write KGs as files: triple files (TSV/CSV/Parquet), RDF dumps, canonical directories.

Every reader returns a :class:`~kg2tool.kg.tables.KGTables` of string keys; mapping keys to
ids is the graph build's job (``kg2tool.kg.graph``). Readers keep duplicate triples (the graph
build drops and counts them) and raise :class:`~kg2tool.errors.InputError` naming the file,
the 1-based line and, where it helps, the 1-based column of the first problem.

Text files are parsed with Polars in bulk: the whole file becomes one column of lines that
is split and checked with vectorised expressions, so the happy path has no Python loop.

Where each reader lives: :mod:`kg2tool.kg.triples` (TSV/CSV/Parquet triple files),
:mod:`kg2tool.kg.rdf` (RDF dumps), :mod:`kg2tool.kg.kgdir` (canonical directories and
benchmark folders), :mod:`kg2tool.kg.textfile` (bytes, UTF-8, lines); this module is the
entry point that re-exports them.
"""

from __future__ import annotations

from pathlib import Path

from kg2tool.kg.kgdir import SPLIT_FILES, read_benchmark_dir, read_kg_dir, read_split, write_kg_dir
from kg2tool.kg.rdf import read_rdf
from kg2tool.kg.tables import KGTables
from kg2tool.kg.textfile import PathLike
from kg2tool.kg.triples import read_triples

__all__ = [
    "SPLIT_FILES",
    "PathLike",
    "read_benchmark_dir",
    "read_kg",
    "read_kg_dir",
    "read_rdf",
    "read_split",
    "read_triples",
    "write_kg_dir",
]


def read_kg(path: PathLike, **options: object) -> KGTables:
    """Read a canonical directory, a benchmark folder or a single triple/RDF file."""
    p = Path(path)
    if p.is_dir():
        return read_kg_dir(p, **options)  # type: ignore[arg-type]
    return read_triples(p, **options)  # type: ignore[arg-type]
