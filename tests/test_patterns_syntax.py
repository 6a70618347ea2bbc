"""Formula parser and compact spec syntax: round trips, error messages with columns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kg2tool.errors import PatternError
from kg2tool.patterns import LIBRARY, PatternSpec, parse_formula, parse_spec


def test_parses_atoms_negations_and_union() -> None:
    formula = parse_formula(" r3(s2, f) & !( r1(s1,e1) & r2(e1,f) ) ")
    (branch,) = formula.branches
    assert [str(a) for a in branch.atoms] == ["r3(s2,f)"]
    assert len(branch.negations) == 1
    assert [str(a) for a in branch.negations[0].atoms] == ["r1(s1,e1)", "r2(e1,f)"]
    union = parse_formula("(r1(s1,e1)&r3(e1,f))|(r2(s2,e1)&r3(e1,f))")
    assert len(union.branches) == 2
    assert union.relation_slots == ["r1", "r2", "r3"]
    assert union.anchor_slots == ["s1", "s2"]


def test_slots_sort_numerically() -> None:
    formula = parse_formula("r10(s10,f)&r2(s2,f)")
    assert formula.relation_slots == ["r2", "r10"]
    assert formula.anchor_slots == ["s2", "s10"]


@pytest.mark.parametrize("name", list(LIBRARY))
def test_round_trip_of_library_formulas(name: str) -> None:
    formula = LIBRARY[name].parsed
    again = parse_formula(str(formula))
    assert again == formula
    assert str(again) == str(formula)


def test_atom_positions_are_columns() -> None:
    formula = parse_formula("r1(s1,e1) & r2(e1,f)")
    assert [a.pos for a in formula.branches[0].atoms] == [0, 12]


def _error(text: str) -> PatternError:
    with pytest.raises(PatternError) as info:
        parse_formula(text)
    return info.value


BAD_FORMULAS = [
    # (text, words the message must contain, expected 1-based column)
    ("r1(s1,e1)&&r2(e1,f)", "unexpected '&'", 11),
    ("r1(s1,e1)&r2(e1,f", "end of formula", 18),
    ("r1(s1,e1) r2(e1,f)", "unexpected 'r2'", 11),
    ("r1(s1,e1)&r2(e1,e2)", "no answer variable f", 1),
    ("(r1(s1,f))|(r2(s2,e1))", "union branch 2 has no answer variable f", 13),
    ("r1(s1,f)&r2(s2,e1)", "disconnected", 10),
    ("r1(s1,f)&!r2(e5,f)", "unsafe negation", 11),
    ("r1(s1,f)&r2(s2,f)|r3(s3,f)", "parentheses", 18),
    ("r1(s1,x1)", "x1 is not a term", 7),
    ("p1(s1,f)", "not a relation slot", 1),
    ("r1(s1,r2)", "r2 is a relation slot", 7),
    ("r1(s1,s2)&r2(s1,f)", "links two anchors", 1),
    ("r1(s1,f)&!r1(s1,f)", "contradiction", 11),
    ("r1(s1,f) ∧ r2(s2,f)", "write & for and", 10),
    ("r1(s1,e1)&r2(e1,f)&!(r3(e1,e2)&r4(e2,f))", "shares e1, f", 20),
    ("r1(s1,f)&!(r2(s2,e1)&r3(e1,e2))", "shares no variable", 10),
    ("r1(e1,f)&r2(f,e1)", "no anchor", 1),
    ("", "empty formula", 1),
    ("!r1(s1,f)", "at least one positive atom", 1),
]


@pytest.mark.parametrize(("text", "words", "column"), BAD_FORMULAS)
def test_bad_formulas_point_at_the_column(text: str, words: str, column: int) -> None:
    err = _error(text)
    message = str(err)
    assert words in message
    assert err.column == column  # type: ignore[attr-defined]
    assert f"column {column}" in message
    # the caret line sits under the reported column
    caret = message.splitlines()[-1]
    assert caret.index("^") - 2 == column - 1


def test_multiline_formula_reports_line_and_column() -> None:
    err = _error("r1(s1,e1)&\n r2(e1,f)&&")
    assert "line 2" in str(err)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="rsef0123()&|!, \t()xyz∧", max_size=40))
def test_parser_only_raises_pattern_error(text: str) -> None:
    try:
        parse_formula(text)
    except PatternError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_spec_parser_only_raises_pattern_error(text: str) -> None:
    try:
        parse_spec(text)
    except PatternError:
        pass


def test_spec_where_clause_and_brackets_agree() -> None:
    a = parse_spec("r1(s1,e1)&r2(e1,f) where r1=P19, s1:Q5, e1:Q515")
    b = parse_spec("r1(s1,e1)&r2(e1,f)[r1=P19, s1:Q5, e1:Q515]")
    assert a == b
    assert a.fixed_relations == {"r1": "P19"}
    assert a.types == {"s1": "Q5", "e1": "Q515"}
    assert parse_spec(a.to_string()) == a


def test_spec_fixed_entity_with_type_and_quoted_keys() -> None:
    spec = parse_spec('2p[s1=Q42:Q5, r2="/film/film/genre"]')
    assert spec.name == "2p"
    assert spec.fixed_entities == {"s1": "Q42"}
    assert spec.types == {"s1": "Q5"}
    assert spec.fixed_relations == {"r2": "/film/film/genre"}
    assert parse_spec(spec.to_string(), name="2p") == spec


@pytest.mark.parametrize(
    ("text", "words", "column"),
    [
        ("2p where r1=P19, r1=P20", "contradictory fixed slots", 18),
        ("2p where r9=P19", "r9 does not occur", 10),
        ("2p where e1=Q5", "cannot be fixed", 10),
        ("2p where r1 P19", "expected '=' or ':'", 13),
        ("2p[r1=P19 r2=P20]", "expected ','", 11),
    ],
)
def test_bad_specs_point_at_the_column(text: str, words: str, column: int) -> None:
    with pytest.raises(PatternError) as info:
        parse_spec(text)
    assert words in str(info.value)
    assert info.value.column == column  # type: ignore[attr-defined]


def test_contradictory_fixed_relations_under_negation() -> None:
    with pytest.raises(PatternError, match="contradictory fixed slots"):
        PatternSpec("x", "r1(s1,f)&!r2(s1,f)", fixed_relations={"r1": "P19", "r2": "P19"})
    # different relations are fine
    PatternSpec("x", "r1(s1,f)&!r2(s1,f)", fixed_relations={"r1": "P19", "r2": "P20"})


def test_spec_rejects_constraints_on_unknown_slots() -> None:
    with pytest.raises(PatternError, match="not an anchor slot"):
        PatternSpec("x", "r1(s1,f)", fixed_entities={"f": "Q5"})
    with pytest.raises(PatternError, match="not a term"):
        PatternSpec("x", "r1(s1,f)", types={"e3": "Q5"})
