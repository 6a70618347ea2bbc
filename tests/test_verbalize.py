"""Questions: anchor names present, no raw ids or placeholders, grammar, determinism, overrides."""

from __future__ import annotations

import json
import re
from functools import cache

import numpy as np
import polars as pl
import pytest

from kg2tool.engine import sample_queries
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.patterns import BETAE_TYPES
from kg2tool.samples.questions import build_lexicon, verbalize


@cache
def kg() -> KnowledgeGraph:
    """Bundled CoDEx-S."""
    return KnowledgeGraph.load("codex-s")


def _questions(pattern: str, seed: int = 0, lexicon=None) -> tuple[list[str], list[list[str]]]:
    """Questions and anchor labels of 30 sampled queries."""
    b = sample_queries(kg(), pattern, 30, seed=0)
    labels = kg().entities["label"]
    names = [labels.gather(b.anchor_ids[:, j]) for j in range(b.anchor_ids.shape[1])]
    q = verbalize(
        b.plan,
        b.relation_ids,
        names,
        np.arange(len(b), dtype=np.uint64),
        lexicon or build_lexicon(kg()),
        seed=seed,
    )
    return q.to_list(), [[n[i] for n in names] for i in range(len(b))]


@pytest.mark.parametrize("pattern", list(BETAE_TYPES))
def test_questions_name_anchors_without_ids_or_placeholders(pattern: str) -> None:
    qs, anchors = _questions(pattern)
    for q, names in zip(qs, anchors, strict=True):
        assert all(n in q for n in names), q
        assert not re.search(r"\b[QP]\d+\b", q) and "{" not in q and "}" not in q, q
        assert q[0].isupper() and q[-1] in "?.", q
        assert "  " not in q


def test_template_variety_and_determinism() -> None:
    a, _ = _questions("2i", seed=1)
    b, _ = _questions("2i", seed=1)
    c, _ = _questions("2i", seed=2)
    assert a == b and a != c
    assert len({q.split()[0] for q in a}) >= 3


def test_override_phrasing_wins() -> None:
    key = kg().relations["key"][0]
    lex = build_lexicon(kg(), overrides={key: {"phrasing": {"forward": "the speciality of {x}"}}})
    assert lex.phrase(0, 0, "X") == "the speciality of X"


@pytest.mark.parametrize("pattern", ["triangle", "3c", "2nm", "2il", "pni_fit"])
def test_join_questions_name_anchors_and_read_as_questions(pattern: str) -> None:
    from kg2tool.dataset.assemble import build_dataset
    from kg2tool.kg.graph import KnowledgeGraph

    kg = KnowledgeGraph.load("codex-s")
    f = build_dataset(kg, [pattern], 12, seed=0)
    assert f.height > 0
    for q, b in f.select("question", "bindings").iter_rows():
        assert q[0].isupper() and q[-1] in "?." and "{" not in q and "None" not in q
        for slot, key in json.loads(b).items():
            if slot.startswith("s"):
                label = kg.entities.filter(pl.col("key") == key)["label"][0]
                assert label in q


ALL_PATTERNS = [
    *BETAE_TYPES,
    *"triangle square 3c 3cm lollipop 2m 2nm 3mp 3pm im pni_fit 2il 3il".split(),
]


@cache
def _dataset_questions(pattern: str, n: int = 40, seed: int = 0) -> tuple[str, ...]:
    from kg2tool.dataset.assemble import build_dataset

    return tuple(build_dataset(kg(), [pattern], n, seed=seed)["question"].to_list())


@pytest.mark.parametrize("pattern", ALL_PATTERNS)
def test_questions_read_cleanly(pattern: str) -> None:
    """No doubled question words or words, stray spaces or periods, bad agreement."""
    qs = _dataset_questions(pattern)
    assert qs
    for q in qs:
        low = q.lower()
        assert q[0].isupper() and q[-1] in "?." and q.count("?") <= 1, q
        # one question word, at the start of a sentence (a staged question's second one):
        # no "What are what X is part of"
        assert len(re.findall(r"\bwhat\b", low)) <= 1, q
        assert not re.search(r"[^.] \bwhat\b|[^\s]\bwhat\b", low[1:]), q
        assert not re.search(r"^(what|who|which \w+) (is|are) (what|who|which)\b", low), q
        assert not re.search(r"\b(\w+) \1\b", low), q  # "the the", "are are"
        assert ".." not in q and " ?" not in q and " ." not in q and " ," not in q, q
        assert "  " not in q and ",," not in q, q
        assert "them" not in low.split() and "None" not in q, q
        # agreement: a plural head is never followed by "is"/"that is"; the reverse for "are"
        assert not re.search(r"\bthe (people|countries|organizations) (that|who) is\b", low), q
        assert not re.search(r"\b(people|countries|organizations) is (a member|part)\b", low), q
        assert not re.search(r"\bwhat (is|are) what\b", low), q
        one = r"(occupation|genre|spouse|unmarried partner|birthplace|residence|record label)"
        lead = r"(^|\b(name|find|list|among|know|me|is|are) )"
        assert not re.search(rf"{lead}the {one} of [A-Z][^,]*? (that|who) are\b", q), q
        assert not re.search(rf"^(who|what) are the {one} of\b", low), q


@pytest.mark.parametrize(
    ("pattern", "k"),
    [("1p", 4), ("2p", 4), ("2i", 3), ("3i", 3), ("2in", 3), ("pin", 3), ("2u", 2), ("up", 2)],
)
def test_each_pattern_uses_several_templates(pattern: str, k: int) -> None:
    """Over 200 questions, at least ``k`` distinct openings (one per template)."""
    qs = _dataset_questions(pattern, 200, 3)
    openings = {" ".join(q.split()[:2]) for q in qs}
    assert len(openings) >= k, sorted(openings)


def test_plural_argument_takes_plural_verb_and_head() -> None:
    """A set argument makes the relation's phrase plural ("the organizations that the
    people who influenced X are members of", "the birthplaces of the people ...")."""
    lex = build_lexicon(kg())
    frame = lex.frame
    member = frame.filter(pl.col("suffix") == " as a member")  # no dangling "of" since issue 15
    assert member.height and (member["suffix_m"] == " as members").all()
    birth = frame.filter(pl.col("prefix") == "the birthplace of ")
    assert birth.height and (birth["prefix_m"] == "the birthplaces of ").all()
    assert not birth["plural"].any()
    heads = frame.filter(pl.col("prefix") == "the head of state of ")
    assert (heads["prefix_p"] == "the heads of state of ").all()


def test_name_ending_in_period_gets_no_second_period() -> None:
    """ "Sammy Davis Jr." at the end of a question or a thought: one period."""
    from kg2tool.samples.questions import _finish

    out = pl.select(
        _finish(pl.lit("name the occupation of Sammy Davis Jr."), ".").alias("q")
    ).item()
    assert out == "Name the occupation of Sammy Davis Jr."
    from kg2tool.samples.render import one_period as _one_period

    texts = pl.Series(["I need Jr.. Next", "So the answer is Jr..", "wait... ok", "a.b"])
    got = pl.select(_one_period(pl.lit(texts))).to_series().to_list()
    assert got == ["I need Jr. Next", "So the answer is Jr.", "wait... ok", "a.b"]


def test_thoughts_have_no_double_periods() -> None:
    from kg2tool.dataset.assemble import build_dataset

    f = build_dataset(kg(), ["1p", "2p", "2i", "pi", "2in"], 300, seed=0)
    text = "\n".join(f["messages"].cast(pl.String).to_list())
    assert not re.search(r"[^.]\.\.[^.]", text)


def test_plural_phrase_head_is_not_pluralised_twice() -> None:
    """A set argument takes the lexicon's own plural phrase: "the places within {x}" never
    becomes "the places withins"."""
    from kg2tool.samples.phrases import _head_span, _plural_arg

    assert _plural_arg("the places within ", "") == ("the places within ", "")
    assert _plural_arg("the places partly within ", "") == ("the places partly within ", "")
    pre = "the place within "
    _, noun = _head_span(pre)
    assert pre.split(" ")[noun] == "place"
    lex = build_lexicon(kg())
    assert not lex.frame["prefix_m"].str.contains(r"\bwithins\b").any()


def test_people_answers_get_who_and_verb_frames_without_entity_types() -> None:
    """A KG without entity types (FB15k-237) takes "who" from the lexicon's type word, and a
    three-way intersection prefers the verb frame to "What is simultaneously the person
    nominated together with A, the person nominated together with B and ..."."""
    import random

    from kg2tool.dataset.assemble import build_dataset
    from kg2tool.kg.tables import KGTables

    rel = "/award/award_nominee/award_nominations./award/award_nomination/award_nominee"
    rnd = random.Random(0)
    people = [f"/m/0p{i}" for i in range(40)]
    rows = set()
    for a in people:
        for b in rnd.sample(people, 6):
            if a != b:
                rows |= {(a, rel, b), (b, rel, a)}
    heads, rels, tails = zip(*sorted(rows), strict=True)
    kg = KnowledgeGraph.from_tables(
        KGTables(
            pl.DataFrame({"head": heads, "relation": rels, "tail": tails}),
            entities=pl.DataFrame({"key": people, "label": [f"Person {i}" for i in range(40)]}),
        )
    )
    lex = build_lexicon(kg)
    assert lex.frame["person"].all() and (lex.frame["qword_one"] == "who").all()
    f = build_dataset(kg, ["2i", "3i"], 40, seed=0)
    questions = f["question"].to_list()
    assert questions and all(not q.startswith("What") for q in questions), questions
    three = f.filter(pl.col("pattern") == "3i")["question"].to_list()
    assert three and not any("simultaneously the person" in q for q in three), three


def test_each_takes_the_lexicon_type_word_without_entity_types() -> None:
    """ "List each profession that is one of ..." rather than "each entity" when the KG has no
    entity types and the lexicon names the side's type."""
    from kg2tool.kg.tables import KGTables

    rel = "/people/person/profession"
    rows = [(f"/m/0q{i}", rel, f"/m/0j{i % 3}") for i in range(9)]
    heads, rels, tails = zip(*rows, strict=True)
    keys = [f"/m/0q{i}" for i in range(9)] + [f"/m/0j{i}" for i in range(3)]
    kg = KnowledgeGraph.from_tables(
        KGTables(
            pl.DataFrame({"head": heads, "relation": rels, "tail": tails}),
            entities=pl.DataFrame({"key": keys, "label": [f"Name {k[-2:]}" for k in keys]}),
        )
    )
    frame = build_lexicon(kg).frame
    assert frame["tword"].to_list() == ["profession", "person"]
