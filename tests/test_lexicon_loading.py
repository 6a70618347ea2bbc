"""``kg2tool.tools.lexicon``: reading lexicons (docs/LEXICONS.md), choosing shipped ones, user files
winning field by field, the grammatical fallback, and the catalogue/questions reading them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from kg2tool.errors import InputError
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.names import entity_name_from_key, is_raw_key
from kg2tool.kg.tables import KGTables
from kg2tool.samples.lint import lint_text
from kg2tool.samples.questions import build_lexicon
from kg2tool.tools.catalog import ApiCatalog, load_overrides
from kg2tool.tools.lexicon import (
    SHIPPED_DIR,
    fallback_fields,
    read_lexicon,
    resolve_lexicon,
    select_shipped,
    shipped_lexicons,
)

# A small lexicon of our own (the shipped files land separately): two CoDEx P-ids, one FB path.
TEST_LEXICON = """
[P19]
gloss = "the place where a person was born"
domain = "person"
range = "place"

[P19.forward]
one = "the birthplace of {x}"
many = "the birthplaces of {x}"
verb = "is the birthplace of {x}"
question = "Where was {x} born?"

[P19.inverse]
one = "the person born in {x}"
many = "the people born in {x}"
verb = "was born in {x}"
question = "Who was born in {x}?"

[P106]
inverse_name = "find_people_working_as"

[P106.forward]
one = "the job of {x}"

["/people/person/place_of_birth"]
domain = "person"
range = "place"
exclude = false

["/people/person/place_of_birth".forward]
one = "the birthplace of {x}"
many = "the birthplaces of {x}"
"""


@pytest.fixture(scope="module")
def codex() -> KnowledgeGraph:
    return KnowledgeGraph.load("codex-s")


@pytest.fixture
def lexicon_file(tmp_path: Path) -> Path:
    path = tmp_path / "test-lexicon.toml"
    path.write_text(TEST_LEXICON)
    return path


def test_reads_the_documented_format(lexicon_file: Path) -> None:
    data = read_lexicon(lexicon_file)
    assert data["__source__"] == str(lexicon_file)
    assert data["P19"]["forward"]["question"] == "Where was {x} born?"
    assert data["P19"]["domain"] == "person"
    assert data["/people/person/place_of_birth"]["exclude"] is False


def test_yaml_reads_like_toml(tmp_path: Path) -> None:
    path = tmp_path / "lex.yaml"
    path.write_text(
        "P19:\n  range: place\n  forward:\n    one: the birthplace of {x}\n"
        "    many: the birthplaces of {x}\n"
    )
    assert read_lexicon(path)["P19"]["forward"]["many"] == "the birthplaces of {x}"


def test_legacy_phrasing_is_forward_and_inverse_one() -> None:
    data = load_overrides(
        {"P19": {"phrasing": {"forward": "the birthplace of {x}", "inverse": "the natives of {x}"}}}
    )
    assert data["P19"]["forward"] == {"one": "the birthplace of {x}"}
    assert data["P19"]["inverse"] == {"one": "the natives of {x}"}


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ({"forward": {"one": "the birthplace"}}, "forward.one 'the birthplace' must contain {x}"),
        ({"inverse": {"many": "{x} {x}"}}, "inverse.many"),
        ({"forward": {"question": "where was {x} born?"}}, "must start with a capital"),
        ({"forward": {"question": "Where was {x} born"}}, "must end in '?'"),
        ({"forward": {"verb": "the birthplace of {x}"}}, "must start with a verb"),
        ({"forward": {"plural": "the {x}"}}, "unknown field(s) ['plural'] in forward"),
        ({"domain": "Person"}, "domain 'Person' must be a lower-case English type word"),
        ({"exclude": "yes"}, "exclude must be true or false"),
        ({"colour": "red"}, "unknown field(s) ['colour']"),
        ({"name": "get birthplace"}, "is not a valid identifier"),
    ],
)
def test_bad_entries_name_file_and_relation(tmp_path: Path, entry: dict, needle: str) -> None:
    import tomli_w

    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps({"P19": entry}))
    with pytest.raises(InputError) as err:
        read_lexicon(path)
    message = str(err.value)
    assert needle in message and "'P19'" in message and str(path) in message
    assert "\n" not in message


def test_a_shipped_file_applies_when_half_the_keys_are_in_it() -> None:
    shipped = {
        "mine": {"a": {"gloss": "A"}, "b": {"gloss": "B"}},
        "wikidata": {"P19": {"gloss": "birth"}, "P20": {"gloss": "death"}},
    }
    assert set(select_shipped(["a", "b", "c", "d"], shipped)) == {"a", "b"}  # 2 of 4
    assert select_shipped(["a", "c", "d"], shipped) == {}  # 1 of 3: not this KG's file
    # wikidata.toml key by key, whatever share of the KG it covers
    got = select_shipped(["P19", "x", "y", "z", "w"], shipped)
    assert got == {"P19": {"gloss": "birth"}}


def test_user_file_wins_field_by_field(lexicon_file: Path) -> None:
    shipped = {
        "wikidata": {
            "P106": {
                "gloss": "what a person does for a living",
                "forward": {"one": "the occupation of {x}", "question": "What does {x} do?"},
            }
        }
    }
    entries = resolve_lexicon(
        [("P106", "occupation", None), ("P19", "place of birth", None)],
        overrides=lexicon_file,
        shipped=shipped,
    )
    occ = entries["P106"]
    assert occ.forward.one == "the job of {x}"  # the user's field
    assert occ.forward.question == "What does {x} do?"  # the shipped field the user left
    assert occ.gloss == "what a person does for a living"
    assert occ.inverse_name == "find_people_working_as"
    assert entries["P19"].domain == "person" and entries["P19"].inverse.verb == "was born in {x}"


def test_catalogue_reads_the_lexicon(codex: KnowledgeGraph, tmp_path: Path) -> None:
    path = tmp_path / "codex.toml"
    path.write_text(TEST_LEXICON.split('["/people')[0])  # the CoDEx entries only
    cat = ApiCatalog.from_graph(codex, overrides=path)
    fwd, inv = cat.api_for("P19"), cat.api_for("P19", "inverse")
    assert (fwd.input_type, fwd.output_type) == ("person", "place")  # lexicon domain/range win
    assert fwd.param_names == ("person",) and inv.param_names == ("place",)
    # the user file gives no description: the shipped Wikidata lexicon's sentence stays
    # (field by field), then the gloss, input and output from the types
    assert fwd.description.startswith("Returns the place where a given person was born.")
    assert "the place where a person was born" in fwd.description
    assert inv.description.startswith("Returns the people born in a given place.")
    assert cat.api_for("P106", "inverse").name == "find_people_working_as"
    lex = build_lexicon(codex, cat)
    row = lex.frame.filter(pl.col("rd") == int(cat.api_for("P19").relation_id) * 2).row(
        0, named=True
    )
    assert row["question"] == "Where was {x} born?" and row["prefix"] == "the birthplace of "


def test_unknown_key_in_user_file_is_an_error(codex: KnowledgeGraph, tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text('[P1999]\ngloss = "x"\n')
    with pytest.raises(InputError, match=r"unknown relation key 'P1999'.*did you mean"):
        ApiCatalog.from_graph(codex, overrides=path)


def test_every_shipped_lexicon_is_valid_and_reads_well() -> None:
    """Whatever lexicons are installed: each entry keeps the format's rules, and its phrases
    with a name in place of {x} pass the question lint."""
    files = sorted(SHIPPED_DIR.glob("*.toml")) if SHIPPED_DIR.is_dir() else []
    assert len(shipped_lexicons()) == len(files)
    for stem, entries in shipped_lexicons().items():
        for key, fields in entries.items():
            for d in ("forward", "inverse"):
                for f, text in (fields.get(d) or {}).items():
                    filled = text.replace("{x}", "Ada Lovelace")
                    assert lint_text(filled) is None, (stem, key, d, f, filled)


# ---------------------------------------------------------------- the fallback


@pytest.mark.parametrize(
    ("label", "forward_one", "inverse_one", "inverse_question"),
    [
        (
            "affects",
            "the entity affected by {x}",
            "the entity that affects {x}",
            "What affects {x}?",
        ),
        ("causes", "the entity caused by {x}", "the entity that causes {x}", "What causes {x}?"),
        (
            "interacts_with",
            "the entity with which {x} interacts",
            "the entity that interacts with {x}",
            "What interacts with {x}?",
        ),
        (
            "co-occurs_with",
            "the entity with which {x} co-occurs",
            "the entity that co-occurs with {x}",
            "What co-occurs with {x}?",
        ),
        ("isa", "the broader category of {x}", "a kind of {x}", "What is a kind of {x}?"),
        (
            "located_in",
            "the entity in which {x} is located",
            "the entity located in {x}",
            "What is located in {x}?",
        ),
        ("capital", "the capital of {x}", "the entities whose capital is {x}", None),
        ("place_of_birth", "the birthplace of {x}", "the people born in {x}", None),
        ("combatants", "the combatant of {x}", "the entity whose combatant is {x}", None),
    ],
)
def test_fallback_reads_the_form_of_the_label(
    label: str, forward_one: str, inverse_one: str, inverse_question: str | None
) -> None:
    got = resolve_lexicon([(label, None, None)])[label]
    assert got.forward.one == forward_one
    assert got.inverse.one == inverse_one
    if inverse_question is not None:
        assert got.inverse.question == inverse_question
    for side in (got.forward, got.inverse):
        for text in (side.one, side.many, side.verb, side.question):
            if text:
                assert lint_text(text.replace("{x}", "Ada Lovelace")) is None, text


def test_fallback_verb_question_and_types() -> None:
    f = fallback_fields("affects", None, "chemical", "disease")
    assert f["forward"]["question"] == "What does {x} affect?"
    assert f["forward"]["many"] == "the diseases affected by {x}"
    assert f["inverse"]["many"] == "the chemicals that affect {x}"
    noun = fallback_fields("capital", None, "country", "city")
    assert noun["inverse"]["many"] == "the countries whose capital is {x}"
    assert noun["forward"]["many"] == "the capitals of {x}"


def test_keys_as_names_become_words() -> None:
    assert entity_name_from_key("population_group") == "population group"
    assert entity_name_from_key("concept:city_paris") == "city paris"
    assert entity_name_from_key("BodySystem") == "Body System"
    for raw in ("Q216458", "/m/0x12", "C0001175", "http://x.org/a"):
        assert is_raw_key(raw) and entity_name_from_key(raw) == raw
    assert not is_raw_key("laboratory_or_test_result")


def test_kg_without_label_files_names_entities_by_their_key_words() -> None:
    tables = KGTables(
        pl.DataFrame(
            {
                "head": ["population_group", "concept:virus"],
                "relation": ["affects", "isa"],
                "tail": ["laboratory_or_test_result", "organism"],
            }
        )
    )
    kg = KnowledgeGraph.from_tables(tables)
    labels = dict(zip(kg.entities["key"], kg.entities["label"], strict=True))
    assert labels["population_group"] == "population group"
    assert labels["concept:virus"] == "virus"


def test_names_that_need_the_get_it() -> None:
    from kg2tool.tools.lexicon import with_article

    names = pl.Series(["United States of America", "Holy Roman Empire", "Netherlands", "Paris",
                       "Kingdom of Prussia", "Mark Twain", "Rocky Mountains", "Unitedhealth"])  # fmt: skip
    assert with_article(names).to_list() == [
        "the United States of America",
        "the Holy Roman Empire",
        "the Netherlands",
        "Paris",
        "the Kingdom of Prussia",
        "Mark Twain",
        "the Rocky Mountains",
        "Unitedhealth",
    ]
