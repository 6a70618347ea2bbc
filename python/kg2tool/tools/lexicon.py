"""Relation lexicons: how a careful person writes about each relation (docs/LEXICONS.md).

One place reads them all: the lexicons shipped in ``kg2tool/data/lexicons/`` (a file applies
to a KG when at least half of its relation keys are in it; ``wikidata.toml`` also key by key
for Wikidata property ids), a user's overrides file (TOML/YAML, the same format; it wins field
by field) and, for relations no lexicon covers, a grammatical fallback read from the relation's
label: verb phrases (``affects``, ``interacts_with``, ``located_in``) become verb frames, noun
phrases (``capital``, ``place_of_birth``) nouns. :func:`resolve_lexicon` gives one complete
:class:`Entry` per relation; the API catalogue and the question templates both read it.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kg2tool.errors import InputError
from kg2tool.tools.fallback import fallback_fields, relation_text
from kg2tool.tools.inflection import (
    a_an,
    inflections,
    is_plural_noun,
    plural,
    plural_phrase,
    seed_inflections,
    verb_lemma,
    with_article,
)
from kg2tool.tools.naming import GENERIC_TYPE, NAME_RE
from kg2tool.tools.raw_ids import clean_description

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "FIELDS",
    "SIDE_FIELDS",
    "Entry",
    "Side",
    "a_an",
    "fallback_fields",
    "inflections",
    "is_plural_noun",
    "plural",
    "read_lexicon",
    "relation_text",
    "resolve_lexicon",
    "seed_inflections",
    "select_shipped",
    "shipped_lexicons",
    "verb_lemma",
    "with_article",
]

SIDE_FIELDS = frozenset({"one", "many", "verb", "question", "name_prefix"})
FIELDS = frozenset(
    {
        "name",
        "inverse_name",
        "description",
        "inverse_description",
        "phrasing",
        "gloss",
        "label",
        "domain",
        "range",
        "exclude",
        "symmetric",
        "the_before_common_nouns",
        "forward",
        "inverse",
    }
)
# a domain/range type word: lower-case English, or a proper name of capitalised words
_TYPE_WORD = re.compile(r"[a-z][a-z' -]*|[A-Z][a-z]+(?: [A-Z][a-z]+)+")
SHIPPED_DIR = Path(__file__).parent.parent / "data" / "lexicons"
WIKIDATA_FILE = "wikidata"
_WIKIDATA_KEY = re.compile(r"^P\d+$")


# ---------------------------------------------------------------- reading files


@dataclass(frozen=True)
class Side:
    """One direction of a relation: noun phrases (singular/plural), predicate, question;
    ``{x}`` marks the argument. ``verb``/``question`` may be empty (not known)."""

    one: str
    many: str
    verb: str = ""
    question: str = ""
    # words before an entity name standing alone in {x} ("the term" -> "the subject field of
    # the term caramelize"), none before a nested phrase ("the subject field of the words ...")
    name_prefix: str = ""


@dataclass(frozen=True)
class Entry:
    """Everything about one relation that text is built from (all fields filled)."""

    key: str
    label: str  # the relation's words ("place of birth", "interacts with")
    gloss: str
    domain: str
    range: str
    forward: Side
    inverse: Side
    name: str | None = None
    inverse_name: str | None = None
    description: str | None = None
    inverse_description: str | None = None
    exclude: bool = False
    symmetric: bool = False  # r(a,b) iff r(b,a): the two directions may share their phrases
    # an entity name in {x} that is a common noun (lower case, as WordNet's lemmas) names a
    # thing here and takes "the" ("a part of the male body"), unlike in word relations
    the_before_common_nouns: bool = False
    form: str = "lexicon"  # "lexicon" or the fallback's reading: "noun", "noun_of", "verb", ...
    api_forward: str | None = None  # fallback's suggested base names (renamed on collision)
    api_inverse: str | None = None

    def side(self, direction: str) -> Side:
        """The forward or inverse side."""
        return self.forward if direction == "forward" else self.inverse


def _parse_file(path: Path) -> Any:
    """The data of a TOML/YAML file; InputError naming the file otherwise."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read lexicon file: {exc.strerror}", path=where) from exc
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(raw.decode("utf-8"))
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(raw) or {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"invalid TOML: {exc}", path=where) from exc
    except Exception as exc:  # yaml.YAMLError carries line/column in its message
        raise InputError(f"invalid YAML: {exc}", path=where) from exc
    raise InputError("a lexicon/overrides file must be .toml, .yaml or .yml", path=where)


def _check_phrase(key: str, name: str, value: Any, where: str | None) -> None:
    """The rules of docs/LEXICONS.md a single phrase must keep."""

    def bad(why: str) -> InputError:
        return InputError(f"relation {key!r}: {name} {value!r} {why}", path=where)

    if not isinstance(value, str) or not value.strip():
        raise bad("must be text")
    if value.count("{x}") != 1:
        raise bad("must contain {x} exactly once")
    field_ = name.rsplit(".", 1)[-1]
    if field_ == "question" and not (value[:1].isupper() or value.startswith("{x}")):
        raise bad("must start with a capital letter")
    if field_ == "question" and not value.rstrip().endswith("?"):
        raise bad("must end in '?'")
    if field_ == "verb" and value.split(" ", 1)[0].lower() in ("the", "a", "an"):
        raise bad("must start with a verb, not an article")


def read_lexicon(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, dict]:
    """Read a lexicon/overrides file (TOML or YAML) or take a mapping: relation key -> fields,
    validated (one-line InputError naming the file and relation). The legacy ``phrasing =
    {forward, inverse}`` is read as ``forward.one`` / ``inverse.one``. The returned mapping
    carries the source path under ``"__source__"``."""
    where: str | None = None
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        path = Path(source)
        where = str(path)
        data = _parse_file(path)
    if isinstance(data, Mapping) and set(data) == {"relations"}:
        data = data["relations"]
    if not isinstance(data, Mapping):
        raise InputError("a lexicon must map relation keys to tables", path=where)
    out: dict[str, Any] = {}
    for key, fields in data.items():
        if key == "__source__":
            continue
        if not isinstance(fields, Mapping):
            raise InputError(f"relation {key!r}: expected a table of fields", path=where)
        unknown = sorted(set(fields) - FIELDS)
        if unknown:
            raise InputError(
                f"relation {key!r}: unknown field(s) {unknown}; allowed: {sorted(FIELDS)}",
                path=where,
            )
        entry = dict(fields)
        for name_field in ("name", "inverse_name"):
            value = entry.get(name_field)
            if value is not None and (not isinstance(value, str) or not NAME_RE.match(value)):
                raise InputError(
                    f"relation {key!r}: {name_field} {value!r} is not a valid identifier "
                    f"({NAME_RE.pattern})",
                    path=where,
                )
        for text_field in ("description", "inverse_description", "gloss", "label"):
            value = entry.get(text_field)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InputError(f"relation {key!r}: {text_field} must be text", path=where)
        for type_field in ("domain", "range"):
            value = entry.get(type_field)
            if value is not None and (
                not isinstance(value, str) or not _TYPE_WORD.fullmatch(value)
            ):
                raise InputError(
                    f"relation {key!r}: {type_field} {value!r} must be a lower-case English "
                    "type word (or a proper name such as 'Olympic Games')",
                    path=where,
                )
        for flag in ("exclude", "symmetric", "the_before_common_nouns"):
            if flag in entry and not isinstance(entry[flag], bool):
                raise InputError(f"relation {key!r}: {flag} must be true or false", path=where)
        phrasing = entry.pop("phrasing", None)
        if phrasing is not None:
            if not isinstance(phrasing, Mapping) or set(phrasing) - {"forward", "inverse"}:
                raise InputError(
                    f"relation {key!r}: phrasing must be a table with keys forward/inverse",
                    path=where,
                )
            if not all(isinstance(v, str) for v in phrasing.values()):
                raise InputError(f"relation {key!r}: phrasing values must be text", path=where)
            for d, text in phrasing.items():
                side = dict(entry.get(d) or {})
                side.setdefault("one", text)
                entry[d] = side
        for d in ("forward", "inverse"):
            side = entry.get(d)
            if side is None:
                continue
            if not isinstance(side, Mapping):
                raise InputError(f"relation {key!r}: {d} must be a table", path=where)
            bad = sorted(set(side) - SIDE_FIELDS)
            if bad:
                raise InputError(
                    f"relation {key!r}: unknown field(s) {bad} in {d}; allowed: "
                    f"{sorted(SIDE_FIELDS)}",
                    path=where,
                )
            for f, value in side.items():
                if f == "name_prefix":
                    if not isinstance(value, str) or not re.fullmatch(r"(?:[a-z]+ ?)*", value):
                        raise InputError(
                            f"relation {key!r}: {d}.name_prefix {value!r} must be lower-case words",
                            path=where,
                        )
                    continue
                _check_phrase(str(key), f"{d}.{f}", value, where)
            entry[d] = dict(side)
        out[str(key)] = entry
    out["__source__"] = where
    return out


@functools.lru_cache(maxsize=1)
def shipped_lexicons() -> dict[str, dict[str, dict]]:
    """The lexicons shipped with kg2tool, by file stem (empty when none are installed)."""
    return {stem: shipped_lexicon(stem) for stem in shipped_keys()}


# A top-level table header of a lexicon file: ``["key"]`` or ``[key]`` (not ``["key".forward]``)
_TABLE_HEADER = re.compile(r'^\[\s*(?:"([^"\\]*)"|([A-Za-z0-9_-]+))\s*\](?:\s*#.*)?$', re.M)


@functools.lru_cache(maxsize=1)
def shipped_keys() -> dict[str, frozenset[str]]:
    """The relation keys of each shipped lexicon, read from its table headers without
    parsing the file (choosing which files a KG needs is then cheap)."""
    out: dict[str, frozenset[str]] = {}
    if SHIPPED_DIR.is_dir():
        for path in sorted(SHIPPED_DIR.glob("*.toml")):
            text = path.read_text(encoding="utf-8")
            out[path.stem] = frozenset(a or b for a, b in _TABLE_HEADER.findall(text))
    return out


@functools.cache
def shipped_lexicon(stem: str) -> dict[str, dict]:
    """One shipped lexicon, read and checked (relation key -> fields)."""
    data = read_lexicon(SHIPPED_DIR / f"{stem}.toml")
    data.pop("__source__", None)
    return data


def select_shipped(
    keys: Iterable[str], shipped: Mapping[str, Mapping[str, dict]] | None = None
) -> dict[str, dict]:
    """Relation key -> fields from the shipped lexicons that apply to a KG with these keys: a
    file when at least half of the keys are in it (the larger overlap first), and
    ``wikidata.toml`` key by key for Wikidata property ids."""
    keys = list(keys)
    out: dict[str, dict] = {}
    if not keys:
        return out
    # which files apply is decided from their keys; only those are read
    held = shipped_keys() if shipped is None else {s: frozenset(x) for s, x in shipped.items()}

    def lexicon(stem: str) -> Mapping[str, dict]:
        return shipped_lexicon(stem) if shipped is None else shipped[stem]

    ranked = sorted(((sum(k in held[stem] for k in keys), stem) for stem in held), reverse=True)
    for hits, stem in ranked:
        if hits and 2 * hits >= len(keys):
            for k in keys:
                if k in held[stem] and k not in out:
                    out[k] = lexicon(stem)[k]
    wikidata = held.get(WIKIDATA_FILE, frozenset())
    for k in keys:
        if k not in out and _WIKIDATA_KEY.match(k) and k in wikidata:
            out[k] = lexicon(WIKIDATA_FILE)[k]
    return out


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Field by field: ``top`` wins, the forward/inverse tables merged field by field too."""
    out = dict(base)
    for f, v in top.items():
        if f in ("forward", "inverse") and isinstance(v, Mapping):
            out[f] = {**dict(base.get(f) or {}), **dict(v)}
        else:
            out[f] = v
    return out


# ---------------------------------------------------------------- the grammatical fallback


# ---------------------------------------------------------------- resolving a KG's lexicon


def resolve_lexicon(
    relations: Iterable[tuple[str, str | None, str | None]],
    types: Mapping[str, tuple[str, str]] | None = None,
    overrides: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    shipped: Mapping[str, Mapping[str, dict]] | None = None,
) -> dict[str, Entry]:
    """One complete :class:`Entry` per relation: shipped lexicon, then the user's overrides
    field by field, then the fallback for what is still missing.

    ``relations``: (key, label, description) triples; ``types``: key -> (domain, range) type
    words inferred from the data (a lexicon's domain/range wins)."""
    rels = list(relations)
    types = types or {}
    base = select_shipped([k for k, _, _ in rels], shipped)
    user: Mapping[str, Any] = {}
    if overrides is not None:
        user = (
            overrides
            if isinstance(overrides, Mapping) and "__source__" in overrides
            else read_lexicon(overrides)
        )
    out: dict[str, Entry] = {}
    for key, label, desc in rels:
        fields = _merge(base.get(key, {}), user.get(key, {}))
        dom_d, rng_d = types.get(key, (GENERIC_TYPE, GENERIC_TYPE))
        dom = fields.get("domain") or dom_d or GENERIC_TYPE
        rng = fields.get("range") or rng_d or GENERIC_TYPE
        # the fallback, computed only when a field is missing (it may load lemminflect)
        fallback = functools.cache(functools.partial(fallback_fields, key, label, dom, rng))

        sides = {}
        for d in ("forward", "inverse"):
            have = dict(fields.get(d) or {})
            if "one" in have and "many" not in have:  # a legacy or partial entry
                have["many"] = plural_phrase(have["one"])
            if "one" in have:  # the fallback's verb/question belong to the fallback's phrases
                side = Side(
                    have["one"],
                    have["many"],
                    have.get("verb", ""),
                    have.get("question", ""),
                    have.get("name_prefix", "").strip(),
                )
            else:
                fall = fallback()[d]
                side = Side(
                    fall["one"],
                    have.get("many", fall["many"]),
                    have.get("verb", fall.get("verb", "")),
                    have.get("question", fall.get("question", "")),
                    have.get("name_prefix", "").strip(),
                )
            sides[d] = side
        from_lexicon = "forward" in fields or "inverse" in fields
        gloss = fields.get("gloss") or _gloss(desc, key)
        out[key] = Entry(
            key=key,
            label=fields.get("label") or relation_text(key, label, commas=True),
            gloss=gloss,
            domain=dom,
            range=rng,
            forward=sides["forward"],
            inverse=sides["inverse"],
            name=fields.get("name"),
            inverse_name=fields.get("inverse_name"),
            description=fields.get("description"),
            inverse_description=fields.get("inverse_description"),
            exclude=bool(fields.get("exclude", False)),
            the_before_common_nouns=bool(fields.get("the_before_common_nouns", False)),
            symmetric=bool(fields.get("symmetric", False)),
            form="lexicon" if from_lexicon else fallback()["form"],
            api_forward=None if from_lexicon else fallback().get("api_forward"),
            api_inverse=None if from_lexicon else fallback().get("api_inverse"),
        )
    return out


def _gloss(desc: str | None, key: str = "") -> str:
    """A one-line gloss from a relation description without raw ids; empty when there is none
    or it only repeats the key's words (Freebase paths as descriptions)."""
    if not desc:
        return ""
    key_words = set(re.findall(r"[a-z0-9]+", key.lower()))
    if set(re.findall(r"[a-z0-9]+", desc.lower())) <= key_words:
        return ""
    return clean_description(desc).split("\n", 1)[0].rstrip(".")
