"""API names: identifier words from relation labels and Freebase paths, the naming styles,
the phrasing table, and collision resolution (disambiguating words, then numeric suffixes).

Names depend only on the KG's content, so they are stable for the same KG.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kg2tool.errors import InputError
from kg2tool.tools.inflection import plural, plural_type

if TYPE_CHECKING:
    from kg2tool.tools.lexicon import Entry

NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
STYLES = ("kg2tool", "plain", "camel")
MAX_NAME = 64
GENERIC_TYPE = "entity"


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


def ascii_words(text: str) -> list[str]:
    """Lower-case ASCII words of a label (accents folded), for identifiers."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return [w for w in re.split(r"[^a-z0-9]+", folded.lower()) if w]


def ident(words: Iterable[str]) -> str:
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
    head_words = set(ascii_words(head_type.replace("_", " ")))
    seen: set[str] = set()
    words: list[list[str]] = []
    for i, prop in enumerate(props):
        toks = ascii_words(prop.replace("_", " "))
        if len(toks) > 1 and toks[-1] == "s":  # release_date_s -> release date
            toks = toks[:-1]
        if i > 0:  # later CVT hops repeat earlier words and the head type; keep what is new
            new = [t for t in toks if t not in seen and t not in head_words]
            toks = new or [t for t in toks if t not in seen]
        if toks:
            words.append(toks)
            seen.update(toks)
    return head_type.replace("_", " "), words, [c.replace("_", " ") for c in cvt_types]


def type_plural(word: str, people: bool = False) -> str:
    """English plural of a snake-case type word ("city" -> "cities", "human" -> "humans";
    "people" for humans and persons when ``people``)."""
    words = word.replace("_", " ")
    return (plural_type(words) if people else plural(words)).replace(" ", "_")


def camel_case(name: str) -> str:
    """snake_case -> camelCase."""
    parts = [p for p in name.split("_") if p]
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:]) if parts else name


def fit_name(name: str, limit: int = MAX_NAME) -> str:
    """Cut an identifier to the length limit at a word boundary; ensure a valid first char."""
    if name and name[0].isdigit():
        name = "x_" + name
    if len(name) > limit:
        cut = name[:limit]
        name = cut.rsplit("_", 1)[0] if "_" in cut[limit // 2 :] else cut
    return name.strip("_") or "api"


@dataclass
class NameDraft:
    """A relation API before collision resolution."""

    relation: str
    relation_id: int
    direction: str
    base: str
    disambiguators: list[str]
    fixed: bool = False  # user override: never renamed
    name: str = ""


def type_word(type_label: str) -> str:
    """Identifier word of a type label ("human", "city", "music_genre"); "entity" if none."""
    return ident(ascii_words(type_label)) or GENERIC_TYPE


def base_names(
    style: str, words: list[str], domain: str, range_: str, entry: Entry | None = None
) -> tuple[str, str]:
    """Forward and inverse base names of a relation in a style (before collisions): from the
    phrasing table, the lexicon's verb frames, else ``get_<words>_of_<head type>``."""
    limit = MAX_NAME
    if style == "plain":
        return _shorten(words, lambda r: r, limit), _shorten(words, lambda r: f"{r}_inverse", limit)
    head, tail = type_word(domain), type_word(range_)
    table = PHRASING_TABLE.get(" ".join(words), {})
    if not table and entry is not None and entry.api_forward and entry.api_inverse:
        fwd = fit_name(ident(ascii_words(entry.api_forward)), limit)
        inv = fit_name(ident(ascii_words(entry.api_inverse)), limit)
        return (camel_case(fwd), camel_case(inv)) if style == "camel" else (fwd, inv)
    fmt = {"head": head, "tail": tail, "heads": type_plural(head, people=True)}
    if "forward" in table:
        fwd = table["forward"].format(**fmt)
    else:  # "member of" -> get_member_of_<head>, not _of_of_
        fwd = _shorten(words, lambda r: f"get_{r}_of_{head}".replace("_of_of_", "_of_"), limit)
    if "inverse" in table:
        inv = table["inverse"].format(**fmt)
    else:
        inv = _shorten(words, lambda r: f"get_{type_plural(head)}_with_{r}", limit)
    fwd, inv = fit_name(fwd, limit), fit_name(inv, limit)
    if style == "camel":
        return camel_case(fwd), camel_case(inv)
    return fwd, inv


def _shorten(words: list[str], template: Any, limit: int) -> str:
    """Fill a name template, dropping middle relation words (not the type) until it fits."""
    words = list(words)
    name = template(ident(words))
    while len(name) > limit and len(words) > 2:
        del words[-2]
        name = template(ident(words))
    return name


def _fit_join(base: str, extra: list[str], limit: int) -> str:
    """base + disambiguating words within the limit, shortening the base, not the qualifier."""
    have = set(base.split("_"))
    tail = "_".join(e for e in extra if not set(e.split("_")) <= have)
    if not tail:
        return fit_name(base, limit)
    if len(base) + 1 + len(tail) > limit:
        base = fit_name(base, max(limit - len(tail) - 1, limit // 3))
    return fit_name(f"{base}_{tail}", limit)


def resolve_collisions(drafts: list[NameDraft], reserved: set[str], source: str | None) -> None:
    """Give every draft a unique name: disambiguating words, then numeric suffixes."""
    fixed_names: dict[str, NameDraft] = {}
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
    groups: dict[str, list[NameDraft]] = {}
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
            name = f"{fit_name(d.name, MAX_NAME - 4)}_{i}"
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


def freebase_disambiguators(key: str) -> list[str]:
    """Words that tell apart APIs of Freebase paths with the same base name: the property and
    CVT types, then the path's domain; none for other keys."""
    if not is_freebase_path(key):
        return []
    _, _, cvts = freebase_parts(key)
    last = ident(ascii_words(key.rsplit("/", 1)[-1]))
    cvt = [w for w in (last, *(ident(ascii_words(c)) for c in cvts)) if w]
    segs = key.strip("/").split("/")
    return [*cvt, ident(ascii_words(segs[1] if segs[0] in ("base", "user") else segs[0]))]
