"""What a reader sees of the shipped lexicons on the shared KGs: API descriptions and names
without appositive slots, editing notes or path words; names with their article and capitals.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import polars as pl
import pytest

from kg2tool.kg.bundled import load_dataset
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.tools.catalog import ApiCatalog
from kg2tool.tools.lexicon import with_article

SHARED = Path(
    os.environ.get("KG2TOOL_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "kg"
)
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared KG data missing")


@cache
def _kg(name: str) -> KnowledgeGraph:
    return KnowledgeGraph.from_tables(load_dataset(name)[0])


@cache
def _apis(name: str) -> dict[str, str]:
    cat = ApiCatalog.from_graph(_kg(name), list_apis=True)
    return {a.name: a.description for a in cat.apis}


# a type noun right before the batch argument: "the position any of several given positions"
_SLOT = re.compile(r"\b(?:the|a|an)((?: [\w'-]+){1,3}) any of several given\b")
_FREE = frozenset(
    """of in by with to from at for on as against within into under over about after before
    that who whom which whose where is was are were does did has have had""".split()
)


def _appositive(description: str) -> str | None:
    """The noun a batch argument stands in apposition to ("the degree any of several given
    degrees", "an Olympic any of several given medals"), None if there is none."""
    if re.search(r"\b(?:the|a|an|type|Olympic) any of several given\b", description):
        return description
    for m in _SLOT.finditer(description):
        words = m.group(1).split()
        while any(w in ("the", "a", "an") for w in words):
            words = words[words.index(next(w for w in words if w in ("the", "a", "an"))) + 1 :]
        if words and not any(w in _FREE or w.endswith(("ing", "ed")) for w in words):
            return m.group(0)
    return None


# notes about the data rather than a definition
_NOTES = re.compile(r"in this data|always the|which is always|maintenance note|excluded because")


@needs_shared
@pytest.mark.parametrize("name", ["fb15k-237", "wn18rr", "codex-s", "codex-m"])
def test_api_descriptions_read_as_english(name: str) -> None:
    apis = _apis(name)
    bad = {n: d for n, d in apis.items() if _appositive(d)}
    assert not bad, bad
    notes = {n: d for n, d in apis.items() if _NOTES.search(d)}
    assert not notes, notes
    raw = {
        n: d for n, d in apis.items() if re.search(r"'citytown'|state province|terroritorial", d)
    }
    assert not raw, raw
    assert not [d for d in apis.values() if re.search(r"\bolympic games\b|\ban olympic\b", d)]
    assert not [d for d in apis.values() if re.search(r"(?<!\")see also(?!\")", d)]


def _quotes_single(apis: dict[str, str], name: str) -> bool:
    """A batch API's description quotes its single API's first sentence (no phrase slot
    filled with "any of several given ...")."""
    single = apis[name].split(". ")[0].removeprefix("Returns ").rstrip(".")
    batch = apis[f"{name}_batch"]
    return batch.startswith(f"The list form of the lookup that returns {single}") and (
        "any of several" not in batch
    )


@needs_shared
def test_fb15k237_batch_descriptions_take_any_noun_phrase() -> None:
    apis = _apis("fb15k-237")
    for name in (
        "get_teams_with_players_in_position",
        "get_titles_in_netflix_genre",
        "get_countries_winning_medal",
    ):
        assert _quotes_single(apis, name), (apis[name], apis[f"{name}_batch"])
    assert "that won a given medal, such as the gold medal," in apis["get_countries_winning_medal"]
    assert "Input: the name of an Olympic Games." in apis["get_sports_at_olympics"]
    assert "Relation 'headquarters city'" in apis["get_headquarters_city_of_organization"]
    assert "get_band_members_playing_instrument" in apis


@needs_shared
def test_codex_relation_labels_keep_commas_and_spelling() -> None:
    apis = _apis("codex-m")
    text = " ".join(apis.values())
    assert "Relation 'languages spoken, written, or signed'" in text
    assert "Relation 'located in the administrative territorial entity'" in text
    assert "find_people_with_sibling" in apis
    assert _quotes_single(apis, "find_people_with_occupation")


@needs_shared
def test_wordnet_descriptions_quote_see_also_and_name_instances() -> None:
    apis = _apis("wn18rr")
    assert '"see also"' in apis["get_see_also_words"]
    assert "Input: the name of an instance." in apis["get_classes_of_instance"]
    assert "proper noun" not in " ".join(apis.values())


@needs_shared
def test_wn18rr_proper_names_have_capitals() -> None:
    ents = load_dataset("wn18rr")[0].entities
    label = dict(zip(ents["key"].to_list(), ents["label"].to_list(), strict=True))
    assert label["texas.n.01"] == "Texas"
    assert label["spain.n.01"] == "Spain"
    assert label["malay_archipelago.n.01"] == "Malay Archipelago"
    assert label["jimenez_de_cisneros.n.01"] == "Jimenez de Cisneros"
    assert label["new_zealand_cotton.n.01"] == "New Zealand cotton"
    # common nouns keep their lower case
    assert label["appendicular_skeleton.n.01"] == "appendicular skeleton"
    assert label["summer.n.01"] == "summer"
    # taxa (below a rank concept in the hypernym tree) keep their capital; ranks do not
    assert label["amphibia.n.01"] == "Amphibia"
    assert label["agonidae.n.01"] == "Agonidae"
    assert label["genus_ichthyostega.n.01"] == "genus Ichthyostega"
    assert label["bird_genus.n.01"] == "bird genus"
    assert label["cheetah.n.01"] == "cheetah"


def test_appositive_detector() -> None:
    assert _appositive("Returns the schools that award the degree any of several given degrees.")
    assert _appositive("Returns the countries that won an Olympic any of several given medals.")
    assert _appositive("Returns the Olympics at which the any of several given medals was given.")
    assert not _appositive("Returns the members of any of several given political parties.")
    assert not _appositive("Returns the teams that field a player at any of several given spots.")


def test_names_that_read_with_the() -> None:
    names = [
        "Pittsburgh Pirates",
        "Los Angeles Angels",
        "Indiana Hoosiers men's basketball",
        "Carnegie Medal",
        "Royal Victorian Chain",
        "Primetime Emmy Award for Outstanding Comedy Series",
        "Nobel Prize in Physics",
        "Second Punic War",
        "Hundred Years' War",
        "War of 1812",
        "Battle of Hastings",
        "Malay Archipelago",
        "Punjabi people",
        "German Democratic Republic",
        "Russian Federation",
        "Federal Republic of Germany",
    ]
    assert with_article(pl.Series(names)).to_list() == [f"the {n}" for n in names]
    plain = [
        "Bloc Party",
        "They Might Be Giants",
        "Three Kings",
        "This Means War",
        "Charlie Wilson's War",
        "World War II",
        "Hill Street Blues",
        "Howard Hawks",
        "Tom Hanks",
        "The Prize",
        "Texas",
    ]
    assert with_article(pl.Series(plain)).to_list() == plain
