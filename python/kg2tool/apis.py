"""The API catalogue: every KG relation becomes a forward API (head -> tails) and an inverse one.

Stage 1 of KG2Tool (Entity-Relation-Entity maps to Input-Function-Output). Names are readable
identifiers derived from relation labels (Freebase paths are turned into words), descriptions
are written from the relation's label/description and the entity types it connects (domain and
range inferred from the data), and three set operations are offered as tools too. The catalogue
only describes; :mod:`kg2tool.runtime` executes it over the graph.

Naming (style ``"kg2tool"``, the paper's): forward ``get_<relation words>_of_<head type>``,
inverse from a phrasing table when it knows the relation (``find_people_born_in``) else
``get_<head types>_with_<relation words>``. Collisions are resolved deterministically: the
colliding APIs get disambiguating words (Freebase CVT type, path domain, the other side's
type), then a numeric suffix in relation-key order. Names depend only on the KG's content, so
they are stable for the same KG.

List APIs (``from_graph(..., list_apis=True)`` or :meth:`ApiCatalog.with_list_apis`; what
``call_style="batched"`` datasets call): every relation API also gets a batch form that takes a
list of entities, ``<name>_batch`` (camel ``<name>Batch``) with one array parameter named by the
plural of the input type (``get_place_of_birth_of_human_batch(humans=[...])``). It returns the
*union* of the single API's results over the list, one sorted list of names without duplicates
(it does not say which input gave which result): exactly the set a multi-hop query carries to
its next step. They come after every other API (``kind="relation_list"``), so adding them
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

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

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
OVERRIDE_FIELDS = frozenset(
    {"name", "inverse_name", "description", "inverse_description", "phrasing"}
)
PHRASING_FIELDS = frozenset({"forward", "inverse"})


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
    return _ascii_words(label or key) or ["related"]


def _plural(word: str, people: bool = False) -> str:
    """Naive English plural of the last word of a snake-case type word."""
    if people and word in ("human", "person"):
        return "people"
    head, _, last = word.rpartition("_")
    if last.endswith("s") and not last.endswith("ss"):  # games, continents: already plural
        pass
    elif last == "person":
        last = "people"
    elif re.search(r"[^aeiou]y$", last):
        last = last[:-1] + "ies"
    elif re.search(r"(s|x|z|ch|sh)$", last):
        last = last + "es"
    else:
        last = last + "s"
    return f"{head}_{last}" if head else last


def _plural_text(text: str) -> str:
    """Plural of a type label for prose ("city" -> "cities")."""
    return _plural(text.replace(" ", "_")).replace("_", " ")


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


def _pick_type(counts: list[tuple[str, int]]) -> str:
    """Most frequent type label; among those within 60% of the top, the shortest wins."""
    usable = [(lab, n) for lab, n in counts if lab and not RAW_ID_RE.search(lab)]
    if not usable:
        return GENERIC_TYPE
    top = max(n for _, n in usable)
    near = [(len(lab.split()), -n, lab) for lab, n in usable if n >= 0.6 * top]
    return min(near)[2]


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


def infer_domain_range(kg: Any) -> dict[int, tuple[str, str]]:
    """Per relation id: (domain, range) type labels, the most frequent types of heads/tails."""
    out: dict[int, list[str]] = {
        int(r): [GENERIC_TYPE, GENERIC_TYPE] for r in kg.relations["id"].to_list()
    }
    typed = _typed_entities(kg)
    if typed is None:
        return {r: (d, g) for r, (d, g) in out.items()}
    for side, col in ((0, "head"), (1, "tail")):
        counts = (
            kg.triples.select("relation", pl.col(col).alias("id"))
            .unique()
            .join(typed, on="id")
            .group_by("relation", "type_label")
            .agg(pl.len().alias("n"))
            .sort("relation", "n", "type_label", descending=[False, True, False])
        )
        for (rel_id,), grp in counts.group_by("relation", maintain_order=True):
            out[int(rel_id)][side] = _pick_type(list(zip(grp["type_label"], grp["n"], strict=True)))
    if all(is_freebase_path(k) for k in kg.relations["key"].to_list()):
        for rel_id, key in zip(kg.relations["id"], kg.relations["key"], strict=True):
            out[int(rel_id)][0] = freebase_parts(key)[0]  # the declared domain beats counting
    return {r: (d, g) for r, (d, g) in out.items()}


# ---------------------------------------------------------------- overrides


def load_overrides(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, dict]:
    """Read a TOML/YAML overrides file (or take a mapping): relation key -> fields; validated."""
    where: str | None = None
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        path = Path(source)
        where = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read overrides file: {exc.strerror}", path=where) from exc
        try:
            if path.suffix.lower() == ".toml":
                data = tomllib.loads(raw.decode("utf-8"))
            elif path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(raw) or {}
            else:
                raise InputError("overrides must be a .toml, .yaml or .yml file", path=where)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"invalid TOML: {exc}", path=where) from exc
        except InputError:
            raise
        except Exception as exc:  # yaml.YAMLError carries line/column in its message
            raise InputError(f"invalid YAML: {exc}", path=where) from exc
    if isinstance(data, Mapping) and set(data) == {"relations"}:
        data = data["relations"]
    if not isinstance(data, Mapping):
        raise InputError("overrides must map relation keys to tables", path=where)
    out: dict[str, dict] = {}
    for key, fields in data.items():
        if not isinstance(fields, Mapping):
            raise InputError(f"relation {key!r}: expected a table of fields", path=where)
        unknown = sorted(set(fields) - OVERRIDE_FIELDS)
        if unknown:
            raise InputError(
                f"relation {key!r}: unknown field(s) {unknown}; allowed: {sorted(OVERRIDE_FIELDS)}",
                path=where,
            )
        for name_field in ("name", "inverse_name"):
            value = fields.get(name_field)
            if value is not None and (not isinstance(value, str) or not NAME_RE.match(value)):
                raise InputError(
                    f"relation {key!r}: {name_field} {value!r} is not a valid identifier "
                    f"({NAME_RE.pattern})",
                    path=where,
                )
        for text_field in ("description", "inverse_description"):
            value = fields.get(text_field)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InputError(f"relation {key!r}: {text_field} must be text", path=where)
        phrasing = fields.get("phrasing")
        if phrasing is not None:
            if not isinstance(phrasing, Mapping) or set(phrasing) - PHRASING_FIELDS:
                raise InputError(
                    f"relation {key!r}: phrasing must be a table with keys forward/inverse",
                    path=where,
                )
            if not all(isinstance(v, str) for v in phrasing.values()):
                raise InputError(f"relation {key!r}: phrasing values must be text", path=where)
        out[str(key)] = dict(fields)
    out["__source__"] = where  # type: ignore[assignment]
    return out


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

    def __post_init__(self) -> None:
        self._by_name = {a.name: a for a in self.apis}
        self._by_relation = {
            (a.relation, a.direction): a for a in self.apis if a.kind == "relation"
        }  # type: ignore[misc]
        self._by_list_relation = {
            (a.relation, a.direction): a for a in self.apis if a.kind == LIST_KIND
        }
        if len(self._by_name) != len(self.apis):
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
        lists = self._list_apis or _list_apis(self.apis, self.style, {})
        return ApiCatalog(apis=[*self.apis, *lists], style=self.style, _list_apis=lists)

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
        rels = kg.relations.sort("key")
        drafts: list[_Draft] = []
        info: dict[tuple[str, str], dict[str, Any]] = {}
        for rel_id, key, label, desc in zip(
            rels["id"], rels["key"], rels["label"], rels["description"], strict=True
        ):
            rel_id = int(rel_id)
            domain, range_ = dr.get(rel_id, (GENERIC_TYPE, GENERIC_TYPE))
            words = relation_words(key, label)
            text_label = " ".join(words)
            o = ovr.get(key, {})
            fwd, inv = _base_names(style, words, domain, range_)
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
            phrasing = o.get("phrasing") or {}
            heads = _plural_text(domain) if domain != "human" else "people"
            info[(key, "forward")] = {
                "description": o.get("description")
                or _describe(text_label, clean_description(desc), domain, range_, "forward"),
                "input": domain,
                "output": range_,
                "phrase": phrasing.get("forward") or f"the {text_label} of {{x}}",
                "label": text_label,
                "meaning": clean_description(desc),
            }
            info[(key, "inverse")] = {
                "description": o.get("inverse_description")
                or _describe(text_label, clean_description(desc), domain, range_, "inverse"),
                "input": range_,
                "output": domain,
                "phrase": phrasing.get("inverse") or f"the {heads} whose {text_label} is {{x}}",
                "label": text_label,
                "meaning": clean_description(desc),
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
                                "description": f"Name of the {meta['input']} (an entity name "
                                "exactly as returned by other tools).",
                            }
                        },
                        "required": [param],
                        "additionalProperties": False,
                    },
                    returns={
                        "type": "array",
                        "items": {"type": "string"},
                        "description": f"Names of {_plural_text(meta['output'])}, "
                        "sorted; empty when none is known.",
                    },
                    kind="relation",
                    relation=d.relation,
                    relation_id=d.relation_id,
                    direction=d.direction,
                    input_type=meta["input"],
                    output_type=meta["output"],
                    phrase=meta["phrase"],
                )
            )
        for op, name in set_names.items():
            apis.append(_set_api(op, name))
        texts = {k: (v["label"], v["meaning"]) for k, v in info.items()}
        lists = _list_apis(apis, style, texts)
        return cls(apis=apis + lists if list_apis else apis, style=style, _list_apis=lists)

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
        from .atomic import write_bytes

        data = orjson.dumps(self.manifest(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        return write_bytes(path, data + b"\n", fsync=True)


# ---------------------------------------------------------------- helpers of from_graph


def _type_word(type_label: str) -> str:
    """Identifier word of a type label ("human", "city", "music_genre"); "entity" if none."""
    return _ident(_ascii_words(type_label)) or GENERIC_TYPE


def _base_names(style: str, words: list[str], domain: str, range_: str) -> tuple[str, str]:
    """Forward and inverse base names of a relation in a style (before collisions)."""
    limit = MAX_NAME
    if style == "plain":
        return _shorten(words, lambda r: r, limit), _shorten(words, lambda r: f"{r}_inverse", limit)
    head, tail = _type_word(domain), _type_word(range_)
    table = PHRASING_TABLE.get(" ".join(words), {})
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
    apis: list[Api], style: str, texts: Mapping[tuple[str, str], tuple[str, str]]
) -> list[Api]:
    """The list form of every relation API (in catalogue order), named ``<name>_batch`` (a
    numeric suffix if that is taken); ``texts``: (relation label, meaning) per (key, direction)
    for the descriptions (generic ones without)."""
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
        label, meaning = texts.get((str(a.relation), str(a.direction)), ("", ""))
        inputs, outputs = _plural_text(a.input_type), _plural_text(a.output_type)
        out.append(  # the single API's relation, direction, types and phrase, a list signature
            replace(
                a,
                name=name,
                description=_describe_list(a, label, meaning),
                parameters={
                    "type": "object",
                    "properties": {
                        param: {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": f"Names of the {inputs} (entity names exactly as "
                            "returned by other tools).",
                        }
                    },
                    "required": [param],
                    "additionalProperties": False,
                },
                returns={
                    "type": "array",
                    "items": {"type": "string"},
                    "description": f"Names of the {outputs} linked to any of the given {inputs} "
                    "(the union over the list), sorted, without duplicates; empty when none "
                    "is known.",
                },
                kind=LIST_KIND,
            )
        )
    return out


def _describe_list(single: Api, label: str, meaning: str) -> str:
    """Description of the list form of a relation API (see :func:`_describe`)."""
    inp, outp = single.input_type, single.output_type
    if not label:
        what = f"Batch form of {single.name}: looks up several {_plural_text(inp)} in one call."
    elif single.direction == "forward":
        what = (
            f"Returns the {label} of several {_plural_text(inp)} at once: the "
            f"{_plural_text(outp)} linked to any of them by the relation '{label}'."
        )
    else:
        what = (
            f"Returns the {_plural_text(outp)} whose {label} is any of several given "
            f"{_plural_text(inp)} (the inverse of the relation '{label}'), in one call."
        )
    meaning = f" Relation '{label}': {meaning.rstrip('.')}." if label and meaning else ""
    batch = f" Batch form of {single.name}." if label else ""
    return (
        f"{what}{meaning}{batch} Input: a list of {inp} names. Output: one list of {outp} "
        "names, the union of the results for every given entity, sorted and without "
        "duplicates (it does not say which input each came from); empty if none is known."
    )


def _describe(label: str, desc: str, domain: str, range_: str, direction: str) -> str:
    """Tool description from relation label, cleaned description and domain/range types."""
    meaning = f" Relation '{label}': {desc.rstrip('.')}." if desc else ""
    if direction == "forward":
        return (
            f"Returns the {label} of a given {domain}: the {_plural_text(range_)} linked to it "
            f"by the relation '{label}'.{meaning} Input: the name of a {domain}. "
            f"Output: a list of {range_} names, empty if none is known."
        )
    return (
        f"Returns the {_plural_text(domain)} whose {label} is the given {range_} (the inverse "
        f"of the relation '{label}').{meaning} Input: the name of a {range_}. "
        f"Output: a list of {domain} names, empty if none is known."
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
