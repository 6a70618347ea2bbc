"""Import a KG from any source kg2tool reads into a snapshot or a canonical KG directory.

:func:`import_kg` decides how a source is read (a Wikidata JSON dump, a bundled or shared
dataset name, a snapshot, a canonical directory or benchmark folder, a triples file) and
writes it; ``kg2tool import`` is this one call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kg2tool.errors import InputError
from kg2tool.kg import bundled, io, wikidata
from kg2tool.kg.graph import KnowledgeGraph

# A long step: a context manager named by what it does, yielding a function that takes the
# step's row count (a CLI shows a spinner, then the time and rate).
Phase = Callable[[str], AbstractContextManager[Callable[[int], None]]]


@contextlib.contextmanager
def _quiet_phase(what: str) -> Iterator[Callable[[int], None]]:
    yield lambda rows: None


@dataclass
class ImportResult:
    """What an import wrote and what its reading skipped or noticed."""

    out: Path
    triples: int
    snapshot: bool
    load_report: dict[str, int] = field(default_factory=dict)  # see KnowledgeGraph.report
    wikidata_report: dict[str, int] | None = None  # items and triples read, what was left out

    def summary(self) -> str:
        return f"wrote {'snapshot ' if self.snapshot else ''}{self.out} ({self.triples:,} triples)"


def import_kg(
    source: str,
    out: str | Path,
    *,
    snapshot: bool = True,
    overwrite: bool = False,
    strict: bool = False,
    read_options: dict[str, Any] | None = None,
    properties: list[str] | None = None,
    lang: str = "en",
    progress: bool = False,
    phase: Phase = _quiet_phase,
) -> ImportResult:
    """Read ``source`` and write it to ``out`` as a snapshot (fast to open) or, with
    ``snapshot=False``, as a canonical KG directory. ``read_options``: keyword arguments of
    :func:`kg2tool.kg.io.read_triples` for a triples file; ``properties`` and ``lang``: for a
    Wikidata dump."""
    out, src, options = Path(out), Path(source), read_options or {}
    if out.exists() and not overwrite:
        raise InputError(f"{out} exists; pass --overwrite to replace it")
    wikidata_report = None
    if wikidata.is_wikidata_dump(src):
        tables = wikidata.read_wikidata_dump(
            src, properties=properties or None, lang=lang, progress=progress
        )
        wikidata_report = tables.report
    elif properties is not None:
        raise InputError(
            f"--properties applies to Wikidata JSON dumps (.json, .json.gz, .json.bz2), not {source}"
        )
    elif source in bundled.dataset_names() and not src.exists():
        tables, held_out = bundled.load_dataset(source)
        tables.held_out = held_out
    elif src.is_dir() and (src / "manifest.json").is_file():
        if not snapshot:
            raise InputError(f"{source} is a snapshot; import its source files with --canonical")
        graph = KnowledgeGraph.load(src)
        graph.save_snapshot(out)
        return ImportResult(out, graph.num_triples, True)
    elif src.is_dir():
        tables = io.read_kg_dir(src, strict=strict)
    elif src.is_file() and snapshot:
        with phase(f"loading {source}") as done:
            graph = KnowledgeGraph.load(src, **options)  # a plain TSV: the native fast path
            done(graph.num_triples)
        with phase("writing snapshot"):
            graph.save_snapshot(out)
        return ImportResult(out, graph.num_triples, True, dict(graph.report))
    elif src.is_file():
        with phase(f"reading {source}") as done:
            tables = io.read_triples(src, **options)
            done(tables.triples.height)
    else:
        KnowledgeGraph.load(source)  # raises the unknown-name error with suggestions
        raise InputError(f"{source}: not a KG source")  # pragma: no cover - load raised
    result = ImportResult(
        out, tables.triples.height, snapshot, dict(tables.report), wikidata_report
    )
    if not snapshot:
        io.write_kg_dir(tables, out, splits=tables.held_out, overwrite=overwrite)
        return result
    with phase("building the graph") as done:
        graph = KnowledgeGraph.from_tables(tables)
        done(graph.num_triples)
    with phase("writing snapshot"):
        graph.save_snapshot(out)
    result.triples = graph.num_triples
    return result
