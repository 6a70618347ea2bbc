"""Pattern library, CLI pattern lists, and query-graph analysis (cycles, canonical form)."""

from __future__ import annotations

import itertools
import random

import pytest
import rustworkx as rx

from kg2tool.errors import PatternError, UnknownNameError
from kg2tool.patterns import (
    BETAE_TYPES,
    LIBRARY,
    PatternSpec,
    analyze,
    are_isomorphic,
    canonical_form,
    get_pattern,
    has_cycle,
    list_patterns,
    needs_join,
    parse_formula,
    parse_patterns,
    query_graph,
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


# ---------------------------------------------------------------------- graph analysis


def test_query_graph_has_terms_as_nodes_and_merges_anchor_parallels() -> None:
    (branch,) = parse_formula("r1(s1,f)&r2(s1,f)&r3(e1,f)&r4(e1,f)&r5(s2,e1)").branches
    graph = query_graph(branch)
    assert sorted(graph.nodes()) == ["e1", "f", "s1", "s2"]
    assert graph.num_edges() == 4  # r1/r2 merged, r3 and r4 kept apart
    assert rx.is_connected(graph)


@pytest.mark.parametrize(
    ("formula", "matching", "execution", "join"),
    [
        ("r1(s1,e1)&r2(e1,f)", False, False, False),
        ("r1(s1,f)&r2(s1,f)", False, False, False),  # parallel anchor edges: intersection
        ("r1(s1,e1)&r2(e1,f)&r3(s1,f)", True, False, True),  # triangle through an anchor
        ("r1(s1,e1)&r2(e1,f)&r3(e1,f)", True, True, True),  # 2m: parallel variable edges
        ("r1(s1,e1)&r2(e1,e2)&r3(e2,f)&r4(e1,f)", True, True, True),
        ("r1(s1,f)&r2(e1,f)", False, False, True),  # existential leaf
        ("r1(s1,e1)&r2(e1,f)&!r3(e1,f)", False, False, True),  # negated variable-variable atom
        ("r3(s2,f)&!(r1(s1,e1)&r2(e1,f))", False, False, False),
        ("r1(f,f)&r2(s1,f)", True, True, True),  # self-loop
    ],
)
def test_cycles_and_join_need(formula: str, matching: bool, execution: bool, join: bool) -> None:
    (branch,) = parse_formula(formula).branches
    assert has_cycle(branch) is matching
    assert has_cycle(branch, through_anchors=False) is execution
    assert needs_join(branch) is join


def test_join_anchor_cycles_option_in_needs_join() -> None:
    (branch,) = parse_formula("r1(s1,e1)&r2(e1,f)&r3(s1,f)").branches
    assert needs_join(branch, join_anchor_cycles=False) is False


def _rename(formula: str, rng: random.Random) -> str:
    """Rename r/s/e slots by random permutations and shuffle atom order."""
    parsed = parse_formula(formula)
    maps: dict[str, str] = {}
    for kind in "rse":
        names = sorted(
            {
                t
                for a, _ in parsed.iter_atoms()
                for t in (a.relation, a.head, a.tail)
                if t[0] == kind
            }
        )
        perm = names[:]
        rng.shuffle(perm)
        maps.update({name: f"{kind}{perm.index(name) + 7}" for name in names})

    def atom(a: object) -> str:
        return f"{maps[a.relation]}({maps.get(a.head, a.head)},{maps.get(a.tail, a.tail)})"  # type: ignore[attr-defined]

    def conj(c: object) -> str:
        parts = [atom(a) for a in c.atoms]  # type: ignore[attr-defined]
        parts += ["!" + atom(a) for a in c.negated_atoms]  # type: ignore[attr-defined]
        parts += [f"!({conj(d)})" for d in c.negations]  # type: ignore[attr-defined]
        rng.shuffle(parts)
        return "&".join(parts)

    branches = [conj(b) for b in parsed.branches]
    rng.shuffle(branches)
    return branches[0] if len(branches) == 1 else "|".join(f"({b})" for b in branches)


@pytest.mark.parametrize("name", list(LIBRARY))
def test_canonical_form_is_invariant_under_renaming(name: str) -> None:
    rng = random.Random(name)
    form = canonical_form(LIBRARY[name])
    for _ in range(5):
        renamed = _rename(LIBRARY[name].formula, rng)
        assert canonical_form(renamed) == form, renamed
    # the canonical form is itself a valid formula of the same pattern
    assert canonical_form(form) == form


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("r1(s1,e1)&r2(e1,f)", "r1(s1,e1)&r2(f,e1)"),  # direction matters
        ("r1(s1,f)&r2(s2,f)", "r1(s1,f)&r1(s2,f)"),  # shared relation slot matters
        ("r1(s1,f)&r2(s2,f)", "r1(s1,f)&r2(s1,f)"),  # shared anchor matters
        ("r1(s1,f)&!r2(s2,f)", "r1(s1,f)&r2(s2,f)"),  # negation matters
        ("pni", "pni_fit"),
        ("pi", "triangle"),
        ("2pi", "square"),
    ],
)
def test_canonical_form_separates_non_isomorphic(a: str, b: str) -> None:
    assert not are_isomorphic(a, b)


def test_canonical_form_includes_constraints() -> None:
    plain = PatternSpec("a", "r1(s1,f)&r2(s2,f)")
    fixed_1 = PatternSpec("a", "r1(s1,f)&r2(s2,f)", fixed_relations={"r1": "P19"})
    fixed_2 = PatternSpec("a", "r1(s1,f)&r2(s2,f)", fixed_relations={"r2": "P19"})
    assert are_isomorphic(fixed_1, fixed_2)
    assert not are_isomorphic(plain, fixed_1)
    typed = PatternSpec("a", "r1(s1,e1)&r2(e1,f)", types={"e1": "Q5"})
    assert not are_isomorphic(typed, "2p")
    assert "e1:Q5" in canonical_form(typed)


def test_canonical_form_agrees_with_rustworkx_isomorphism_on_small_conjunctions() -> None:
    # all two- and three-atom conjunctions over a small term set, deduplicated both ways
    terms = ["s1", "s2", "e1", "f"]
    formulas = []
    for atoms in itertools.combinations(itertools.product(terms, terms), 2):
        text = "&".join(f"r{i + 1}({h},{t})" for i, (h, t) in enumerate(atoms))
        try:
            parse_formula(text)
        except PatternError:
            continue
        formulas.append(text)

    def labelled(formula: str) -> rx.PyDiGraph:
        graph = rx.PyDiGraph()
        index = {}
        for atom, _ in parse_formula(formula).iter_atoms():
            for t in atom.terms:
                if t not in index:
                    index[t] = graph.add_node(t if t == "f" else t[0])
            graph.add_edge(index[atom.head], index[atom.tail], None)
        return graph

    for a, b in itertools.combinations(formulas, 2):
        expected = rx.is_isomorphic(labelled(a), labelled(b), node_matcher=lambda x, y: x == y)
        assert are_isomorphic(a, b) is expected, (a, b)


def test_analyze_reports_slots_and_structure() -> None:
    info = analyze("triangle")
    assert info.relation_slots == ("r1", "r2", "r3")
    assert info.anchor_slots == ("s1",)
    assert info.cyclic == (True,)
    assert info.needs_join == (True,)
    assert not info.has_negation
    assert analyze("up").cyclic == (False, False)
    assert analyze("pni").has_negation
