"""Query-graph analysis with rustworkx: graph, cycles, join need, canonical form.

The query graph of a conjunction has one node per term (anchors and variables) and one
edge per atom. Two views of cycles matter:

- *matching view* (anchors are nodes, ``through_anchors=True``): the triangle
  ``r1(s1,e1)&r2(e1,f)&r3(s1,f)`` is a cycle; a matcher that enumerates anchors must
  treat it as one.
- *execution view* (each anchor occurrence is its own node): once anchors are grounded,
  a cycle through an anchor is two independent paths from the same constant, which set
  operations evaluate exactly; only cycles among variables need a join.

In both views parallel atoms between an anchor and a variable (``r1(s1,f)&r2(s1,f)``) are
one edge: they are an intersection at the variable, not a cycle. Parallel atoms between
two variables (``r2(e1,f)&r3(e1,f)``) are a cycle: the same ``e1`` must serve both.

The canonical form is a formula string that is identical for patterns equal up to
renaming of relation slots, anchors and existentials (constraints included). It is found
by colour refinement with individualisation (a tiny nauty): patterns are small, so the
search over the remaining ties is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import rustworkx as rx

from kg2tool.patterns.syntax import (
    Atom,
    Conjunction,
    Formula,
    PatternSpec,
    is_anchor,
    is_variable,
    parse_spec,
)

__all__ = [
    "PatternInfo",
    "analyze",
    "are_isomorphic",
    "canonical_form",
    "has_cycle",
    "needs_join",
    "query_graph",
]


def query_graph(
    conj: Conjunction,
    *,
    include_negated: bool = False,
    split_anchors: bool = False,
    merge_anchor_edges: bool = True,
) -> rx.PyGraph:
    """Undirected multigraph of a conjunction: node payload = term, edge payload = [Atom].

    ``split_anchors`` gives every anchor occurrence its own node (named ``s1#k``);
    ``merge_anchor_edges`` folds parallel anchor-variable atoms into one edge.
    """
    graph = rx.PyGraph(multigraph=True)
    index: dict[str, int] = {}
    anchor_edges: dict[tuple[int, int], int] = {}
    atoms = list(conj.atoms) + (list(conj.negated_atoms) if include_negated else [])
    for k, atom in enumerate(atoms):
        ends = []
        for term in atom.terms:
            name = f"{term}#{k}" if split_anchors and is_anchor(term) else term
            if name not in index:
                index[name] = graph.add_node(name)
            ends.append(index[name])
        u, v = ends
        key = (min(u, v), max(u, v))
        if merge_anchor_edges and is_anchor(atom.head) != is_anchor(atom.tail):
            if key in anchor_edges:
                graph.get_edge_data_by_index(anchor_edges[key]).append(atom)
                continue
            anchor_edges[key] = graph.add_edge(u, v, [atom])
        else:
            graph.add_edge(u, v, [atom])
    return graph


def _cyclomatic(graph: rx.PyGraph) -> int:
    return graph.num_edges() - graph.num_nodes() + len(rx.connected_components(graph))


def has_cycle(conj: Conjunction, *, through_anchors: bool = True) -> bool:
    """Does the positive part have a cycle (matching view, or execution view if False)?"""
    return _cyclomatic(query_graph(conj, split_anchors=not through_anchors)) > 0


def needs_join(conj: Conjunction, root: str = "f", *, join_anchor_cycles: bool = True) -> bool:
    """Can set operations not evaluate ``conj`` exactly, so that it must be a JOIN?

    True when the positive part has a cycle (through anchors too unless
    ``join_anchor_cycles`` is False), is disconnected, has a variable leaf other than
    ``root`` (an existential with nothing to start from, e.g. ``r2(e1,f)`` in 2il), or
    when a negated atom links two variables (a binary constraint, e.g. 2nm, pni_fit).
    """
    if any(len(a.variables) == 2 or a.head == a.tail for a in conj.negated_atoms):
        return True
    graph = query_graph(conj, split_anchors=not join_anchor_cycles)
    if len(rx.connected_components(graph)) > 1 or _cyclomatic(graph) > 0:
        return True
    for node in graph.node_indices():
        term = graph[node].split("#")[0]
        if is_variable(term) and term != root and graph.degree(node) <= 1:
            return True
    return False


# ------------------------------------------------------------------ canonical form


class _Colored:
    """A labelled graph of the whole formula for colour refinement."""

    def __init__(self, spec: PatternSpec) -> None:
        self.labels: list[tuple[str, ...]] = []
        self.kind: list[str] = []
        self.name: list[object] = []
        self.adj: list[list[tuple[str, int, int]]] = []
        self.spec = spec
        formula = spec.parsed
        self.rel = {
            r: self._node("r", r, ("r", spec.fixed_relations.get(r, "")))
            for r in formula.relation_slots
        }
        self.anchor = {
            s: self._node("s", s, ("s", spec.fixed_entities.get(s, ""), spec.types.get(s, "")))
            for s in formula.anchor_slots
        }
        self.f = self._node("f", "f", ("f", spec.types.get("f", "")))
        self.atom_vars: dict[int, tuple[int, int]] = {}
        for branch in formula.branches:
            self._scope(branch, {}, parent=-1)

    def _node(self, kind: str, name: object, label: tuple[str, ...]) -> int:
        self.labels.append(label)
        self.kind.append(kind)
        self.name.append(name)
        self.adj.append([])
        return len(self.labels) - 1

    def _edge(self, u: int, label: str, v: int) -> None:
        self.adj[u].append((label, 1, v))
        self.adj[v].append((label, 0, u))

    def _scope(self, conj: Conjunction, outer: dict[str, int], parent: int) -> None:
        scope = self._node("scope", conj, ("N" if parent >= 0 else "B",))
        if parent >= 0:
            self._edge(scope, "in", parent)
        names = dict(outer)
        for var in sorted(conj.positive_variables):
            if var == "f":
                names[var] = self.f
            elif var not in outer:
                names[var] = self._node("e", (conj, var), ("e", self.spec.types.get(var, "")))
                self._edge(names[var], "scope", scope)
        for atom, negated in [(a, False) for a in conj.atoms] + [
            (a, True) for a in conj.negated_atoms
        ]:
            node = self._node("atom", atom, ("A", "neg" if negated else "pos"))
            self._edge(node, "in", scope)
            self._edge(node, "rel", self.rel[atom.relation])
            for label, term in (("head", atom.head), ("tail", atom.tail)):
                self._edge(node, label, self.anchor[term] if is_anchor(term) else names[term])
        for neg in conj.negations:
            self._scope(neg, names, scope)
        self.scope_names = getattr(self, "scope_names", {})
        self.scope_names[id(conj)] = names

    def refine(self, colors: list[float]) -> list[int]:
        """Colour refinement to a stable partition; colours are ranks, so invariant."""
        ranks = {c: i for i, c in enumerate(sorted(set(colors)))}
        current = [ranks[c] for c in colors]
        while True:
            sigs = [
                (current[v], tuple(sorted((lab, d, current[w]) for lab, d, w in self.adj[v])))
                for v in range(len(current))
            ]
            order = {s: i for i, s in enumerate(sorted(set(sigs)))}
            new = [order[s] for s in sigs]
            if len(order) == len(set(current)):
                return new
            current = new

    def render(self, colors: list[int]) -> str:
        """The formula and constraints with slots renamed by colour order."""
        rename: dict[int, str] = {}
        for kind, prefix in (("r", "r"), ("s", "s"), ("e", "e")):
            nodes = sorted(
                (v for v in range(len(colors)) if self.kind[v] == kind), key=colors.__getitem__
            )
            for i, v in enumerate(nodes, 1):
                rename[v] = f"{prefix}{i}"
        rename[self.f] = "f"
        spec = self.spec

        def term(t: str, names: dict[str, int]) -> str:
            return rename[self.anchor[t]] if is_anchor(t) else rename[names[t]]

        def conj_text(conj: Conjunction) -> str:
            names = self.scope_names[id(conj)]

            def atom_text(a: Atom) -> str:
                return (
                    f"{rename[self.rel[a.relation]]}({term(a.head, names)},{term(a.tail, names)})"
                )

            parts = sorted(atom_text(a) for a in conj.atoms)
            parts += sorted("!" + atom_text(a) for a in conj.negated_atoms)
            parts += sorted(f"!({conj_text(d)})" for d in conj.negations)
            return "&".join(parts)

        branches = sorted(conj_text(b) for b in spec.parsed.branches)
        text = branches[0] if len(branches) == 1 else "|".join(f"({b})" for b in branches)
        cons = [f"{rename[self.rel[r]]}={k}" for r, k in spec.fixed_relations.items()]
        cons += [f"{rename[self.anchor[s]]}={k}" for s, k in spec.fixed_entities.items()]
        for t, k in spec.types.items():
            if t == "f":
                cons.append(f"f:{k}")
            elif is_anchor(t):
                cons.append(f"{rename[self.anchor[t]]}:{k}")
            else:
                cons += [
                    f"{rename[v]}:{k}"
                    for v in range(len(self.kind))
                    if self.kind[v] == "e" and self.name[v][1] == t  # type: ignore[index]
                ]
        return text + (" where " + ", ".join(sorted(cons)) if cons else "")

    def canonical(self) -> str:
        """Minimum rendering over the individualisation-refinement search tree."""
        initial = {lab: i for i, lab in enumerate(sorted(set(self.labels)))}
        best: list[str] = []
        renameable = [v for v in range(len(self.kind)) if self.kind[v] in ("r", "s", "e")]

        def search(colors: list[int]) -> None:
            cells: dict[int, list[int]] = {}
            for v in renameable:
                cells.setdefault(colors[v], []).append(v)
            ties = sorted(c for c, members in cells.items() if len(members) > 1)
            if not ties:
                text = self.render(colors)
                if not best or text < best[0]:
                    best[:] = [text]
                return
            for v in cells[ties[0]]:
                forked: list[float] = list(colors)
                forked[v] = colors[v] - 0.5
                search(self.refine(forked))

        search(self.refine([float(initial[lab]) for lab in self.labels]))
        return best[0]


def _as_spec(pattern: PatternSpec | Formula | str) -> PatternSpec:
    if isinstance(pattern, PatternSpec):
        return pattern
    if isinstance(pattern, Formula):
        return PatternSpec(name=str(pattern), formula=str(pattern))
    return parse_spec(pattern)


def canonical_form(pattern: PatternSpec | Formula | str) -> str:
    """A spec string equal for two patterns iff they are equal up to renaming slots/vars."""
    return _Colored(_as_spec(pattern)).canonical()


def are_isomorphic(a: PatternSpec | Formula | str, b: PatternSpec | Formula | str) -> bool:
    """Same pattern up to renaming of relation slots, anchors and existentials?"""
    return canonical_form(a) == canonical_form(b)


@dataclass(frozen=True)
class PatternInfo:
    """What the analysis knows about a pattern (for listings and the compiler)."""

    name: str
    formula: str
    num_atoms: int
    relation_slots: tuple[str, ...]
    anchor_slots: tuple[str, ...]
    variables: tuple[str, ...]
    cyclic: tuple[bool, ...]  # per union branch, matching view
    needs_join: tuple[bool, ...]  # per union branch, with the default compiler options
    has_negation: bool
    canonical: str


def analyze(pattern: PatternSpec | Formula | str) -> PatternInfo:
    """Summarise a pattern: slots, per-branch cycles and join need, canonical form."""
    spec = _as_spec(pattern)
    formula = spec.parsed
    return PatternInfo(
        name=spec.name,
        formula=str(formula),
        num_atoms=sum(1 for _ in formula.iter_atoms()),
        relation_slots=tuple(formula.relation_slots),
        anchor_slots=tuple(formula.anchor_slots),
        variables=tuple(formula.variables),
        cyclic=tuple(has_cycle(b) for b in formula.branches),
        needs_join=tuple(needs_join(b) for b in formula.branches),
        has_negation=any(b.negated_atoms or b.negations for b in formula.branches),
        canonical=canonical_form(spec),
    )
