"""Read RDF dumps (N-Triples, Turtle, N-Quads, TriG) into KG tables with pyoxigraph."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import polars as pl

from kg2tool.errors import InputError
from kg2tool.kg.tables import TEXT_SCHEMA, TRIPLE_SCHEMA, TYPE_SCHEMA, KGTables
from kg2tool.kg.textfile import PathLike, decode_utf8, format_of, read_bytes

RDF_FORMATS = {".nt": "N_TRIPLES", ".ttl": "TURTLE", ".nq": "N_QUADS", ".trig": "TRIG"}
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
    suffix, gz = format_of(p)
    fmt = (format or suffix).lower().lstrip(".")
    if f".{fmt}" not in RDF_FORMATS:
        raise InputError(f"unknown RDF format {fmt!r}; use nt, ttl, nq or trig", path=str(p))
    data = read_bytes(p, gz)
    decode_utf8(data, p)  # precise line/column for bad bytes, same message as the text readers
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
