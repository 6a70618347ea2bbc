"""Independent reference evaluators of pattern formulas: plain Python and DuckDB SQL.

Both are written from the formula semantics, not from compiled plans, so tests can check
the compiler and the native engine against them (the GAP-style verifier).

Semantics of a grounded conjunction with answer ``f``: ``f = x`` is an answer iff some
assignment of the conjunction's other variables makes every positive atom an edge of the
KG, no negated atom an edge, and, for every ``!( C )``, no assignment of ``C``'s own
variables satisfies ``C``. A union is the union of its branches. A type constraint on a
variable restricts its values to entities of that type (anchor types constrain the
grounding, not the answers, and are not checked here).

:func:`evaluate` finds answers by per-variable candidate sets (arc consistency over the
positive atoms: sound pruning only) and then, for each candidate of ``f``, an exhaustive
backtracking search for one satisfying assignment. :func:`to_sql` writes the same
semantics as SQL: a self-join of ``triples`` per positive atom, ``NOT EXISTS`` per
negation.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping

from kg2tool.patterns.syntax import (
    Atom,
    Conjunction,
    Formula,
    PatternSpec,
    is_anchor,
    parse_formula,
)

__all__ = ["ReferenceKG", "evaluate", "sample_grounding", "to_sql"]

Key = Hashable


class ReferenceKG:
    """Adjacency as dicts of sets, both directions: ``out[r][h] = {t}``, ``inv[r][t] = {h}``."""

    def __init__(self, adjacency: Mapping[Key, Mapping[Key, Iterable[Key]]]) -> None:
        self.out: dict[Key, dict[Key, set[Key]]] = {}
        self.inv: dict[Key, dict[Key, set[Key]]] = {}
        self._incident: dict[bool, dict[Key, list[tuple[Key, Key]]]] = {}
        self._catalogue: tuple[list[Key], dict, dict, list[Key]] | None = None
        for rel, heads in adjacency.items():
            out = self.out.setdefault(rel, {})
            inv = self.inv.setdefault(rel, defaultdict(set))
            for head, tails in heads.items():
                out[head] = set(tails)
                for tail in out[head]:
                    inv[tail].add(head)
            self.inv[rel] = dict(inv)

    @classmethod
    def from_triples(cls, triples: Iterable[tuple[Key, Key, Key]]) -> ReferenceKG:
        """Build from (head, relation, tail) triples."""
        adjacency: dict[Key, dict[Key, set[Key]]] = defaultdict(lambda: defaultdict(set))
        for head, rel, tail in triples:
            adjacency[rel][head].add(tail)
        return cls(adjacency)

    def catalogue(self) -> tuple[list[Key], dict[Key, list[Key]], dict[Key, list[Key]], list[Key]]:
        """Sorted relations, heads and tails per relation, all entities (cached, for sampling)."""
        if self._catalogue is None:
            relations = sorted(self.out, key=repr)
            heads = {r: list(self.out[r]) for r in relations}
            tails = {r: list(self.inv[r]) for r in relations}
            entities = sorted({e for r in relations for e in (*heads[r], *tails[r])}, key=repr)
            self._catalogue = (relations, heads, tails, entities)
        return self._catalogue

    def incident(self, node: Key, forward: bool) -> list[tuple[Key, Key]]:
        """All (relation, neighbour) pairs of ``node`` out (forward) or in; cached."""
        cache = self._incident.setdefault(forward, {})
        if node not in cache:
            side = self.out if forward else self.inv
            cache[node] = [
                (rel, x)
                for rel in sorted(side, key=repr)
                for x in sorted(side[rel].get(node, ()), key=repr)
            ]
        return cache[node]

    def neighbors(self, rel: Key, node: Key, forward: bool) -> set[Key]:
        """Tails of ``node`` (forward) or heads of ``node`` (inverse) under ``rel``."""
        side = self.out if forward else self.inv
        return side.get(rel, {}).get(node, _EMPTY)

    def image(self, rel: Key, nodes: set[Key] | None, forward: bool) -> set[Key]:
        """Union of neighbours of ``nodes``; ``None`` means every entity."""
        side = self.out if forward else self.inv
        table = side.get(rel, {})
        if nodes is None:
            other = self.inv if forward else self.out
            return set(other.get(rel, {}))
        result: set[Key] = set()
        for node in nodes:
            result |= table.get(node, _EMPTY)
        return result


_EMPTY: set[Key] = set()


class _Evaluation:
    """One grounded query: memoises candidate sets and negation checks."""

    def __init__(
        self,
        kg: ReferenceKG,
        grounding: Mapping[str, Key],
        types: Mapping[str, Key],
        typed_entities: Mapping[Key, set[Key]],
    ) -> None:
        self.kg = kg
        self.grounding = grounding
        self.types = types
        self.typed = typed_entities
        self.domains: dict[int, dict[str, set[Key]]] = {}
        self.negation_memo: dict[tuple[int, Key], bool] = {}

    def value(self, term: str, assignment: Mapping[str, Key]) -> Key:
        return self.grounding[term] if is_anchor(term) else assignment[term]

    def candidate_sets(self, conj: Conjunction) -> dict[str, set[Key]]:
        """Per-variable supersets of the values any solution can take (arc consistency)."""
        if id(conj) in self.domains:
            return self.domains[id(conj)]
        domain: dict[str, set[Key] | None] = {v: None for v in conj.positive_variables}
        for var in domain:
            if var in self.types:
                domain[var] = set(self.typed.get(self.types[var], _EMPTY))
        changed = True
        while changed:
            changed = False
            for atom in conj.atoms:
                rel = self.grounding[atom.relation]
                for src, dst, forward in (
                    (atom.head, atom.tail, True),
                    (atom.tail, atom.head, False),
                ):
                    if is_anchor(dst):
                        continue
                    if is_anchor(src):
                        image = set(self.kg.neighbors(rel, self.grounding[src], forward))
                    else:
                        image = self.kg.image(rel, domain[src], forward)
                    old = domain[dst]
                    new = image if old is None else old & image
                    if old is None or len(new) < len(old):
                        domain[dst] = new
                        changed = True
        result = {v: (d if d is not None else set()) for v, d in domain.items()}
        self.domains[id(conj)] = result
        return result

    def satisfiable(self, conj: Conjunction, fixed: dict[str, Key]) -> bool:
        """Is there an assignment extending ``fixed`` that satisfies ``conj``?"""
        domain = self.candidate_sets(conj)
        for var, val in fixed.items():
            if val not in domain[var]:
                return False
        assignment = dict(fixed)
        for var in fixed:
            if not self.consistent(conj, assignment, var):
                return False
        free = [v for v in conj.positive_variables if v not in assignment]
        return self.search(conj, assignment, free, domain)

    def search(
        self,
        conj: Conjunction,
        assignment: dict[str, Key],
        free: list[str],
        domain: dict[str, set[Key]],
    ) -> bool:
        if not free:
            return True
        # the free variable with the smallest candidate set among those linked to bound terms
        best: tuple[int, str, set[Key]] | None = None
        for var in free:
            cands: set[Key] | None = None
            for atom in conj.atoms:
                if var not in atom.terms:
                    continue
                other = atom.tail if atom.head == var else atom.head
                if other == var or (not is_anchor(other) and other not in assignment):
                    continue
                forward = atom.tail == var
                nbrs = self.kg.neighbors(
                    self.grounding[atom.relation], self.value(other, assignment), forward
                )
                cands = set(nbrs) if cands is None else cands & nbrs
            if cands is None:
                continue
            cands &= domain[var]
            if best is None or len(cands) < best[0]:
                best = (len(cands), var, cands)
        if best is None:
            return False  # cannot happen for validated formulas: every component has an anchor
        _, var, cands = best
        rest = [v for v in free if v != var]
        for val in cands:
            assignment[var] = val
            if self.consistent(conj, assignment, var) and self.search(
                conj, assignment, rest, domain
            ):
                del assignment[var]
                return True
            del assignment[var]
        return False

    def consistent(self, conj: Conjunction, assignment: dict[str, Key], var: str) -> bool:
        """Check every constraint that mentions ``var`` and whose terms are all bound."""

        def bound(atom: Atom) -> bool:
            return all(is_anchor(t) or t in assignment for t in atom.terms)

        def holds(atom: Atom) -> bool:
            head = self.value(atom.head, assignment)
            tail = self.value(atom.tail, assignment)
            return tail in self.kg.neighbors(self.grounding[atom.relation], head, True)

        for atom in conj.atoms:
            if var in atom.terms and bound(atom) and not holds(atom):
                return False
        for atom in conj.negated_atoms:
            if var in atom.terms and bound(atom) and holds(atom):
                return False
        for neg in conj.negations:
            attach = neg.attach_variable(conj)
            if attach == var and self.negated_holds(neg, attach, assignment[var]):
                return False
        return True

    def negated_holds(self, neg: Conjunction, attach: str, value: Key) -> bool:
        key = (id(neg), value)
        if key not in self.negation_memo:
            self.negation_memo[key] = self.satisfiable(neg, {attach: value})
        return self.negation_memo[key]


def _as_formula(pattern: Formula | PatternSpec | str) -> Formula:
    if isinstance(pattern, Formula):
        return pattern
    if isinstance(pattern, PatternSpec):
        return pattern.parsed
    return parse_formula(pattern)


def evaluate(
    pattern: Formula | PatternSpec | str,
    kg: ReferenceKG | Mapping[Key, Mapping[Key, Iterable[Key]]],
    grounding: Mapping[str, Key],
    *,
    types: Mapping[str, Key] | None = None,
    typed_entities: Mapping[Key, set[Key]] | None = None,
) -> set[Key]:
    """The exact answer set of a grounded formula.

    ``grounding`` maps every relation slot to a relation of ``kg`` and every anchor slot
    to an entity. ``types`` (variable -> type; defaults to a PatternSpec's) needs
    ``typed_entities`` (type -> set of entities).
    """
    formula = _as_formula(pattern)
    if not isinstance(kg, ReferenceKG):
        kg = ReferenceKG(kg)
    if types is None:
        types = pattern.types if isinstance(pattern, PatternSpec) else {}
    types = {t: k for t, k in types.items() if not is_anchor(t)}
    run = _Evaluation(kg, grounding, types, typed_entities or {})
    answers: set[Key] = set()
    for branch in formula.branches:
        for value in run.candidate_sets(branch)["f"]:
            if value not in answers and run.satisfiable(branch, {"f": value}):
                answers.add(value)
    return answers


# ---------------------------------------------------------------------------------- SQL


def _literal(value: Key) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"SQL literals are int or str, not {type(value).__name__}")
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def to_sql(
    pattern: Formula | PatternSpec | str,
    grounding: Mapping[str, Key],
    *,
    types: Mapping[str, Key] | None = None,
) -> str:
    """SQL over ``triples(head, relation, tail)`` returning the DISTINCT answers as ``f``.

    Type constraints on variables use a table ``entity_types(entity, type)``.
    """
    formula = _as_formula(pattern)
    if types is None:
        types = pattern.types if isinstance(pattern, PatternSpec) else {}
    types = {t: k for t, k in types.items() if not is_anchor(t)}
    counter = iter(range(1_000_000))

    def conj_sql(conj: Conjunction, outer: dict[str, str]) -> tuple[str, dict[str, str]]:
        columns = dict(outer)
        tables: list[str] = []
        where: list[str] = []
        for atom in conj.atoms:
            alias = f"t{next(counter)}"
            tables.append(f"triples AS {alias}")
            where.append(f"{alias}.relation = {_literal(grounding[atom.relation])}")
            for term, col in ((atom.head, "head"), (atom.tail, "tail")):
                expr = f"{alias}.{col}"
                if is_anchor(term):
                    where.append(f"{expr} = {_literal(grounding[term])}")
                elif term in columns:
                    where.append(f"{expr} = {columns[term]}")
                else:
                    columns[term] = expr
        for var in sorted(conj.positive_variables - outer.keys()):
            if var in types:
                where.append(
                    "EXISTS (SELECT 1 FROM entity_types AS et WHERE "
                    f"et.entity = {columns[var]} AND et.type = {_literal(types[var])})"
                )

        def term_expr(term: str) -> str:
            return _literal(grounding[term]) if is_anchor(term) else columns[term]

        for atom in conj.negated_atoms:
            alias = f"n{next(counter)}"
            where.append(
                f"NOT EXISTS (SELECT 1 FROM triples AS {alias} WHERE "
                f"{alias}.relation = {_literal(grounding[atom.relation])} AND "
                f"{alias}.head = {term_expr(atom.head)} AND {alias}.tail = {term_expr(atom.tail)})"
            )
        for neg in conj.negations:
            shared = {v: c for v, c in columns.items() if v in conj.positive_variables}
            body, _ = conj_sql(neg, shared)
            where.append(f"NOT EXISTS (SELECT 1 {body})")
        return f"FROM {', '.join(tables)} WHERE {' AND '.join(where) or 'TRUE'}", columns

    selects = []
    for branch in formula.branches:
        body, columns = conj_sql(branch, {})
        selects.append(f"SELECT DISTINCT {columns['f']} AS f {body}")
    return "\nUNION\n".join(selects)


def sample_grounding(
    pattern: Formula | PatternSpec | str,
    kg: ReferenceKG,
    rng: random.Random,
    *,
    tries: int = 100,
    negation_bias: float = 0.5,
) -> dict[str, Key] | None:
    """A random grounding likely to have answers (for tests), or None after ``tries``.

    Walks the atoms outward from a random answer ``f`` along random edges, assigning
    relation and anchor slots as it meets them. Negated parts are walked from their
    bound term with probability ``negation_bias`` (so they remove something), else
    grounded at random. ``rng`` is a ``random.Random``.
    """
    formula = _as_formula(pattern)
    relations, heads, tails, entities = kg.catalogue()
    for _ in range(tries):
        g: dict[str, Key] = {}
        ok = True
        for branch in formula.branches:
            if not _walk(branch, {}, g, kg, rng, relations, heads, tails, entities, negation_bias):
                ok = False
                break
        if ok:
            return g
    return None


def _walk(
    conj: Conjunction,
    values: dict[str, Key],
    g: dict[str, Key],
    kg: ReferenceKG,
    rng: random.Random,
    relations: list[Key],
    heads: dict[Key, list[Key]],
    tails: dict[Key, list[Key]],
    entities: list[Key],
    bias: float,
) -> bool:
    values = dict(values)

    def known(t: str) -> Key | None:
        return g.get(t) if is_anchor(t) else values.get(t)

    pending = list(conj.atoms)
    while pending:
        progress = False
        for atom in list(pending):
            h, t = known(atom.head), known(atom.tail)
            if h is None and t is None:
                continue
            pending.remove(atom)
            progress = True
            rel = g.get(atom.relation)
            if h is not None and t is not None:
                if rel is None:
                    options = [r for r, x in kg.incident(h, True) if x == t]
                    if not options:
                        return False
                    g[atom.relation] = rng.choice(options)
                elif t not in kg.neighbors(rel, h, True):
                    return False
                continue
            forward = h is not None
            node = h if forward else t
            if rel is None:
                edges = kg.incident(node, forward)
            else:
                edges = [(rel, x) for x in kg.neighbors(rel, node, forward)]
            if not edges:
                return False
            r, x = rng.choice(edges)
            g[atom.relation] = r
            other = atom.tail if forward else atom.head
            if is_anchor(other):
                g[other] = x
            else:
                values[other] = x
        if not progress:
            # nothing links to a known term (start, or a disconnected positive part): seed
            atom = pending[0]
            rel = g.get(atom.relation, rng.choice(relations))
            if not heads.get(rel):
                return False
            head = rng.choice(heads[rel])
            tail = rng.choice(sorted(kg.neighbors(rel, head, True), key=repr))
            for term, value in ((atom.head, head), (atom.tail, tail)):
                if known(term) is None:
                    (g if is_anchor(term) else values)[term] = value
            g[atom.relation] = rel
            pending.remove(atom)
    for atom in conj.negated_atoms:
        if rng.random() < bias and atom.relation not in g:
            h, t = known(atom.head), known(atom.tail)
            node, forward = (h, True) if h is not None else (t, False)
            other = atom.tail if forward else atom.head
            edges = kg.incident(node, forward)
            if edges and is_anchor(other) and other not in g:
                g[atom.relation], g[other] = rng.choice(edges)
                continue
            if edges and not is_anchor(other):
                g[atom.relation] = rng.choice(edges)[0]
                continue
        g.setdefault(atom.relation, rng.choice(relations))
        for term in atom.terms:
            if is_anchor(term):
                g.setdefault(term, rng.choice(entities))
    for neg in conj.negations:
        attach = neg.attach_variable(conj)
        seed = {attach: values[attach]} if rng.random() < bias else {}
        if not _walk(neg, seed, g, kg, rng, relations, heads, tails, entities, bias):
            for atom, _ in neg.iter_atoms():
                g.setdefault(atom.relation, rng.choice(relations))
                for term in atom.terms:
                    if is_anchor(term):
                        g.setdefault(term, rng.choice(entities))
    return True
