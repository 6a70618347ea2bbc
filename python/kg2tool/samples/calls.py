"""Solution paths from executed plans: the call table of every sample, built per op kind.

A trajectory follows the plan op by op. Every ``PROJECT`` op makes one tool call per entity of
its input set (in the runtime's (label, key) order), through the API of its relation slot and
direction; the observation is the runtime's JSON output (a sorted list of display names, which
a later call accepts back exactly). Set operations (and the union of several calls of one op)
are explained in the thought text of the next call, or in the final answer, which lists every
answer by display name. With ``set_ops="tools"`` each ``INTERSECT``/``UNION``/``DIFFERENCE``
op is instead a real call of ``get_intersection_of`` / ``get_union_of`` / ``get_negation_of``
(``{"first": [...], "second": [...]}``, names in result order; an op of r inputs is r-1
chained calls, each one's result the next one's ``first``), replayed like relation calls.

``JOIN`` ops (cyclic conjunctions, variable leaves, negated atoms between variables) follow a
spanning tree of the query graph from the anchors (:func:`kg2tool.patterns.join_steps`): each
variable, in the plan's ``var_order``, gets its candidates from one *tree atom* (one call per
candidate of the term it hangs from); every other atom (*closing*) is then checked by calls
from its head's candidates (or from the anchor it touches), whose observations show which
links exist, and every negated atom likewise (an existing link rejects the binding). The
answers are the answer-variable values of the bindings that satisfy every checked link, which
the final thought states with the candidates that drop out. JOIN ops with exclusion inputs (a
negated conjunction attached to a non-answer variable), type constraints, or an atom between
two anchors, and ``TYPE_FILTER`` ops are not turned into trajectories:
:class:`UnsupportedPlanError` says so and the dataset builder skips those patterns.

``call_style="batched"`` (the runtime's catalogue must have the list APIs,
:meth:`kg2tool.tools.catalog.ApiCatalog.with_list_apis`): every ``PROJECT`` op is ONE call of its
relation's list API, ``get_x_of_y_batch({"ys": [the whole input set, in result order]})``,
whose observation is the union of the neighbours, i.e. exactly the op's set (the next call's
list argument, or a set operation's input); an op with an empty input set has no call, as in
the single style. Set operations are unchanged (thoughts, or set-operation calls with
``set_ops="tools"``). ``JOIN`` ops keep one single-entity call per candidate: their checks need
to see which candidate is linked to which, and a union observation does not say it. So a
sample has one call per projection op with a non-empty input, plus its set-operation calls
(tools mode) and its JOIN calls. A list call's grounding is the triples of every listed
entity. ``call_style="single"`` (the default) is the one-call-per-entity form above.

The structure (which call, in which order, which explanation where) is a :class:`CallTables`
of numpy columns built here op kind by op kind; :mod:`kg2tool.samples.render` writes its
texts, :mod:`kg2tool.samples.provenance` its grounding and error recovery, and
:mod:`kg2tool.samples.replay` verifies the result.

Frames: ``steps`` has one row per call (``sid``, ``step``, ``op``, ``kind`` "call" | "error",
``api``, ``param``, ``argument``, ``arguments`` (JSON object text), ``observation``,
``thought``, ``sub`` (JOIN sub-step, else -1), ``from_anchor``; set-operation calls have null
``param``/``argument``, list calls their list parameter and a null ``argument``); ``samples``
one row per sample (``sid``, ``final_text``, ``answer_names``, ``num_calls``, ``trace``,
``grounding``, ``empty``, ``recovery``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from kg2tool.arrays import (
    by_rank,
    list_matrix,
    ranges,
    row_counts,
    sorted_lists,
    sorted_unique,
    unique_inverse,
)
from kg2tool.errors import Kg2ToolError
from kg2tool.patterns import (
    ANCHOR,
    DIFFERENCE,
    INTERSECT,
    JOIN,
    JOIN_TREE,
    PROJECT,
    UNION,
    Plan,
    join_sources,
    join_steps,
)
from kg2tool.tools.runtime import ToolRuntime

__all__ = [
    "CALL_STYLES",
    "SET_OPS_MODES",
    "SET_OP_API",
    "SUPPORTED_OPS",
    "CallTables",
    "Executed",
    "NameTables",
    "OpSets",
    "Trajectories",
    "UnsupportedPlanError",
    "call_tables",
    "check_plan",
    "execute_calls",
    "name_tables",
    "neighbor_lists",
]

SUPPORTED_OPS = (ANCHOR, PROJECT, INTERSECT, UNION, DIFFERENCE, JOIN)
SET_OPS_MODES = ("thought", "tools")
CALL_STYLES = ("single", "batched")
# The set-operation API (its ``operation``) that makes a set op a call in set_ops="tools".
SET_OP_API = {INTERSECT: "intersection", UNION: "union", DIFFERENCE: "difference"}
# Explanation kinds (what a thought explains): one per op kind; also the final answer's reason.
EXPL_PROJECT, EXPL_INTERSECT, EXPL_UNION, EXPL_DIFFERENCE, EXPL_JOIN = range(5)
EXPL_OF_OP = {
    PROJECT: EXPL_PROJECT,
    INTERSECT: EXPL_INTERSECT,
    UNION: EXPL_UNION,
    DIFFERENCE: EXPL_DIFFERENCE,
    JOIN: EXPL_JOIN,
}


class UnsupportedPlanError(Kg2ToolError):
    """The plan has an op trajectories cannot express (TYPE_FILTER, or a JOIN with exclusion
    inputs, type constraints or an atom between two anchors)."""


def check_plan(plan: Plan) -> None:
    """Raise UnsupportedPlanError unless every op can be turned into calls (module doc)."""
    bad = sorted({int(k) for k in plan.op_kind} - set(SUPPORTED_OPS))
    name = plan.name or plan.formula
    if bad:
        from kg2tool.patterns import OP_NAMES

        raise UnsupportedPlanError(
            f"pattern {name!r} compiles to {', '.join(OP_NAMES[b] for b in bad)} ops, which "
            "trajectories do not support (a type filter has no tool that could check it); "
            "drop the type constraint on the variable"
        )
    for k in range(plan.num_ops):
        if int(plan.op_kind[k]) != JOIN:
            continue
        join = plan.joins[int(plan.op_arg[k])]
        if plan.inputs(k):
            raise UnsupportedPlanError(
                f"pattern {name!r}: its join excludes the results of a negated conjunction at "
                f"variable {join.join_vars[int(join.exclude_vars[0])]}, which trajectories do "
                "not support yet; negate single atoms, or attach the negation to the answer f"
            )
        if (np.asarray(join.var_types) >= 0).any():
            raise UnsupportedPlanError(
                f"pattern {name!r}: type constraints on join variables cannot be checked by "
                "any tool call; drop them"
            )
        rows = np.concatenate([join.atoms, join.negated_atoms]).reshape(-1, 3)
        if ((rows[:, 1] < 0) & (rows[:, 2] < 0)).any() or (rows[:, 1] == rows[:, 2]).any():
            raise UnsupportedPlanError(
                f"pattern {name!r}: an atom links two anchors (or a term to itself); "
                "trajectories cannot follow it"
            )


@dataclass
class Trajectories:
    """Calls (one row each) and per-sample texts of a batch; ``dropped`` counts by reason."""

    steps: pl.DataFrame
    samples: pl.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class NameTables:
    """Display names of a runtime as Polars series, plus their JSON encodings and ranks."""

    names: pl.Series
    encoded: pl.Series
    rank: np.ndarray
    keys_encoded: pl.Series
    runtime: ToolRuntime
    _articled: pl.Series | None = None

    def articled(self) -> pl.Series:
        """Every display name as it reads in running text ("the United States"), made once."""
        if self._articled is None:
            from kg2tool.tools.inflection import with_article

            self._articled = with_article(self.names)
        return self._articled


_NAME_CACHE: dict[int, NameTables] = {}


def name_tables(runtime: ToolRuntime) -> NameTables:
    """Per-entity name tables of a runtime (built once per runtime)."""
    got = _NAME_CACHE.get(id(runtime))
    if got is None or got.runtime is not runtime:
        names = pl.Series("name", runtime.names, dtype=pl.String)
        kenc = pl.Series([orjson.dumps(k).decode() for k in runtime.keys], dtype=pl.String)
        got = NameTables(names, runtime.encoded_names, runtime.rank, kenc, runtime)
        _NAME_CACHE.clear()
        _NAME_CACHE[id(runtime)] = got
    return got


class OpSets:
    """Every op's engine set of a queries frame as flat arrays: set (i, k) is
    ``values[start[i, k]:end[i, k]]`` (sorted by id, as the engine gives them)."""

    def __init__(self, sets: pl.Series, num_ops: int) -> None:
        arr = sets.to_arrow()
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        outer = np.asarray(arr.offsets, dtype=np.int64)
        if len(outer) > 1 and not (np.diff(outer) == num_ops).all():
            raise ValueError("every query needs one set per op")
        inner = arr.values
        ioff = np.asarray(inner.offsets, dtype=np.int64)
        cell = outer[:-1, None] + np.arange(num_ops)[None, :]
        self.start = ioff[cell]
        self.end = ioff[cell + 1]
        self.values = np.asarray(inner.values, dtype=np.int32)

    def flat(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(counts per row, concatenated ids) of op k's sets."""
        cnt = self.end[:, k] - self.start[:, k]
        return cnt, self.values[ranges(self.start[:, k], cnt)]


def _observations(
    kg: Any, rel: np.ndarray, inverse: np.ndarray, ent: np.ndarray, runtime: ToolRuntime
) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """Observation JSON and result (offsets, ids in result order) of distinct calls."""
    offsets, values = neighbor_lists(kg, rel, inverse, ent)
    values = sorted_lists(offsets, values, runtime.rank).astype(np.int32)
    return runtime.encode_results(offsets, values), offsets, values


def neighbor_lists(
    kg: Any, rel: np.ndarray, inverse: np.ndarray, ent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, ids) of each (relation, direction, entity) lookup, slices in the KG's order."""
    n = len(ent)
    counts = np.zeros(n, np.int64)
    chunks = []
    for inv in (False, True):
        sel = np.flatnonzero(inverse == inv)
        if len(sel) == 0:
            continue
        off, ids = kg.neighbors(ent[sel].astype(np.int32), rel[sel].astype(np.int32), inverse=inv)
        off = np.asarray(off, np.int64)
        chunks.append((sel, off, np.asarray(ids, np.int32)))
        counts[sel] = np.diff(off)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    values = np.zeros(offsets[-1], np.int32)
    for sel, off, ids in chunks:
        seg_len = np.diff(off)
        values[np.repeat(offsets[sel] - off[:-1], seg_len) + np.arange(len(ids))] = ids
    return offsets, values


def _list_calls(
    kg: Any, rd: np.ndarray, cnt: np.ndarray, ids: np.ndarray, runtime: ToolRuntime
) -> tuple[pl.Series, np.ndarray, np.ndarray, np.ndarray]:
    """List calls (relation * 2 + direction ``rd``, ``cnt`` listed entities each, ``ids`` in
    argument order) executed element by element: per call the observation (the union of the
    neighbours, in result order), and per listed entity its lookup ``e_rd`` and neighbours
    (``e_off``, ``e_val``, in result order) for the grounding."""
    e_rd = np.repeat(rd, cnt)
    e_off, e_val = neighbor_lists(kg, e_rd // 2, (e_rd % 2).astype(bool), ids)
    e_val = sorted_lists(e_off, e_val, runtime.rank).astype(np.int32)
    call_of = np.repeat(np.repeat(np.arange(len(cnt), dtype=np.int64), cnt), np.diff(e_off))
    key = sorted_unique((call_of << 31) | e_val.astype(np.int64))
    n_out = row_counts(key >> 31, len(cnt))
    val = by_rank(n_out, key & ((1 << 31) - 1), runtime.rank).astype(np.int32)
    off = np.r_[0, np.cumsum(n_out)].astype(np.int64)
    return runtime.encode_results(off, val), e_rd, e_off, e_val


def api_tables(runtime: ToolRuntime, *, lists: bool = False) -> tuple[pl.Series, pl.Series]:
    """API name and parameter per relation id * 2 + direction (``lists``: the list APIs)."""
    kg, catalog = runtime.kg, runtime.catalog
    if lists and not catalog.has_list_apis:
        raise Kg2ToolError(
            "call_style='batched' needs the list APIs in the runtime's catalogue "
            "(ApiCatalog.from_graph(kg, list_apis=True) or catalog.with_list_apis())"
        )
    api_for = catalog.list_api_for if lists else catalog.api_for
    api_names, api_params = [], []
    for key in kg.relations["key"].to_list():
        for d in ("forward", "inverse"):
            a = api_for(key, d)
            api_names.append(a.name)
            api_params.append(a.param_names[0])
    return pl.Series(api_names, dtype=pl.String), pl.Series(api_params, dtype=pl.String)


def set_op_names(runtime: ToolRuntime) -> dict[int, str]:
    """Catalogue name of the set-operation API per plan op kind."""
    by_op = {a.operation: a.name for a in runtime.catalog.apis if a.kind == "set_operation"}
    missing = sorted(set(SET_OP_API.values()) - set(by_op))
    if missing:
        raise Kg2ToolError(f"set_ops='tools' needs the set-operation APIs; missing {missing}")
    return {k: by_op[v] for k, v in SET_OP_API.items()}


def _keyset_op(kind: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A set operation on sorted distinct (row << 31 | id) keys."""
    if kind == INTERSECT:
        return a[np.isin(a, b, assume_unique=True)]
    if kind == UNION:
        return sorted_unique(np.concatenate([a, b]))
    return a[~np.isin(a, b, assume_unique=True)]


def _row_keys(sets: OpSets, op: int) -> np.ndarray:
    """Op ``op``'s sets as sorted (row << 31 | id) keys."""
    cnt, ids = sets.flat(op)
    rows = np.repeat(np.arange(len(cnt), dtype=np.int64), cnt)
    return (rows << 31) | ids.astype(np.int64)


class _Table:
    """Columns as numpy arrays (per call, per sample, or flat values grouped by a count
    column); ``concat`` stacks the parts of one type in order."""

    dtypes: ClassVar[dict[str, Any]] = {}

    @classmethod
    def concat(cls, parts: list[Any]) -> Any:
        cols = {}
        for f in fields(cls):
            dtype = cls.dtypes.get(f.name, np.int64)
            got = [getattr(p, f.name) for p in parts]
            cols[f.name] = np.concatenate(got).astype(dtype) if got else np.zeros(0, dtype)
        return cls(**cols)


@dataclass
class Calls(_Table):
    """One row per call: sample, op, position in the op, relation * 2 + direction (``rd``,
    -1 for set-operation calls), argument entity (-1 for list and set-operation calls), the
    op's call count ``m``, whether the input is an anchor, the JOIN sub-step, its position
    there and role (-1 outside JOIN ops), and the row of the call in :class:`SetCalls`
    (``sx``) or :class:`ListCalls` (``lx``), else -1."""

    dtypes: ClassVar[dict[str, Any]] = {"op": np.int32, "from_anchor": bool}
    sid: np.ndarray
    op: np.ndarray
    pos: np.ndarray
    rd: np.ndarray
    ent: np.ndarray
    m: np.ndarray
    from_anchor: np.ndarray
    sub: np.ndarray
    spos: np.ndarray
    role: np.ndarray
    sx: np.ndarray
    lx: np.ndarray

    def take(self, rows: np.ndarray) -> Calls:
        """The calls ``rows``, in that order."""
        return Calls(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def sorted(self) -> Calls:
        """The calls in (sid, op, pos) order."""
        return self.take(np.lexsort((self.pos, self.op, self.sid)))


def _calls(sid: np.ndarray, op: int, pos: np.ndarray, **cols: Any) -> Calls:
    """Calls of op ``op``; columns not given are -1 (``from_anchor``: False)."""
    n = len(sid)
    cols.setdefault("from_anchor", np.zeros(n, bool))
    for name in ("rd", "ent", "m", "sub", "spos", "role", "sx", "lx"):
        cols.setdefault(name, np.full(n, -1, np.int64))
    return Calls(sid=sid, op=np.full(n, op, np.int32), pos=pos, **cols)


@dataclass
class Explanations(_Table):
    """What a thought (or the final answer) explains after op ``after``: its kind
    (``EXPL_*``), the number of inputs (or of lookups), the op with calls it is said before
    (``at``, -1: the final answer), the resulting names (``cnt`` per row, ``ids`` flat) and,
    for JOIN ops, the candidates that drop out (``xcnt``, ``xids``)."""

    dtypes: ClassVar[dict[str, Any]] = {"kind": np.int8}
    sid: np.ndarray
    after: np.ndarray
    kind: np.ndarray
    nin: np.ndarray
    at: np.ndarray
    cnt: np.ndarray
    ids: np.ndarray
    xcnt: np.ndarray
    xids: np.ndarray


def _explanations(
    sid: np.ndarray, k: int, kind: int, nin: np.ndarray, at: np.ndarray, cnt: np.ndarray,
    ids: np.ndarray, xcnt: np.ndarray | None = None, xids: np.ndarray | None = None,
) -> Explanations:  # fmt: skip
    """Explanations after op ``k`` of one kind; no dropped candidates unless given."""
    n = len(sid)
    return Explanations(
        sid, np.full(n, k, np.int32), np.full(n, kind, np.int8), nin, at, cnt, ids,
        np.zeros(n, np.int64) if xcnt is None else xcnt,
        np.zeros(0, np.int64) if xids is None else xids,
    )  # fmt: skip


@dataclass
class JoinLeads(_Table):
    """The "together, these lookups give ..." texts inside JOIN ops: said before call ``pos``
    of op ``op`` (the next sub-step with calls), naming the candidates (``cnt``, ``ids``)."""

    sid: np.ndarray
    op: np.ndarray
    pos: np.ndarray
    cnt: np.ndarray
    ids: np.ndarray


@dataclass
class SetCalls(_Table):
    """One row per set-operation call (tools mode): op kind, number of inputs, position in
    the chain, and its ``first``/``second`` arguments and result as (count, ids in result
    order)."""

    kind: np.ndarray
    nin: np.ndarray
    pos: np.ndarray
    fc: np.ndarray
    fi: np.ndarray
    sc: np.ndarray
    si: np.ndarray
    rc: np.ndarray
    ri: np.ndarray


@dataclass
class ListCalls(_Table):
    """One row per list call (batched): relation * 2 + direction and the listed entities
    (``cnt``, ``ids`` in result order)."""

    rd: np.ndarray
    cnt: np.ndarray
    ids: np.ndarray


@dataclass
class Answers(_Table):
    """One row per sample: the answer set (``cnt``, ``ids`` in result order) and the
    explanation kind of the last op (the reason an empty answer gives)."""

    dtypes: ClassVar[dict[str, Any]] = {"kind": np.int8}
    sid: np.ndarray
    cnt: np.ndarray
    ids: np.ndarray
    kind: np.ndarray


@dataclass
class CallTables:
    """The structure of a batch of trajectories: calls in (sid, op, pos) order, the
    explanations and where they go, the set-operation and list calls, the answers."""

    calls: Calls
    explanations: Explanations
    join_leads: JoinLeads
    set_calls: SetCalls
    list_calls: ListCalls
    answers: Answers


@dataclass
class _JoinOp:
    """The calls of one JOIN op, its inner "together" texts, the ones said after its last
    sub-step (rows, lookups, candidates), the candidates of every variable, and which rows
    have calls."""

    calls: Calls
    leads: list[JoinLeads]
    final_leads: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    cand: dict[int, tuple[np.ndarray, np.ndarray]]
    has_calls: np.ndarray


def _join_op(
    plan: Plan, k: int, sid: np.ndarray, kg: Any, rel_ids: np.ndarray, anc_ids: np.ndarray,
    rank: np.ndarray,
) -> _JoinOp:  # fmt: skip
    """The calls of JOIN op ``k`` for every row, one per source value of every sub-step
    (:func:`kg2tool.patterns.join_sources`), sources in the runtime's order."""
    n = len(rel_ids)
    steps = join_steps(plan, k)
    sources, cand = join_sources(plan, k, kg, rel_ids, anc_ids)
    parts, per_sub = [], []
    for s_i, ((role, slot, d, src, _dst), (row, ent)) in enumerate(
        zip(steps, sources, strict=True)
    ):
        cnt = row_counts(row, n)
        if src >= 0:
            ent = by_rank(cnt, ent, rank)
        per_sub.append(cnt)
        parts.append(
            _calls(
                row, k, np.zeros(len(row), np.int64), rd=rel_ids[row, slot] * 2 + d, ent=ent,
                m=np.repeat(cnt, cnt), from_anchor=np.full(len(row), src < 0),
                sub=np.full(len(row), s_i, np.int64),
                spos=np.arange(len(row)) - np.repeat(np.cumsum(cnt) - cnt, cnt),
                role=np.full(len(row), role, np.int64),
            )
        )  # fmt: skip
    c = Calls.concat(parts)  # ``sid`` holds the query row until the end
    order = np.lexsort((c.spos, c.sub, c.sid))
    c = c.take(order)
    first = np.r_[True, c.sid[1:] != c.sid[:-1]] if len(order) else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    c.pos = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    c.sid = sid[c.sid]
    per = np.stack(per_sub, axis=1) if per_sub else np.zeros((n, 0), np.int64)
    out = _JoinOp(c, [], [], cand, per.sum(axis=1) > 0)
    _join_leads(out, steps, per, sid, k, rank)
    return out


def _join_leads(
    op: _JoinOp, steps: list, per: np.ndarray, sid: np.ndarray, k: int, rank: np.ndarray
) -> None:
    """After a tree sub-step with several calls, "together, these lookups give" the
    candidates: before the next sub-step with calls, or after the op when none follows."""
    n = len(sid)
    sub_start = np.cumsum(per, axis=1) - per
    for s_i, (role, *_rest) in enumerate(steps):
        if role != JOIN_TREE:
            continue
        rows = np.flatnonzero(per[:, s_i] > 1)
        later = per[rows, s_i + 1 :] > 0
        if later.shape[1]:
            nxt = np.where(later.any(axis=1), s_i + 1 + later.argmax(axis=1), -1)
        else:
            nxt = np.full(len(rows), -1)
        inner = nxt >= 0
        crow, cids = op.cand[steps[s_i][4]]
        ccnt = row_counts(crow, n)
        cids = by_rank(ccnt, cids, rank)
        coff = np.r_[0, np.cumsum(ccnt)]
        for sel, final in ((rows[inner], False), (rows[~inner], True)):
            if not len(sel):
                continue
            cnt_s = ccnt[sel]
            ids_s = cids[ranges(coff[sel], cnt_s)]
            if final:  # said with the JOIN's explanation
                op.final_leads.append((sel, per[sel, s_i], cnt_s, ids_s))
            else:
                pos = sub_start[sel, nxt[inner]]
                op.leads.append(JoinLeads(sid[sel], np.full(len(sel), k), pos, cnt_s, ids_s))


def _list_op(
    plan: Plan, k: int, sid: np.ndarray, sets: OpSets, rel_ids: np.ndarray, rank: np.ndarray,
    first_lx: int,
) -> tuple[Calls, ListCalls]:  # fmt: skip
    """PROJECT op ``k`` as one list call over its whole input set (rows with a non-empty
    input), numbered from ``first_lx`` in :class:`ListCalls`."""
    j = plan.inputs(k)[0]
    cnt, ids = sets.flat(j)
    rows = np.flatnonzero(cnt > 0)
    rd = rel_ids[rows, int(plan.op_arg[k])] * 2 + int(plan.op_dir[k])
    z = np.zeros(len(rows), np.int64)
    calls = _calls(
        sid[rows], k, z, rd=rd, m=cnt[rows], from_anchor=np.full(len(rows), plan.op_kind[j] == ANCHOR),
        spos=z, lx=first_lx + np.arange(len(rows)),
    )  # fmt: skip
    return calls, ListCalls(rd, cnt[rows], by_rank(cnt, ids, rank))


def _project_op(
    plan: Plan, k: int, sid: np.ndarray, sets: OpSets, rel_ids: np.ndarray, rank: np.ndarray
) -> Calls:
    """PROJECT op ``k`` as one call per entity of its input set, in the runtime's order."""
    j = plan.inputs(k)[0]
    cnt, ids = sets.flat(j)
    ids = by_rank(cnt, ids, rank)
    pos = np.arange(len(ids)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    rd = rel_ids[:, int(plan.op_arg[k])] * 2 + int(plan.op_dir[k])
    return _calls(
        np.repeat(sid, cnt), k, pos, rd=np.repeat(rd, cnt), ent=ids.astype(np.int64),
        m=np.repeat(cnt, cnt), from_anchor=np.full(len(ids), plan.op_kind[j] == ANCHOR), spos=pos,
    )  # fmt: skip


def _set_op(
    plan: Plan, k: int, sid: np.ndarray, sets: OpSets, rank: np.ndarray, first_sx: int
) -> tuple[list[Calls], list[SetCalls]]:
    """Set op ``k`` of r inputs as r-1 chained set-operation calls per row (tools mode),
    numbered from ``first_sx`` in :class:`SetCalls`."""
    kind, ins, n = int(plan.op_kind[k]), plan.inputs(k), len(sid)
    rows = np.arange(n, dtype=np.int64)
    calls, set_calls = [], []
    first = _row_keys(sets, ins[0])
    for jj in range(len(ins) - 1):
        second = _row_keys(sets, ins[jj + 1])
        res = _keyset_op(kind, first, second)
        cols = {}
        for name, keys in (("f", first), ("s", second), ("r", res)):
            cc = row_counts(keys >> 31, n)
            cols[name + "c"], cols[name + "i"] = cc, by_rank(cc, keys & ((1 << 31) - 1), rank)
        full = np.full(n, jj)
        set_calls.append(SetCalls(np.full(n, kind), np.full(n, len(ins)), full, **cols))
        calls.append(_calls(sid, k, full, m=np.full(n, len(ins)), spos=full, sx=first_sx + rows))
        first_sx += n
        first = res
    return calls, set_calls


def _op_explanations(
    plan: Plan, sid: np.ndarray, sets: OpSets, has_calls: np.ndarray, joins: dict[int, _JoinOp],
    batched: bool, tools: bool, rank: np.ndarray,
) -> list[Explanations]:  # fmt: skip
    """What each op's result is, said before the next op with calls (or in the final answer):
    every op but anchors, a projection whose calls show its set, and set-operation calls."""
    n, kinds, out = len(sid), [int(x) for x in plan.op_kind], []
    for k in range(plan.num_ops):
        kind = kinds[k]
        if kind == ANCHOR:
            continue
        ins = plan.inputs(k)
        if kind == PROJECT and (kinds[ins[0]] == ANCHOR or batched):
            continue  # a list call's observation is already the op's whole set
        if tools and kind in SET_OP_API:
            continue
        cnt, ids = sets.flat(k)
        later = has_calls[:, k + 1 :]
        if later.shape[1]:
            at = np.where(later.any(axis=1), k + 1 + later.argmax(axis=1), -1)
        else:
            at = np.full(n, -1)
        if kind == PROJECT:
            nin = sets.end[:, ins[0]] - sets.start[:, ins[0]]
        else:
            nin = np.full(n, len(ins))
        xcnt = xids = None
        if kind == JOIN:
            for sel, nin_l, cnt_l, ids_l in joins[k].final_leads:
                out.append(_explanations(sid[sel], k, EXPL_PROJECT, nin_l, at[sel], cnt_l, ids_l))
            # candidates of the answer variable that drop out
            crow, cids = joins[k].cand[int(plan.joins[int(plan.op_arg[k])].answer_var)]
            akey = (np.repeat(np.arange(n, dtype=np.int64), cnt) << 31) | ids.astype(np.int64)
            drop = ((crow << 31) | cids)[~np.isin((crow << 31) | cids, akey)]
            xcnt = row_counts(drop >> 31, n)
            xids = by_rank(xcnt, drop & ((1 << 31) - 1), rank)
        ids = by_rank(cnt, ids, rank)
        out.append(_explanations(sid, k, EXPL_OF_OP[kind], nin, at, cnt, ids, xcnt, xids))
    return out


def call_tables(
    items: list[tuple[Plan, pl.DataFrame]], kg: Any, rank: np.ndarray, *, tools: bool,
    batched: bool,
) -> CallTables:  # fmt: skip
    """The call tables of several patterns' queries (module doc): per op its calls, by kind."""
    calls: list[Calls] = []
    expl: list[Explanations] = []
    leads: list[JoinLeads] = []
    set_calls: list[SetCalls] = []
    list_calls: list[ListCalls] = []
    answers: list[Answers] = []
    n_sx = n_lx = 0
    for plan, queries in items:
        check_plan(plan)
        n, ops = queries.height, plan.num_ops
        if n == 0:
            continue
        sid = queries["sid"].to_numpy().astype(np.int64)
        sets = OpSets(queries["sets"], ops)
        rel_ids = list_matrix(queries["relation_ids"], len(plan.relation_slots))
        kinds = [int(x) for x in plan.op_kind]
        has_calls = np.zeros((n, ops), bool)
        joins: dict[int, _JoinOp] = {}
        if JOIN in kinds:
            anc_ids = list_matrix(queries["anchor_ids"], len(plan.anchor_slots))
        for k in range(ops):
            if kinds[k] == JOIN:
                joins[k] = jo = _join_op(plan, k, sid, kg, rel_ids, anc_ids, rank)
                has_calls[:, k] = jo.has_calls
                calls.append(jo.calls)
                leads.extend(jo.leads)
            elif kinds[k] == PROJECT:
                j = plan.inputs(k)[0]
                has_calls[:, k] = sets.end[:, j] > sets.start[:, j]
                if batched:
                    c, lc = _list_op(plan, k, sid, sets, rel_ids, rank, n_lx)
                    list_calls.append(lc)
                    n_lx += len(lc.rd)
                else:
                    c = _project_op(plan, k, sid, sets, rel_ids, rank)
                calls.append(c)
            elif tools and kinds[k] in SET_OP_API:
                has_calls[:, k] = True
                cs, ss = _set_op(plan, k, sid, sets, rank, n_sx)
                calls.extend(cs)
                set_calls.extend(ss)
                n_sx += n * len(ss)
        expl.extend(_op_explanations(plan, sid, sets, has_calls, joins, batched, tools, rank))
        cnt, ids = sets.flat(ops - 1)
        kind = np.full(n, EXPL_OF_OP[kinds[-1]], np.int8)
        answers.append(Answers(sid, cnt, by_rank(cnt, ids, rank), kind))
    return CallTables(
        Calls.concat(calls).sorted(),
        Explanations.concat(expl),
        JoinLeads.concat(leads),
        SetCalls.concat(set_calls),
        ListCalls.concat(list_calls),
        Answers.concat(answers),
    )


@dataclass
class Executed:
    """The results of a call table's calls. Per distinct relation call (``rd``, ``ent``): its
    observation and result (``off``, ``val`` in result order); per call its distinct call
    (``uid``, -1 for list and set-operation calls); per list call its observation, and per
    listed entity its lookup and neighbours (``e_rd``, ``e_off``, ``e_val``, for the
    grounding)."""

    rd: np.ndarray
    ent: np.ndarray
    obs: pl.Series
    off: np.ndarray
    val: np.ndarray
    uid: np.ndarray
    list_obs: pl.Series | None = None
    e_rd: np.ndarray | None = None
    e_off: np.ndarray | None = None
    e_val: np.ndarray | None = None


def execute_calls(t: CallTables, runtime: ToolRuntime) -> Executed:
    """Run every distinct relation call of a call table once, and every list call element by
    element (vectorised on the graph, encoded as the runtime encodes its outputs)."""
    c, kg = t.calls, runtime.kg
    is_rel = (c.rd >= 0) & (c.lx < 0)
    width = max(kg.num_entities, 1)
    key = np.where(is_rel, c.rd * width + c.ent, -1)
    ukey, uid = unique_inverse(key[is_rel])
    urd, uent = ukey // width, ukey % width
    obs, r_off, r_val = _observations(kg, urd // 2, (urd % 2).astype(bool), uent, runtime)
    uid_all = np.full(len(c.sid), -1, np.int64)
    uid_all[is_rel] = uid
    out = Executed(urd, uent, obs, r_off, r_val, uid_all)
    lc = t.list_calls
    if len(lc.rd):
        out.list_obs, out.e_rd, out.e_off, out.e_val = _list_calls(
            kg, lc.rd, lc.cnt, lc.ids, runtime
        )
    return out
