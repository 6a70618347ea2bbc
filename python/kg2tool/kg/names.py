"""Display names from keys: what an entity or relation without a label is called.

A key made of words ("population_group", "concept:city_paris", "BobDylan") reads as those
words; an opaque id ("Q216458", "/m/0x", "C0001175", an IRI) is no name and is never shown
unless the user allows raw keys. The graph, the lexicon and dataset assembly all ask here.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "RAW_KEY_PATTERN",
    "SMALL_WORDS",
    "entity_name_expr",
    "entity_name_from_key",
    "humanise",
    "humanise_key",
    "is_raw_key",
]


def humanise_key(key: str) -> str:
    """Words of a key used as a name: ``concept:`` prefixes dropped, snake_case and CamelCase
    split, path separators turned into spaces ("interacts_with" -> "interacts with")."""
    text = key.rsplit("/", 1)[-1] if key.startswith(("http://", "https://")) else key
    text = text.rsplit("#", 1)[-1]
    if ":" in text:
        text = text.rsplit(":", 1)[-1]
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", text)
    text = re.sub(r"[_/.\s]+", " ", text)
    return text.strip().lower() if not text.isupper() or len(text) > 4 else text.strip()


# Opaque identifiers that are no name: Wikidata/UMLS-style ids, Freebase mids, numbers, IRIs.
_RAW_KEY = re.compile(r"[A-Za-z]{0,2}\d[\w.-]*|/[mg]/\w+|[a-z][a-z0-9+.-]*://\S+|_:\w+")


RAW_KEY_PATTERN = f"^(?:{_RAW_KEY.pattern})$"


def is_raw_key(key: str) -> bool:
    """Whether a key is an opaque id ("Q216458", "/m/0x", "C0001175", an IRI) rather than
    words that can stand for a name ("population_group", "BobDylan")."""
    return _RAW_KEY.fullmatch(key) is not None


def entity_name_expr(keys: Any) -> Any:
    """Polars expression: the name of an entity that has no label, from its key (a
    ``pl.Expr`` of keys): a key made of words becomes them ("population_group" ->
    "population group", "concept:city_paris" -> "city paris", "BobDylan" -> "Bob Dylan"),
    case kept; an opaque id (:func:`is_raw_key`) stays as it is."""
    import polars as pl

    words = (
        keys.str.replace(r"^[A-Za-z]\w*:([^/])", "$1")
        .str.replace_all(r"([a-z])([A-Z])", "$1 $2")
        .str.replace_all(r"[_\s]+", " ")
        .str.strip_chars()
    )
    raw = keys.str.contains(RAW_KEY_PATTERN)
    return pl.when(raw | (words == "")).then(keys).otherwise(words)


def entity_name_from_key(key: str) -> str:
    """:func:`entity_name_expr` for one key."""
    import polars as pl

    return pl.select(entity_name_expr(pl.lit(key, pl.String))).item()


# words a proper name keeps in lower case ("Jimenez de Cisneros", "Strait of Dover")


# words a proper name keeps in lower case ("Jimenez de Cisneros", "Strait of Dover")
SMALL_WORDS = frozenset(
    "a an and as at by da das de del der des di do dos du el for from in la le les of on or "
    "the to van von y".split()
)


def humanise(key: str) -> str:
    """Readable label from a snake_case key: ``san_marino`` -> ``San Marino``."""
    words = [w for w in re.split(r"[_\s]+", key.strip()) if w]
    return " ".join(
        w if (i and w in SMALL_WORDS) else w[:1].upper() + w[1:] for i, w in enumerate(words)
    )
