"""Pattern library and CLI pattern lists (the analysis itself: ``test_patterns_analysis.py``)."""

from __future__ import annotations

import pytest

from kg2tool.errors import PatternError, UnknownNameError
from kg2tool.patterns import (
    BETAE_TYPES,
    LIBRARY,
    are_isomorphic,
    canonical_form,
    get_pattern,
    list_patterns,
    parse_patterns,
)

CONTRACT_FORMULAS = {
    "1p": "r1(s1,f)",
    "2p": "r1(s1,e1)&r2(e1,f)",
    "3p": "r1(s1,e1)&r2(e1,e2)&r3(e2,f)",
    "2i": "r1(s1,f)&r2(s2,f)",
    "3i": "r1(s1,f)&r2(s2,f)&r3(s3,f)",
    "ip": "r1(s1,e1)&r2(s2,e1)&r3(e1,f)",
    "pi": "r1(s1,e1)&r2(e1,f)&r3(s2,f)",
    "2in": "r1(s1,f)&!r2(s2,f)",
    "3in": "r1(s1,f)&r2(s2,f)&!r3(s3,f)",
    "inp": "r1(s1,e1)&!r2(s2,e1)&r3(e1,f)",
    "pin": "r1(s1,e1)&r2(e1,f)&!r3(s2,f)",
    "pni": "r3(s2,f)&!(r1(s1,e1)&r2(e1,f))",
    "2u": "(r1(s1,f))|(r2(s2,f))",
    "up": "(r1(s1,e1)&r3(e1,f))|(r2(s2,e1)&r3(e1,f))",
}


def test_betae_types_have_the_contract_formulas() -> None:
    assert tuple(CONTRACT_FORMULAS) == BETAE_TYPES
    for name, formula in CONTRACT_FORMULAS.items():
        assert get_pattern(name).formula == formula
    assert list_patterns()[:14] == list(BETAE_TYPES)
    assert {"triangle", "square", "ipp", "pni_fit"} <= set(list_patterns())


def test_library_names_are_pairwise_non_isomorphic() -> None:
    forms = {name: canonical_form(spec) for name, spec in LIBRARY.items()}
    assert len(set(forms.values())) == len(forms)


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownNameError, match=r"did you mean.*2p") as info:
        get_pattern("2pp")
    assert isinstance(info.value, PatternError)
    with pytest.raises(PatternError, match="unknown pattern 'zzz'"):
        get_pattern("zzz")


def test_parse_patterns_names_weights_and_formulas() -> None:
    items = parse_patterns("1p, 2p:3, r1(s1,f)&r2(s2,f)*0.5, 2p[r1=P19, s1:Q5]:2")
    assert [(spec.name, w) for spec, w in items] == [
        ("1p", 1.0),
        ("2p", 3.0),
        ("r1(s1,f)&r2(s2,f)", 0.5),
        ("2p", 2.0),
    ]
    assert items[3][0].fixed_relations == {"r1": "P19"}
    assert items[3][0].types == {"s1": "Q5"}
    assert are_isomorphic(items[2][0], get_pattern("2i"))


@pytest.mark.parametrize(
    ("text", "words", "column"),
    [
        ("1p,,2p", "empty item", 4),
        ("1p,2p:x", "expected a weight", 7),
        ("1p,r1(s1,f)&&r2(s2,f)", "unexpected '&'", 13),
        ("1p, 2p where r1=P19", "'where' is not allowed", 8),
    ],
)
def test_parse_patterns_errors(text: str, words: str, column: int) -> None:
    with pytest.raises(PatternError) as info:
        parse_patterns(text)
    assert words in str(info.value)
    assert info.value.column == column  # type: ignore[attr-defined]


def test_parse_patterns_unknown_name() -> None:
    with pytest.raises(UnknownNameError, match="did you mean"):
        parse_patterns("1p,3pi")
