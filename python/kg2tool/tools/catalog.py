"""The API catalogue: every KG relation becomes a forward API (head -> tails) and an inverse one.

Stage 1 of KG2Tool (Entity-Relation-Entity maps to Input-Function-Output). Names, descriptions
and the type words of both sides come from the resolved relation lexicon
(:mod:`kg2tool.tools.lexicon`: shipped lexicons, a user's overrides file, a grammatical fallback from
the label). Three set operations are offered as tools too. The catalogue only describes;
:mod:`kg2tool.tools.runtime` executes it over the graph.

Type words: the type word of an API side (its input and output, the parameter's name, every
text about it) is the lexicon's ``domain``/``range`` when a lexicon gives one, else the most
specific type covering at least 80% of the relation's entities on that side (English words, no
raw ids), else a general word (person, place, organization, work) or "entity". Every API accepts
any entity name (one without a link of the relation gives an empty list), so a word is never
swapped for a wider one to fit stray arguments. A lexicon's word is its author's claim about the
side. A data word that some of the side's entities lack is declared as such
(``Api.input_usually``): "Input: the name of an entity, usually a country."; so no generated
call passes an argument of a type its API does not declare.

Relations a lexicon marks ``exclude = true`` are not offered: their APIs are named with the
others (no other name changes) and kept in ``ApiCatalog.hidden`` so ``api_for`` maps every
relation, but they are not in ``apis``, the exports or the manifest, and are not callable.

Naming (style ``"kg2tool"``, the paper's): forward ``get_<relation words>_of_<head type>``,
inverse from a phrasing table when it knows the relation (``find_people_born_in``) else
``get_<head types>_with_<relation words>``; a relation whose label is a verb phrase gets
names from its verb frame (``find_entities_that_affect``, ``find_entities_affected_by``), and a
lexicon's ``name``/``inverse_name`` win. Collisions are resolved deterministically: the
colliding APIs get disambiguating words (Freebase CVT type, path domain, the other side's
type), then a numeric suffix in relation-key order. Names depend only on the KG's content, so
they are stable for the same KG.

List APIs (``from_graph(..., list_apis=True)`` or :meth:`ApiCatalog.with_list_apis`; what
``call_style="batched"`` datasets call): every relation API also gets a batch form that takes a
list of entities, ``<name>_batch`` (camel ``<name>Batch``) with one array parameter named by the
plural of the input type (``get_birthplace_of_person_batch(people=[...])``). It returns the
*union* of the single API's results over the list, one sorted list of names without duplicates
(it does not say which input gave which result): exactly the set a multi-hop query carries to
its next step. Their description quotes the single API's sentence whole ("The list form of
the lookup that returns the people who have a given occupation: it takes several occupations
and ..."): a lexicon phrase is never filled with a list, which reads wrong for phrases such as
"the people with the occupation {x}". They come after every other API (``kind="relation_list"``), so adding them
changes no other API's name or position.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from kg2tool.errors import InputError, UnknownNameError
from kg2tool.kg.names import humanise_key
from kg2tool.tools.lexicon import (
    FIELDS,
    Entry,
    a_an,
    plural,
    read_lexicon,
    resolve_lexicon,
    select_shipped,
    shipped_lexicons,
)

__all__ = [
    "LIST_KIND",
    "LIST_SUFFIX",
    "NAME_RE",
    "RAW_ID_RE",
    "SET_OPERATIONS",
    "STYLES",
    "Api",
    "ApiCatalog",
    "close_api_names",
    "load_overrides",
]

NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
# Raw KG identifiers that must never reach a description: Wikidata items/properties, Freebase mids.
RAW_ID_RE = re.compile(r"\b[QP]\d+\b|/m/|/g/")
STYLES = ("kg2tool", "plain", "camel")
MAX_NAME = 64
GENERIC_TYPE = "entity"
# Set operations offered as tools: operation -> (kg2tool name, plain name, description).
SET_OPERATIONS: dict[str, tuple[str, str, str]] = {
    "intersection": (
        "get_intersection_of",
        "intersection",
        "Returns the entities that appear in both lists (set intersection), "
        "e.g. to combine the results of two earlier calls.",
    ),
    "union": (
        "get_union_of",
        "union",
        "Returns the entities that appear in either list (set union), "
        "e.g. to merge the results of two earlier calls.",
    ),
    "difference": (
        "get_negation_of",
        "difference",
        "Returns the entities of the first list that are not in the second list "
        "(set difference), e.g. to exclude the result of an earlier call.",
    ),
}
SET_PARAMS = ("first", "second")
# List ("batched") relation APIs: the kind, and the suffix their name adds to the single API's.
LIST_KIND = "relation_list"
LIST_SUFFIX = {"kg2tool": "_batch", "plain": "_batch", "camel": "Batch"}

# Phrasing the generic templates cannot produce, keyed by normalised relation words.
# inverse: name template ({heads} = plural of the head type, "people" for humans);
# forward: optional name template ({head} = head type word).
PHRASING_TABLE: dict[str, dict[str, str]] = {
    "place of birth": {"inverse": "find_{heads}_born_in"},
    "place of death": {"inverse": "find_{heads}_who_died_in"},
    "place of burial": {"inverse": "find_{heads}_buried_in"},
    "educated at": {"inverse": "find_{heads}_educated_at"},
    "employer": {"inverse": "find_{heads}_employed_by"},
    "founded by": {"inverse": "find_{heads}_founded_by"},
    "influenced by": {"inverse": "find_{heads}_influenced_by"},
    "directed by": {"inverse": "find_{heads}_directed_by"},
    "written by": {"inverse": "find_{heads}_written_by"},
    "produced by": {"inverse": "find_{heads}_produced_by"},
    "country of citizenship": {"inverse": "find_citizens_of"},
    "nationality": {"inverse": "find_{heads}_with_nationality"},
    "occupation": {"inverse": "find_{heads}_with_occupation"},
    "profession": {"inverse": "find_{heads}_with_profession"},
    "residence": {"inverse": "find_residents_of"},
    "headquarters location": {"inverse": "find_{heads}_headquartered_in"},
    "cast member": {"inverse": "find_{heads}_starring"},
    "member of": {"forward": "get_memberships_of_{head}", "inverse": "find_members_of"},
    "part of": {"forward": "get_what_{head}_is_part_of", "inverse": "get_parts_of_{tail}"},
    "named after": {"forward": "get_namesake_of_{head}", "inverse": "find_{heads}_named_after"},
    "genre": {"inverse": "find_{heads}_in_genre"},
    "instrument": {"inverse": "find_{heads}_who_play"},
    "record label": {"inverse": "find_{heads}_signed_to"},
    "child": {"forward": "get_children_of_{head}", "inverse": "get_parents_of_{tail}"},
    "spouse": {"forward": "get_spouses_of_{head}", "inverse": "find_{heads}_married_to"},
    "languages spoken written or signed": {
        "forward": "get_languages_of_{head}",
        "inverse": "find_{heads}_who_speak",
    },
}
OVERRIDE_FIELDS = FIELDS


@dataclass(frozen=True)
class Api:
    """One executable tool: its schema for the model and how to replay it on the graph."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema object
    returns: dict[str, Any]  # JSON Schema of the result (a list of entity names)
    kind: str  # "relation", "relation_list" (LIST_KIND) or "set_operation"
    relation: str | None = None  # relation key (relation and list APIs)
    relation_id: int | None = None
    direction: str | None = None  # "forward" (head -> tails) or "inverse" (tail -> heads)
    operation: str | None = None  # "intersection" | "union" | "difference" (set operations)
    input_type: str = GENERIC_TYPE  # type label of the argument entity (entities)
    output_type: str = GENERIC_TYPE  # type label of the result entities
    phrase: str = ""  # question phrase with "{x}" for the argument, used by verbalization
    # the input type word is the data's and covers most, not all, of the side's entities: the
    # texts say "an entity, usually a <type>" (any entity name is accepted by every API)
    input_usually: bool = False

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names in schema order (all required)."""
        return tuple(self.parameters["properties"])


# ---------------------------------------------------------------- words and identifiers


def _ascii_words(text: str) -> list[str]:
    """Lower-case ASCII words of a label (accents folded), for identifiers."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return [w for w in re.split(r"[^a-z0-9]+", folded.lower()) if w]


def _ident(words: Iterable[str]) -> str:
    """Snake-case identifier fragment from words."""
    return "_".join(words)


def is_freebase_path(key: str) -> bool:
    """Freebase relation keys look like /domain/type/property (CVT paths joined by '.')."""
    return key.startswith("/") and key.count("/") >= 3


def freebase_parts(path: str) -> tuple[str, list[str], list[str]]:
    """Split a Freebase path into (head type, property word lists, CVT type names)."""
    chunks = [c for c in path.split(".") if c.strip("/")]
    first = chunks[0].strip("/").split("/")
    # /domain/type/property; /base/<domain>/type/property; /user/<who>/<domain>/type/property
    head_type = first[-2] if len(first) >= 2 else first[0]
    props = [first[-1]]
    cvt_types: list[str] = []
    for chunk in chunks[1:]:
        segs = chunk.strip("/").split("/")
        props.append(segs[-1])
        if len(segs) >= 2:
            cvt_types.append(segs[-2])
    head_words = set(_ascii_words(head_type.replace("_", " ")))
    seen: set[str] = set()
    words: list[list[str]] = []
    for i, prop in enumerate(props):
        toks = _ascii_words(prop.replace("_", " "))
        if len(toks) > 1 and toks[-1] == "s":  # release_date_s -> release date
            toks = toks[:-1]
        if i > 0:  # later CVT hops repeat earlier words and the head type; keep what is new
            new = [t for t in toks if t not in seen and t not in head_words]
            toks = new or [t for t in toks if t not in seen]
        if toks:
            words.append(toks)
            seen.update(toks)
    return head_type.replace("_", " "), words, [c.replace("_", " ") for c in cvt_types]


def relation_words(key: str, label: str | None) -> list[str]:
    """Readable words of a relation: its label, or the words of a Freebase path."""
    if is_freebase_path(key) and (not label or label == key or is_freebase_path(label)):
        _, words, _ = freebase_parts(key)
        return [w for part in words for w in part] or ["related"]
    return _ascii_words(label if label and label != key else humanise_key(key)) or ["related"]


def _plural(word: str, people: bool = False) -> str:
    """English plural of a snake-case type word ("city" -> "cities", "human" -> "humans";
    "people" for humans and persons when ``people``)."""
    if people and word in ("human", "person"):
        return "people"
    return plural(word.replace("_", " ")).replace(" ", "_")


def _camel(name: str) -> str:
    """snake_case -> camelCase."""
    parts = [p for p in name.split("_") if p]
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:]) if parts else name


def _fit(name: str, limit: int = MAX_NAME) -> str:
    """Cut an identifier to the length limit at a word boundary; ensure a valid first char."""
    if name and name[0].isdigit():
        name = "x_" + name
    if len(name) > limit:
        cut = name[:limit]
        name = cut.rsplit("_", 1)[0] if "_" in cut[limit // 2 :] else cut
    return name.strip("_") or "api"


def clean_description(text: str | None, limit: int = 240) -> str:
    """Relation description without raw ids (Q5, P355, /m/..), trimmed to a sentence."""
    if not text:
        return ""
    text = re.sub(r"\(\s*(?:see\s+|Property:|Item:)?[PQ]\d+\s*\)", "", text)
    text = re.sub(r"\((?:[^()]*?)\b[PQ]\d+\b[^()]*\)", "", text)
    text = re.sub(r"(?:Property:|Item:)?\b[PQ]\d+\b|/[mg]/\w+", "", text)
    text = re.sub(r"\(\s*\)|\[\s*\]", "", text)
    text = re.sub(r"\s+([,.;:])", r"\1", re.sub(r"\s+", " ", text)).strip(" ;,")
    if len(text) > limit:
        cut = text[:limit]
        stop = cut.rfind(". ")
        text = cut[: stop + 1] if stop > limit // 3 else cut.rsplit(" ", 1)[0] + "..."
    return text


# ---------------------------------------------------------------- domain and range


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


def _general_word(label: str) -> str | None:
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
    out: dict[int, list[str]] = {
        int(r): [GENERIC_TYPE, GENERIC_TYPE] for r in kg.relations["id"].to_list()
    }
    typed = _typed_entities(kg)
    if typed is None:
        return {r: (d, g) for r, (d, g) in out.items()}
    size = typed.group_by("type_label").agg(pl.len().alias("size"))
    path_types = getattr(kg, "entity_types", None) is None or kg.entity_types.height == 0
    general_of = pl.col("type_label").map_elements(_general_word, return_dtype=pl.String)
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
            out[int(rel_id)][side] = _pick_type(rows, total.get(rel_id, 0), coverage)
        # a side no specific type covers may still be people, places, organizations, works
        general = (
            ents.join(typed.with_columns(general=general_of), on="id")
            .drop_nulls("general")
            .unique(["relation", "id", "general"])
            .group_by("relation", "general")
            .agg(pl.len().alias("n"))
            .sort("relation", "n", "general", descending=[False, True, False])
        )
        seen: set[int] = set()
        for rel_id, word, n in general.iter_rows():
            if rel_id in seen or n < coverage * total[rel_id]:
                continue
            seen.add(rel_id)
            # Freebase path types ("award nominee") read worse than the general word
            have = out[int(rel_id)][side]
            if have == GENERIC_TYPE or (path_types and " " in have):
                out[int(rel_id)][side] = word
    return {r: (d, g) for r, (d, g) in out.items()}


# ---------------------------------------------------------------- overrides


def load_overrides(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, dict]:
    """Read a TOML/YAML overrides file (or take a mapping): relation key -> fields; validated.

    The format is a relation lexicon's (docs/LEXICONS.md; :func:`kg2tool.tools.lexicon.read_lexicon`)."""
    return read_lexicon(source)


# ---------------------------------------------------------------- the catalogue


@dataclass
class _Draft:
    """A relation API before collision resolution."""

    relation: str
    relation_id: int
    direction: str
    base: str
    disambiguators: list[str]
    fixed: bool = False  # user override: never renamed
    name: str = ""


@dataclass
class ApiCatalog:
    """All APIs of a KG: relation APIs (forward + inverse) and set operations, with exports."""

    apis: list[Api]
    style: str = "kg2tool"
    _by_name: dict[str, Api] = field(default_factory=dict, repr=False)
    _by_relation: dict[tuple[str, str], Api] = field(default_factory=dict, repr=False)
    # List APIs built with the catalogue (descriptions need the relation labels), appended to
    # ``apis`` by with_list_apis() or from_graph(list_apis=True).
    _list_apis: list[Api] = field(default_factory=list, repr=False)
    # The resolved relation lexicon (relation key -> Entry) the texts were built from.
    lexicon: dict[str, Entry] = field(default_factory=dict, repr=False)
    # APIs (single and list forms) of the relations a lexicon marks ``exclude = true``: not
    # offered (not in ``apis``, the exports or the manifest, not callable by name), but named
    # like the others so ``api_for`` still maps every relation and no other name changes.
    hidden: list[Api] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {a.name: a for a in self.apis}
        every = [*self.apis, *self.hidden]
        self._by_relation = {(a.relation, a.direction): a for a in every if a.kind == "relation"}  # type: ignore[misc]
        lists = any(a.kind == LIST_KIND for a in self.apis)
        self._by_list_relation = {
            (a.relation, a.direction): a for a in every if lists and a.kind == LIST_KIND
        }
        if len({a.name for a in every}) != len(every):
            raise InputError("API names are not unique")

    @property
    def has_list_apis(self) -> bool:
        """Whether the catalogue holds the list (batched) forms of its relation APIs."""
        return bool(self._by_list_relation)

    def with_list_apis(self) -> ApiCatalog:
        """This catalogue plus the list form of every relation API, appended after the others
        (so no other API changes name or position); itself when it already has them."""
        if self.has_list_apis:
            return self
        hidden = self.hidden
        lists = self._list_apis
        if not lists:
            made = _list_apis([*self.apis, *hidden], self.style, {}, self.lexicon)
            off = {(a.relation, a.direction) for a in hidden}
            lists = [a for a in made if (a.relation, a.direction) not in off]
            hidden = [*hidden, *(a for a in made if (a.relation, a.direction) in off)]
        return ApiCatalog(
            apis=[*self.apis, *lists],
            style=self.style,
            _list_apis=lists,
            lexicon=self.lexicon,
            hidden=hidden,
        )

    # -- construction

    @classmethod
    def from_graph(
        cls,
        kg: Any,
        style: str = "kg2tool",
        overrides: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        set_operations: bool = True,
        list_apis: bool = False,
    ) -> ApiCatalog:
        """Build the catalogue of a KnowledgeGraph (names, descriptions, schemas, phrasing).

        ``list_apis``: also the list (batched) form of every relation API (module doc)."""
        if style not in STYLES:
            raise InputError(f"unknown API naming style {style!r}; choose one of {list(STYLES)}")
        ovr = load_overrides(overrides) if overrides is not None else {"__source__": None}
        source = ovr.pop("__source__", None)
        rel_keys = kg.relations["key"].to_list()
        known = set(rel_keys)
        for key in ovr:
            if key not in known:
                close = difflib.get_close_matches(key, rel_keys, n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise InputError(f"unknown relation key {key!r} in overrides{hint}", path=source)
        dr = infer_domain_range(kg)
        strict = infer_domain_range(kg, coverage=1.0)  # a type every argument has
        rels = kg.relations.sort("key")
        by_key = dict(zip(kg.relations["key"], kg.relations["id"], strict=True))
        shipped = shipped_lexicons()
        given = select_shipped(rel_keys, shipped)  # which sides a lexicon types
        lexicon = resolve_lexicon(
            zip(rels["key"], rels["label"], rels["description"], strict=True),
            types={k: dr.get(int(by_key[k]), (GENERIC_TYPE, GENERIC_TYPE)) for k in rel_keys},
            overrides={**ovr, "__source__": source},
            shipped=shipped,
        )
        drafts: list[_Draft] = []
        info: dict[tuple[str, str], dict[str, Any]] = {}
        for rel_id, key in zip(rels["id"], rels["key"], strict=True):
            rel_id = int(rel_id)
            entry = lexicon[key]
            domain, range_ = entry.domain, entry.range
            # a side's type word: the lexicon's, else the data's (module doc); a data word
            # that some of the side's entities lack is declared as "usually" that type
            typed = {**given.get(key, {}), **ovr.get(key, {})}
            tight = strict.get(rel_id, (GENERIC_TYPE, GENERIC_TYPE))
            loose = dr.get(rel_id, (GENERIC_TYPE, GENERIC_TYPE))
            usually = {
                d: not typed.get(f) and word != GENERIC_TYPE and tight[i] != loose[i]
                for i, (d, f, word) in enumerate(
                    (("forward", "domain", domain), ("inverse", "range", range_))
                )
            }
            words = _ascii_words(entry.label) or ["related"]
            text_label = " ".join(words)
            # names and descriptions: the user's overrides, else the shipped lexicon's (its
            # names are kg2tool-style identifiers, so other styles generate their own)
            o = dict(ovr.get(key, {}))
            if style == "kg2tool":
                for field_name in ("name", "inverse_name"):
                    if getattr(entry, field_name):
                        o.setdefault(field_name, getattr(entry, field_name))
            fwd, inv = _base_names(style, words, domain, range_, entry)
            cvt, path_domain = [], []
            if is_freebase_path(key):
                _, _, cvts = freebase_parts(key)
                last = _ident(_ascii_words(key.rsplit("/", 1)[-1]))
                cvt = [w for w in (last, *(_ident(_ascii_words(c)) for c in cvts)) if w]
                segs = key.strip("/").split("/")
                path_domain = [
                    _ident(_ascii_words(segs[1] if segs[0] in ("base", "user") else segs[0]))
                ]
            dom_w, rng_w = _type_word(domain), _type_word(range_)
            disamb_f = [*cvt, *path_domain, f"to_{rng_w}"]
            disamb_i = [*cvt, *path_domain, f"of_{dom_w}"]
            if style == "camel":
                disamb_f = [_camel(d) for d in disamb_f]
                disamb_i = [_camel(d) for d in disamb_i]
            drafts.append(
                _Draft(key, rel_id, "forward", o.get("name") or fwd, disamb_f, fixed="name" in o)
            )
            drafts.append(
                _Draft(
                    key,
                    rel_id,
                    "inverse",
                    o.get("inverse_name") or inv,
                    disamb_i,
                    fixed="inverse_name" in o,
                )
            )
            meaning = entry.gloss  # the lexicon's, or the KG's description cleaned
            for d, inp, outp in (("forward", domain, range_), ("inverse", range_, domain)):
                info[(key, d)] = {
                    "description": o.get("description" if d == "forward" else "inverse_description")
                    or _describe(entry, d, meaning, inp, outp, usually[d]),
                    "input": inp,
                    "output": outp,
                    "usually": usually[d],
                    "phrase": entry.side(d).one,
                    "label": text_label,
                    "meaning": meaning,
                    "what": o.get("description" if d == "forward" else "inverse_description")
                    or _what(entry, d, inp),
                }
        set_names = {op: _set_name(style, op) for op in SET_OPERATIONS} if set_operations else {}
        _resolve_collisions(drafts, reserved=set(set_names.values()), source=source)
        apis: list[Api] = []
        for d in drafts:
            meta = info[(d.relation, d.direction)]
            param = _type_word(meta["input"])
            if style == "camel":
                param = _camel(param)
            apis.append(
                Api(
                    name=d.name,
                    description=meta["description"],
                    parameters={
                        "type": "object",
                        "properties": {
                            param: {
                                "type": "string",
                                "description": _param_text(meta["input"], meta["usually"]),
                            }
                        },
                        "required": [param],
                        "additionalProperties": False,
                    },
                    returns={
                        "type": "array",
                        "items": {"type": "string"},
                        "description": f"Names of {plural(meta['output'])}, "
                        "sorted; empty when none is known.",
                    },
                    kind="relation",
                    relation=d.relation,
                    relation_id=d.relation_id,
                    direction=d.direction,
                    input_type=meta["input"],
                    output_type=meta["output"],
                    phrase=meta["phrase"],
                    input_usually=meta["usually"],
                )
            )
        for op, name in set_names.items():
            apis.append(_set_api(op, name))
        texts = {k: (v["label"], v["meaning"], v["what"]) for k, v in info.items()}
        lists = _list_apis(apis, style, texts, lexicon)
        # a lexicon's excluded relations are named with the others (no name depends on the
        # exclusion) but not offered
        off = {k for k, e in lexicon.items() if e.exclude}
        hidden = [a for a in (*apis, *lists) if a.relation in off]
        apis = [a for a in apis if a.relation not in off]
        lists = [a for a in lists if a.relation not in off]
        return cls(
            apis=apis + lists if list_apis else apis,
            style=style,
            _list_apis=lists,
            lexicon=lexicon,
            hidden=hidden,
        )

    # -- lookup

    def __len__(self) -> int:
        return len(self.apis)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.apis)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Api:
        """The API called ``name``; UnknownNameError with close matches otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            close = close_api_names(name, list(self._by_name))
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(f"unknown API {name!r}{hint}") from None

    @property
    def names(self) -> list[str]:
        """API names in catalogue order."""
        return [a.name for a in self.apis]

    def api_for(self, relation: str, direction: str = "forward") -> Api:
        """The API of a relation key in one direction (what verbalization/trajectories need)."""
        api = self._by_relation.get((relation, direction))
        if api is not None:
            return api
        raise UnknownNameError(f"no API for relation {relation!r} ({direction})")

    def list_api_for(self, relation: str, direction: str = "forward") -> Api:
        """The list (batched) API of a relation key in one direction (see with_list_apis)."""
        api = self._by_list_relation.get((relation, direction))
        if api is not None:
            return api
        hint = "" if self.has_list_apis else "; the catalogue has no list APIs (with_list_apis)"
        raise UnknownNameError(f"no list API for relation {relation!r} ({direction}){hint}")

    @property
    def frame(self) -> pl.DataFrame:
        """One row per API: name, kind, relation, direction, types, description, schemas."""
        return pl.DataFrame(
            {
                "name": [a.name for a in self.apis],
                "kind": [a.kind for a in self.apis],
                "relation": [a.relation for a in self.apis],
                "relation_id": [a.relation_id for a in self.apis],
                "direction": [a.direction for a in self.apis],
                "operation": [a.operation for a in self.apis],
                "input_type": [a.input_type for a in self.apis],
                "output_type": [a.output_type for a in self.apis],
                "description": [a.description for a in self.apis],
                "parameters": [orjson.dumps(a.parameters).decode() for a in self.apis],
                "returns": [orjson.dumps(a.returns).decode() for a in self.apis],
                "phrase": [a.phrase for a in self.apis],
            },
            schema={
                "name": pl.String,
                "kind": pl.String,
                "relation": pl.String,
                "relation_id": pl.Int32,
                "direction": pl.String,
                "operation": pl.String,
                "input_type": pl.String,
                "output_type": pl.String,
                "description": pl.String,
                "parameters": pl.String,
                "returns": pl.String,
                "phrase": pl.String,
            },
        )

    # -- exports

    def _select(self, api_names: Iterable[str] | None) -> list[Api]:
        """The APIs named (in the given order), or all."""
        return list(self.apis) if api_names is None else [self[n] for n in api_names]

    def to_openai_tools(self, api_names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """OpenAI chat ``tools`` entries: {"type":"function","function":{name,description,parameters}}."""
        return [
            {
                "type": "function",
                "function": {
                    "name": a.name,
                    "description": a.description,
                    "parameters": a.parameters,
                },
            }
            for a in self._select(api_names)
        ]

    def to_xlam_tools(self, api_names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """xLAM/APIGen tools: parameters as {param: {type: "str"|"list[str]", description}}."""
        out = []
        for a in self._select(api_names):
            params = {
                p: {
                    "type": "str" if s["type"] == "string" else "list[str]",
                    "description": s["description"],
                }
                for p, s in a.parameters["properties"].items()
            }
            out.append({"name": a.name, "description": a.description, "parameters": params})
        return out

    def to_toolbench(
        self,
        api_names: Iterable[str] | None = None,
        tool_name: str = "knowledge_graph",
        tool_description: str = "Look up facts in a knowledge graph: each API follows one "
        "relation from an entity, or combines entity lists.",
    ) -> dict[str, Any]:
        """ToolBench tool JSON: tool_name, tool_description, api_list with required parameters."""
        api_list = []
        for a in self._select(api_names):
            api_list.append(
                {
                    "name": a.name,
                    "url": "",
                    "description": a.description,
                    "method": "GET",
                    "required_parameters": [
                        {
                            "name": p,
                            "type": "STRING" if s["type"] == "string" else "ARRAY",
                            "description": s["description"],
                            "default": "",
                        }
                        for p, s in a.parameters["properties"].items()
                    ],
                    "optional_parameters": [],
                }
            )
        return {
            "tool_name": tool_name,
            "tool_description": tool_description,
            "title": tool_name,
            "api_list": api_list,
        }

    def manifest(self) -> dict[str, Any]:
        """JSON-ready map of every API to (relation key, direction) or set operation, for replay."""
        apis = {}
        for a in self.apis:
            entry: dict[str, Any] = {"kind": a.kind, "parameters": list(a.param_names)}
            if a.kind in ("relation", LIST_KIND):
                entry.update(relation=a.relation, direction=a.direction)
            else:
                entry.update(operation=a.operation)
            entry.update(input_type=a.input_type, output_type=a.output_type)
            apis[a.name] = entry
        return {"format": "kg2tool-api-manifest", "version": 1, "style": self.style, "apis": apis}

    def write_manifest(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`manifest` as JSON atomically (temp file + rename)."""
        from kg2tool.atomic import write_bytes

        data = orjson.dumps(self.manifest(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        return write_bytes(path, data + b"\n", fsync=True)


# ---------------------------------------------------------------- helpers of from_graph


def _type_word(type_label: str) -> str:
    """Identifier word of a type label ("human", "city", "music_genre"); "entity" if none."""
    return _ident(_ascii_words(type_label)) or GENERIC_TYPE


def _base_names(
    style: str, words: list[str], domain: str, range_: str, entry: Entry | None = None
) -> tuple[str, str]:
    """Forward and inverse base names of a relation in a style (before collisions): from the
    phrasing table, the lexicon's verb frames, else ``get_<words>_of_<head type>``."""
    limit = MAX_NAME
    if style == "plain":
        return _shorten(words, lambda r: r, limit), _shorten(words, lambda r: f"{r}_inverse", limit)
    head, tail = _type_word(domain), _type_word(range_)
    table = PHRASING_TABLE.get(" ".join(words), {})
    if not table and entry is not None and entry.api_forward and entry.api_inverse:
        fwd = _fit(_ident(_ascii_words(entry.api_forward)), limit)
        inv = _fit(_ident(_ascii_words(entry.api_inverse)), limit)
        return (_camel(fwd), _camel(inv)) if style == "camel" else (fwd, inv)
    fmt = {"head": head, "tail": tail, "heads": _plural(head, people=True)}
    if "forward" in table:
        fwd = table["forward"].format(**fmt)
    else:  # "member of" -> get_member_of_<head>, not _of_of_
        fwd = _shorten(words, lambda r: f"get_{r}_of_{head}".replace("_of_of_", "_of_"), limit)
    if "inverse" in table:
        inv = table["inverse"].format(**fmt)
    else:
        inv = _shorten(words, lambda r: f"get_{_plural(head)}_with_{r}", limit)
    fwd, inv = _fit(fwd, limit), _fit(inv, limit)
    if style == "camel":
        return _camel(fwd), _camel(inv)
    return fwd, inv


def _shorten(words: list[str], template: Any, limit: int) -> str:
    """Fill a name template, dropping middle relation words (not the type) until it fits."""
    words = list(words)
    name = template(_ident(words))
    while len(name) > limit and len(words) > 2:
        del words[-2]
        name = template(_ident(words))
    return name


def _set_name(style: str, op: str) -> str:
    """Name of a set-operation API in a style."""
    kg2, plain, _ = SET_OPERATIONS[op]
    return {"kg2tool": kg2, "plain": plain, "camel": _camel(kg2)}[style]


def _set_api(op: str, name: str) -> Api:
    """The Api of a set operation over two lists of entity names."""
    desc = SET_OPERATIONS[op][2]
    item = {"type": "array", "items": {"type": "string"}}
    return Api(
        name=name,
        description=desc,
        parameters={
            "type": "object",
            "properties": {
                "first": {**item, "description": "First list of entity names."},
                "second": {**item, "description": "Second list of entity names."},
            },
            "required": list(SET_PARAMS),
            "additionalProperties": False,
        },
        returns={**item, "description": "Names of the resulting entities, sorted."},
        kind="set_operation",
        operation=op,
        phrase={
            "intersection": "both {x} and {y}",
            "union": "{x} or {y}",
            "difference": "{x} but not {y}",
        }[op],
    )


def _list_apis(
    apis: list[Api],
    style: str,
    texts: Mapping[tuple[str, str], tuple[str, str, str]],
    lexicon: Mapping[str, Entry] | None = None,
) -> list[Api]:
    """The list form of every relation API (in catalogue order), named ``<name>_batch`` (a
    numeric suffix if that is taken); ``texts``: (relation label, meaning, the single API's
    "Returns ..." sentence) per (key, direction) for the descriptions (generic ones without)."""
    suffix = LIST_SUFFIX.get(style, "_batch")
    taken = {a.name for a in apis}
    out: list[Api] = []
    for a in apis:
        if a.kind != "relation":
            continue
        name = _fit(a.name, MAX_NAME - len(suffix)) + suffix
        i = 2
        while name in taken:
            name = f"{_fit(a.name, MAX_NAME - len(suffix) - 4)}{suffix}_{i}"
            i += 1
        taken.add(name)
        param = _plural(a.param_names[0])
        label, meaning, what = texts.get((str(a.relation), str(a.direction)), ("", "", ""))
        entry = (lexicon or {}).get(str(a.relation))
        if not what and entry is not None and a.direction is not None:
            what = _what(entry, a.direction, a.input_type)
        outputs = plural(a.output_type)
        given = "entities" if a.input_usually else plural(a.input_type)
        out.append(  # the single API's relation, direction, types and phrase, a list signature
            replace(
                a,
                name=name,
                description=_describe_list(a, label, meaning, entry, what),
                parameters={
                    "type": "object",
                    "properties": {
                        param: {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": _param_text(a.input_type, a.input_usually, many=True),
                        }
                    },
                    "required": [param],
                    "additionalProperties": False,
                },
                returns={
                    "type": "array",
                    "items": {"type": "string"},
                    "description": f"Names of the {outputs} linked to any of the given {given} "
                    "(the union over the list), sorted, without duplicates; empty when none "
                    "is known.",
                },
                kind=LIST_KIND,
            )
        )
    return out


def _describe_list(
    single: Api, label: str, meaning: str, entry: Entry | None = None, what: str = ""
) -> str:
    """Description of the list form of a relation API (see :func:`_describe`). The single
    API's own sentence (``what``, "Returns the people who have a given occupation") is quoted
    whole, never filled with a list: a lexicon phrase such as "the people with the occupation
    {x}" wants one name in its slot."""
    inp, outp = single.input_type, single.output_type
    several = "entities" if single.input_usually else plural(inp)
    if what.startswith("Returns "):
        what = (
            f"The list form of the lookup that returns {what[len('Returns ') :]}: it takes "
            f"several {several} and returns the union of the results for each, in one call."
        )
    else:
        what = f"Looks up several {several} in one call."
    gloss = _relation_gloss(entry, meaning)
    names = f"entity names, usually of {plural(inp)}" if single.input_usually else f"{inp} names"
    return (
        f"{what}{gloss} Input: a list of {names}. Output: one list of {outp} "
        "names, the union of the results for every given entity, sorted and without "
        "duplicates (it does not say which input each came from); empty if none is known."
    )


def _relation_gloss(entry: Entry | None, meaning: str) -> str:
    """ " Relation 'place of birth': where a person was born." (label words, then gloss)."""
    label = entry.label if entry is not None else ""
    if label and meaning:
        return f" Relation '{label}': {meaning.rstrip('.')}."
    return f" Relation '{label}'." if label else (f" {meaning.rstrip('.')}." if meaning else "")


def _what(entry: Entry, direction: str, inp: str) -> str:
    """What one direction of a relation returns, as a sentence without its full stop: the
    lexicon's own sentence, else "Returns " + the plural phrase about "the given <type>"."""
    own = entry.description if direction == "forward" else entry.inverse_description
    if own:
        return own.strip().rstrip(".")
    return "Returns " + entry.side(direction).many.replace("{x}", f"the given {inp}")


def _param_text(inp: str, usually: bool, many: bool = False) -> str:
    """The parameter's description: "Name of the country (...)", or for a data type word that
    not every argument has, "Name of an entity, usually a country (...)" (``many``: a list)."""
    if many:
        what = f"entities, usually {plural(inp)}" if usually else f"the {plural(inp)}"
        return f"Names of {what} (entity names exactly as returned by other tools)."
    what = f"an entity, usually {a_an(inp)}" if usually else f"the {inp}"
    return f"Name of {what} (an entity name exactly as returned by other tools)."


def _describe(
    entry: Entry, direction: str, meaning: str, inp: str, outp: str, usually: bool = False
) -> str:
    """Tool description of one direction of a relation, from its lexicon phrases and the
    declared input/output types: what it returns for the given entity, the relation's gloss,
    input and output."""
    gloss = _relation_gloss(entry, meaning)
    arg = f"an entity, usually {a_an(inp)}" if usually else a_an(inp)
    return (
        f"{_what(entry, direction, inp)}.{gloss} Input: the name of {arg}. "
        f"Output: a list of {outp} names, empty if none is known."
    )


def _fit_join(base: str, extra: list[str], limit: int) -> str:
    """base + disambiguating words within the limit, shortening the base, not the qualifier."""
    have = set(base.split("_"))
    tail = "_".join(e for e in extra if not set(e.split("_")) <= have)
    if not tail:
        return _fit(base, limit)
    if len(base) + 1 + len(tail) > limit:
        base = _fit(base, max(limit - len(tail) - 1, limit // 3))
    return _fit(f"{base}_{tail}", limit)


def _resolve_collisions(drafts: list[_Draft], reserved: set[str], source: str | None) -> None:
    """Give every draft a unique name: disambiguating words, then numeric suffixes."""
    fixed_names: dict[str, _Draft] = {}
    for d in drafts:
        if d.fixed:
            if d.base in reserved or d.base in fixed_names:
                raise InputError(
                    f"override name {d.base!r} of relation {d.relation!r} is used twice",
                    path=source,
                )
            fixed_names[d.base] = d
            d.name = d.base
    taken = set(reserved) | set(fixed_names)
    free = [d for d in drafts if not d.fixed]
    groups: dict[str, list[_Draft]] = {}
    for d in free:
        groups.setdefault(d.base, []).append(d)
    for base, group in groups.items():
        if len(group) == 1 and base not in taken:
            group[0].name = base
            continue
        # Every member gets qualified, so no API keeps a misleadingly generic name.
        depth = max(len(d.disambiguators) for d in group)
        for k in range(1, depth + 1):
            names = [_fit_join(base, d.disambiguators[:k], MAX_NAME - 4) for d in group]
            if len(set(names)) == len(names):
                break
        for d, n in zip(group, names, strict=True):
            d.name = n
    # Final pass: anything still clashing gets _2, _3 ... in relation-key order (drafts order).
    seen: set[str] = set(taken)
    for d in free:
        name, i = d.name, 2
        while name in seen:
            name = f"{_fit(d.name, MAX_NAME - 4)}_{i}"
            i += 1
        d.name = name
        seen.add(name)


# Compound words a caller may type for a relation's words (both sides are normalised).
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "birthplace": ("place", "birth"),
    "deathplace": ("place", "death"),
    "birthdate": ("date", "birth"),
    "birthday": ("date", "birth"),
    "deathdate": ("date", "death"),
    "hometown": ("place", "birth"),
    "born": ("birth",),
    "died": ("death",),
    "nationality": ("country", "citizenship"),
    "citizen": ("citizenship",),
    "job": ("occupation",),
    "profession": ("occupation",),
    "wife": ("spouse",),
    "husband": ("spouse",),
    "human": ("person",),
    "people": ("person",),
}
_FILLER = {"get", "find", "of", "the", "a", "an", "in", "by", "for", "to", "is", "are", "list"}


@functools.lru_cache(maxsize=65536)
def _api_words(name: str) -> frozenset[str]:
    """The content words of an API name (snake or camel case), singular, synonyms expanded."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    words: set[str] = set()
    for word in re.split(r"[^a-z0-9]+", spaced):
        if not word or word in _FILLER:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.update(_SYNONYMS.get(word, (word,)))
    return frozenset(words)


def close_api_names(name: str, names: Iterable[str], n: int = 3) -> list[str]:
    """API names close to ``name``: by shared relation words (synonyms such as birthplace /
    place of birth count as the same words) or by spelling, best first."""
    want = _api_words(name)
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(name)
    words, spelled = [], []
    for i, other in enumerate(names):
        have = _api_words(other)
        overlap = len(want & have) / len(want | have) if want or have else 0.0
        matcher.set_seq1(other)
        words.append((overlap, i, other))
        spelled.append((matcher.quick_ratio(), i, other))
    # the exact spelling ratio (slow) only for the few names that could reach the cut-off
    best = {i: overlap for overlap, i, _ in words}
    for quick, i, other in sorted(spelled, key=lambda t: (-t[0], t[1]))[: 4 * n]:
        if quick > max(best[i], 0.5):
            matcher.set_seq1(other)
            best[i] = max(best[i], matcher.ratio())
    scored = sorted((-best[i], i, other) for _, i, other in words if best[i] >= 0.5)
    return [other for _, _, other in scored[:n]]
