"""The grammatical fallback: lexicon fields of a relation no lexicon covers, read from the
form of its label (a verb phrase becomes a verb frame, a noun phrase a noun)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from kg2tool.kg.names import humanise_key
from kg2tool.tools.inflection import (
    PREPOSITIONS,
    a_an,
    inflected,
    is_adjective,
    is_participle,
    participle,
    plural,
    plural_phrase,
    verb_lemma,
)
from kg2tool.tools.naming import GENERIC_TYPE, is_freebase_path


def label_words(text: str) -> list[str]:
    """Lower-case words of a label (accents folded; hyphens kept inside words)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return [w for w in re.split(r"[^a-z0-9'-]+", folded.lower()) if w.strip("-")]


# normalised label -> (forward phrase, inverse phrase); {x} the argument, {dom} plural of the
# domain type ("people" for humans), {rng} plural of the range type.
_CURATED: dict[str, tuple[str, str]] = {
    "founded by": ("the founders of {x}", "the {dom} founded by {x}"),
    "influenced by": ("the people who influenced {x}", "the people influenced by {x}"),
    "directed by": ("the director of {x}", "the {dom} directed by {x}"),
    "director": ("the director of {x}", "the {dom} directed by {x}"),
    "written by": ("the writer of {x}", "the {dom} written by {x}"),
    "produced by": ("the producer of {x}", "the {dom} produced by {x}"),
    "member of political party": ("the political party of {x}", "the members of {x}"),
    "member of": ("the organizations that have {x} as a member", "the members of {x}"),
    "part of": ("the {rng} that have {x} as a part", "the parts of {x}"),
    "named after": ("the namesake of {x}", "the {dom} named after {x}"),
    "cast member": ("the cast members of {x}", "the {dom} starring {x}"),
    "practiced by": ("the groups that practice {x}", "the {dom} practiced by {x}"),
    "spouse": ("the spouse of {x}", "the people married to {x}"),
    "sibling": ("the siblings of {x}", "the people whose sibling is {x}"),
    "child": ("the children of {x}", "the parents of {x}"),
    "unmarried partner": ("the unmarried partner of {x}", "the people whose partner is {x}"),
    "educated at": ("the schools that {x} attended", "the people educated at {x}"),
    "diplomatic relation": (
        "the countries with which {x} has diplomatic relations",
        "the countries that have diplomatic relations with {x}",
    ),
    "shares border with": ("the neighbours of {x}", "the {dom} bordering {x}"),
    "place of birth": ("the birthplace of {x}", "the people born in {x}"),
    "place of death": ("the place where {x} died", "the people who died in {x}"),
    "place of burial": ("the burial place of {x}", "the people buried in {x}"),
    "headquarters location": ("the headquarters location of {x}", "the {dom} headquartered in {x}"),
    "country of citizenship": ("the country of citizenship of {x}", "the citizens of {x}"),
    "residence": ("the residence of {x}", "the residents of {x}"),
    "languages spoken written or signed": (
        "the languages spoken by {x}",
        "the people who speak {x}",
    ),
    "notable works": ("the notable works of {x}", "the people whose notable works include {x}"),
    "location of formation": ("the place where {x} was formed", "the {dom} formed in {x}"),
    "employer": ("the employers of {x}", "the people employed by {x}"),
    "instrument": ("the instruments played by {x}", "the people who play {x}"),
    "genre": ("the genre of {x}", "the {dom} in the genre {x}"),
    "record label": ("the record label of {x}", "the artists signed to {x}"),
    "occupation": ("the occupation of {x}", "the people whose occupation is {x}"),
    "field of work": ("the field of work of {x}", "the people who work in {x}"),
    "cause of death": ("the cause of death of {x}", "the people who died of {x}"),
    "medical condition": ("the medical conditions of {x}", "the people with {x}"),
    "head of state": ("the head of state of {x}", "the {dom} whose head of state is {x}"),
    "continent": ("the continent of {x}", "the {dom} in {x}"),
    "country": ("the country of {x}", "the {dom} from {x}"),
    "country of origin": ("the country of origin of {x}", "the {dom} from {x}"),
    "official language": ("the official language of {x}", "the {dom} where {x} is official"),
    "parent organization": ("the parent organization of {x}", "the subsidiaries of {x}"),
    "narrative location": ("the setting of {x}", "the {dom} set in {x}"),
    "time period": ("the time period of {x}", "the people of {x}"),
    "ethnic group": ("the ethnic group of {x}", "the people who belong to {x}"),
    "religion": ("the religion of {x}", "the people whose religion is {x}"),
    "movement": ("the movement of {x}", "the people associated with {x}"),
    "contains administrative territorial entity": (
        "the subdivisions of {x}",
        "the region that contains {x}",
    ),
    "located in the administrative territorial entity": (
        "the region where {x} is located",
        "the places located in {x}",
    ),
    "capital": ("the capital of {x}", "the {dom} whose capital is {x}"),
    "capital of": ("the {rng} whose capital is {x}", "the capital of {x}"),
}


def relation_text(key: str, label: str | None, commas: bool = False) -> str:
    """The words a relation is read from: its label, else its key turned into words.
    ``commas``: keep the label's commas ("languages spoken, written or signed"), for
    quoting the label to a reader rather than parsing it."""
    if is_freebase_path(key):  # a Freebase path: its last property
        text = re.sub(r"_s$", "", key.rsplit("/", 1)[-1]).replace("_", " ")
    elif label and label != key:
        text = label
    else:
        text = humanise_key(key)
    text = re.sub(r"-(?=(?:in|of|by|with|to|from|at|on|for)\b)", " ", text.lower())
    if commas:
        parts = [" ".join(label_words(part)) for part in text.split(",")]
        return ", ".join(p for p in parts if p) or "related"
    return " ".join(label_words(text)) or "related"


def fallback_fields(key: str, label: str | None, domain: str, range_: str) -> dict[str, Any]:
    """Lexicon fields of a relation no lexicon covers, from the form of its label: a verb
    phrase becomes a verb frame, a noun phrase a noun ("{x}" marks the argument)."""
    text = relation_text(key, label)
    w = text.split(" ")
    dom, rng = domain or GENERIC_TYPE, range_ or GENERIC_TYPE
    doms, rngs = plural(dom), plural(rng)
    if text in _CURATED:
        fwd, inv = (p.replace("{dom}", doms).replace("{rng}", rngs) for p in _CURATED[text])
        return {
            "form": "curated",
            "forward": {"one": fwd, "many": plural_phrase(fwd)},
            "inverse": {"one": inv, "many": plural_phrase(inv)},
        }
    if text in _ISA_LABELS:
        return _isa_fields()
    lemma = verb_lemma(w[0]) if w[0] not in ("is", "has", "was") else None
    if lemma is not None and (len(w) == 1 or (w[-1] in PREPOSITIONS and len(w) <= 3)):
        return _verb_fields(w, lemma, dom, doms, rng, rngs)
    if w[0] in ("is", "was") and len(w) >= 3 and is_participle(w[1]) and w[-1] in PREPOSITIONS:
        w = w[1:]  # "is located in" -> "located in"
    if len(w) >= 2 and w[-1] in PREPOSITIONS and (is_participle(w[-2]) or is_adjective(w[-2])):
        return _passive_fields(w, dom, doms, rng, rngs)
    return _noun_fields(w, dom, doms, rng, rngs)


_ISA_LABELS = ("isa", "is a", "is an", "type", "kind of", "subclass of", "is a kind of")


def _isa_fields() -> dict[str, Any]:
    """A subclass relation ("is a", "subclass of"): broader categories and kinds."""
    return {
        "form": "isa",
        "forward": {
            "one": "the broader category of {x}",
            "many": "the broader categories of {x}",
            "verb": "is a broader category of {x}",
            "question": "What is {x} a kind of?",
        },
        "inverse": {
            "one": "a kind of {x}",
            "many": "the kinds of {x}",
            "verb": "is a kind of {x}",
            "question": "What is a kind of {x}?",
        },
        "api_forward": "get_categories_of",
        "api_inverse": "find_kinds_of",
    }


def _verb_fields(
    w: list[str], lemma: str, dom: str, doms: str, rng: str, rngs: str
) -> dict[str, Any]:
    """A verb frame from a verb label ("affects", "interacts with"; ``lemma`` of its verb)."""
    rest = " ".join(w[1:])
    prep = w[-1] if len(w) > 1 and w[-1] in PREPOSITIONS else ""
    body = " ".join(w[1:-1]) if prep else rest
    base = " ".join(x for x in (lemma, body) if x)
    third = " ".join(x for x in (w[0], body) if x)
    tail = f" {prep}" if prep else ""
    if prep:  # "interacts with": the forward answers are "the entities with which X interacts"
        fwd = {
            "one": f"the {rng} {prep} which {{x}} {third}",
            "many": f"the {rngs} {prep} which {{x}} {third}",
            "question": f"What does {{x}} {base}{tail}?",
        }
    else:
        part = participle(lemma)
        fwd = {
            "one": f"the {rng} {part}{' ' + body if body else ''} by {{x}}",
            "many": f"the {rngs} {part}{' ' + body if body else ''} by {{x}}",
            "verb": f"is {part}{' ' + body if body else ''} by {{x}}",
            "question": f"What does {{x}} {base}?",
        }
    inv = {
        "one": f"the {dom} that {third}{tail} {{x}}",
        "many": f"the {doms} that {base}{tail} {{x}}",
        "verb": f"{third}{tail} {{x}}",
        "question": f"What {third}{tail} {{x}}?",
    }
    return {
        "form": "verb",
        "forward": fwd,
        "inverse": inv,
        "api_forward": (
            f"find_{rngs}_{participle(lemma)}_{body + '_' if body else ''}by"
            if not prep
            else f"find_what_{dom}_{third}_{prep}"
        ),
        "api_inverse": f"find_{doms}_that_{base}{'_' + prep if prep else ''}",
    }


def _passive_fields(w: list[str], dom: str, doms: str, rng: str, rngs: str) -> dict[str, Any]:
    """A participle or adjective with its preposition ("located in", "adjacent to")."""
    phrase = " ".join(w)  # "located in", "born in", "influenced by"
    core, prep = " ".join(w[:-1]), w[-1]
    return {
        "form": "passive",
        "forward": {
            "one": f"the {rng} {prep} which {{x}} is {core}",
            "many": f"the {rngs} {prep} which {{x}} is {core}",
            "question": f"What is {{x}} {phrase}?",
        },
        "inverse": {
            "one": f"the {dom} {phrase} {{x}}",
            "many": f"the {doms} {phrase} {{x}}",
            "verb": f"is {phrase} {{x}}",
            "question": f"What is {phrase} {{x}}?",
        },
        "api_forward": f"get_what_{dom}_is_{phrase}",
        "api_inverse": "find_" + "_".join(plural(dom).split()) + "_" + "_".join(w),
    }


def _noun_fields(w: list[str], dom: str, doms: str, rng: str, rngs: str) -> dict[str, Any]:
    """A noun label ("capital", "place of birth", "capital of", "music by")."""
    if w[0] in ("has", "have") and len(w) >= 2:
        w = w[1:]  # "has part" -> the noun "part"
    if w in (["also", "see"], ["see", "also"]):
        w = ["related", "entry"]

    def singular(word: str) -> str:  # "combatants" -> "combatant"
        if word in PREPOSITIONS or word.endswith(("ss", "us", "is")) or word in ("news", "series"):
            return word
        return inflected("singular_noun", word) or word

    if len(w) <= 4:  # the last word of each conjunct: "disciplines or subjects"
        w = [
            singular(x) if i == len(w) - 1 or w[i + 1] in ("or", "and") else x
            for i, x in enumerate(w)
        ]
    noun = " ".join(w)
    if len(w) >= 2 and w[-1] == "by":  # "story by", "music by": the maker of a work
        n = " ".join(w[:-1])
        return {
            "form": "noun_by",
            "forward": {
                "one": f"the {rng} credited with the {n} of {{x}}",
                "many": f"the {rngs} credited with the {n} of {{x}}",
                "verb": f"is credited with the {n} of {{x}}",
                "question": f"Who is credited with the {n} of {{x}}?",
            },
            "inverse": {
                "one": f"the {dom} with {n} by {{x}}",
                "many": f"the {doms} with {n} by {{x}}",
                "question": f"What has {n} by {{x}}?",
            },
        }
    if len(w) >= 2 and w[-1] == "of":  # "capital of", "part of", "member of"
        n = " ".join(w[:-1])
        return {
            "form": "noun_of",
            "forward": {
                "one": f"the {rng} that has {{x}} as {a_an(n)}",
                "many": f"the {rngs} that have {{x}} as {a_an(n)}",
                "verb": f"has {{x}} as {a_an(n)}",
                "question": f"What has {{x}} as {a_an(n)}?",
            },
            "inverse": {
                "one": f"the {n} of {{x}}",
                "many": f"the {plural(n)} of {{x}}",
                "verb": f"is {a_an(n)} of {{x}}",
                "question": f"What is {a_an(n)} of {{x}}?",
            },
        }
    return {
        "form": "noun",
        "forward": {
            "one": f"the {noun} of {{x}}",
            "many": f"the {plural(noun)} of {{x}}",
            "verb": f"is the {noun} of {{x}}",
            "question": f"What is the {noun} of {{x}}?",
        },
        "inverse": {
            "one": f"the {dom} whose {noun} is {{x}}",
            "many": f"the {doms} whose {noun} is {{x}}",
            "verb": f"has {{x}} as {a_an(noun)}",
            "question": f"What has {{x}} as {a_an(noun)}?",
        },
    }
