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
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from kg2tool.errors import InputError, UnknownNameError
from kg2tool.tools.descriptions import (
    describe,
    describe_list,
    names_schema,
    object_schema,
    param_text,
    what_it_returns,
)
from kg2tool.tools.lexicon import (
    Entry,
    plural,
    read_lexicon,
    resolve_lexicon,
    select_shipped,
)
from kg2tool.tools.naming import (
    GENERIC_TYPE,
    MAX_NAME,
    NAME_RE,
    STYLES,
    NameDraft,
    ascii_words,
    base_names,
    camel_case,
    close_api_names,
    fit_name,
    freebase_disambiguators,
    freebase_parts,
    resolve_collisions,
    type_plural,
    type_word,
)
from kg2tool.tools.raw_ids import RAW_ID_RE, clean_description
from kg2tool.tools.typewords import TYPE_COVERAGE, infer_domain_range, infer_domain_ranges

__all__ = [
    "GENERIC_TYPE",
    "LIST_KIND",
    "LIST_SUFFIX",
    "MAX_NAME",
    "NAME_RE",
    "RAW_ID_RE",
    "SET_OPERATIONS",
    "STYLES",
    "TYPE_COVERAGE",
    "Api",
    "ApiCatalog",
    "clean_description",
    "close_api_names",
    "freebase_parts",
    "infer_domain_range",
    "load_overrides",
]

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


# ---------------------------------------------------------------- domain and range


# ---------------------------------------------------------------- overrides


def load_overrides(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, dict]:
    """Read a TOML/YAML overrides file (or take a mapping): relation key -> fields; validated.

    The format is a relation lexicon's (docs/LEXICONS.md; :func:`kg2tool.tools.lexicon.read_lexicon`)."""
    return read_lexicon(source)


# ---------------------------------------------------------------- the catalogue


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
        _check_override_keys(ovr, rel_keys, source)
        # the default coverage's words, and the types every argument has
        dr, strict = infer_domain_ranges(kg, (TYPE_COVERAGE, 1.0))
        rels = kg.relations.sort("key")
        by_key = dict(zip(kg.relations["key"], kg.relations["id"], strict=True))
        given = select_shipped(rel_keys)  # which sides a lexicon types
        lexicon = resolve_lexicon(
            zip(rels["key"], rels["label"], rels["description"], strict=True),
            types={k: dr.get(int(by_key[k]), (GENERIC_TYPE, GENERIC_TYPE)) for k in rel_keys},
            overrides={**ovr, "__source__": source},
        )
        drafts: list[NameDraft] = []
        info: dict[tuple[str, str], dict[str, Any]] = {}
        for rel_id, key in zip(rels["id"], rels["key"], strict=True):
            rel_id = int(rel_id)
            # a side's type word: the lexicon's, else the data's (module doc); a data word
            # that some of the side's entities lack is declared as "usually" that type
            typed = {**given.get(key, {}), **ovr.get(key, {})}
            tight = strict.get(rel_id, (GENERIC_TYPE, GENERIC_TYPE))
            loose = dr.get(rel_id, (GENERIC_TYPE, GENERIC_TYPE))
            entry = lexicon[key]
            usually = {
                d: not typed.get(f) and word != GENERIC_TYPE and tight[i] != loose[i]
                for i, (d, f, word) in enumerate(
                    (("forward", "domain", entry.domain), ("inverse", "range", entry.range))
                )
            }
            _draft_relation(
                key, rel_id, entry, dict(ovr.get(key, {})), usually, style, drafts, info
            )
        set_names = {op: _set_name(style, op) for op in SET_OPERATIONS} if set_operations else {}
        resolve_collisions(drafts, reserved=set(set_names.values()), source=source)
        apis = [_relation_api(d, info[(d.relation, d.direction)], style) for d in drafts]
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


def _check_override_keys(ovr: Mapping[str, Any], rel_keys: list[str], source: str | None) -> None:
    """Every overridden relation key must be one of the KG's (else a hint at close keys)."""
    known = set(rel_keys)
    for key in ovr:
        if key not in known:
            close = difflib.get_close_matches(key, rel_keys, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise InputError(f"unknown relation key {key!r} in overrides{hint}", path=source)


def _draft_relation(
    key: str,
    rel_id: int,
    entry: Entry,
    o: dict[str, Any],
    usually: dict[str, bool],
    style: str,
    drafts: list[NameDraft],
    info: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Add a relation's forward and inverse name drafts and their texts (``info``).

    ``o``: the user's overrides of this relation; ``usually``: per direction, whether the
    input type word is the data's and not every argument has it."""
    domain, range_ = entry.domain, entry.range
    words = ascii_words(entry.label) or ["related"]
    # names and descriptions: the user's overrides, else the shipped lexicon's (its
    # names are kg2tool-style identifiers, so other styles generate their own)
    if style == "kg2tool":
        for field_name in ("name", "inverse_name"):
            if getattr(entry, field_name):
                o.setdefault(field_name, getattr(entry, field_name))
    fwd, inv = base_names(style, words, domain, range_, entry)
    cvt = freebase_disambiguators(key)
    disamb_f = [*cvt, f"to_{type_word(range_)}"]
    disamb_i = [*cvt, f"of_{type_word(domain)}"]
    if style == "camel":
        disamb_f = [camel_case(d) for d in disamb_f]
        disamb_i = [camel_case(d) for d in disamb_i]
    drafts.append(
        NameDraft(key, rel_id, "forward", o.get("name") or fwd, disamb_f, fixed="name" in o)
    )
    drafts.append(
        NameDraft(
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
        own = o.get("description" if d == "forward" else "inverse_description")
        info[(key, d)] = {
            "description": own or describe(entry, d, meaning, inp, outp, usually[d]),
            "input": inp,
            "output": outp,
            "usually": usually[d],
            "phrase": entry.side(d).one,
            "label": " ".join(words),
            "meaning": meaning,
            "what": own or what_it_returns(entry, d, inp),
        }


def _relation_api(d: NameDraft, meta: dict[str, Any], style: str) -> Api:
    """The Api of a named relation draft, from its texts (``meta``)."""
    param = type_word(meta["input"])
    if style == "camel":
        param = camel_case(param)
    return Api(
        name=d.name,
        description=meta["description"],
        parameters=object_schema(
            {param: {"type": "string", "description": param_text(meta["input"], meta["usually"])}}
        ),
        returns=names_schema(
            f"Names of {plural(meta['output'])}, sorted; empty when none is known."
        ),
        kind="relation",
        relation=d.relation,
        relation_id=d.relation_id,
        direction=d.direction,
        input_type=meta["input"],
        output_type=meta["output"],
        phrase=meta["phrase"],
        input_usually=meta["usually"],
    )


def _set_name(style: str, op: str) -> str:
    """Name of a set-operation API in a style."""
    kg2, plain, _ = SET_OPERATIONS[op]
    return {"kg2tool": kg2, "plain": plain, "camel": camel_case(kg2)}[style]


def _set_api(op: str, name: str) -> Api:
    """The Api of a set operation over two lists of entity names."""
    return Api(
        name=name,
        description=SET_OPERATIONS[op][2],
        parameters=object_schema(
            dict(
                zip(
                    SET_PARAMS,
                    (
                        names_schema("First list of entity names."),
                        names_schema("Second list of entity names."),
                    ),
                    strict=True,
                )
            )
        ),
        returns=names_schema("Names of the resulting entities, sorted."),
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
        name = fit_name(a.name, MAX_NAME - len(suffix)) + suffix
        i = 2
        while name in taken:
            name = f"{fit_name(a.name, MAX_NAME - len(suffix) - 4)}{suffix}_{i}"
            i += 1
        taken.add(name)
        param = type_plural(a.param_names[0])
        label, meaning, what = texts.get((str(a.relation), str(a.direction)), ("", "", ""))
        entry = (lexicon or {}).get(str(a.relation))
        if not what and entry is not None and a.direction is not None:
            what = what_it_returns(entry, a.direction, a.input_type)
        outputs = plural(a.output_type)
        given = "entities" if a.input_usually else plural(a.input_type)
        out.append(  # the single API's relation, direction, types and phrase, a list signature
            replace(
                a,
                name=name,
                description=describe_list(a, label, meaning, entry, what),
                parameters=object_schema(
                    {param: names_schema(param_text(a.input_type, a.input_usually, many=True))}
                ),
                returns=names_schema(
                    f"Names of the {outputs} linked to any of the given {given} "
                    "(the union over the list), sorted, without duplicates; empty when none "
                    "is known."
                ),
                kind=LIST_KIND,
            )
        )
    return out
