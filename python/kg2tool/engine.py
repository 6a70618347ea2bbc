"""Sampling and executing grounded queries on the native engine, returned as Polars frames.

``sample_queries(kg, "2p", 1000, seed=0)`` draws distinct grounded queries with exact
answers and every intermediate set; ``execute_queries`` recomputes the sets of given
groundings. Arrays come back from C++ without copies and become Arrow list columns
(offsets + values), so no Python object is made per query.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from kg2tool import _core
from kg2tool.errors import Kg2ToolError, PatternError, UnknownNameError
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.patterns import JOIN, PatternSpec, Plan, compile_pattern, get_pattern, parse_spec

REJECT_REASONS: list[str] = list(_core.REJECT_REASONS)


class SamplingError(Kg2ToolError):
    """The sampler could not draw the requested queries within its bounded number of tries."""


def resolve_pattern(pattern: str | PatternSpec | Plan) -> Plan:
    """A compiled plan from a library name, a formula string (with constraints) or a spec."""
    if isinstance(pattern, Plan):
        return pattern
    if isinstance(pattern, PatternSpec):
        return compile_pattern(pattern)
    text = pattern.strip()
    if "(" not in text and "[" not in text:
        return compile_pattern(get_pattern(text))
    return compile_pattern(parse_spec(text))


def _type_id(kg: KnowledgeGraph, type_key: str) -> int:
    keys = kg.type_labels.get_column("key")
    hit = (keys == type_key).arg_true()
    if len(hit) == 0:
        labels = kg.type_labels.get_column("label")
        hit = (labels == type_key).arg_true()
    if len(hit) == 0:
        raise UnknownNameError(f"unknown entity type {type_key!r} in pattern constraints")
    return int(hit[0])


def native_plan(kg: KnowledgeGraph, plan: Plan) -> _core.Plan:
    """The engine's form of a plan: slot constraints resolved to this KG's ids."""

    def ids(keys: list[str | None], lookup: Any) -> np.ndarray:
        return np.array([-1 if k is None else int(lookup([k])[0]) for k in keys], dtype=np.int32)

    type_ids = np.array([_type_id(kg, t) for _, t in plan.type_constraints], dtype=np.int32)
    anchor_types = np.array(
        [-1 if t is None else _type_id(kg, t) for t in plan.anchor_types], dtype=np.int32
    )
    joins = []
    for j in plan.joins:
        atoms = np.concatenate([j.atoms.reshape(-1, 3), j.negated_atoms.reshape(-1, 3)])
        negated = np.r_[np.zeros(len(j.atoms), np.uint8), np.ones(len(j.negated_atoms), np.uint8)]
        joins.append(
            {
                "num_vars": len(j.join_vars),
                "atoms": np.ascontiguousarray(atoms, dtype=np.int32).ravel(),
                "negated": negated,
                "var_order": j.var_order,
                "answer_var": int(j.answer_var),
                "var_types": j.var_types,
                "exclude_vars": j.exclude_vars,
            }
        )
    key = zlib.crc32(f"{plan.name}\x00{plan.formula}".encode())
    return _core.Plan(
        {
            "op_kind": plan.op_kind,
            "op_arg": plan.op_arg,
            "op_dir": plan.op_dir,
            "op_in_offsets": plan.op_in_offsets,
            "op_inputs": plan.op_inputs,
            "num_relation_slots": len(plan.relation_slots),
            "num_anchor_slots": len(plan.anchor_slots),
            "fixed_relations": ids(plan.fixed_relations, kg.relation_ids),
            "fixed_entities": ids(plan.fixed_entities, kg.entity_ids),
            "type_ids": type_ids,
            "anchor_types": anchor_types,
            "joins": joins,
            "key": key,
        }
    )


@dataclass
class QueryBatch:
    """Grounded queries of one pattern: bindings, exact answers and every op's set (columnar)."""

    kg: KnowledgeGraph
    plan: Plan
    relation_ids: np.ndarray  # [n, relation slots] int32
    anchor_ids: np.ndarray  # [n, anchor slots] int32
    set_offsets: np.ndarray  # [n * ops + 1] int64
    set_ids: np.ndarray  # int32
    query_index: np.ndarray  # [n] int64: candidate index each query came from
    rejected: dict[str, int] = field(default_factory=dict)
    candidates: int = 0
    attempts: int = 0
    exhausted: bool = False
    next_candidate: int = 0
    sets_kept: str = "all"  # "answers": only the answer sets are filled, the others empty

    def __len__(self) -> int:
        return int(self.relation_ids.shape[0])

    @property
    def num_ops(self) -> int:
        return self.plan.num_ops

    def set_of(self, i: int, op: int) -> np.ndarray:
        """The sorted entity ids of op ``op``'s set for query ``i`` (a view)."""
        k = i * self.num_ops + op
        return self.set_ids[self.set_offsets[k] : self.set_offsets[k + 1]]

    def answers(self, i: int) -> np.ndarray:
        """Sorted answer entity ids of query ``i``."""
        return self.set_of(i, self.num_ops - 1)

    def _sets_arrow(self) -> pa.Array:
        inner = pa.LargeListArray.from_arrays(pa.array(self.set_offsets), pa.array(self.set_ids))
        outer = np.arange(0, len(self) * self.num_ops + 1, self.num_ops, dtype=np.int64)
        return pa.LargeListArray.from_arrays(pa.array(outer), inner)

    def frame(self) -> pl.DataFrame:
        """Columns: pattern, formula, query_index, relation_ids, anchor_ids, bindings (JSON
        slot -> KG key), answer_ids, answers (sorted KG keys), num_answers, sets (per op;
        empty but for the answers when sampled with ``sets="answers"``)."""
        n, ops = len(self), self.num_ops
        ent_keys = self.kg.entities.get_column("key")
        rel_keys = self.kg.relations.get_column("key")
        ans_off = self.set_offsets[ops - 1 :: ops][:n]
        ans_end = self.set_offsets[ops::ops][:n]
        counts = (ans_end - ans_off).astype(np.int64)
        take = (
            np.repeat(ans_off - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
        ).astype(np.int64)
        ans_ids = self.set_ids[take] if len(take) else np.zeros(0, np.int32)
        ans_offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
        answer_ids = pl.from_arrow(
            pa.LargeListArray.from_arrays(pa.array(ans_offsets), pa.array(ans_ids))
        )
        answers = pl.from_arrow(
            pa.LargeListArray.from_arrays(
                pa.array(ans_offsets), pa.array(ent_keys.gather(ans_ids).to_arrow())
            )
        )
        slot_cols = {}
        for j, slot in enumerate(self.plan.relation_slots):
            slot_cols[slot] = rel_keys.gather(self.relation_ids[:, j])
        for j, slot in enumerate(self.plan.anchor_slots):
            slot_cols[slot] = ent_keys.gather(self.anchor_ids[:, j])
        bindings = (
            pl.DataFrame(slot_cols).select(
                pl.struct(pl.all()).struct.json_encode().alias("bindings")
            )
            if slot_cols
            else pl.DataFrame({"bindings": ["{}"] * n})
        )
        return pl.DataFrame(
            {
                "pattern": pl.Series([self.plan.name or self.plan.formula] * n, dtype=pl.String),
                "formula": pl.Series([self.plan.formula] * n, dtype=pl.String),
                "query_index": self.query_index,
                "relation_ids": _rows_as_lists(self.relation_ids),
                "anchor_ids": _rows_as_lists(self.anchor_ids),
            }
        ).with_columns(
            bindings.get_column("bindings"),
            answer_ids.alias("answer_ids").cast(pl.List(pl.Int32)),
            answers.alias("answers").cast(pl.List(pl.String)),
            pl.Series("num_answers", counts),
            pl.from_arrow(self._sets_arrow()).alias("sets").cast(pl.List(pl.List(pl.Int32))),
        )


def _rows_as_lists(a: np.ndarray) -> pl.Series:
    """An [n, k] int32 matrix as a List(Int32) column, without a Python loop."""
    n, k = a.shape
    offsets = np.arange(0, n * k + 1, k, dtype=np.int64) if k else np.zeros(n + 1, np.int64)
    arr = pa.LargeListArray.from_arrays(
        pa.array(offsets), pa.array(np.ascontiguousarray(a).ravel())
    )
    return pl.from_arrow(arr).cast(pl.List(pl.Int32))


def sample_queries(
    kg: KnowledgeGraph,
    pattern: str | PatternSpec | Plan,
    n: int,
    *,
    seed: int = 0,
    min_answers: int = 1,
    max_answers: int | None = 100,
    max_intermediate: int | None = 100,
    distinct_anchors: bool = True,
    no_backtrack: bool = True,
    nontrivial: bool = True,
    relation_choice: str = "uniform",
    max_tries: int = 8,
    max_candidates: int = 0,
    threads: int = 0,
    strict: bool = True,
    seen: _core.SeenQueries | None = None,
    start_candidate: int = 0,
    sets: str = "all",
) -> QueryBatch:
    """Draw ``n`` distinct grounded queries of ``pattern`` with exact answers.

    ``sets="all"`` returns every op's set; ``sets="answers"`` only the answer sets (the
    other sets are empty in the batch), for callers that need just the groundings and
    answers: the sets are computed and checked either way, but not copied out.

    Query i depends only on (seed, pattern, i): the same seed gives the same queries in the
    same order whatever ``threads`` is. With ``strict``, fewer than ``n`` queries after the
    bounded number of candidates raises :class:`SamplingError` listing rejections by reason.
    ``seen`` and ``start_candidate`` continue an earlier stream (see :class:`QueryStream`).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if sets not in ("all", "answers"):
        raise ValueError(f"sets must be 'all' or 'answers', got {sets!r}")
    if relation_choice not in ("uniform", "degree"):
        raise ValueError(f"relation_choice must be 'uniform' or 'degree', got {relation_choice!r}")
    if min_answers < 0:
        raise ValueError("min_answers must be >= 0")
    if max_answers is not None and max_answers < max(min_answers, 0):
        raise PatternError(
            f"impossible constraints: max_answers {max_answers} < min_answers {min_answers}"
        )
    plan = resolve_pattern(pattern)
    native = native_plan(kg, plan)
    out = _core.sample(
        kg.native,
        native,
        int(n),
        int(seed) & 0xFFFFFFFFFFFFFFFF,
        min_answers=min_answers,
        max_answers=-1 if max_answers is None else max_answers,
        max_intermediate=-1 if max_intermediate is None else max_intermediate,
        distinct_anchors=distinct_anchors,
        no_backtrack=no_backtrack,
        nontrivial=nontrivial,
        degree_weighted=relation_choice == "degree",
        max_tries=max_tries,
        max_candidates=max_candidates,
        threads=threads,
        seen=seen,
        start_candidate=start_candidate,
        answers_only=sets == "answers",
    )
    batch = QueryBatch(
        kg=kg,
        plan=plan,
        relation_ids=out["relation_bindings"],
        anchor_ids=out["anchor_bindings"],
        set_offsets=out["set_offsets"],
        set_ids=out["set_ids"],
        query_index=out["candidate_index"],
        rejected={k: int(v) for k, v in out["rejected"].items()},
        candidates=int(out["candidates"]),
        attempts=int(out["attempts"]),
        exhausted=bool(out["exhausted"]),
        next_candidate=int(out["next_candidate"]),
        sets_kept=sets,
    )
    if strict and len(batch) < n:
        top = sorted(((v, k) for k, v in batch.rejected.items() if v), reverse=True)[:5]
        reasons = ", ".join(f"{k}: {v:,}" for v, k in top) or "none"
        raise SamplingError(
            f"pattern {plan.name or plan.formula!r}: only {len(batch):,} of {n:,} distinct queries "
            f"after {batch.candidates:,} candidates ({batch.attempts:,} tries); rejections: {reasons}. "
            "Loosen the constraints, ask for fewer queries, or use a larger KG."
        )
    return batch


class QueryStream:
    """One pattern's query stream, drawn in chunks: ``take(a)`` then ``take(b)`` gives exactly
    the first ``a + b`` queries of one ``sample_queries(..., a + b)`` call, de-duplicated
    across chunks. This is how shards get their queries without depending on shard size."""

    def __init__(
        self,
        kg: KnowledgeGraph,
        pattern: str | PatternSpec | Plan,
        *,
        seed: int = 0,
        **options: Any,
    ) -> None:
        self.kg = kg
        self.plan = resolve_pattern(pattern)
        self.seed = seed
        self.options = options
        self.seen = _core.SeenQueries()
        self.next_candidate = 0
        self.drawn = 0

    def take(self, n: int, *, strict: bool = True) -> QueryBatch:
        """The next ``n`` distinct queries of the stream."""
        batch = sample_queries(
            self.kg,
            self.plan,
            n,
            seed=self.seed,
            strict=strict,
            seen=self.seen,
            start_candidate=self.next_candidate,
            **self.options,
        )
        self.next_candidate = batch.next_candidate
        self.drawn += len(batch)
        return batch


def execute_queries(
    kg: KnowledgeGraph,
    pattern: str | PatternSpec | Plan,
    relation_ids: np.ndarray,
    anchor_ids: np.ndarray,
    *,
    threads: int = 0,
    query_index: np.ndarray | None = None,
    sets: str = "all",
) -> QueryBatch:
    """Exact sets of every op for given groundings (ids per slot, one row per query);
    ``query_index`` labels the rows (default 0..n-1), e.g. with their sampled indices.

    ``sets="answers"`` copies out only the answer sets (the other sets are empty in the
    batch, as with :func:`sample_queries`): the same answers, without materialising every
    intermediate set in the result."""
    if sets not in ("all", "answers"):
        raise ValueError(f"sets must be 'all' or 'answers', got {sets!r}")
    plan = resolve_pattern(pattern)
    native = native_plan(kg, plan)
    rel = np.ascontiguousarray(relation_ids, dtype=np.int32).reshape(-1, len(plan.relation_slots))
    anc = np.ascontiguousarray(anchor_ids, dtype=np.int32).reshape(-1, len(plan.anchor_slots))
    if rel.shape[0] != anc.shape[0]:
        raise ValueError("relation_ids and anchor_ids must have the same number of rows")
    index = (
        np.arange(rel.shape[0], dtype=np.int64)
        if query_index is None
        else np.ascontiguousarray(query_index, dtype=np.int64)
    )
    if len(index) != rel.shape[0]:
        raise ValueError("query_index must have one entry per grounding")
    offsets, ids = _core.execute(kg.native, native, rel, anc, threads, sets == "answers")
    if sets == "answers" and plan.num_ops > 1:
        # Every query's ops before the answer: empty sets at the answer set's start.
        offsets = np.concatenate([np.repeat(offsets[:-1], plan.num_ops), offsets[-1:]])
    return QueryBatch(kg, plan, rel, anc, offsets, ids, index, sets_kept=sets)


def answer_spans(batch: QueryBatch) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of every query's answer set in ``batch.set_ids``: strided views of
    ``batch.set_offsets`` (no copy), as :func:`kg2tool._core.diff_sets` takes them."""
    ops, n = batch.num_ops, len(batch)
    return batch.set_offsets[ops - 1 :: ops][:n], batch.set_offsets[ops::ops][:n]


def count_matches(
    kg: KnowledgeGraph,
    pattern: str | PatternSpec | Plan,
    anchor_ids: np.ndarray,
    relation_ids: np.ndarray | None = None,
    *,
    limit: int = -1,
    threads: int = 0,
) -> np.ndarray:
    """Number of groundings (all variables and free relation slots) per row of anchors.

    Every conjunction of the pattern must be a join: compile with the matcher by giving a
    cyclic pattern, or pass a tree pattern, which is matched as one join over its atoms.
    Use -1 in ``relation_ids`` / ``anchor_ids`` for a free slot.
    """
    plan = resolve_pattern(pattern)
    if len(plan.formula.split("|")) > 1 or "!" in plan.formula:
        raise PatternError("count_matches takes one conjunction without negation")
    join_plan = _as_join(plan)
    native = native_plan(kg, join_plan)
    anc = np.ascontiguousarray(anchor_ids, dtype=np.int32).reshape(-1, len(plan.anchor_slots))
    if relation_ids is None:
        rel = np.full((anc.shape[0], len(plan.relation_slots)), -1, dtype=np.int32)
    else:
        rel = np.ascontiguousarray(relation_ids, dtype=np.int32).reshape(anc.shape[0], -1)
    return _core.match_count(kg.native, native, 0, rel, anc, limit, threads)


def _as_join(plan: Plan) -> Plan:
    """The same conjunction compiled as a single JOIN op (for counting every grounding)."""
    if len(plan.joins) == 1 and plan.op_kind[-1] == JOIN:
        return plan
    from kg2tool.patterns.compile import Join

    slot = {r: i for i, r in enumerate(plan.relation_slots)}
    anchor = {s: i for i, s in enumerate(plan.anchor_slots)}
    variables = sorted({t for a in plan.atoms for t in a[1:3] if t not in anchor})
    var = {v: i for i, v in enumerate(variables)}

    def term(t: str) -> int:
        return -1 - anchor[t] if t in anchor else var[t]

    atoms = np.array([[slot[a[0]], term(a[1]), term(a[2])] for a in plan.atoms], dtype=np.int32)
    join = Join(
        atoms=atoms,
        atom_ids=np.arange(len(atoms), dtype=np.int32),
        negated_atoms=np.zeros((0, 3), np.int32),
        negated_atom_ids=np.zeros(0, np.int32),
        join_vars=variables,
        var_order=np.arange(len(variables), dtype=np.int32),
        answer_var=var.get("f", 0),
        var_types=np.full(len(variables), -1, np.int32),
        exclude_vars=np.zeros(0, np.int32),
    )
    return Plan(
        name=plan.name,
        formula=plan.formula,
        op_kind=np.array([JOIN], np.int32),
        op_arg=np.array([0], np.int32),
        op_dir=np.array([0], np.int32),
        op_in_offsets=np.array([0, 0], np.int32),
        op_inputs=np.zeros(0, np.int32),
        op_var=["f"],
        op_atom=np.array([-1], np.int32),
        atoms=plan.atoms,
        joins=[join],
        relation_slots=plan.relation_slots,
        anchor_slots=plan.anchor_slots,
        fixed_relations=plan.fixed_relations,
        fixed_entities=plan.fixed_entities,
        anchor_types=plan.anchor_types,
        type_constraints=plan.type_constraints,
    )
