"""Type words of API sides read from the data: the most specific type covering most of a
relation side's entities, else a general word (person, place, organization, work)."""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from kg2tool.tools.naming import GENERIC_TYPE, freebase_parts, is_freebase_path
from kg2tool.tools.raw_ids import RAW_ID_RE

# Share of a relation side's entities a type must cover to name that side.
TYPE_COVERAGE = 0.8


# A type label usable as an English type word: plain words, at most three.
_TYPE_WORD_RE = re.compile(r"^[A-Za-z][A-Za-z'-]*(?: [A-Za-z][A-Za-z'-]*){0,2}$")


# General type words and the words of the specific type labels they stand for.
_GENERAL_WORDS: dict[str, frozenset[str]] = {
    "person": frozenset(
        "human person people actor writer politician musician singer celebrity nominee "
        "winner athlete inductee artist".split()
    ),
    "place": frozenset(
        "city town village country state municipality commune county region capital island "
        "territory province district location settlement area metropolis place borough "
        "prefecture neighborhood suburb republic kingdom nation".split()
    ),
    "organization": frozenset(
        "organization organisation company business university school college band party "
        "club team enterprise institution association agency corporation "
        "publisher".split()
    ),
    "work": frozenset(
        "film album book song work series novel single painting play show opera".split()
    ),
}


def general_word(label: str) -> str | None:
    """The general type word a specific type label falls under ("big city" -> "place")."""
    words = set(re.findall(r"[a-z]+", label.lower()))
    for general, keys in _GENERAL_WORDS.items():
        if words & keys:
            return general
    return None


def _pick_type(
    counts: list[tuple[str, int, int]], total: int, coverage: float = TYPE_COVERAGE
) -> str:
    """The most specific type (the one with the fewest entities in the KG) covering at least
    TYPE_COVERAGE of a relation side's ``total`` entities, among English type words;
    GENERIC_TYPE when none does. ``counts``: (type label, entities of the side with it,
    entities of the KG with it)."""
    usable = [
        (size, lab)
        for lab, n, size in counts
        if lab and n >= coverage * max(total, 1) and _TYPE_WORD_RE.match(lab)
        and not RAW_ID_RE.search(lab)
    ]  # fmt: skip
    return min(usable)[1].lower() if usable else GENERIC_TYPE


def _typed_entities(kg: Any) -> pl.DataFrame | None:
    """Frame (id, type_label) from the KG's types; Freebase KGs without types get path types."""
    types = getattr(kg, "entity_types", None)
    if types is not None and types.height > 0:
        labels = getattr(kg, "type_labels", None)
        frame = types.select(pl.col("id").cast(pl.Int32), pl.col("type").cast(pl.String))
        if labels is not None and labels.height > 0:
            frame = frame.join(
                labels.select(pl.col("key").alias("type"), pl.col("label").alias("type_label")),
                on="type",
                how="left",
            ).with_columns(pl.coalesce("type_label", "type").alias("type_label"))
        else:
            frame = frame.with_columns(pl.col("type").alias("type_label"))
        return frame.select("id", "type_label").unique()
    rel = kg.relations
    if rel.height == 0 or not all(is_freebase_path(k) for k in rel["key"].to_list()):
        return None
    # Freebase declares each property's domain type in its path: heads of /film/film/x are films.
    path_type = pl.DataFrame(
        {
            "relation": rel["id"].cast(pl.Int32),
            "type_label": [freebase_parts(k)[0] for k in rel["key"].to_list()],
        }
    )
    return (
        kg.triples.select(pl.col("head").alias("id"), "relation")
        .join(path_type, on="relation")
        .select("id", "type_label")
        .unique()
    )


def infer_domain_range(kg: Any, coverage: float = TYPE_COVERAGE) -> dict[int, tuple[str, str]]:
    """Per relation id: (domain, range) type words read from the data: the most specific type
    covering at least ``coverage`` of the relation's distinct heads (tails), else a general
    word covering as many; "entity" when none does. An API side's word is the default's;
    ``coverage=1`` tells whether every entity of the side has it (else the API declares "an
    entity, usually a <type>")."""
    return infer_domain_ranges(kg, (coverage,))[0]


def infer_domain_ranges(kg: Any, coverages: tuple[float, ...]) -> list[dict[int, tuple[str, str]]]:
    """:func:`infer_domain_range` at several coverages, counting the KG's types once."""
    outs: list[dict[int, list[str]]] = [
        {int(r): [GENERIC_TYPE, GENERIC_TYPE] for r in kg.relations["id"].to_list()}
        for _ in coverages
    ]
    typed = _typed_entities(kg)
    if typed is None:
        return [{r: (d, g) for r, (d, g) in out.items()} for out in outs]
    size = typed.group_by("type_label").agg(pl.len().alias("size"))
    path_types = getattr(kg, "entity_types", None) is None or kg.entity_types.height == 0
    # the general word of each distinct type label (not of each entity's row)
    labels = typed.get_column("type_label").unique().drop_nulls()
    typed_general = typed.join(
        pl.DataFrame(
            {"type_label": labels, "general": [general_word(x) for x in labels.to_list()]},
            schema={"type_label": typed.schema["type_label"], "general": pl.String},
        ),
        on="type_label",
    )
    for side, col in ((0, "head"), (1, "tail")):
        ents = kg.triples.select("relation", pl.col(col).alias("id")).unique()
        total = dict(ents.group_by("relation").agg(pl.len()).iter_rows())
        counts = (
            ents.join(typed, on="id")
            .group_by("relation", "type_label")
            .agg(pl.len().alias("n"))
            .join(size, on="type_label")
            .sort("relation", "n", "type_label", descending=[False, True, False])
        )
        for (rel_id,), grp in counts.group_by("relation", maintain_order=True):
            rows = list(zip(grp["type_label"], grp["n"], grp["size"], strict=True))
            for out, coverage in zip(outs, coverages, strict=True):
                out[int(rel_id)][side] = _pick_type(rows, total.get(rel_id, 0), coverage)
        # a side no specific type covers may still be people, places, organizations, works
        general = (
            ents.join(typed_general, on="id")
            .drop_nulls("general")
            .unique(["relation", "id", "general"])
            .group_by("relation", "general")
            .agg(pl.len().alias("n"))
            .sort("relation", "n", "general", descending=[False, True, False])
            .rows()
        )
        for out, coverage in zip(outs, coverages, strict=True):
            seen: set[int] = set()
            for rel_id, word, n in general:
                if rel_id in seen or n < coverage * total[rel_id]:
                    continue
                seen.add(rel_id)
                # Freebase path types ("award nominee") read worse than the general word
                have = out[int(rel_id)][side]
                if have == GENERIC_TYPE or (path_types and " " in have):
                    out[int(rel_id)][side] = word
    return [{r: (d, g) for r, (d, g) in out.items()} for out in outs]
