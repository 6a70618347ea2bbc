"""What a sample may not show: anchors a question cannot name, entities without a name, and
the relations and entities a run excludes (shell-style patterns, lexicon ``exclude = true``).

Each is a boolean mask by entity or relation id, computed once per KG (see
:class:`kg2tool.dataset.assemble.SampleContext`) and applied to whole query frames.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from kg2tool.kg.names import RAW_KEY_PATTERN
from kg2tool.samples.questions import RAW_ID_PATTERN

__all__ = [
    "excluded",
    "exclusion_masks",
    "namable_entities",
    "touches",
    "unlabelled_entities",
]


def namable_entities(kg: Any) -> np.ndarray:
    """Per entity id: whether a question can name it as an anchor: its label is set, is no raw
    KG id (``Q42``, ``/m/..``) and no other entity shows it (its label, or its key where it has
    none), so it is the entity's display name (see :class:`~kg2tool.tools.runtime.ToolRuntime`).
    Queries with another anchor are dropped by the sample builder; the ``generate`` driver skips
    them when it draws queries (from the KG alone, while the catalogue is still being built),
    so a run writes the samples it asks for."""
    ents = kg.entities.sort("id")
    shown = pl.coalesce(pl.col("label"), pl.col("key")).cast(pl.String)
    ok = ents.select(
        pl.col("label").is_not_null()
        & (pl.len().over(shown) == 1)
        & ~pl.col("label").cast(pl.String).str.contains(RAW_ID_PATTERN).fill_null(True)
    ).to_series()
    return ok.to_numpy().astype(bool)


def unlabelled_entities(kg: Any) -> np.ndarray:
    """Per entity id: whether its name is an opaque key (no label, and a key such as ``Q42``
    or ``/m/0x`` that no words can be read from). Samples showing one are dropped unless
    ``allow_raw_keys``."""
    ents = kg.entities
    raw = (ents["label"] == ents["key"]).fill_null(True) & ents["key"].str.contains(RAW_KEY_PATTERN)
    return raw.to_numpy().astype(bool)


def touches(mask: np.ndarray, q: pl.DataFrame, anc: np.ndarray) -> np.ndarray:
    """Per query row: whether an anchor, an intermediate entity or an answer is in ``mask``."""
    bad = mask[anc].any(axis=1) if anc.size else np.zeros(q.height, bool)
    if not mask.any():
        return bad
    col = "sets" if "sets" in q.columns else "answer_ids"
    ids = q.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("r"), pl.col(col).alias("i"))
    ids = ids.explode("i")
    if col == "sets":
        ids = ids.explode("i")
    ids = ids.drop_nulls("i")
    rows = ids["r"].to_numpy()[mask[ids["i"].to_numpy().astype(np.int64)]]
    bad[rows] = True
    return bad


def exclusion_masks(
    kg: Any, relations: Sequence[str], entities: Sequence[str], flagged: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray] | None:
    """(relation mask, entity mask) by id of what matches the patterns (keys in ``flagged``:
    relations a lexicon excludes); None when nothing is excluded."""
    rel = excluded(kg.relations, relations, flagged)
    ent = excluded(kg.entities, entities)
    return (rel, ent) if rel.any() or ent.any() else None


def _pattern_regex(patterns: Sequence[str]) -> str | None:
    """One case-insensitive regex for shell-style patterns ("*slur*", "P1?"), None if none."""
    pats = [p.strip() for p in patterns if p and p.strip()]
    if not pats:
        return None

    def glob(p: str) -> str:
        return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)

    return "(?i)^(?:" + "|".join(glob(p) for p in pats) + ")$"


def excluded(table: pl.DataFrame, patterns: Sequence[str], extra: Sequence[str] = ()) -> np.ndarray:
    """Per row of an id/key/label table: whether its key or label matches one of the
    shell-style ``patterns`` (case-insensitive), or its key is in ``extra``."""
    mask = table["key"].is_in(list(extra)).to_numpy() if extra else np.zeros(table.height, bool)
    regex = _pattern_regex(patterns)
    if regex is not None:
        hit = table["key"].str.contains(regex) | table["label"].str.contains(regex).fill_null(False)
        mask |= hit.to_numpy()
    return mask
