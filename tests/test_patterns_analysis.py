"""Query-graph analysis (``kg2tool.patterns.analysis``): query graph, cycles in both views,
join need, canonical form and ``analyze``, checked against examples worked by hand."""

from __future__ import annotations

import itertools
import random

import pytest
import rustworkx as rx

from kg2tool.errors import PatternError
from kg2tool.patterns import (
    LIBRARY,
    PatternSpec,
    analyze,
    are_isomorphic,
    canonical_form,
    has_cycle,
    needs_join,
    parse_formula,
    query_graph,
)
from kg2tool.patterns.syntax import Atom, Conjunction


def _branch(formula: str) -> Conjunction:
    (branch,) = parse_formula(formula).branches
    return branch


def _edges(graph: rx.PyGraph) -> list[tuple[str, str, list[str]]]:
    """Edges as (end, end, atoms) with the ends sorted, in a stable order."""
    out = []
    for u, v, atoms in graph.weighted_edge_list():
        a, b = sorted((graph[u], graph[v]))
        out.append((a, b, [str(x) for x in atoms]))
    return sorted(out)


# ---------------------------------------------------------------------- query graph


def test_query_graph_has_terms_as_nodes_and_merges_anchor_parallels() -> None:
    graph = query_graph(_branch("r1(s1,f)&r2(s1,f)&r3(e1,f)&r4(e1,f)&r5(s2,e1)"))
    # r1/r2 join an anchor to a variable: one edge holding both atoms (an intersection);
    # r3/r4 join two variables: two edges (a cycle through e1 and f)
    assert _edges(graph) == [
        ("e1", "f", ["r3(e1,f)"]),
        ("e1", "f", ["r4(e1,f)"]),
        ("e1", "s2", ["r5(s2,e1)"]),
        ("f", "s1", ["r1(s1,f)", "r2(s1,f)"]),
    ]
    assert sorted(graph.nodes()) == ["e1", "f", "s1", "s2"]


def test_query_graph_keeps_anchor_parallels_apart_when_asked() -> None:
    graph = query_graph(_branch("r1(s1,f)&r2(s1,f)"), merge_anchor_edges=False)
    assert _edges(graph) == [("f", "s1", ["r1(s1,f)"]), ("f", "s1", ["r2(s1,f)"])]


def test_query_graph_splits_anchor_occurrences_by_atom_index() -> None:
    # triangle: s1 occurs in atoms 0 and 2, so the execution view has s1#0 and s1#2
    graph = query_graph(_branch("r1(s1,e1)&r2(e1,f)&r3(s1,f)"), split_anchors=True)
    assert _edges(graph) == [
        ("e1", "f", ["r2(e1,f)"]),
        ("e1", "s1#0", ["r1(s1,e1)"]),
        ("f", "s1#2", ["r3(s1,f)"]),
    ]


def test_query_graph_leaves_negated_atoms_out_unless_asked() -> None:
    branch = _branch("r1(s1,f)&!r2(s2,f)")
    assert _edges(query_graph(branch)) == [("f", "s1", ["r1(s1,f)"])]
    assert _edges(query_graph(branch, include_negated=True)) == [
        ("f", "s1", ["r1(s1,f)"]),
        ("f", "s2", ["r2(s2,f)"]),
    ]


# ---------------------------------------------------------------------- cycles and joins


@pytest.mark.parametrize(
    ("formula", "matching", "execution", "join"),
    [
        ("r1(s1,e1)&r2(e1,f)", False, False, False),
        ("r1(s1,f)&r2(s1,f)", False, False, False),  # parallel anchor edges: intersection
        ("r1(s1,e1)&r2(e1,f)&r3(s1,f)", True, False, True),  # triangle through an anchor
        # square: 4 edges, 4 nodes, 1 component (cyclomatic 1); split s1: 5 nodes (0)
        ("r1(s1,e1)&r2(e1,f)&r3(s1,e2)&r4(e2,f)", True, False, True),
        ("r1(s1,e1)&r2(e1,f)&r3(e1,f)", True, True, True),  # 2m: parallel variable edges
        ("r1(s1,e1)&r2(e1,e2)&r3(e2,f)&r4(e1,f)", True, True, True),
        ("r1(s1,f)&r2(e1,f)", False, False, True),  # existential leaf
        ("r1(s1,e1)&r2(e1,f)&!r3(e1,f)", False, False, True),  # negated variable-variable atom
        ("r1(s1,f)&!r2(f,f)", False, False, True),  # negated self-loop
        ("r3(s2,f)&!(r1(s1,e1)&r2(e1,f))", False, False, False),
        ("r1(f,f)&r2(s1,f)", True, True, True),  # self-loop
    ],
)
def test_cycles_and_join_need(formula: str, matching: bool, execution: bool, join: bool) -> None:
    branch = _branch(formula)
    assert has_cycle(branch) is matching
    assert has_cycle(branch, through_anchors=False) is execution
    assert needs_join(branch) is join


@pytest.mark.parametrize(
    ("formula", "join"),
    [
        ("r1(s1,e1)&r2(e1,f)&r3(s1,f)", False),  # triangle: cycle only through s1
        ("r1(s1,e1)&r2(e1,f)&r3(s1,e2)&r4(e2,f)", False),  # square: likewise
        ("r1(s1,e1)&r2(e1,f)&r3(e1,f)", True),  # a variable cycle needs a join regardless
    ],
)
def test_join_anchor_cycles_option_in_needs_join(formula: str, join: bool) -> None:
    assert needs_join(_branch(formula), join_anchor_cycles=False) is join


def test_needs_join_on_a_disconnected_positive_part() -> None:
    # r1(s1,f) and r2(s2,e1)&r3(s3,e1) share no term: no cycle, no loose leaf, two components
    conj = Conjunction(
        atoms=(Atom("r1", "s1", "f"), Atom("r2", "s2", "e1"), Atom("r3", "s3", "e1"))
    )
    assert not has_cycle(conj)
    assert needs_join(conj)


def test_needs_join_counts_leaves_from_the_root() -> None:
    branch = _branch("r1(s1,e1)&r2(e1,f)")
    assert not needs_join(branch)
    assert needs_join(branch, root="e1")  # then f is an existential leaf


# ---------------------------------------------------------------------- canonical form


@pytest.mark.parametrize(
    ("pattern", "form"),
    [
        ("r1(s1,f)", "r1(s1,f)"),
        # one atom from an anchor, one from a variable: colour refinement tells the two
        # relation slots apart, and the slots are renamed however they were written
        ("r1(s1,e1)&r2(e1,f)", "r1(e1,f)&r2(s1,e1)"),
        ("r9(e4,f)&r5(s3,e4)", "r1(e1,f)&r2(s1,e1)"),
        # 2i is symmetric: the two renamings render the same text
        ("r2(s2,f)&r1(s1,f)", "r1(s1,f)&r2(s2,f)"),
        ("r7(s3,f)&r4(s9,f)", "r1(s1,f)&r2(s2,f)"),
        ("r1(s1,f)&r1(s2,f)", "r1(s1,f)&r1(s2,f)"),  # a shared relation slot stays shared
        ("r2(s1,f)&r1(s1,f)", "r1(s1,f)&r2(s1,f)"),  # a shared anchor stays shared
        ("r1(s1,f)&!r2(s2,f)", "r2(s2,f)&!r1(s1,f)"),  # negated atoms after positive ones
        # union: the relation shared across branches stays shared; each branch has its own e
        ("(r1(s1,e1)&r3(e1,f))|(r2(s2,e1)&r3(e1,f))", "(r1(s1,e1)&r3(e1,f))|(r2(s2,e2)&r3(e2,f))"),
    ],
)
def test_canonical_form_of_small_patterns(pattern: str, form: str) -> None:
    assert canonical_form(pattern) == form


def test_canonical_form_renames_constraints_with_their_slots() -> None:
    spec = PatternSpec("a", "r2(e1,f)&r1(s1,e1)", fixed_relations={"r2": "P19"}, types={"e1": "Q5"})
    # P19 stays on the hop into f, Q5 on the middle term
    assert canonical_form(spec) == "r1(s1,e1)&r2(e1,f) where e1:Q5, r2=P19"
    # P19 on the first hop instead: still on the atom from s1 after renaming
    other = PatternSpec("a", "r2(e1,f)&r1(s1,e1)", fixed_relations={"r1": "P19"})
    assert canonical_form(other) == "r1(e1,f)&r2(s1,e1) where r2=P19"


def test_canonical_form_accepts_specs_formulas_and_library_names() -> None:
    assert canonical_form("2p") == canonical_form(parse_formula("r1(s1,e1)&r2(e1,f)"))
    assert canonical_form("2p") == canonical_form(LIBRARY["2p"]) == "r1(e1,f)&r2(s1,e1)"


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

    def atom(a: Atom) -> str:
        return f"{maps[a.relation]}({maps.get(a.head, a.head)},{maps.get(a.tail, a.tail)})"

    def conj(c: Conjunction) -> str:
        parts = [atom(a) for a in c.atoms]
        parts += ["!" + atom(a) for a in c.negated_atoms]
        parts += [f"!({conj(d)})" for d in c.negations]
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
    assert canonical_form(typed) == "r1(e1,f)&r2(s1,e1) where e1:Q5"


def test_canonical_form_agrees_with_rustworkx_isomorphism_on_small_conjunctions() -> None:
    # all two-atom conjunctions over a small term set, deduplicated both ways
    terms = ["s1", "s2", "e1", "f"]
    formulas = []
    for atoms in itertools.combinations(itertools.product(terms, terms), 2):
        text = "&".join(f"r{i + 1}({h},{t})" for i, (h, t) in enumerate(atoms))
        try:
            parse_formula(text)
        except PatternError:
            continue
        formulas.append(text)
    assert len(formulas) > 20

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


# ---------------------------------------------------------------------- analyze


def test_analyze_reports_slots_and_structure() -> None:
    info = analyze("triangle")
    assert info.name == "triangle"
    assert info.num_atoms == 3
    assert info.relation_slots == ("r1", "r2", "r3")
    assert info.anchor_slots == ("s1",)
    assert info.variables == ("e1", "f")
    assert info.cyclic == (True,)
    assert info.needs_join == (True,)
    assert not info.has_negation
    assert info.canonical == "r1(e1,f)&r2(s1,e1)&r3(s1,f)"


def test_analyze_reports_per_branch_and_negation() -> None:
    up = analyze("up")
    assert up.num_atoms == 4
    assert up.cyclic == (False, False)
    assert up.needs_join == (False, False)
    assert up.variables == ("e1", "f")
    negated = analyze("2in")
    assert negated.has_negation
    assert negated.anchor_slots == ("s1", "s2")
    assert negated.canonical == "r2(s2,f)&!r1(s1,f)"
    assert analyze("pni").has_negation
