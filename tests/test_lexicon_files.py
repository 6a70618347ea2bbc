"""The shipped relation lexicons (python/kg2tool/data/lexicons/) keep the rules of
docs/LEXICONS.md entry by entry, and each covers every relation of the KGs it is for."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import inflect
import pytest

from kg2tool.kg.bundled import load_dataset

LEXICON_DIR = Path(__file__).resolve().parents[1] / "python" / "kg2tool" / "data" / "lexicons"
FILES = ["fb15k-237.toml", "wordnet.toml", "wikidata.toml", "nations.toml", "countries.toml"]
SHARED = Path(
    os.environ.get("KG2TOOL_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "kg"
)
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared KG data missing")

# shared dataset -> the lexicon file that must cover all its relations
COVERAGE = {
    "codex-s": "wikidata.toml",
    "codex-m": "wikidata.toml",
    "fb15k-237": "fb15k-237.toml",
    "wn18rr": "wordnet.toml",
    "nations": "nations.toml",
    "countries_s1": "countries.toml",
    "countries_s2": "countries.toml",
    "countries_s3": "countries.toml",
}

REQUIRED = {"gloss", "domain", "range", "description", "inverse_description", "forward", "inverse"}
OPTIONAL = {"name", "inverse_name", "exclude", "symmetric", "label", "the_before_common_nouns"}
# Nouns whose singular and plural are one word ("the Olympics at which ..."; "species").
INVARIANT_NOUNS = frozenset({"olympics", "games", "series", "species"})
PHRASES = ("one", "many", "verb", "question")
# optional per side: words before an entity name in {x} ("the term")
SIDE_OPTIONAL = {"name_prefix"}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
PREPOSITIONS = frozenset(
    """aboard about above across after against along amid among around as at before behind
    below beneath beside besides between beyond by despite down during except for from in
    inside into like near of off on onto out outside over past per since than through
    throughout till to toward towards under underneath until unto up upon via with within
    without""".split()
)
DETERMINERS = frozenset(
    "the a an this that these those some any every each no all its his her their".split()
)
# wording copied from knowledge-base editing notes rather than written for a reader
EDITING_NOTES = re.compile(
    r"(\bdo(?:n't| not) use\b|\bthis (?:property|item)\b|\bwikidata\b|\bfreebase\b"
    r"|\b[PQ]\d+\b|\binstead use\b|\buse (?:this|for|on|with)\b"
    r"|\bin this data\b|\bexcluded because\b|\bmaintenance note\b|\bis always\b|, always\b"
    r"|\bnearly every\b)",
    re.IGNORECASE,
)
# Words after which {x} may stand: it is the object of a preposition or verb, or the subject
# of a relative clause. "the position {x}" (a type noun in apposition), "type {x}" and
# "an Olympic {x}" break when {x} is a noun phrase ("the position the position of ...") or
# "any of several given positions"; write "at {x}", "whose type is {x}", "{x} at the Olympics".
_NOT_APPOSITIVE = PREPOSITIONS | frozenset(
    "that who whom which whose where when is was are were does did has have had".split()
)
_APPOSITIVE = re.compile(r"\b(?:the|a|an)((?: [\w'-]+){1,3}) \{x\}", re.IGNORECASE)
_BARE_APPOSITIVE = re.compile(r"\b(?:the|a|an|type|Olympic) \{x\}", re.IGNORECASE)


def appositive_slot(text: str) -> str | None:
    """The words that stand in apposition to {x} ("the position {x}"), None if {x} stands
    where any noun phrase fits ("in {x}", "held {x}", "the team that {x} ...")."""
    if (m := _BARE_APPOSITIVE.search(text)) is not None:
        return m.group(0)
    if (m := _APPOSITIVE.search(text)) is None:
        return None
    words = m.group(1).split()
    for i in range(len(words) - 1, -1, -1):  # from the last article before {x}
        if words[i].lower() in ("the", "a", "an"):
            words = words[i + 1 :]
            break
    if not words or any(w.lower() in _NOT_APPOSITIVE or w.endswith(("ing", "ed")) for w in words):
        return None
    return " ".join(words) + " {x}"


WORD = re.compile(r"[A-Za-z0-9{}'’-]+")
_inflect = inflect.engine()


@cache
def _lexicon(file: str) -> dict[str, Any]:
    path = LEXICON_DIR / file
    assert path.is_file(), f"{file}: shipped lexicon missing"
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _entries(file: str) -> Iterator[tuple[str, dict[str, Any]]]:
    data = _lexicon(file)
    assert data, f"{file}: no entries"
    for key, entry in data.items():
        assert isinstance(entry, dict), f"{file}: [{key}] is not a table"
        yield key, entry


def _words(text: str) -> list[str]:
    return WORD.findall(text)


def _is_plural(word: str) -> bool:
    """True when inflect reads the word as a plural noun (``films``; not ``class``, ``species``)."""
    singular = _inflect.singular_noun(word)
    return bool(singular) and singular != word and not word.endswith(("ss", "us", "is"))


def phrase_problems(kind: str, text: Any) -> list[str]:
    """Every rule of docs/LEXICONS.md a phrase breaks (empty when it keeps them all)."""
    if not isinstance(text, str) or not text.strip():
        return ["is not text"]
    out = []
    if text.count("{x}") != 1:
        out.append("must hold {x} exactly once")
    if text != text.strip() or "  " in text or "\n" in text:
        out.append("has stray whitespace")
    if re.search(r"[/_.\\]", text):
        out.append("holds a path character (/ _ . or backslash)")
    if re.search(r"\{(?!x\})", text):
        out.append("holds a placeholder other than {x}")
    words = _words(text)
    if not words:
        return [*out, "has no words"]
    low = [w.lower() for w in words]
    if low[-1] in PREPOSITIONS:
        out.append(f"ends in the preposition {words[-1]!r}")
    for a, b in pairwise(low):
        short, long_ = sorted((a, b), key=len)
        # "of of", and a word beside its own plural ("olympics olympic")
        if a == b or (len(short) > 3 and long_ in (short + "s", short + "es")):
            out.append(f"repeats a word ({a!r} {b!r})")
    if kind == "question":
        if not text[0].isupper():
            out.append("question must start with a capital letter")
        if not text.endswith("?") or text.count("?") != 1:
            out.append("question must end in one '?'")
    elif "?" in text:
        out.append("only a question holds '?'")
    if (slot := appositive_slot(text)) is not None:
        out.append(
            f"puts {{x}} in apposition to a noun ({slot!r}): write it where any noun phrase fits"
        )
    if kind == "one":
        if low[0] not in ("the", "a", "an"):
            out.append("one must start with 'the', 'a' or 'an'")
        elif low[0] in ("a", "an") and words[1] != "{x}":
            right = _inflect.a(words[1]).split()[0]
            if right != low[0]:
                out.append(f"article {words[0]!r} before {words[1]!r} (want {right!r})")
    if kind == "many" and low[0] != "the":
        out.append("many must start with 'the'")
    if kind == "verb":
        if low[0] in DETERMINERS or low[0] == "{x}" or text[0].isupper():
            out.append("verb must start with a lower-case verb, not a determiner or {x}")
    return out


def type_word_problems(text: Any) -> list[str]:
    """Problems of a domain/range type word: plain lower-case singular English."""
    if not isinstance(text, str) or not (
        re.fullmatch(r"[a-z]+(?:[ -][a-z]+)*", text)
        # a proper name of several capitalised words ("Olympic Games")
        or re.fullmatch(r"[A-Z][a-z]+(?: [A-Z][a-z]+)+", text)
    ):
        return ["must be lower-case English words (letters, spaces, hyphens)"]
    last = text.split()[-1].split("-")[-1]
    plural = _is_plural(last) and last.lower() not in INVARIANT_NOUNS
    return [f"{last!r} is plural"] if plural else []


def text_problems(field: str, text: Any, key: str) -> list[str]:
    """Problems of a gloss or an API description."""
    if not isinstance(text, str) or not text.strip():
        return ["is not text"]
    out = []
    if "\n" in text or text != text.strip():
        out.append("must be one line without surrounding space")
    if "_" in text:
        out.append("holds an underscore")
    if (m := EDITING_NOTES.search(text)) is not None:
        out.append(f"holds an editing note or knowledge-base word ({m.group(0)!r})")
    if not key.isalpha() and key.lower() in text.lower():
        out.append("repeats the relation key")
    if field == "gloss":
        first = _words(text)[0] if _words(text) else ""
        if text[0].isupper() and not (first.isupper() and len(first) > 1):
            out.append("gloss must start in lower case")
        if text.endswith("."):
            out.append("gloss takes no final period")
    else:
        if not text[0].isupper() or not text.endswith("."):
            out.append("description must be sentences: capitalised, ending in a period")
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
        if len(sentences) > 2:
            out.append(f"description has {len(sentences)} sentences (one or two)")
    return out


def entry_problems(key: str, entry: dict[str, Any]) -> list[str]:
    """Every rule of docs/LEXICONS.md the entry breaks, as 'field: problem' lines."""
    out = [f"missing field {f!r}" for f in sorted(REQUIRED - set(entry))]
    out += [f"unknown field {f!r}" for f in sorted(set(entry) - REQUIRED - OPTIONAL)]
    for side in ("forward", "inverse"):
        table = entry.get(side)
        if not isinstance(table, dict):
            continue
        out += [f"{side}: missing phrase {k!r}" for k in PHRASES if k not in table]
        out += [
            f"{side}: unknown phrase {k!r}"
            for k in sorted(set(table) - set(PHRASES) - SIDE_OPTIONAL)
        ]
        prefix = table.get("name_prefix")
        if prefix is not None and not re.fullmatch(r"[a-z]+(?: [a-z]+)*", str(prefix)):
            out.append(f"{side}.name_prefix: {prefix!r} must be lower-case words")
        for kind in PHRASES:
            if kind in table:
                out += [f"{side}.{kind}: {p}" for p in phrase_problems(kind, table[kind])]
        head = _words(str(table.get("one") or ""))[1:2]
        invariant = bool(head) and head[0].lower() in INVARIANT_NOUNS
        if table.get("one") is not None and table.get("one") == table.get("many") and not invariant:
            out.append(f"{side}: one and many are the same phrase (want singular and plural)")
    fwd, inv = entry.get("forward"), entry.get("inverse")
    if isinstance(fwd, dict) and isinstance(inv, dict):
        same = [k for k in PHRASES if fwd.get(k) is not None and fwd.get(k) == inv.get(k)]
        if same and entry.get("symmetric") is not True:
            out.append(f"forward and inverse share {same} (each direction names its own answer)")
    for field in ("domain", "range"):
        if field in entry:
            out += [f"{field}: {p}" for p in type_word_problems(entry[field])]
    for field in ("gloss", "description", "inverse_description"):
        if field in entry:
            out += [f"{field}: {p}" for p in text_problems(field, entry[field], key)]
    for field in ("name", "inverse_name"):
        if field in entry and not (isinstance(entry[field], str) and NAME_RE.match(entry[field])):
            out.append(f"{field}: {entry[field]!r} is not a valid API name ({NAME_RE.pattern})")
    if "exclude" in entry and not isinstance(entry["exclude"], bool):
        out.append("exclude must be true or false")
    return out


# ---------------------------------------------------------------- the checker itself


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("one", "the birthplace of {x}"),
        ("many", "the films that {x} directed"),
        ("one", "an award won by {x}"),
        ("verb", "is a film directed by {x}"),
        ("verb", "borders {x}"),
        ("question", "Which films did {x} direct?"),
        ("question", "Who was born in {x}?"),
        ("many", "the teams that field a player at {x}"),
        ("many", "the people whose occupation is {x}"),
        ("many", "the region that contains {x}"),
        ("many", "the people holding {x}"),
        ("many", "the athletes representing {x}"),
        ("many", "the crimes of which {x} was convicted"),
    ],
)
def test_checker_accepts_rule_keeping_phrases(kind: str, text: str) -> None:
    assert phrase_problems(kind, text) == []


@pytest.mark.parametrize(
    ("kind", "text", "problem"),
    [
        ("one", "the birthplace of", "exactly once"),
        ("one", "the birthplace of {x} and {x}", "exactly once"),
        ("one", "the thing that {x} is part of", "preposition"),
        ("question", "What is {x} a part of?", "preposition"),
        ("one", "the of of {x}", "repeats"),
        ("many", "the olympics olympic sport of {x}", "repeats"),
        ("one", "the award_winner of {x}", "path character"),
        ("one", "the /film/film/genre of {x}", "path character"),
        ("question", "what is the genre of {x}?", "capital"),
        ("question", "What is the genre of {x}", "end in one"),
        ("one", "genre of {x}", "start with"),
        ("one", "a award of {x}", "article"),
        ("many", "a genres of {x}", "many must start"),
        ("verb", "the genre of {x}", "verb must start"),
        ("verb", "{x} directed it", "verb must start"),
        ("one", "the {y} of {x}", "placeholder"),
        ("many", "the teams with a player in the position {x}", "apposition"),
        ("many", "the titles in the Netflix genre {x}", "apposition"),
        ("many", "the people with the occupation {x}", "apposition"),
        ("verb", "awards the degree {x}", "apposition"),
        ("many", "the schools of type {x}", "apposition"),
        ("verb", "won an Olympic {x}", "apposition"),
        ("many", "the Olympics at which the {x} was awarded", "apposition"),
        ("many", "the crimes {x} was convicted of committing", "apposition"),
    ],
)
def test_checker_rejects_broken_phrases(kind: str, text: str, problem: str) -> None:
    assert any(problem in p for p in phrase_problems(kind, text)), phrase_problems(kind, text)


def test_checker_type_words() -> None:
    assert type_word_problems("record label") == []
    assert type_word_problems("class") == []
    assert type_word_problems("films") == ["'films' is plural"]
    assert type_word_problems("Person") != []
    assert type_word_problems("Olympic Games") == []
    assert type_word_problems("olympic Games") != []
    assert type_word_problems("award_winner") != []


def test_checker_texts() -> None:
    assert text_problems("gloss", "the place where a person was born", "P19") == []
    assert text_problems("gloss", "Place of birth.", "P19") != []
    assert any("editing note" in p for p in text_problems("gloss", "don't use on humans", "P1"))
    assert any("editing note" in p for p in text_problems("gloss", "use P31 for that", "P1"))
    for note in (
        "a campus of a school; in this data every school is its own campus",
        "the category of a web page, which is always Official Website",
        "a usage category; excluded because it holds slurs",
    ):
        assert any("editing note" in p for p in text_problems("gloss", note, "x")), note
    good = "Returns the birthplace of a person. Input: a person."
    assert text_problems("description", good, "P19") == []
    assert text_problems("description", "returns the place", "P19") != []
    assert text_problems("description", "One. Two. Three.", "P19") != []


def test_checker_entry_fields() -> None:
    problems = entry_problems("k", {"gloss": "g", "forward": {"one": "the {x}"}, "colour": 1})
    assert "missing field 'domain'" in problems
    assert "unknown field 'colour'" in problems
    assert "forward: missing phrase 'many'" in problems
    same = {"one": "the birthplace of {x}", "many": "the birthplaces of {x}"}
    problems = entry_problems("k", {"forward": dict(same), "inverse": dict(same)})
    assert any("forward and inverse share" in p for p in problems)
    problems = entry_problems(
        "k", {"forward": {"one": "a sibling of {x}", "many": "a sibling of {x}"}}
    )
    assert any("one and many are the same" in p for p in problems)


# ---------------------------------------------------------------- the shipped files


@pytest.mark.parametrize("file", FILES)
def test_lexicon_entries_keep_the_rules(file: str) -> None:
    problems = [
        f"[{key}] {problem}"
        for key, entry in _entries(file)
        for problem in entry_problems(key, entry)
    ]
    assert not problems, f"{file}: {len(problems)} problem(s):\n" + "\n".join(problems[:60])


@pytest.mark.parametrize("file", FILES)
def test_lexicon_api_names_are_unique(file: str) -> None:
    seen: dict[str, str] = {}
    clashes = []
    for key, entry in _entries(file):
        for field in ("name", "inverse_name"):
            name = entry.get(field)
            if name is None:
                continue
            if name in seen:
                clashes.append(f"{name!r} in [{seen[name]}] and [{key}] {field}")
            seen[name] = f"{key}] {field}"
    assert not clashes, f"{file}: duplicate API names: {clashes}"


@pytest.mark.parametrize("file", FILES)
def test_lexicon_glosses_are_distinct(file: str) -> None:
    glosses: dict[str, list[str]] = {}
    for key, entry in _entries(file):
        glosses.setdefault(str(entry.get("gloss")), []).append(key)
    shared = {g: keys for g, keys in glosses.items() if len(keys) > 1}
    assert not shared, f"{file}: relations share a gloss: {shared}"


@needs_shared
@pytest.mark.parametrize(("dataset", "file"), sorted(COVERAGE.items()))
def test_lexicon_covers_every_relation(dataset: str, file: str) -> None:
    tables, _ = load_dataset(dataset, SHARED)
    keys = set(tables.relations["key"].to_list())
    assert keys, f"{dataset}: no relations loaded"
    missing = sorted(keys - set(_lexicon(file)))
    assert not missing, f"{file} lacks {len(missing)} relation(s) of {dataset}: {missing}"


@needs_shared
def test_wikidata_lexicon_covers_every_codex_property() -> None:
    props = json.loads((SHARED / "codex" / "relations.en.json").read_text(encoding="utf-8"))
    assert len(props) >= 69
    missing = sorted(set(props) - set(_lexicon("wikidata.toml")))
    assert not missing, f"wikidata.toml lacks CoDEx properties {missing}"


def test_wikidata_lexicon_keys_are_property_ids() -> None:
    bad = [key for key, _ in _entries("wikidata.toml") if not re.fullmatch(r"P[1-9]\d*", key)]
    assert not bad, f"wikidata.toml keys that are not Wikidata property ids: {bad}"


def test_wordnet_excludes_the_offensive_usage_relation() -> None:
    wn = _lexicon("wordnet.toml")
    assert wn["_member_of_domain_usage"].get("exclude") is True
    assert [k for k, e in wn.items() if e.get("exclude")] == ["_member_of_domain_usage"]


def test_shipped_keys_read_from_headers_match_the_parsed_files() -> None:
    """Which shipped lexicons a KG needs is decided from their table headers, without parsing
    them; the headers must give exactly the keys the parsed file holds."""
    from kg2tool.tools.lexicon import shipped_keys, shipped_lexicon

    keys = shipped_keys()
    assert {"fb15k-237", "wikidata", "wordnet"} <= set(keys)
    for stem, found in keys.items():
        assert found == set(shipped_lexicon(stem)), stem
