"""Compile a validated pattern into the :class:`Plan` the native engine executes.

Each conjunction becomes the set of values of its *root* (``f``, or the attach variable
of a negation):

- **Tree-shaped** (:func:`~kg2tool.patterns.analysis.needs_join` is False): a set-operator
  plan rooted at the root. Every atom is oriented toward the root: ``r(x,y)`` with ``y``
  nearer the root is ``PROJECT`` forward (head -> tail) from ``x``'s set; with ``x`` nearer,
  ``PROJECT`` inverse from ``y``'s set. A term with several incoming atoms is an
  ``INTERSECT``. An anchor is an ``ANCHOR`` op (one per anchor slot in the whole plan,
  shared by its consumers). A negated atom ``!r(s2,v)`` and a negated conjunction
  ``!( ... )`` attached at ``v`` become ``DIFFERENCE(kept, removed)`` at ``v``, the removed
  set computed by its own sub-plan from its own anchors (never a complement). A type
  constraint on a variable is a ``TYPE_FILTER`` after the variable's set.
- **Otherwise** a ``JOIN`` op (see :class:`Join`): cycles in the positive part (through
  anchors too, by default), variable leaves such as ``r2(e1,f)`` in 2il, or negated atoms
  between two variables.
- A union is a ``UNION`` of the branch roots.

Two readings of negation, and what the compiler does with each:

- ``r3(s2,f)&!(r1(s1,e1)&r2(e1,f))`` (BetaE pni): f is in ``r3(s2)`` and *no* e1 at all
  links s1 to f. Compiled as ``DIFFERENCE(r3(s2), r2(r1(s1)))``: set semantics.
- ``r1(s1,e1)&!r2(e1,f)&r3(s2,f)`` (FIT's pni, library ``pni_fit``): f is in ``r3(s2)`` and
  *some* e1 in ``r1(s1)`` is not r2-linked to f. The two differ whenever ``r1(s1)`` has
  several members: f survives the FIT reading if one of them misses the edge, the BetaE
  reading only if all of them do. A set difference cannot express the existential reading
  (the negated atom is a constraint between two variables), so the compiler emits a JOIN
  whose ``negated_atoms`` the matcher checks once both terms are bound: the existential
  reading, exactly as the formula says. It is never silently turned into pni.

Anchor types are not in the op list (the sampler grounds anchors of the right type); they
are in ``anchor_types`` and ``type_constraints``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from kg2tool.arrays import list_matrix, row_counts, row_unique
from kg2tool.errors import PatternError
from kg2tool.patterns.analysis import needs_join, query_graph
from kg2tool.patterns.syntax import Atom, Conjunction, Formula, PatternSpec, is_anchor, parse_spec

__all__ = [
    "ANCHOR",
    "DIFFERENCE",
    "INTERSECT",
    "JOIN",
    "JOIN_CLOSE",
    "JOIN_NEG",
    "JOIN_TREE",
    "MAX_JOIN_CALLS",
    "OP_NAMES",
    "PROJECT",
    "TYPE_FILTER",
    "UNION",
    "Join",
    "Plan",
    "compile_pattern",
    "join_call_counts",
    "join_sources",
    "join_steps",
]

ANCHOR, PROJECT, INTERSECT, UNION, DIFFERENCE, JOIN, TYPE_FILTER = range(7)
OP_NAMES = ("ANCHOR", "PROJECT", "INTERSECT", "UNION", "DIFFERENCE", "JOIN", "TYPE_FILTER")
# Roles of a JOIN sub-step (join_steps): the tree atom that gives a variable its candidates,
# a closing atom checked once both terms are bound, a negated atom whose link rejects a binding.
JOIN_TREE, JOIN_CLOSE, JOIN_NEG = 0, 1, 2
# Default cap on the calls a sample's JOIN ops may need (larger queries are skipped).
MAX_JOIN_CALLS = 40


@dataclass
class Join:
    """A conjunction evaluated by backtracking; the JOIN op outputs the answer_var's values.

    - ``atoms`` int32 [k,3]: (relation slot, head term, tail term); term >= 0 indexes
      ``join_vars``, term < 0 is anchor slot ``-1 - term``. ``atom_ids`` [k]: the formula
      atom (index into ``Plan.atoms``) of each row.
    - ``negated_atoms`` int32 [m,3], same encoding, ``negated_atom_ids`` [m]: a binding is
      rejected if one of these edges exists (checked once both terms are bound).
    - ``var_order`` int32: every variable shares a positive atom with an anchor or an
      earlier variable. ``answer_var``: index into ``join_vars``.
    - ``var_types`` int32 [len(join_vars)]: index into ``Plan.type_constraints`` or -1.
    - ``exclude_vars`` int32 [len(inputs of the JOIN op)]: input set j holds values that
      variable ``exclude_vars[j]`` must not take (a negated conjunction attached there).
    """

    atoms: np.ndarray
    atom_ids: np.ndarray
    negated_atoms: np.ndarray
    negated_atom_ids: np.ndarray
    join_vars: list[str]
    var_order: np.ndarray
    answer_var: int
    var_types: np.ndarray
    exclude_vars: np.ndarray


@dataclass
class Plan:
    """Set operations in topological order (last op = answer), as CONTRACTS.md describes.

    Per op: ``op_kind``, ``op_arg``, ``op_dir``, ``op_in_offsets``/``op_inputs``, ``op_var``
    (the term whose set it is, or "" for an intermediate; the last op of a term is its
    final set), ``op_atom`` (PROJECT: index into ``atoms``, else -1). ``atoms`` lists
    every atom of the formula as (relation slot, head, tail, negated) in textual order.
    ``formula`` is the spec's formula text as written.
    """

    name: str
    formula: str
    op_kind: np.ndarray
    op_arg: np.ndarray
    op_dir: np.ndarray
    op_in_offsets: np.ndarray
    op_inputs: np.ndarray
    op_var: list[str]
    op_atom: np.ndarray
    atoms: list[tuple[str, str, str, bool]]
    joins: list[Join]
    relation_slots: list[str]
    anchor_slots: list[str]
    fixed_relations: list[str | None]
    fixed_entities: list[str | None]
    anchor_types: list[str | None]
    type_constraints: list[tuple[str, str]] = field(default_factory=list)

    @property
    def num_ops(self) -> int:
        """Number of ops."""
        return len(self.op_kind)

    def inputs(self, i: int) -> list[int]:
        """Input op indices of op ``i``."""
        return self.op_inputs[self.op_in_offsets[i] : self.op_in_offsets[i + 1]].tolist()

    def describe(self) -> str:
        """A readable listing of the ops, for debugging."""
        lines = [f"plan {self.name}: {self.formula}"]
        for i in range(self.num_ops):
            kind = int(self.op_kind[i])
            arg = int(self.op_arg[i])
            text = OP_NAMES[kind]
            if kind == ANCHOR:
                text += f" {self.anchor_slots[arg]}"
            elif kind == PROJECT:
                atom = self.atoms[int(self.op_atom[i])]
                way = "inverse" if self.op_dir[i] else "forward"
                text += f" {self.relation_slots[arg]} {way} (atom {atom[0]}({atom[1]},{atom[2]}))"
            elif kind == TYPE_FILTER:
                text += f" {self.type_constraints[arg][1]}"
            elif kind == JOIN:
                join = self.joins[arg]
                rows = [self._join_atom(join, row) for row in join.atoms]
                rows += ["!" + self._join_atom(join, row) for row in join.negated_atoms]
                text += f" #{arg} [{' & '.join(rows)}] -> {join.join_vars[join.answer_var]}"
            ins = self.inputs(i)
            if ins:
                text += f" <- {ins}"
            if self.op_var[i]:
                text += f"   = {self.op_var[i]}"
            lines.append(f"  {i:3d} {text}")
        return "\n".join(lines)

    def _join_atom(self, join: Join, row: np.ndarray) -> str:
        def term(t: int) -> str:
            return join.join_vars[t] if t >= 0 else self.anchor_slots[-1 - t]

        return f"{self.relation_slots[int(row[0])]}({term(int(row[1]))},{term(int(row[2]))})"


class _Builder:
    def __init__(self, spec: PatternSpec, join_anchor_cycles: bool) -> None:
        self.spec = spec
        self.formula: Formula = spec.parsed
        self.join_anchor_cycles = join_anchor_cycles
        self.rel_index = {r: i for i, r in enumerate(self.formula.relation_slots)}
        self.anchor_index = {s: i for i, s in enumerate(self.formula.anchor_slots)}
        self.type_constraints = sorted(spec.types.items())
        self.type_index = {t: i for i, (t, _) in enumerate(self.type_constraints)}
        self.atom_index: dict[int, int] = {}
        self.atoms: list[tuple[str, str, str, bool]] = []
        for atom, negated in sorted(self.formula.iter_atoms(), key=lambda x: x[0].pos):
            self.atom_index[id(atom)] = len(self.atoms)
            self.atoms.append((atom.relation, atom.head, atom.tail, negated))
        self.kind: list[int] = []
        self.arg: list[int] = []
        self.dir: list[int] = []
        self.ins: list[list[int]] = []
        self.var: list[str] = []
        self.op_atom: list[int] = []
        self.anchor_ops: dict[str, int] = {}
        self.joins: list[Join] = []

    def op(
        self,
        kind: int,
        arg: int = -1,
        inputs: tuple[int, ...] | list[int] = (),
        *,
        direction: int = 0,
        var: str = "",
        atom: Atom | None = None,
    ) -> int:
        self.kind.append(kind)
        self.arg.append(arg)
        self.dir.append(direction)
        self.ins.append(list(inputs))
        self.var.append(var)
        self.op_atom.append(-1 if atom is None else self.atom_index[id(atom)])
        return len(self.kind) - 1

    def anchor(self, slot: str) -> int:
        if slot not in self.anchor_ops:
            self.anchor_ops[slot] = self.op(ANCHOR, self.anchor_index[slot], var=slot)
        return self.anchor_ops[slot]

    def project(self, source: int, atom: Atom, toward: str) -> int:
        direction = 0 if atom.tail == toward else 1
        return self.op(
            PROJECT, self.rel_index[atom.relation], (source,), direction=direction, atom=atom
        )

    def conj(self, conj: Conjunction, root: str) -> int:
        if needs_join(conj, root, join_anchor_cycles=self.join_anchor_cycles):
            return self.join(conj, root)
        return self.tree(conj, root)

    def tree(self, conj: Conjunction, root: str) -> int:
        graph = query_graph(conj, split_anchors=not self.join_anchor_cycles)
        node_of = {graph[n]: n for n in graph.node_indices()}

        def build(node: int, parent: int) -> int:
            name = graph[node]
            term = name.split("#")[0]
            inputs: list[int] = []
            if is_anchor(term):
                inputs.append(self.anchor(term))
            edges = sorted(
                graph.incident_edges(node),
                key=lambda e: min(a.pos for a in graph.get_edge_data_by_index(e)),
            )
            for edge_id in edges:
                u, v = graph.get_edge_endpoints_by_index(edge_id)
                other = v if u == node else u
                if other == parent:
                    continue
                child = build(other, node)
                for atom in graph.get_edge_data_by_index(edge_id):
                    inputs.append(self.project(child, atom, toward=term))
            out = inputs[0] if len(inputs) == 1 else self.op(INTERSECT, -1, inputs)
            if is_anchor(term):
                return out
            for atom in conj.negated_atoms:
                if term in atom.terms:
                    other_term = atom.tail if atom.head == term else atom.head
                    removed = self.project(self.anchor(other_term), atom, toward=term)
                    out = self.op(DIFFERENCE, -1, (out, removed))
            for neg in conj.negations:
                if neg.attach_variable(conj) == term:
                    out = self.op(DIFFERENCE, -1, (out, self.conj(neg, term)))
            if term in self.type_index:
                out = self.op(TYPE_FILTER, self.type_index[term], (out,))
            self.var[out] = term
            return out

        return build(node_of[root], -1)

    def join(self, conj: Conjunction, root: str) -> int:
        variables = sorted(conj.positive_variables)
        order: list[str] = []
        bound: set[str] = set()
        while len(order) < len(variables):
            best: tuple[int, int, str] | None = None
            for var in variables:
                if var in bound:
                    continue
                links = sum(
                    1
                    for a in conj.atoms
                    if var in a.terms
                    and any(is_anchor(t) or t in bound for t in a.terms if t != var)
                )
                if links:
                    key = (-links, 0 if var == root else 1, var)
                    best = key if best is None or key < best else best
            if best is None:  # pragma: no cover - excluded by validation (anchor per component)
                raise PatternError(f"cannot order the variables of {conj} for a join")
            order.append(best[2])
            bound.add(best[2])
        var_index = {v: i for i, v in enumerate(variables)}

        def term(t: str) -> int:
            return -1 - self.anchor_index[t] if is_anchor(t) else var_index[t]

        def rows(atoms: tuple[Atom, ...]) -> tuple[np.ndarray, np.ndarray]:
            table = np.array(
                [[self.rel_index[a.relation], term(a.head), term(a.tail)] for a in atoms],
                dtype=np.int32,
            ).reshape(-1, 3)
            ids = np.array([self.atom_index[id(a)] for a in atoms], dtype=np.int32)
            return table, ids

        inputs: list[int] = []
        exclude: list[int] = []
        at_root: list[Conjunction] = []
        for neg in conj.negations:
            attach = neg.attach_variable(conj)
            if attach == root:
                at_root.append(neg)
            else:
                inputs.append(self.conj(neg, attach))
                exclude.append(var_index[attach])
        atoms, atom_ids = rows(conj.atoms)
        negated, negated_ids = rows(conj.negated_atoms)
        self.joins.append(
            Join(
                atoms=atoms,
                atom_ids=atom_ids,
                negated_atoms=negated,
                negated_atom_ids=negated_ids,
                join_vars=variables,
                var_order=np.array([var_index[v] for v in order], dtype=np.int32),
                answer_var=var_index[root],
                var_types=np.array([self.type_index.get(v, -1) for v in variables], dtype=np.int32),
                exclude_vars=np.array(exclude, dtype=np.int32),
            )
        )
        out = self.op(JOIN, len(self.joins) - 1, inputs, var=root)
        for neg in at_root:
            out = self.op(DIFFERENCE, -1, (out, self.conj(neg, root)), var=root)
        return out

    def plan(self) -> Plan:
        roots = [self.conj(branch, "f") for branch in self.formula.branches]
        if len(roots) > 1:
            self.op(UNION, -1, roots, var="f")
        offsets = np.zeros(len(self.ins) + 1, dtype=np.int32)
        offsets[1:] = np.cumsum([len(i) for i in self.ins])
        flat = [x for ins in self.ins for x in ins]
        spec = self.spec
        return Plan(
            name=spec.name,
            formula=spec.formula,
            op_kind=np.array(self.kind, dtype=np.int32),
            op_arg=np.array(self.arg, dtype=np.int32),
            op_dir=np.array(self.dir, dtype=np.int32),
            op_in_offsets=offsets,
            op_inputs=np.array(flat, dtype=np.int32),
            op_var=list(self.var),
            op_atom=np.array(self.op_atom, dtype=np.int32),
            atoms=self.atoms,
            joins=self.joins,
            relation_slots=list(self.formula.relation_slots),
            anchor_slots=list(self.formula.anchor_slots),
            fixed_relations=[spec.fixed_relations.get(r) for r in self.formula.relation_slots],
            fixed_entities=[spec.fixed_entities.get(s) for s in self.formula.anchor_slots],
            anchor_types=[spec.types.get(s) for s in self.formula.anchor_slots],
            type_constraints=list(self.type_constraints),
        )


def compile_pattern(pattern: PatternSpec | str, *, join_anchor_cycles: bool = True) -> Plan:
    """Compile a spec (or a spec string / library name) to a Plan.

    ``join_anchor_cycles=False`` compiles cycles that pass through an anchor (triangle,
    square) to set operations instead of a JOIN: exact once anchors are grounded, and
    faster, but an anchor slot then feeds several branches the sampler must reconcile.
    """
    spec = pattern if isinstance(pattern, PatternSpec) else parse_spec(pattern)
    return _Builder(spec, join_anchor_cycles).plan()


def join_steps(plan: Plan, k: int) -> list[tuple[int, int, int, int, int]]:
    """Sub-steps of JOIN op ``k``: (role, relation slot, direction, source term, target term).

    Terms as in :class:`Join` (>= 0 a join variable, < 0 anchor slot -1-t). One tree atom
    per variable in ``var_order`` (the first atom linking it to an anchor or an earlier
    variable), then the other atoms, then the negated ones; a check is called from the
    anchor it touches, else from its head (direction 0 forward: head -> tails).
    """
    join = plan.joins[int(plan.op_arg[k])]
    atoms = np.asarray(join.atoms).reshape(-1, 3)
    bound: set[int] = set()
    used: set[int] = set()
    out: list[tuple[int, int, int, int, int]] = []
    for v in (int(x) for x in join.var_order):
        for i, (slot, h, t) in enumerate(atoms.tolist()):
            if i in used or v not in (h, t):
                continue
            other = t if h == v else h
            if other < 0 or other in bound:
                used.add(i)
                out.append((JOIN_TREE, slot, 0 if t == v else 1, other, v))
                break
        bound.add(v)
    negated = np.asarray(join.negated_atoms).reshape(-1, 3)
    for role, rows in ((JOIN_CLOSE, atoms), (JOIN_NEG, negated)):
        for i, (slot, h, t) in enumerate(rows.tolist()):
            if role == JOIN_CLOSE and i in used:
                continue
            if t < 0 <= h:
                out.append((role, slot, 1, t, h))
            else:
                out.append((role, slot, 0, h, t))
    return out


def join_sources(
    plan: Plan, k: int, kg: Any, rel_ids: np.ndarray, anc_ids: np.ndarray
) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Where the calls of JOIN op ``k`` start, for every query row (``rel_ids``/``anc_ids``:
    [rows, slots] ids): per sub-step of :func:`join_steps`, (row, source value) sorted by
    (row, value); and per variable its candidates (row, value), the values its tree atom
    reaches from its source term."""
    n = len(rel_ids)
    cand: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    sources = []
    for role, slot, d, src, dst in join_steps(plan, k):
        if src < 0:
            row, ent = np.arange(n, dtype=np.int64), anc_ids[:, -1 - src].astype(np.int64)
        else:
            row, ent = cand[src]
        sources.append((row, ent))
        if role == JOIN_TREE:
            rel = rel_ids[row, slot]
            off, ids = kg.neighbors(ent.astype(np.int32), rel.astype(np.int32), inverse=bool(d))
            rows_out = np.repeat(row, np.diff(np.asarray(off, np.int64)))
            cand[dst] = row_unique(rows_out, np.asarray(ids, np.int64))
    return sources, cand


def join_call_counts(plan: Plan, queries: pl.DataFrame, kg: Any) -> np.ndarray:
    """Per query row, the number of calls its JOIN ops need (0 for plans without JOIN): one
    per source value of every sub-step (:func:`join_sources`)."""
    n = queries.height
    total = np.zeros(n, np.int64)
    if JOIN not in {int(x) for x in plan.op_kind} or n == 0:
        return total
    rel_ids = list_matrix(queries["relation_ids"], len(plan.relation_slots))
    anc_ids = list_matrix(queries["anchor_ids"], len(plan.anchor_slots))
    for k in range(plan.num_ops):
        if int(plan.op_kind[k]) == JOIN:
            for row, _ in join_sources(plan, k, kg, rel_ids, anc_ids)[0]:
                total += row_counts(row, n)
    return total
