"""Type words read from the data: a side's word covers >= 80% of its entities (else a general
word or "entity"), and no call passes an argument of a type its API does not declare (an API
whose data type word some of the side's entities lack declares "an entity, usually a <type>")."""

from __future__ import annotations

import orjson
import polars as pl

from kg2tool.dataset.assemble import build_dataset
from kg2tool.kg.bundled import load_dataset
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.tools.naming import GENERIC_TYPE
from kg2tool.tools.typewords import TYPE_COVERAGE, general_word, infer_domain_range


def _types_of(kg: KnowledgeGraph) -> dict[int, set[str]]:
    """Entity id -> its type words (specific labels and the general words they fall under)."""
    frame = kg.entity_types.join(
        kg.type_labels.select(pl.col("key").alias("type"), "label"), on="type", how="left"
    ).select("id", pl.coalesce("label", "type").str.to_lowercase().alias("t"))
    out: dict[int, set[str]] = {}
    for i, t in frame.iter_rows():
        words = out.setdefault(int(i), set())
        words.add(t)
        general = general_word(t)
        if general:
            words.add(general)
    return out


def test_side_types_cover_most_of_the_side() -> None:
    kg = KnowledgeGraph.load("codex-s")
    types = _types_of(kg)
    dr = infer_domain_range(kg)
    for rel_id, (dom, rng) in dr.items():
        for word, col in ((dom, "head"), (rng, "tail")):
            if word == GENERIC_TYPE:
                continue
            ids = kg.triples.filter(pl.col("relation") == rel_id)[col].unique().to_list()
            share = sum(word in types.get(int(i), ()) for i in ids) / len(ids)
            assert share >= TYPE_COVERAGE, (rel_id, col, word, share)


def _codex_without_lexicon() -> KnowledgeGraph:
    """CoDEx-S with relation keys no shipped lexicon knows, so every type word is the data's."""
    tables, _ = load_dataset("codex-s")
    renamed = pl.col("relation").map_elements(lambda k: f"rel_{k}", return_dtype=pl.String)
    tables.triples = tables.triples.with_columns(renamed)
    tables.relations = tables.relations.with_columns(
        pl.col("key").map_elements(lambda k: f"rel_{k}", return_dtype=pl.String)
    )
    return KnowledgeGraph.from_tables(tables)


def test_no_call_passes_an_argument_of_another_type() -> None:
    # A lexicon's type word is its author's claim ("film" for a rockumentary); the data's own
    # words are what this checks.
    kg = _codex_without_lexicon()
    types = _types_of(kg)
    frame = build_dataset(kg, ["1p", "2p", "3p", "2i", "pi"], 300, seed=9, format="openai")
    cat_types = {}
    from kg2tool.tools.catalog import ApiCatalog

    for api in ApiCatalog.from_graph(kg).apis:
        if api.kind == "relation":
            # "an entity, usually a country": any entity is declared, and the texts say so
            assert api.input_usually == ("usually" in api.description), api.name
            cat_types[api.name] = GENERIC_TYPE if api.input_usually else api.input_type
    by_name = {n: i for i, n in enumerate(kg.entities["label"].to_list())}
    checked = 0
    for messages in frame["messages"].to_list():
        for m in orjson.loads(messages):
            for call in m.get("tool_calls") or []:
                name = call["function"]["name"]
                declared = cat_types.get(name)
                if declared is None or declared == GENERIC_TYPE:
                    continue
                (arg,) = orjson.loads(call["function"]["arguments"]).values()
                ent = by_name[arg]
                assert declared in types.get(ent, set()), (name, arg, declared, types.get(ent))
                checked += 1
    assert checked > 100
