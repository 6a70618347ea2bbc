"""Baselines the engine is measured against: what a user would otherwise write or pick.

- :class:`PySampler`: the plain-Python reference sampler of the engine's algorithm, the
  public BetaE generator's way. Adjacency is a dict of sets per relation (both
  directions); a query is grounded answer-first: pick a random answer entity, walk the
  plan backward along random in-edges (uniform over the entity's relations, then over
  that relation's neighbours), ground a negated branch from a kept entity other than the
  answer; then answers are computed forward by set union (projection), intersection and
  difference, the constraints are checked (distinct anchors, no immediate back-track,
  every intersection/union/negation branch non-trivial, the drawn answer survives) and
  duplicates are rejected by the grounded query. It is the yardstick, not a straw man:
  frozensets shared with the adjacency (no copies for single-entity projections),
  ``set().union(*...)`` for projections, C-level set operators, neighbour tuples
  precomputed for random choice, bound methods hoisted out of the loops.
- :class:`DuckDBExecutor`: the answer sets of given groundings in DuckDB, one batched SQL
  query per pattern over a table of groundings (one CTE per plan op with set semantics:
  joins with ``triples`` for projections, ``INTERSECT``/``UNION``/``EXCEPT``). One query
  per grounding (``kg2tool.testing.reference.to_sql``) would be the unfair way to use DuckDB.
- Graph-library baselines on a single-relation projection: 2-hop path counts per anchor
  with rustworkx and igraph (the engine: ``count_matches`` of ``2p`` with both relations
  fixed), and triangles of the undirected simple projection with igraph (the engine:
  ``count_matches`` of the triangle pattern, 6 ordered groundings per triangle).

Every baseline is also a verifier: ``tests/test_benchmark.py`` checks it computes exactly
the engine's answers.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from kg2tool.patterns import ANCHOR, DIFFERENCE, INTERSECT, PROJECT, UNION, Plan

__all__ = [
    "DuckDBExecutor",
    "PySampler",
    "igraph_triangles",
    "igraph_two_hop_counts",
    "plan_sql",
    "relation_projection",
    "rustworkx_two_hop_counts",
]

_EMPTY: frozenset[int] = frozenset()


class _Reject(Exception):
    """A candidate failed a check; ``args[0]`` is the reason (the engine's names)."""


class PySampler:
    """The engine's sampling algorithm in plain Python over dicts of sets.

    ``heads``, ``relations``, ``tails``: int arrays of the triples (ids as in the
    KnowledgeGraph). Build once (not timed), then :meth:`sample` and :meth:`execute`.
    """

    def __init__(
        self, heads: np.ndarray, relations: np.ndarray, tails: np.ndarray, num_entities: int
    ):
        out: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
        inv: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
        for h, r, t in zip(heads.tolist(), relations.tolist(), tails.tolist(), strict=True):
            out[r][h].add(t)
            inv[r][t].add(h)
        # adj[0][r][h] = tails (forward projection), adj[1][r][t] = heads (inverse)
        self.adj: tuple[dict[int, dict[int, frozenset[int]]], ...] = tuple(
            {r: {x: frozenset(s) for x, s in table.items()} for r, table in side.items()}
            for side in (out, inv)
        )
        # Grounding a forward projection onto t walks an in-edge of t: edges[0][t] lists
        # (relation, heads of t under it); an inverse projection walks an out-edge.
        self.edges: tuple[dict[int, tuple[tuple[int, tuple[int, ...]], ...]], ...] = tuple(
            self._incident(side) for side in (inv, out)
        )
        self.num_entities = int(num_entities)

    @staticmethod
    def _incident(side: dict[int, dict[int, set[int]]]) -> dict[int, tuple]:
        per: dict[int, list[tuple[int, tuple[int, ...]]]] = defaultdict(list)
        for r in sorted(side):
            for x, s in side[r].items():
                per[x].append((r, tuple(sorted(s))))
        return {x: tuple(v) for x, v in per.items()}

    # ------------------------------------------------------------------ execution
    def execute(self, plan: Plan, rel: list[int], anchor: list[int]) -> list[frozenset[int]]:
        """The set of every op of ``plan`` for one grounding (last = answers)."""
        ops = _ops(plan)
        sets: list[Any] = [None] * len(ops)
        self._run(ops, rel, anchor, sets, 0)
        return sets

    def _run(
        self, ops: list[tuple], rel: list[int], anchor: list[int], sets: list, start: int
    ) -> None:
        adj = self.adj
        for i in range(start, len(ops)):
            kind, arg, direction, ins = ops[i]
            if kind == ANCHOR:
                sets[i] = frozenset((anchor[arg],))
            elif kind == PROJECT:
                table = adj[direction].get(rel[arg], {})
                src = sets[ins[0]]
                if len(src) == 1:
                    for x in src:
                        sets[i] = table.get(x, _EMPTY)
                else:
                    get = table.get
                    sets[i] = set().union(*[get(x, _EMPTY) for x in src])
            elif kind == INTERSECT:
                sets[i] = set.intersection(*sorted((set(sets[j]) for j in ins), key=len))
            elif kind == UNION:
                sets[i] = set().union(*[sets[j] for j in ins])
            elif kind == DIFFERENCE:
                sets[i] = sets[ins[0]] - sets[ins[1]]
            else:
                raise ValueError(f"the Python reference handles tree plans only (op kind {kind})")

    def execute_batch(
        self, plan: Plan, relation_ids: np.ndarray, anchor_ids: np.ndarray
    ) -> list[frozenset[int]]:
        """Answer sets of many groundings (rows of ``relation_ids`` / ``anchor_ids``)."""
        ops = _ops(plan)
        sets: list[Any] = [None] * len(ops)
        out = []
        for rel, anc in zip(relation_ids.tolist(), anchor_ids.tolist(), strict=True):
            self._run(ops, rel, anc, sets, 0)
            out.append(sets[-1])
        return out

    # ------------------------------------------------------------------- sampling
    def sample(
        self,
        plan: Plan,
        n: int,
        *,
        seed: int = 0,
        distinct_anchors: bool = True,
        no_backtrack: bool = True,
        nontrivial: bool = True,
        max_attempts: int | None = None,
    ) -> dict[str, Any]:
        """Draw ``n`` distinct verified queries (no answer or intermediate cap).

        Returns ``relation_ids`` [n, k], ``anchor_ids`` [n, m] (int arrays), ``answers``
        (list of sets), ``rejected`` (reason -> count, the engine's reason names),
        ``attempts``.
        """
        ops = _ops(plan)
        nops, last = len(ops), len(ops) - 1
        nrel, nanc = len(plan.relation_slots), len(plan.anchor_slots)
        rng = random.Random(seed)
        rand = rng.random
        edges, adj = self.edges, self.adj
        nent = self.num_entities
        rejected: Counter[str] = Counter()
        seen: set[Any] = set()
        rels_out: list[list[int]] = []
        ancs_out: list[list[int]] = []
        answers_out: list[Any] = []
        diff_ops = [i for i, op in enumerate(ops) if op[0] == DIFFERENCE]
        check_ops = [
            i for i, op in enumerate(ops) if op[0] in (INTERSECT, UNION) and len(op[3]) >= 2
        ]
        limit = max_attempts if max_attempts is not None else 200 * n + 10000
        attempts = 0

        def ground(
            i: int, t: int, avoid: int, rel: list[int], anchor: list[int], sets: list
        ) -> None:
            kind, arg, direction, ins = ops[i]
            if kind == ANCHOR:
                if anchor[arg] >= 0 and anchor[arg] != t:
                    raise _Reject("anchor_clash")
                anchor[arg] = t
            elif kind == PROJECT:
                r = rel[arg]
                if r >= 0:
                    s = adj[1 - direction].get(r, {}).get(t)
                    if not s:
                        raise _Reject("no_edge")
                    s = tuple(s)
                else:
                    inc = edges[direction].get(t)
                    if not inc:
                        raise _Reject("no_edge")
                    r, s = inc[int(rand() * len(inc))]
                    rel[arg] = r
                if no_backtrack and avoid >= 0 and avoid in s:
                    if len(s) == 1:
                        raise _Reject("backtrack")
                    x = avoid
                    while x == avoid:
                        x = s[int(rand() * len(s))]
                else:
                    x = s[int(rand() * len(s))]
                ground(ins[0], x, t, rel, anchor, sets)
            elif kind == INTERSECT or kind == UNION:
                for j in ins:
                    ground(j, t, avoid, rel, anchor, sets)
            elif kind == DIFFERENCE:
                kept, removed = ins
                ground(kept, t, avoid, rel, anchor, sets)
                # ops after `kept` are not grounded yet; ungrounded ones before it give
                # throw-away empty sets, recomputed once the grounding is complete
                self._run(ops[: kept + 1], rel, anchor, sets, 0)
                others = [x for x in sets[kept] if x != t]
                if not others:
                    raise _Reject("nothing_to_negate")
                ground(removed, others[int(rand() * len(others))], -1, rel, anchor, sets)
            else:
                raise ValueError(f"the Python reference handles tree plans only (op kind {kind})")

        while len(answers_out) < n and attempts < limit:
            attempts += 1
            rel = [-1] * nrel
            anchor = [-1] * nanc
            sets: list[Any] = [None] * nops

            t = int(rand() * nent)
            try:
                ground(last, t, -1, rel, anchor, sets)
                if -1 in anchor or -1 in rel:
                    raise _Reject("no_edge")
                if distinct_anchors and len(set(anchor)) < nanc:
                    raise _Reject("repeated_anchor")
                self._run(ops, rel, anchor, sets, 0)
                answers = sets[last]
                if t not in answers:
                    raise _Reject("target_lost")
                if not answers:
                    raise _Reject("too_few_answers")
                if nontrivial:
                    _check_nontrivial(self, ops, rel, anchor, sets, check_ops, diff_ops)
            except _Reject as why:
                rejected[why.args[0]] += 1
                continue
            key = _canonical(ops, rel, anchor, last)
            if key in seen:
                rejected["duplicate"] += 1
                continue
            seen.add(key)
            rels_out.append(rel)
            ancs_out.append(anchor)
            answers_out.append(answers)
        return {
            "relation_ids": np.array(rels_out, dtype=np.int32).reshape(-1, nrel),
            "anchor_ids": np.array(ancs_out, dtype=np.int32).reshape(-1, nanc),
            "answers": answers_out,
            "rejected": dict(rejected),
            "attempts": attempts,
        }


def _check_nontrivial(
    sampler: PySampler,
    ops: list[tuple],
    rel: list[int],
    anchor: list[int],
    sets: list,
    check_ops: list[int],
    diff_ops: list[int],
) -> None:
    """Every intersection branch removes something, every union branch adds something,
    every negation removes at least one answer (raise the reason otherwise)."""
    for i in check_ops:
        kind, _, _, ins = ops[i]
        if kind == INTERSECT:
            size = len(sets[i])
            for j in ins:
                rest = [sets[k] for k in ins if k != j]
                if len(rest[0].intersection(*rest[1:])) <= size:
                    raise _Reject("trivial_intersection")
        else:
            for j in ins:
                if not sets[j].difference(*[sets[k] for k in ins if k != j]):
                    raise _Reject("trivial_union")
    last = len(ops) - 1
    for d in diff_ops:
        alt = list(sets)
        alt[d] = sets[ops[d][3][0]]
        sampler._run(ops, rel, anchor, alt, d + 1)
        if alt[last] == sets[last]:
            raise _Reject("trivial_negation")


def _canonical(ops: list[tuple], rel: list[int], anchor: list[int], i: int) -> Any:
    """The grounded query as a value, equal for branch orders of commutative ops."""
    kind, arg, direction, ins = ops[i]
    if kind == ANCHOR:
        return (0, anchor[arg])
    if kind == PROJECT:
        return (1, rel[arg], direction, _canonical(ops, rel, anchor, ins[0]))
    if kind == DIFFERENCE:
        return (4, _canonical(ops, rel, anchor, ins[0]), _canonical(ops, rel, anchor, ins[1]))
    return (kind, frozenset(_canonical(ops, rel, anchor, j) for j in ins))


def _ops(plan: Plan) -> list[tuple[int, int, int, tuple[int, ...]]]:
    """(kind, arg, direction, inputs) per op of a compiled plan, as plain Python values."""
    off = plan.op_in_offsets.tolist()
    inputs = plan.op_inputs.tolist()
    return [
        (int(k), int(a), int(d), tuple(inputs[off[i] : off[i + 1]]))
        for i, (k, a, d) in enumerate(zip(plan.op_kind, plan.op_arg, plan.op_dir, strict=True))
    ]


# ---------------------------------------------------------------------------- DuckDB


def plan_sql(plan: Plan) -> str:
    """One SQL query computing ``(qid, x)`` answer rows of every grounding in table ``q``.

    ``q(qid, r0.., s0..)`` holds one grounding per row (relation and anchor ids per slot);
    ``triples(head, relation, tail)`` the KG. Each op is a CTE ``o{i}(qid, x)`` of distinct
    rows: ANCHOR reads ``q``, PROJECT joins ``triples`` on the slot's relation, INTERSECT /
    UNION / EXCEPT are SQL's set operators (set semantics, as the engine's).
    """
    ctes = []
    for i, (kind, arg, direction, ins) in enumerate(_ops(plan)):
        if kind == ANCHOR:
            body = f"SELECT qid, s{arg} AS x FROM q"
        elif kind == PROJECT:
            src, dst = ("head", "tail") if direction == 0 else ("tail", "head")
            body = (
                f"SELECT DISTINCT i.qid, t.{dst} AS x FROM o{ins[0]} AS i JOIN q ON q.qid = i.qid "
                f"JOIN triples AS t ON t.relation = q.r{arg} AND t.{src} = i.x"
            )
        elif kind in (INTERSECT, UNION):
            word = " INTERSECT " if kind == INTERSECT else " UNION "
            body = word.join(f"SELECT qid, x FROM o{j}" for j in ins)
        elif kind == DIFFERENCE:
            body = f"SELECT qid, x FROM o{ins[0]} EXCEPT SELECT qid, x FROM o{ins[1]}"
        else:
            raise ValueError(f"plan_sql handles tree plans only (op kind {kind})")
        ctes.append(f"o{i} AS ({body})")
    return "WITH " + ",\n".join(ctes) + f"\nSELECT qid, x FROM o{len(ctes) - 1}"


class DuckDBExecutor:
    """Answer sets of given groundings in DuckDB (in-memory), one query per batch."""

    def __init__(
        self, heads: np.ndarray, relations: np.ndarray, tails: np.ndarray, *, threads: int = 1
    ):
        import duckdb
        import pyarrow as pa

        self.con = duckdb.connect()
        self.con.execute(f"SET threads = {int(threads)}")
        triples = pa.table(
            {
                "head": np.asarray(heads, np.int32),
                "relation": np.asarray(relations, np.int32),
                "tail": np.asarray(tails, np.int32),
            }
        )
        self.con.register("triples_arrow", triples)
        self.con.execute(
            "CREATE TABLE triples AS SELECT * FROM triples_arrow ORDER BY relation, head"
        )
        self.con.unregister("triples_arrow")

    def set_threads(self, threads: int) -> None:
        self.con.execute(f"SET threads = {int(threads)}")

    def answers(
        self, plan: Plan, relation_ids: np.ndarray, anchor_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(qid, answer id) rows of every grounding, unordered (as DuckDB returns them)."""
        import pyarrow as pa

        rel = np.asarray(relation_ids, np.int32).reshape(len(relation_ids), -1)
        anc = np.asarray(anchor_ids, np.int32).reshape(len(anchor_ids), -1)
        cols: dict[str, Any] = {"qid": np.arange(len(rel), dtype=np.int32)}
        cols.update({f"r{j}": rel[:, j] for j in range(rel.shape[1])})
        cols.update({f"s{j}": anc[:, j] for j in range(anc.shape[1])})
        self.con.register("q", pa.table(cols))
        try:
            got = self.con.execute(plan_sql(plan)).fetchnumpy()
        finally:
            self.con.unregister("q")
        return np.asarray(got["qid"]), np.asarray(got["x"])

    def answer_sets(
        self, plan: Plan, relation_ids: np.ndarray, anchor_ids: np.ndarray
    ) -> list[set[int]]:
        """Answer set per grounding (for verification)."""
        qid, x = self.answers(plan, relation_ids, anchor_ids)
        out: list[set[int]] = [set() for _ in range(len(relation_ids))]
        for q, v in zip(qid.tolist(), x.tolist(), strict=True):
            out[q].add(v)
        return out


# ------------------------------------------------------------------ graph libraries


def relation_projection(
    heads: np.ndarray, relations: np.ndarray, tails: np.ndarray, relation: int
) -> tuple[np.ndarray, np.ndarray]:
    """(heads, tails) of one relation's edges: the single-relation digraph."""
    keep = np.asarray(relations) == relation
    return np.asarray(heads)[keep], np.asarray(tails)[keep]


def rustworkx_two_hop_counts(
    num_entities: int, heads: np.ndarray, tails: np.ndarray, anchors: np.ndarray
) -> tuple[np.ndarray, float]:
    """2-hop path counts from each anchor in a rustworkx digraph; (counts, seconds to count)."""
    import time

    import rustworkx as rx

    g = rx.PyDiGraph(multigraph=False)
    g.add_nodes_from(range(num_entities))
    g.add_edges_from_no_data(list(zip(heads.tolist(), tails.tolist(), strict=True)))
    t0 = time.perf_counter()
    out_degree = g.out_degree
    counts = [sum(out_degree(v) for v in g.successor_indices(s)) for s in anchors.tolist()]
    return np.array(counts, dtype=np.int64), time.perf_counter() - t0


def igraph_two_hop_counts(
    num_entities: int, heads: np.ndarray, tails: np.ndarray, anchors: np.ndarray
) -> tuple[np.ndarray, float]:
    """2-hop path counts from each anchor with igraph; (counts, seconds to count)."""
    import time

    import igraph as ig

    g = ig.Graph(
        n=num_entities, edges=list(zip(heads.tolist(), tails.tolist(), strict=True)), directed=True
    )
    t0 = time.perf_counter()
    succ = g.neighborhood(anchors.tolist(), order=1, mode="out", mindist=1)
    outdeg = g.outdegree()
    counts = [sum(outdeg[v] for v in vs) for vs in succ]
    return np.array(counts, dtype=np.int64), time.perf_counter() - t0


def igraph_triangles(num_entities: int, heads: np.ndarray, tails: np.ndarray) -> tuple[int, float]:
    """Triangles of the undirected simple graph of the given edges; (count, seconds)."""
    import time

    import igraph as ig

    g = ig.Graph(
        n=num_entities, edges=list(zip(heads.tolist(), tails.tolist(), strict=True)), directed=False
    )
    g.simplify()
    t0 = time.perf_counter()
    count = len(g.list_triangles())
    return count, time.perf_counter() - t0
