"""The string-keyed tables of a KG, as every loader returns them and the graph builder takes them.

Loaders (``kg2tool.kg.io``) parse files into a :class:`KGTables`; ``kg2tool.kg.graph`` maps the
string keys to dense int32 ids and builds the native CSR. Keeping this seam small lets a
user bring triples from anywhere (a DataFrame of their own) without going through files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

TRIPLE_SCHEMA = {"head": pl.String, "relation": pl.String, "tail": pl.String}
TEXT_SCHEMA = {"key": pl.String, "label": pl.String, "description": pl.String}
TYPE_SCHEMA = {"key": pl.String, "type": pl.String}


@dataclass
class KGTables:
    """Triples plus optional names and types, all keyed by the KG's own string keys.

    - ``triples``: columns head, relation, tail (String), duplicates allowed here.
    - ``entities``: key, label, description (label/description may be null).
    - ``relations``: key, label, description.
    - ``entity_types``: key, type (one row per (entity, type) pair); a type key may have a
      label in ``type_labels`` (key, label, description).
    - ``report``: counts a loader wants to tell the user (e.g. ``literal_triples`` skipped).
    - ``held_out``: split name -> triples read but not part of the graph (valid, test).
    """

    triples: pl.DataFrame
    entities: pl.DataFrame | None = None
    relations: pl.DataFrame | None = None
    entity_types: pl.DataFrame | None = None
    type_labels: pl.DataFrame | None = None
    report: dict[str, int] = field(default_factory=dict)
    source: str = ""
    held_out: dict[str, pl.DataFrame] = field(default_factory=dict)


def clean_text(expr: pl.Expr) -> pl.Expr:
    """A label or description on one line: each tab, CR or LF becomes a space.

    The one rule for every path (graph build, canonical writer), so a label reads the same
    in a question, in a call argument and after an import.
    """
    return expr.cast(pl.String).str.replace_all(r"[\t\r\n]", " ")
