"""Every API definition of the four shared KGs read as a careful reader would: the prose lint
passes, no batch description fills a relation phrase with a list ("the people with the
occupation any of several given occupations"), the type word of each side is the lexicon's
where the lexicon gives one (never a stray "entity", a wider "place" or a raw Freebase type
such as "influence node"), names fit 64 characters, and relations a lexicon excludes are not
offered."""

from __future__ import annotations

import functools
import re

import polars as pl
import pytest

from kg2tool.kg.bundled import load_dataset
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.samples.lint import lint_texts
from kg2tool.tools.catalog import LIST_KIND, MAX_NAME, ApiCatalog
from kg2tool.tools.lexicon import a_an, plural, select_shipped

KGS = ["fb15k-237", "wn18rr", "codex-s", "codex-m"]


@functools.cache
def catalog(name: str) -> ApiCatalog:
    return ApiCatalog.from_graph(KnowledgeGraph.from_tables(load_dataset(name)[0]), list_apis=True)


def _texts(cat: ApiCatalog) -> list[tuple[str, str]]:
    """(API name, text) for every description, parameter description and result description."""
    out = []
    for a in cat.apis:
        out.append((a.name, a.description))
        out += [(a.name, p["description"]) for p in a.parameters["properties"].values()]
        out.append((a.name, a.returns["description"]))
    return out


_ARTICLE = re.compile(r"\b([Aa]n?) ([A-Za-z][\w-]*)")


def _articles_right(text: str) -> bool:
    """Whether every "a"/"an" agrees with kg2tool.tools.lexicon.a_an ("an NCAA" is right)."""
    return all(a_an(word).split(" ", 1)[0] == art.lower() for art, word in _ARTICLE.findall(text))


@pytest.mark.parametrize("name", KGS)
def test_every_api_text_passes_the_prose_lint(name: str) -> None:
    texts = _texts(catalog(name))
    verdicts = lint_texts(pl.Series([t for _, t in texts]), prose=True).to_list()
    bad = []
    for (api, text), rule in zip(texts, verdicts, strict=True):
        if rule == "a_an" and _articles_right(text):
            # the lint's letter rule is wrong about initialisms; the rest must still pass
            masked = _ARTICLE.sub(r"the \2", text)
            rule = lint_texts(pl.Series([masked]), prose=True)[0]
        if rule is not None:
            bad.append((api, rule, text))
    assert not bad, bad[:5]


@pytest.mark.parametrize("name", KGS)
def test_batch_descriptions_never_fill_a_phrase_with_a_list(name: str) -> None:
    cat = catalog(name)
    lists = [a for a in cat.apis if a.kind == LIST_KIND]
    assert lists
    for a in lists:
        assert "any of several given" not in a.description, a.description
        # the single API's own sentence (which names one given entity), quoted whole
        single = cat.api_for(a.relation, a.direction).description
        what = single.split(". Relation '")[0].split(". Input:")[0]
        assert what.startswith("Returns "), single
        want = f"The list form of the lookup that returns {what[len('Returns ') :]}: "
        assert a.description.startswith(want), (a.description, want)


@pytest.mark.parametrize("name", KGS)
def test_type_words_are_the_lexicons(name: str) -> None:
    cat = catalog(name)
    given = select_shipped(list(cat.lexicon))
    checked = 0
    for a in cat.apis:
        if a.kind not in ("relation", LIST_KIND):
            continue
        fields = given.get(a.relation, {})
        dom, rng = fields.get("domain"), fields.get("range")
        want_in, want_out = (dom, rng) if a.direction == "forward" else (rng, dom)
        if want_in:
            assert a.input_type == want_in, (a.name, a.input_type, want_in)
            assert not a.input_usually
            if a.kind == "relation":
                assert f"Input: the name of {a_an(want_in)}." in a.description, a.description
            else:
                assert f"Input: a list of {want_in} names." in a.description, a.description
            checked += 1
        if want_out:
            assert a.output_type == want_out, (a.name, a.output_type, want_out)
            assert f"Names of {plural(want_out)}" in a.returns["description"] or (
                f"Names of the {plural(want_out)}" in a.returns["description"]
            )
        assert "the name of an entity." not in a.description or not want_in
    assert checked > 0.9 * sum(a.kind != "set_operation" for a in cat.apis)


def test_reported_type_words() -> None:
    """The cases a reader found: "entity", "place" for a country, "influence node", "tv
    producer" where the lexicon says person, country or language."""
    fb, cs, cm = catalog("fb15k-237"), catalog("codex-s"), catalog("codex-m")
    for cat, name, word in (
        (fb, "get_awards_won_by_person", "person"),
        (fb, "get_influences_of_person", "person"),
        (fb, "get_peers_of_person", "person"),
        (fb, "get_tv_programs_produced_by", "person"),
        (cs, "find_citizens_of_country", "country"),
        (cs, "find_people_who_speak", "language"),
        (cm, "get_continent_of_place", "place"),
    ):
        for api in (cat[name], cat[name + "_batch"]):
            assert api.input_type == word, (name, api.input_type)
        assert f"Input: the name of {a_an(word)}." in cat[name].description
        assert cat[name].param_names == (word,)
    assert "Input: a list of language names." in cs["find_people_who_speak_batch"].description


@pytest.mark.parametrize("name", KGS)
def test_names_fit(name: str) -> None:
    assert all(len(n) <= MAX_NAME for n in catalog(name).names)


def test_excluded_relations_are_not_offered() -> None:
    cat = catalog("wn18rr")
    off = {k for k, e in cat.lexicon.items() if e.exclude}
    assert off  # the shipped WordNet lexicon excludes one relation
    assert not any(a.relation in off for a in cat.apis)
    offered = {t["function"]["name"] for t in cat.to_openai_tools()}
    hidden = {a.name for a in cat.hidden}
    assert hidden and not hidden & offered
    assert not hidden & set(cat.manifest()["apis"])
    for key in off:  # still named, so every relation maps to a name
        assert cat.api_for(key).name in hidden
        with pytest.raises(Exception, match="unknown API"):
            cat[cat.api_for(key).name]
