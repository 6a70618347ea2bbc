"""Solution paths from executed plans, and their replay verification, as long Polars frames.

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
spanning tree of the query graph from the anchors: each variable, in the plan's ``var_order``,
gets its candidates from one *tree atom* (one call per candidate of the term it hangs from);
every other atom (*closing*) is then checked by calls from its head's candidates (or from the
anchor it touches), whose observations show which links exist, and every negated atom likewise
(an existing link rejects the binding). The answers are the answer-variable values of the
bindings that satisfy every checked link, which the final thought states with the candidates
that drop out. JOIN ops with exclusion inputs (a negated conjunction attached to a non-answer
variable), type constraints, or an atom between two anchors, and ``TYPE_FILTER`` ops are not
turned into trajectories: :class:`UnsupportedPlanError` says so and the dataset builder skips
those patterns.

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

Verification (:func:`verify`) is independent of the builder: every distinct (API, arguments)
call is replayed through the runtime (vectorised, cross-checked byte for byte against
:meth:`ToolRuntime.call` on a seeded few) and must give the recorded observation byte for byte;
the replayed results are then re-combined along the plan and must give every op's engine set
(JOIN ops: the bindings are re-joined with Polars from the replayed links), the final one equal
to the exact answer set. Samples that fail are dropped and counted by reason.

Frames: ``steps`` has one row per call (``sid``, ``step``, ``op``, ``kind`` "call" | "error",
``api``, ``param``, ``argument``, ``arguments`` (JSON object text), ``observation``,
``thought``, ``sub`` (JOIN sub-step, else -1), ``from_anchor``; set-operation calls have null
``param``/``argument``, list calls their list parameter and a null ``argument``); ``samples`` one row per sample (``sid``, ``final_text``,
``answer_names``, ``num_calls``, ``trace``, ``grounding``, ``empty``, ``recovery``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from kg2tool.errors import Kg2ToolError
from kg2tool.patterns import ANCHOR, DIFFERENCE, INTERSECT, JOIN, PROJECT, UNION, Plan
from kg2tool.samples.questions import RelationLexicon, mix_hash, name_list_text
from kg2tool.textops import Int, Join, Str, Strings, concat, concat_built
from kg2tool.tools.catalog import LIST_KIND
from kg2tool.tools.lexicon import with_article
from kg2tool.tools.runtime import ToolRuntime

__all__ = [
    "ANSWER_PREFIX",
    "CALL_STYLES",
    "MAX_JOIN_CALLS",
    "SET_OPS_MODES",
    "SUPPORTED_OPS",
    "Trajectories",
    "UnsupportedPlanError",
    "build_trajectories",
    "build_trajectories_many",
    "check_plan",
    "join_call_counts",
    "join_steps",
    "json_str",
    "parse_final_answer",
    "verify",
    "verify_many",
]

SUPPORTED_OPS = (ANCHOR, PROJECT, INTERSECT, UNION, DIFFERENCE, JOIN)
SET_OPS_MODES = ("thought", "tools")
CALL_STYLES = ("single", "batched")
_SET_OP_API = {INTERSECT: "intersection", UNION: "union", DIFFERENCE: "difference"}


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


def json_str(expr: pl.Expr) -> pl.Expr:
    """JSON string literal of a String expression (same escaping as orjson/serde_json)."""
    return pl.struct(expr.alias("a")).struct.json_encode().str.slice(5).str.strip_suffix("}")


@dataclass
class Trajectories:
    """Calls (one row each) and per-sample texts of a batch; ``dropped`` counts by reason."""

    steps: pl.DataFrame
    samples: pl.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class _Names:
    """Display names of a runtime as Polars series, plus their JSON encodings and ranks."""

    names: pl.Series
    encoded: pl.Series
    rank: np.ndarray
    keys_encoded: pl.Series
    runtime: ToolRuntime


_NAME_CACHE: dict[int, _Names] = {}


def _names(runtime: ToolRuntime) -> _Names:
    """Per-entity name tables of a runtime (built once per runtime)."""
    got = _NAME_CACHE.get(id(runtime))
    if got is None or got.runtime is not runtime:
        names = pl.Series("name", runtime.names, dtype=pl.String)
        kenc = pl.Series([orjson.dumps(k).decode() for k in runtime.keys], dtype=pl.String)
        got = _Names(names, runtime.encoded_names, runtime.rank, kenc, runtime)
        _NAME_CACHE.clear()
        _NAME_CACHE[id(runtime)] = got
    return got


def _sorted_lists(offsets: np.ndarray, values: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Values reordered by rank inside each [offsets[i], offsets[i+1]) slice."""
    if len(values) == 0:
        return values
    seg = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    return values[np.lexsort((rank[values], seg))]


def _list_series(offsets: np.ndarray, values: pa.Array | np.ndarray, name: str) -> pl.Series:
    """A List column from offsets and flat values (no Python loop)."""
    arr = pa.LargeListArray.from_arrays(pa.array(offsets.astype(np.int64)), pa.array(values))
    return pl.Series(name, pl.from_arrow(arr))


def _id_lists_to_names(ids: pl.Series, nm: _Names) -> pl.Series:
    """List(Int32) of entity ids -> List(String) of display names in the runtime's order."""
    arr = ids.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_list(pa.int32()))
    offsets = np.asarray(arr.offsets, dtype=np.int64)
    values = np.asarray(arr.flatten(), dtype=np.int64)
    base = offsets[0]
    values_sorted = _sorted_lists(offsets - base, values, nm.rank)
    names = nm.names.gather(values_sorted).to_arrow()
    return _list_series(offsets - base, names, ids.name)


def _observations(
    kg: Any, rel: np.ndarray, inverse: np.ndarray, ent: np.ndarray, runtime: ToolRuntime
) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """Observation JSON and result (offsets, ids in result order) of distinct calls."""
    offsets, values = _neighbor_lists(kg, rel, inverse, ent)
    values = _sorted_lists(offsets, values, runtime.rank).astype(np.int32)
    return runtime.encode_results(offsets, values), offsets, values


def _neighbor_lists(
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
) -> dict[str, Any]:
    """List calls (relation * 2 + direction ``rd``, ``cnt`` listed entities each, ``ids`` in
    argument order) executed element by element: per call the observation ``obs`` (the union of
    the neighbours, in result order), and per listed entity its neighbours
    (``e_off``, ``e_val``, in result order) for the grounding."""
    e_rd = np.repeat(rd, cnt)
    e_off, e_val = _neighbor_lists(kg, e_rd // 2, (e_rd % 2).astype(bool), ids)
    e_val = _sorted_lists(e_off, e_val, runtime.rank).astype(np.int32)
    call_of = np.repeat(np.repeat(np.arange(len(cnt), dtype=np.int64), cnt), np.diff(e_off))
    key = _unique((call_of << 31) | e_val.astype(np.int64))
    n_out = _counts(key >> 31, len(cnt))
    val = _by_rank(n_out, key & ((1 << 31) - 1), runtime.rank).astype(np.int32)
    off = np.r_[0, np.cumsum(n_out)].astype(np.int64)
    return {
        "obs": runtime.encode_results(off, val),
        "e_rd": e_rd,
        "e_off": e_off,
        "e_val": e_val,
    }


def _unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based; numpy's hash-based unique is far slower here)."""
    if len(x) == 0:
        return x
    x = np.sort(x)
    return x[np.r_[True, x[1:] != x[:-1]]]


def _unique_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each x in them)."""
    if len(x) == 0:
        return x, np.zeros(0, np.int64)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]]
    inv = np.empty(len(x), np.int64)
    inv[order] = np.cumsum(first) - 1
    return xs[first], inv


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(starts[i], starts[i] + counts[i])`` (no Python loop)."""
    counts = counts.astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    before = np.cumsum(counts) - counts
    return np.repeat(starts.astype(np.int64) - before, counts) + np.arange(total)


class _Sets:
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
        return cnt, self.values[_ranges(self.start[:, k], cnt)]


def _flat_lists(col: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(lengths, concatenated values as int64) of a List(Int) column, through Arrow."""
    arr = col.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    off = np.asarray(arr.offsets, dtype=np.int64)
    vals = np.asarray(arr.values, dtype=np.int64)[off[0] : off[-1]]
    return np.diff(off), vals


def _matrix(col: pl.Series, width: int) -> np.ndarray:
    """A List(Int) column of fixed width as an [n, width] int64 matrix."""
    arr = col.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    vals = np.asarray(arr.flatten(), dtype=np.int64)
    return vals.reshape(len(col), width)


def _by_rank(counts: np.ndarray, ids: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Ids reordered by rank inside each consecutive group of ``counts``."""
    if len(ids) == 0:
        return ids
    seg = np.repeat(np.arange(len(counts)), counts)
    return ids[np.lexsort((rank[ids], seg))]


def build_trajectories(
    plan: Plan,
    queries: pl.DataFrame,
    runtime: ToolRuntime,
    lexicon: RelationLexicon,
    *,
    seed: int = 0,
    error_ratio: float = 0.0,
    set_ops: str = "thought",
    call_style: str = "single",
) -> Trajectories:
    """Trajectories of one pattern's queries (columns sid, qid, relation_ids, anchor_ids, sets).

    ``error_ratio``: share of samples whose first call uses a misspelled anchor name, gets the
    runtime's real error, then is corrected. ``set_ops``: ``"thought"`` (set operations are
    explained in the thoughts) or ``"tools"`` (they are calls of the set-operation APIs).
    ``call_style``: ``"single"`` (one call per entity) or ``"batched"`` (one list call per
    projection op; module doc).
    """
    return build_trajectories_many(
        [(plan, queries)],
        runtime,
        lexicon,
        seed=seed,
        error_ratio=error_ratio,
        set_ops=set_ops,
        call_style=call_style,
    )


# JOIN sub-step roles
_TREE, _CLOSE, _NEG = 0, 1, 2


def parse_final_answer(text: str) -> list[str]:
    """The answer names of a final answer text (``... The answers are: ["Paris", "Lyon,
    France"]``): the JSON list after the last ANSWER_PREFIX. ValueError when there is none."""
    at = text.rfind(ANSWER_PREFIX)
    if at < 0:
        raise ValueError(f"no {ANSWER_PREFIX!r} in the final answer")
    names = orjson.loads(text[at + len(ANSWER_PREFIX) :].strip())
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise ValueError("the final answer's list is not a JSON list of names")
    return names


def _one_period(text: pl.Expr) -> pl.Expr:
    """One period where a name ending in "." ends a sentence ("Sammy Davis Jr.." -> "Jr.");
    an ellipsis stays."""
    return (
        pl.when(text.str.contains("..", literal=True))
        .then(text.str.replace_all(r"([^.])\.\.(\s|$)", "${1}.${2}"))
        .otherwise(text)
    )


def join_steps(plan: Plan, k: int) -> list[tuple[int, int, int, int, int]]:
    """Sub-steps of JOIN op ``k``: (role, relation slot, direction, source term, target term).

    Terms as in :class:`kg2tool.patterns.Join` (>= 0 a join variable, < 0 anchor slot -1-t).
    One tree atom per variable in ``var_order`` (the first atom linking it to an anchor or an
    earlier variable), then the other atoms, then the negated ones; a check is called from
    the anchor it touches, else from its head (direction 0 forward: head -> tails).
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
                out.append((_TREE, slot, 0 if t == v else 1, other, v))
                break
        bound.add(v)
    for role, rows in ((_CLOSE, atoms), (_NEG, np.asarray(join.negated_atoms).reshape(-1, 3))):
        for i, (slot, h, t) in enumerate(rows.tolist()):
            if role == _CLOSE and i in used:
                continue
            if t < 0 <= h:
                out.append((role, slot, 1, t, h))
            else:
                out.append((role, slot, 0, h, t))
    return out


MAX_JOIN_CALLS = 40


def join_call_counts(plan: Plan, queries: pl.DataFrame, kg: Any) -> np.ndarray:
    """Per query row, the number of calls its JOIN ops need (0 for plans without JOIN)."""
    n = queries.height
    total = np.zeros(n, np.int64)
    if JOIN not in {int(x) for x in plan.op_kind} or n == 0:
        return total
    rel_ids = _matrix(queries["relation_ids"], len(plan.relation_slots))
    anc_ids = _matrix(queries["anchor_ids"], len(plan.anchor_slots))
    rank = np.zeros(kg.num_entities, np.int64)
    for k in range(plan.num_ops):
        if int(plan.op_kind[k]) == JOIN:
            total += _join_calls(plan, k, kg, rel_ids, anc_ids, rank)["per_sub"].sum(axis=1)
    return total


def _row_unique(row: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row distinct ids: (row of each, ids), sorted by (row, id)."""
    key = _unique((row.astype(np.int64) << 31) | ids.astype(np.int64))
    return key >> 31, key & ((1 << 31) - 1)


def _counts(row: np.ndarray, n: int) -> np.ndarray:
    """Per-row counts of a sorted row array."""
    return np.bincount(row, minlength=n).astype(np.int64) if len(row) else np.zeros(n, np.int64)


def _join_calls(
    plan: Plan, k: int, kg: Any, rel_ids: np.ndarray, anc_ids: np.ndarray, rank: np.ndarray
) -> dict[str, Any]:
    """The calls of JOIN op ``k`` for every row (numpy; see :func:`join_steps`).

    Returns call arrays (``row``, ``pos``, ``spos``, ``sub``, ``rd``, ``ent``, ``m``,
    ``from_anchor``, ``role``), the candidates of every variable (``cand``: var -> (row, ids)),
    and ``lead``: per tree sub-step with several calls, (rows, next sub-step with calls or -1).
    """
    n = len(rel_ids)
    cand: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    parts: dict[str, list[np.ndarray]] = {
        x: [] for x in ("row", "sub", "spos", "rd", "ent", "m", "from_anchor", "role")
    }
    per_sub = []
    for s_i, (role, slot, d, src, dst) in enumerate(join_steps(plan, k)):
        if src < 0:
            row = np.arange(n, dtype=np.int64)
            ent = anc_ids[:, -1 - src].astype(np.int64)
        else:
            row, ent = cand[src]
            cnt = _counts(row, n)
            ent = _by_rank(cnt, ent, rank)
        cnt = _counts(row, n)
        per_sub.append(cnt)
        rel = rel_ids[row, slot]
        parts["row"].append(row)
        parts["sub"].append(np.full(len(row), s_i, np.int64))
        parts["spos"].append(np.arange(len(row)) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        parts["rd"].append(rel * 2 + d)
        parts["ent"].append(ent)
        parts["m"].append(np.repeat(cnt, cnt))
        parts["from_anchor"].append(np.full(len(row), src < 0))
        parts["role"].append(np.full(len(row), role, np.int64))
        if role == _TREE:
            off, ids = kg.neighbors(ent.astype(np.int32), rel.astype(np.int32), inverse=bool(d))
            rows_out = np.repeat(row, np.diff(np.asarray(off, np.int64)))
            cand[dst] = _row_unique(rows_out, np.asarray(ids, np.int64))
    out = {x: np.concatenate(v) if v else np.zeros(0, np.int64) for x, v in parts.items()}
    order = np.lexsort((out["spos"], out["sub"], out["row"]))
    out = {x: v[order] for x, v in out.items()}
    first = np.r_[True, out["row"][1:] != out["row"][:-1]] if len(order) else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    out["pos"] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    steps = join_steps(plan, k)
    per = np.stack(per_sub, axis=1) if per_sub else np.zeros((n, 0), np.int64)
    lead = []
    for s_i, (role, *_rest) in enumerate(steps):
        if role != _TREE:
            continue
        rows = np.flatnonzero(per[:, s_i] > 1)
        later = per[rows, s_i + 1 :] > 0
        if later.shape[1]:
            nxt = np.where(later.any(axis=1), s_i + 1 + later.argmax(axis=1), -1)
        else:
            nxt = np.full(len(rows), -1)
        lead.append((s_i, rows, nxt))
    out["cand"] = cand
    out["lead"] = lead
    out["per_sub"] = per
    return out


_EXPL_PROJECT, _EXPL_INTERSECT, _EXPL_UNION, _EXPL_DIFFERENCE = 0, 1, 2, 3
_EXPL_JOIN = 4
_REASONS = [
    "the last lookup returned no entity",
    "the lists have no entity in common",
    "every lookup came back empty",
    "every candidate is excluded",
    "no candidate passes every check",
]
# What the final answer text says before the JSON list of answer names (see parse_final_answer).
ANSWER_PREFIX = "The answers are:"
_KIND_CODE = {PROJECT: 0, INTERSECT: 1, UNION: 2, DIFFERENCE: 3, JOIN: 4}


def _api_tables(runtime: ToolRuntime, *, lists: bool = False) -> tuple[pl.Series, pl.Series]:
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


def _set_op_names(runtime: ToolRuntime) -> dict[int, str]:
    """Catalogue name of the set-operation API per plan op kind."""
    by_op = {a.operation: a.name for a in runtime.catalog.apis if a.kind == "set_operation"}
    missing = sorted(set(_SET_OP_API.values()) - set(by_op))
    if missing:
        raise Kg2ToolError(f"set_ops='tools' needs the set-operation APIs; missing {missing}")
    return {k: by_op[v] for k, v in _SET_OP_API.items()}


def _keyset_op(kind: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A set operation on sorted distinct (row << 31 | id) keys."""
    if kind == INTERSECT:
        return a[np.isin(a, b, assume_unique=True)]
    if kind == UNION:
        return _unique(np.concatenate([a, b]))
    return a[~np.isin(a, b, assume_unique=True)]


def _row_keys(sets: _Sets, op: int) -> np.ndarray:
    """Op ``op``'s sets as sorted (row << 31 | id) keys."""
    cnt, ids = sets.flat(op)
    rows = np.repeat(np.arange(len(cnt), dtype=np.int64), cnt)
    return (rows << 31) | ids.astype(np.int64)


def _name_lists(cnt: np.ndarray, ids: np.ndarray, enc: pl.Series) -> pl.Series:
    """Per row, the JSON-encoded names of its ids (already in result order) joined by ","."""
    lists = _list_series(np.r_[0, np.cumsum(cnt)].astype(np.int64), enc.gather(ids).to_arrow(), "l")
    return pl.select(pl.lit(lists).list.join(",")).to_series()


def _null_if_set(values: np.ndarray, name: str, lists: bool = False) -> pl.Expr:
    """An int column, null on set-operation calls (rows with ``sx >= 0``) and, with
    ``lists``, on list calls (``lx >= 0``)."""
    cond = pl.col("sx") >= 0
    if lists:
        cond = cond | (pl.col("lx") >= 0)
    return (
        pl.when(cond)
        .then(pl.lit(None, pl.Int64))
        .otherwise(pl.lit(pl.Series(values.astype(np.int64))))
        .alias(name)
    )


def build_trajectories_many(
    items: list[tuple[Plan, pl.DataFrame]],
    runtime: ToolRuntime,
    lexicon: RelationLexicon,
    *,
    seed: int = 0,
    error_ratio: float = 0.0,
    set_ops: str = "thought",
    call_style: str = "single",
) -> Trajectories:
    """Trajectories of several patterns' queries at once (``sid`` unique across all frames,
    increasing); the same rows as :func:`build_trajectories` per pattern, concatenated.

    The structure (which call, in which order, which explanation where) is computed with
    numpy per pattern; every text is then built by one Polars pass over all patterns.
    """
    if set_ops not in SET_OPS_MODES:
        raise ValueError(f"set_ops must be one of {SET_OPS_MODES}, got {set_ops!r}")
    tools = set_ops == "tools"
    if call_style not in CALL_STYLES:
        raise ValueError(f"call_style must be one of {CALL_STYLES}, got {call_style!r}")
    batched = call_style == "batched"
    if batched:
        list_api_s, list_param_s = _api_tables(runtime, lists=True)
    kg = runtime.kg
    nm = _names(runtime)
    rank = nm.rank
    c_sid, c_op, c_pos, c_rd, c_ent, c_m, c_anchor = ([] for _ in range(7))
    c_sub, c_spos, c_role, c_sx = [], [], [], []
    e_sid, e_after, e_kind, e_nin, e_at, e_cnt, e_ids = ([] for _ in range(7))
    e_xcnt, e_xids = [], []  # JOIN explanations: the candidates that drop out
    a_sid, a_cnt, a_ids, a_kind = [], [], [], []
    j_sid, j_op, j_pos, j_cnt, j_ids = [], [], [], [], []  # "together" texts inside a JOIN
    # set-operation calls (tools mode): per call its kind, inputs and result
    s_kind, s_nin, s_pos = [], [], []
    s_parts: dict[str, list[np.ndarray]] = {x: [] for x in ("fc", "fi", "sc", "si", "rc", "ri")}
    n_sx = 0
    # list calls (batched): per call its relation/direction, listed entities (result order)
    c_lx, l_rd, l_cnt, l_ids = [], [], [], []
    n_lx = 0

    def add_calls(sid_r, op, pos, rd, ent, m, anchor, sub, spos, role, sx, lx=None) -> None:
        c_sid.append(sid_r)
        c_op.append(np.full(len(sid_r), op, np.int32))
        c_pos.append(pos)
        c_rd.append(rd)
        c_ent.append(ent)
        c_m.append(m)
        c_anchor.append(anchor)
        c_sub.append(sub)
        c_spos.append(spos)
        c_role.append(role)
        c_sx.append(sx)
        c_lx.append(np.full(len(sid_r), -1, np.int64) if lx is None else lx)

    def add_expl(sid_r, k, kind, nin, at, cnt, ids, xcnt=None, xids=None) -> None:
        e_sid.append(sid_r)
        e_after.append(np.full(len(sid_r), k, np.int32))
        e_kind.append(np.full(len(sid_r), kind, np.int8))
        e_nin.append(nin)
        e_at.append(at)
        e_cnt.append(cnt)
        e_ids.append(ids)
        e_xcnt.append(np.zeros(len(sid_r), np.int64) if xcnt is None else xcnt)
        e_xids.append(np.zeros(0, np.int64) if xids is None else xids)

    for plan, queries in items:
        check_plan(plan)
        n, ops = queries.height, plan.num_ops
        if n == 0:
            continue
        sid = queries["sid"].to_numpy().astype(np.int64)
        sets = _Sets(queries["sets"], ops)
        rel_ids = _matrix(queries["relation_ids"], len(plan.relation_slots))
        kinds = [int(x) for x in plan.op_kind]
        has_calls = np.zeros((n, ops), bool)
        joins: dict[int, dict[str, Any]] = {}
        if JOIN in kinds:
            anc_ids = _matrix(queries["anchor_ids"], len(plan.anchor_slots))
        for k in range(ops):
            if kinds[k] == JOIN:
                jc = _join_calls(plan, k, kg, rel_ids, anc_ids, rank)
                joins[k] = jc
                r = jc["row"]
                has_calls[:, k] = _counts(r, n) > 0
                add_calls(
                    sid[r], k, jc["pos"], jc["rd"], jc["ent"], jc["m"], jc["from_anchor"],
                    jc["sub"], jc["spos"], jc["role"], np.full(len(r), -1),
                )  # fmt: skip
                # "together, these lookups give" before the next sub-step with calls
                sub_start = np.cumsum(jc["per_sub"], axis=1) - jc["per_sub"]
                for s_i, rows, nxt in jc["lead"]:
                    inner = nxt >= 0
                    crow, cids = jc["cand"][join_steps(plan, k)[s_i][4]]
                    ccnt = _counts(crow, n)
                    cids = _by_rank(ccnt, cids, rank)
                    coff = np.r_[0, np.cumsum(ccnt)]
                    for sel, final in ((rows[inner], False), (rows[~inner], True)):
                        if not len(sel):
                            continue
                        cnt_s = ccnt[sel]
                        ids_s = cids[_ranges(coff[sel], cnt_s)]
                        if final:  # added with the JOIN's explanation (below)
                            jc.setdefault("final_lead", []).append(
                                (sel, jc["per_sub"][sel, s_i], cnt_s, ids_s)
                            )
                        else:
                            j_sid.append(sid[sel])
                            j_op.append(np.full(len(sel), k))
                            j_pos.append(sub_start[sel, nxt[inner]])
                            j_cnt.append(cnt_s)
                            j_ids.append(ids_s)
                continue
            if kinds[k] == PROJECT and batched:  # one list call over the whole input set
                j = plan.inputs(k)[0]
                cnt, ids = sets.flat(j)
                has_calls[:, k] = cnt > 0
                rows = np.flatnonzero(cnt > 0)
                rd = rel_ids[rows, int(plan.op_arg[k])] * 2 + int(plan.op_dir[k])
                z, m1 = np.zeros(len(rows), np.int64), np.full(len(rows), -1)
                add_calls(
                    sid[rows], k, z, rd, m1, cnt[rows], np.full(len(rows), kinds[j] == ANCHOR),
                    m1, z, m1, m1, n_lx + np.arange(len(rows)),
                )  # fmt: skip
                l_rd.append(rd)
                l_cnt.append(cnt[rows])
                l_ids.append(_by_rank(cnt, ids, rank))
                n_lx += len(rows)
            elif kinds[k] == PROJECT:
                j = plan.inputs(k)[0]
                cnt, ids = sets.flat(j)
                ids = _by_rank(cnt, ids, rank)
                has_calls[:, k] = cnt > 0
                pos = np.arange(len(ids)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
                rd = rel_ids[:, int(plan.op_arg[k])] * 2 + int(plan.op_dir[k])
                m1 = np.full(len(ids), -1)
                add_calls(
                    np.repeat(sid, cnt), k, pos, np.repeat(rd, cnt), ids.astype(np.int64),
                    np.repeat(cnt, cnt), np.full(len(ids), kinds[j] == ANCHOR), m1, pos, m1, m1,
                )  # fmt: skip
            elif tools and kinds[k] in _SET_OP_API:
                ins = plan.inputs(k)
                has_calls[:, k] = True
                rows = np.arange(n, dtype=np.int64)
                first = _row_keys(sets, ins[0])
                for jj in range(len(ins) - 1):
                    second = _row_keys(sets, ins[jj + 1])
                    res = _keyset_op(kinds[k], first, second)
                    for (cname, iname), kk in ((("fc", "fi"), first), (("sc", "si"), second)):
                        cc = _counts(kk >> 31, n)
                        s_parts[cname].append(cc)
                        s_parts[iname].append(_by_rank(cc, kk & ((1 << 31) - 1), rank))
                    rc = _counts(res >> 31, n)
                    s_parts["rc"].append(rc)
                    s_parts["ri"].append(_by_rank(rc, res & ((1 << 31) - 1), rank))
                    s_kind.append(np.full(n, kinds[k], np.int64))
                    s_nin.append(np.full(n, len(ins), np.int64))
                    s_pos.append(np.full(n, jj, np.int64))
                    m1 = np.full(n, -1)
                    add_calls(
                        sid, k, np.full(n, jj), m1, m1, np.full(n, len(ins)), np.zeros(n, bool),
                        m1, np.full(n, jj), m1, n_sx + rows,
                    )  # fmt: skip
                    n_sx += n
                    first = res
        for k in range(ops):
            kind = kinds[k]
            if kind == ANCHOR:
                continue
            ins = plan.inputs(k)
            if kind == PROJECT and (kinds[ins[0]] == ANCHOR or batched):
                continue  # a list call's observation is already the op's whole set
            if tools and kind in _SET_OP_API:
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
            for sel, nin_l, cnt_l, ids_l in joins.get(k, {}).get("final_lead", []):
                add_expl(sid[sel], k, _EXPL_PROJECT, nin_l, at[sel], cnt_l, ids_l)
            if kind == JOIN:  # candidates of the answer variable that drop out
                join = plan.joins[int(plan.op_arg[k])]
                crow, cids = joins[k]["cand"][int(join.answer_var)]
                ckey = (crow << 31) | cids
                akey = (np.repeat(np.arange(n, dtype=np.int64), cnt) << 31) | ids.astype(np.int64)
                drop = ckey[~np.isin(ckey, akey)]
                xcnt = _counts(drop >> 31, n)
                xids = _by_rank(xcnt, drop & ((1 << 31) - 1), rank)
            add_expl(sid, k, _KIND_CODE[kind], nin, at, cnt, _by_rank(cnt, ids, rank), xcnt, xids)
        last = ops - 1
        cnt, ids = sets.flat(last)
        a_sid.append(sid)
        a_cnt.append(cnt)
        a_ids.append(_by_rank(cnt, ids, rank))
        a_kind.append(np.full(n, _KIND_CODE[kinds[last]], np.int8))

    def cat(parts: list[np.ndarray], dtype: Any = np.int64) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    sid_all = cat(a_sid)
    # calls in (sid, op, pos) order
    c = {
        "sid": cat(c_sid),
        "op": cat(c_op, np.int32),
        "pos": cat(c_pos),
        "rd": cat(c_rd),
        "ent": cat(c_ent),
        "m": cat(c_m),
        "from_anchor": cat(c_anchor, bool),
        "sub": cat(c_sub),
        "spos": cat(c_spos),
        "role": cat(c_role),
        "sx": cat(c_sx),
        "lx": cat(c_lx),
    }
    order = np.lexsort((c["pos"], c["op"], c["sid"]))
    c = {k: v[order] for k, v in c.items()}
    ncalls = len(order)
    is_list = c["lx"] >= 0
    is_rel = (c["rd"] >= 0) & ~is_list
    # distinct calls -> observations
    key = np.where(is_rel, c["rd"] * max(kg.num_entities, 1) + c["ent"], -1)
    ukey, uid = _unique_inverse(key[is_rel])
    urd, uent = ukey // max(kg.num_entities, 1), ukey % max(kg.num_entities, 1)
    obs, r_off, r_val = _observations(kg, urd // 2, (urd % 2).astype(bool), uent, runtime)
    api_name_s, api_param_s = _api_tables(runtime)
    lex = lexicon.frame
    rd = np.where(c["rd"] >= 0, c["rd"], 0)
    ent = np.where(is_rel, c["ent"], 0)
    uid_all = np.full(ncalls, -1, np.int64)
    uid_all[is_rel] = uid
    uid_g = np.maximum(uid_all, 0)
    lx = c["lx"]
    lcalls: dict[str, Any] = {}
    if n_lx:  # list calls: executed per listed entity, their observation the union
        lcalls = _list_calls(kg, cat(l_rd), cat(l_cnt), cat(l_ids), runtime)
        lcalls["cnt"], lcalls["ids"] = cat(l_cnt), cat(l_ids)
        uid_all[is_list] = len(ukey) + lx[is_list]  # grounding index: after the single calls

    # explanations, attached to the first call of the next op with calls, or to the final text
    e_order = np.lexsort((cat(e_after), cat(e_sid)))
    ex_sid = cat(e_sid)[e_order]
    ex_at = cat(e_at)[e_order]
    ex_cnt_raw = cat(e_cnt)
    ex_names = _list_series(
        np.r_[0, np.cumsum(ex_cnt_raw)], nm.names.gather(cat(e_ids)).to_arrow(), "names"
    )[e_order]
    ex_drop = _list_series(
        np.r_[0, np.cumsum(cat(e_xcnt))], nm.names.gather(cat(e_xids)).to_arrow(), "drop"
    )[e_order]
    expl = pl.DataFrame(
        {
            "names": ex_names,
            "drop": ex_drop,
            "kind": cat(e_kind, np.int8)[e_order],
            "nin": cat(e_nin)[e_order],
        }
    )
    listed = name_list_text(pl.col("names"))
    empty = pl.col("names").list.len() == 0
    both = (
        pl.when(pl.col("nin") == 2)
        .then(pl.lit("both lists"))
        .otherwise(pl.format("all {} lists", pl.col("nin")))
    )
    text = (
        pl.when(pl.col("kind") == _EXPL_PROJECT)
        .then(
            pl.when(empty)
            .then(pl.lit("These lookups found nothing."))
            .when(pl.col("nin") > 1)
            .then(pl.concat_str(pl.lit("Together, these lookups give "), listed, pl.lit(".")))
        )
        .when(pl.col("kind") == _EXPL_INTERSECT)
        .then(
            pl.when(empty)
            .then(pl.concat_str(pl.lit("No entity appears in "), both, pl.lit(".")))
            .otherwise(
                pl.concat_str(
                    pl.lit("The entities found in "), both, pl.lit(" are "), listed, pl.lit(".")
                )
            )
        )
        .when(pl.col("kind") == _EXPL_UNION)
        .then(
            pl.when(empty)
            .then(pl.lit("Both lists are empty."))
            .otherwise(
                pl.concat_str(pl.lit("Taken together, the lists give "), listed, pl.lit("."))
            )
        )
        .when(pl.col("kind") == _EXPL_JOIN)
        .then(
            pl.when(empty)
            .then(pl.lit("No candidate passes every check."))
            .when(pl.col("drop").list.len() == 0)
            .then(pl.concat_str(pl.lit("Every candidate passes the checks: "), listed, pl.lit(".")))
            .otherwise(
                pl.concat_str(
                    pl.lit("Checking every link rules out "),
                    name_list_text(pl.col("drop")),
                    pl.lit(", which leaves "),
                    listed,
                    pl.lit("."),
                )
            )
        )
        .otherwise(
            pl.when(empty)
            .then(pl.lit("Every entity of the first list is also excluded by the second one."))
            .otherwise(
                pl.concat_str(
                    pl.lit("Removing the entities of the second list from the first leaves "),
                    listed,
                    pl.lit("."),
                )
            )
        )
    )
    # before the final answer, which lists the names once: what was done, not its result
    brief = (
        pl.when(pl.col("kind") == _EXPL_PROJECT)
        .then(pl.when(empty).then(pl.lit("These lookups found nothing.")))
        .when(pl.col("kind") == _EXPL_INTERSECT)
        .then(pl.concat_str(pl.lit("I keep the entities found in "), both, pl.lit(".")))
        .when(pl.col("kind") == _EXPL_UNION)
        .then(pl.lit("I merge the lists."))
        .when(pl.col("kind") == _EXPL_JOIN)
        .then(
            pl.when(empty | (pl.col("drop").list.len() == 0))
            .then(pl.lit(None, pl.String))
            .otherwise(
                pl.concat_str(
                    pl.lit("Checking every link rules out "),
                    name_list_text(pl.col("drop")),
                    pl.lit("."),
                )
            )
        )
        .otherwise(pl.lit("I remove the entities of the second list from the first."))
    )
    ex_text, ex_brief = expl.select(text.alias("t"), brief.alias("b")).get_columns()
    keep = ex_text.is_not_null().to_numpy()
    # target call row: first call of (sid, at); calls are sorted by (sid, op, pos)
    call_key = c["sid"] * 64 + c["op"]
    to_call = keep & (ex_at >= 0)
    tgt = np.searchsorted(call_key, ex_sid[to_call] * 64 + ex_at[to_call])
    pre = pl.repeat(None, ncalls, dtype=pl.String, eager=True)
    g_parts = []
    if to_call.any():
        g_parts.append(pl.DataFrame({"tgt": tgt, "t": ex_text.filter(pl.Series(to_call))}))
    if j_sid:  # inside JOIN ops: the first call of the next sub-step with calls
        full_key = (call_key << 24) | c["pos"]
        jk = ((cat(j_sid) * 64 + cat(j_op)) << 24) | cat(j_pos)
        j_names = _list_series(
            np.r_[0, np.cumsum(cat(j_cnt))], nm.names.gather(cat(j_ids)).to_arrow(), "names"
        )
        j_text = pl.select(
            pl.concat_str(
                pl.lit("Together, these lookups give "),
                name_list_text(pl.lit(j_names)),
                pl.lit("."),
            )
        ).to_series()
        g_parts.append(pl.DataFrame({"tgt": np.searchsorted(full_key, jk), "t": j_text}))
    if g_parts:
        g = pl.concat(g_parts).with_columns(pl.col("tgt").cast(pl.Int64))
        g = g.group_by("tgt", maintain_order=True).agg(pl.col("t").str.join(" "))
        pre = pre.scatter(g["tgt"].to_numpy(), g["t"])
    to_final = keep & (ex_at < 0)
    final_pre = pl.repeat(None, len(sid_all), dtype=pl.String, eager=True)
    if to_final.any():
        g = pl.DataFrame({"sid": ex_sid[to_final], "t": ex_brief.filter(pl.Series(to_final))})
        g = g.drop_nulls("t")
        g = g.group_by("sid", maintain_order=True).agg(pl.col("t").str.join(" "))
        final_pre = final_pre.scatter(np.searchsorted(sid_all, g["sid"].to_numpy()), g["t"])

    phrase = pl.concat_str(  # "the capital of the Netherlands": names read as in the question
        pl.lit(lex["prefix"].gather(rd)),
        pl.lit(with_article(nm.names.gather(ent))),
        pl.lit(lex["suffix"].gather(rd)),
    )
    first_of = (
        pl.when(pl.col("m") > 1)
        .then(pl.format(", the first of the {} entities found so far.", pl.col("m")))
        .otherwise(pl.lit("."))
    )
    thought = (
        pl.when(pl.col("from_anchor"))
        .then(pl.concat_str(pl.lit("I need to find "), phrase, pl.lit(".")))
        .when(pl.col("pos") == 0)
        .then(pl.concat_str(pl.lit("Now I look up "), phrase, first_of))
        .otherwise(pl.concat_str(pl.lit("Next, "), phrase, pl.lit(".")))
    )
    if ncalls and (c["role"] >= 0).any():  # JOIN sub-steps
        checks = pl.when(pl.col("m") > 1).then(
            pl.format(", the first of the {} candidates to check.", pl.col("m"))
        )
        tree = (
            pl.when(pl.col("from_anchor"))
            .then(pl.concat_str(pl.lit("I need to find "), phrase, pl.lit(".")))
            .when(pl.col("spos") == 0)
            .then(pl.concat_str(pl.lit("Now I look up "), phrase, first_of))
            .otherwise(pl.concat_str(pl.lit("Next, "), phrase, pl.lit(".")))
        )
        check = (
            pl.when(pl.col("spos") > 0)
            .then(pl.concat_str(pl.lit("Next, "), phrase, pl.lit(".")))
            .when(pl.col("from_anchor") & (pl.col("role") == _CLOSE))
            .then(
                pl.concat_str(
                    pl.lit("To see which candidates are also linked to "),
                    pl.lit(with_article(nm.names.gather(ent))),
                    pl.lit(", I look up "),
                    phrase,
                    pl.lit("."),
                )
            )
            .when(pl.col("from_anchor"))
            .then(
                pl.concat_str(
                    pl.lit("To rule out the candidates linked to "),
                    pl.lit(with_article(nm.names.gather(ent))),
                    pl.lit(", I look up "),
                    phrase,
                    pl.lit("."),
                )
            )
            .otherwise(
                pl.concat_str(
                    pl.when(pl.col("role") == _CLOSE)
                    .then(pl.lit("To check which candidate pairs are linked, I look up "))
                    .otherwise(
                        pl.lit("To rule out the candidate pairs that are linked, I look up ")
                    ),
                    phrase,
                    checks.otherwise(pl.lit(".")),
                )
            )
        )
        thought = (
            pl.when(pl.col("role") == _TREE)
            .then(tree)
            .when(pl.col("role") > _TREE)
            .then(check)
            .otherwise(thought)
        )
    sx = c["sx"]
    set_args = set_obs = None
    if n_sx:
        cnts = {x: cat(v) for x, v in s_parts.items()}
        enc = nm.encoded
        set_args = pl.select(
            pl.concat_str(
                pl.lit('{"first":['),
                pl.lit(_name_lists(cnts["fc"], cnts["fi"], enc)),
                pl.lit('],"second":['),
                pl.lit(_name_lists(cnts["sc"], cnts["si"], enc)),
                pl.lit("]}"),
            )
        ).to_series()
        set_obs = runtime.encode_results(np.r_[0, np.cumsum(cnts["rc"])], cnts["ri"])
        op_api = _set_op_names(runtime)
        sk, sn, sp = cat(s_kind), cat(s_nin), cat(s_pos)
        set_api = pl.Series([op_api[INTERSECT], op_api[UNION], op_api[DIFFERENCE]]).gather(
            np.select([sk == INTERSECT, sk == UNION], [0, 1], 2)
        )
        verb = pl.Series(["intersect", "merge"]).gather(np.where(sk == INTERSECT, 0, 1))
        s_thought = pl.select(
            pl.when(pl.lit(pl.Series(sk)) == DIFFERENCE)
            .then(pl.lit("I remove the entities of the second list from the first."))
            .when(pl.lit(pl.Series(sp)) > 0)
            .then(
                pl.concat_str(
                    pl.lit("Then I "),
                    pl.lit(verb),
                    pl.lit(" the result with the next list."),
                )
            )
            .when(pl.lit(pl.Series(sn)) > 2)
            .then(
                pl.format(
                    "I {} the first two of the {} lists.", pl.lit(verb), pl.lit(pl.Series(sn))
                )
            )
            .when(pl.lit(pl.Series(sk)) == INTERSECT)
            .then(pl.lit("I intersect the two lists to keep the entities found in both."))
            .otherwise(pl.lit("I merge the two lists."))
        ).to_series()
        sxg = np.maximum(sx, 0)
        thought = pl.when(pl.col("sx") >= 0).then(pl.lit(s_thought.gather(sxg))).otherwise(thought)
    lxg = np.maximum(lx, 0)
    if n_lx:  # list calls: the entities named when few, else counted ("these 12 entities")
        l_names = _list_series(
            np.r_[0, np.cumsum(lcalls["cnt"])].astype(np.int64),
            nm.names.gather(lcalls["ids"]).to_arrow(),
            "names",
        )
        listed = pl.lit(l_names.gather(lxg))
        one = pl.concat_str(
            pl.lit(lex["prefix"].gather(rd)), listed.list.first(), pl.lit(lex["suffix"].gather(rd))
        )
        many = pl.concat_str(
            pl.lit(lex["prefix_m"].gather(rd)),
            pl.when(pl.col("m") <= 3)
            .then(name_list_text(listed))
            .otherwise(pl.format("these {} entities", pl.col("m"))),
            pl.lit(lex["suffix_m"].gather(rd)),
        )
        l_thought = (
            pl.when(pl.col("from_anchor") & (pl.col("m") == 1))
            .then(pl.concat_str(pl.lit("I need to find "), one, pl.lit(".")))
            .when(pl.col("m") == 1)
            .then(pl.concat_str(pl.lit("Now I look up "), one, pl.lit(".")))
            .otherwise(pl.concat_str(pl.lit("Now I look up "), many, pl.lit(" in one call.")))
        )
        thought = pl.when(pl.col("lx") >= 0).then(l_thought).otherwise(thought)
    thought = (
        pl.when(pl.col("pre").is_not_null())
        .then(pl.concat_str(pl.col("pre"), pl.lit(" "), thought))
        .otherwise(thought)
    )
    thought = _one_period(thought)
    param = api_param_s.gather(rd)
    arguments = pl.concat_str(
        pl.lit('{"'), pl.lit(param), pl.lit('":'), pl.lit(nm.encoded.gather(ent)), pl.lit("}")
    )
    api = pl.lit(api_name_s.gather(rd))
    argument = pl.lit(nm.names.gather(ent))
    observation = pl.lit(obs.gather(uid_g)) if len(obs) else pl.lit(None, pl.String)
    if n_sx:
        setc = pl.col("sx") >= 0
        sxg = np.maximum(sx, 0)
        api = pl.when(setc).then(pl.lit(set_api.gather(sxg))).otherwise(api)
        arguments = pl.when(setc).then(pl.lit(set_args.gather(sxg))).otherwise(arguments)
        observation = pl.when(setc).then(pl.lit(set_obs.gather(sxg))).otherwise(observation)
        param = pl.when(setc).then(pl.lit(None, pl.String)).otherwise(pl.lit(param))
        argument = pl.when(setc).then(pl.lit(None, pl.String)).otherwise(argument)
    if n_lx:  # list calls: {"<param>":[names]}, argument null (a list, not one name)
        listc = pl.col("lx") >= 0
        lparam = list_param_s.gather(rd)
        l_args = pl.select(
            pl.concat_str(
                pl.lit('{"'),
                pl.lit(lparam),
                pl.lit('":['),
                pl.lit(_name_lists(lcalls["cnt"], lcalls["ids"], nm.encoded).gather(lxg)),
                pl.lit("]}"),
            )
        ).to_series()
        api = pl.when(listc).then(pl.lit(list_api_s.gather(rd))).otherwise(api)
        arguments = pl.when(listc).then(pl.lit(l_args)).otherwise(arguments)
        observation = pl.when(listc).then(pl.lit(lcalls["obs"].gather(lxg))).otherwise(observation)
        param = pl.when(listc).then(pl.lit(lparam)).otherwise(param if n_sx else pl.lit(param))
        argument = pl.when(listc).then(pl.lit(None, pl.String)).otherwise(argument)
    steps = pl.DataFrame(
        {
            "sid": c["sid"],
            "op": c["op"],
            "pos": c["pos"],
            "spos": c["spos"],
            "m": c["m"],
            "from_anchor": c["from_anchor"],
            "role": c["role"],
            "sx": sx,
            "lx": lx,
            "pre": pre,
        }
    ).select(
        "sid",
        "op",
        "pos",
        pl.lit("call").alias("kind"),
        api.alias("api"),
        pl.lit(param).alias("param") if not (n_sx or n_lx) else param.alias("param"),
        argument.alias("argument"),
        arguments.alias("arguments"),
        observation.alias("observation"),
        thought.alias("thought"),
        _null_if_set(rd, "rd"),
        _null_if_set(ent, "ent", lists=True),
        _null_if_set(uid_all, "uid"),
        pl.lit(pl.Series(c["sub"])).alias("sub"),
        "from_anchor",
    )

    # final answer
    ans_cnt = cat(a_cnt)
    ans_names = _list_series(
        np.r_[0, np.cumsum(ans_cnt)], nm.names.gather(cat(a_ids)).to_arrow(), "answer_names"
    )
    na = pl.col("answer_names").list.len()
    reason = pl.lit(pl.Series(_REASONS, dtype=pl.String).gather(cat(a_kind, np.int64)))
    # The final answer a program can read back: one short sentence, then the names as a JSON
    # list (ANSWER_PREFIX + JSON array, always the last thing in the text).
    ans_json = _name_lists(ans_cnt, cat(a_ids), nm.encoded) if len(ans_cnt) else None
    lead = pl.when(na == 0).then(
        pl.concat_str(pl.lit("So no entity satisfies the question: "), reason, pl.lit("."))
    )
    samples = pl.DataFrame(
        {
            "sid": sid_all,
            "answer_names": ans_names,
            "final_pre": final_pre,
            "answer_json": ans_json if ans_json is not None else pl.Series([], dtype=pl.String),
        }
    ).select(
        "sid",
        "answer_names",
        pl.concat_str(
            pl.concat_list(
                _one_period(pl.col("final_pre")), _one_period(lead), pl.lit(ANSWER_PREFIX + " ")
            )
            .list.drop_nulls()
            .list.join(" "),
            pl.lit("["),
            pl.col("answer_json").fill_null(""),
            pl.lit("]"),
        ).alias("final_text"),
        (na == 0).alias("empty"),
    )
    n = len(sid_all)
    recovery = pl.Series("recovery", np.zeros(n, bool))
    if error_ratio > 0:
        qframe = pl.concat([q.select("sid", "qid") for _, q in items if q.height]) if n else None
        steps, recovery = _add_error_recovery(steps, qframe, runtime, seed, error_ratio)
        steps = steps.sort("sid", "op", "pos")
    st_sid = steps["sid"].to_numpy()
    step_off = np.searchsorted(st_sid, sid_all, side="left")
    step_end = np.searchsorted(st_sid, sid_all, side="right")
    step_in = np.arange(len(st_sid)) - np.repeat(step_off, step_end - step_off)
    steps = steps.with_columns(pl.Series("step", step_in.astype(np.int64)))
    # provenance: grounding triples per distinct call, then per sample
    trip = _grounding_triples(urd, uent, r_off, r_val, kg, nm)
    if n_lx:  # a list call relied on the triples of every listed entity
        e_ent = lcalls["ids"].astype(np.int64)
        e_call = np.repeat(np.arange(n_lx), lcalls["cnt"])
        per_call = np.bincount(e_call, np.diff(lcalls["e_off"]), minlength=n_lx).astype(np.int64)
        flat = _triple_strings(lcalls["e_rd"], e_ent, lcalls["e_off"], lcalls["e_val"], kg, nm)
        trip = pl.concat(
            [trip, _joined(np.r_[0, np.cumsum(per_call)].astype(np.int64), flat, "triples")]
        )
    st_uid = steps["uid"].fill_null(-1).to_numpy()
    # error calls (no uid) rely on no triple: "[]", one value after the distinct calls'
    trip_or_none = Strings(pl.concat([trip, pl.Series(["[]"], dtype=pl.String)]))
    g_idx = np.where(st_uid >= 0, st_uid, len(trip)).astype(np.int64)
    st_step = steps["step"].to_numpy()
    m = steps.height
    t_frag = concat_built(
        m,
        '{"step":',
        Int(st_step),
        ',"name":"',
        Str(steps["api"]),
        '","arguments":',
        Str(steps["arguments"]),
        ',"observation":',
        Str(steps["observation"], json=True),
        "}",
    )
    g_frag = concat_built(
        m, '{"step":', Int(st_step), ',"triples":', Str(trip_or_none, index=g_idx), "}"
    )
    offs = np.r_[0, np.cumsum(step_end - step_off)].astype(np.int64)
    n_s = len(offs) - 1
    samples = samples.with_columns(
        recovery,
        concat(n_s, "[", Join(t_frag, offs), "]", name="trace"),
        concat(n_s, "[", Join(g_frag, offs), "]", name="grounding"),
        pl.Series("num_calls", (step_end - step_off).astype(np.int32)),
    )
    return Trajectories(steps=steps, samples=samples)


def _joined(offsets: np.ndarray, frags: pl.Series, name: str, sep: str = ",") -> pl.Series:
    """``"[" + sep.join(frags[offsets[i]:offsets[i+1]]) + "]"`` per i (frags grouped in order)."""
    lists = _list_series(offsets, frags.to_arrow(), name)
    return pl.select(
        pl.concat_str(pl.lit("["), pl.lit(lists).list.join(sep), pl.lit("]")).alias(name)
    ).to_series()


def _grounding_triples(
    rd: np.ndarray, ent: np.ndarray, off: np.ndarray, val: np.ndarray, kg: Any, nm: _Names
) -> pl.Series:
    """Per distinct call: JSON list of [head, relation, tail] key triples it relied on."""
    return _joined(off, _triple_strings(rd, ent, off, val, kg, nm), "triples")


def _triple_strings(
    rd: np.ndarray, ent: np.ndarray, off: np.ndarray, val: np.ndarray, kg: Any, nm: _Names
) -> pl.Series:
    """``[head, relation, tail]`` JSON of every (lookup, result) pair, lookup by lookup."""
    counts = np.diff(off)
    rel = np.repeat(rd // 2, counts)
    inv = np.repeat(rd % 2 == 1, counts)
    arg = np.repeat(ent, counts)
    head = np.where(inv, val, arg)
    tail = np.where(inv, arg, val)
    rkeys = pl.Series([orjson.dumps(k).decode() for k in kg.relations["key"].to_list()])
    return pl.select(
        pl.concat_str(
            pl.lit("["),
            pl.lit(nm.keys_encoded.gather(head)),
            pl.lit(","),
            pl.lit(rkeys.gather(rel)),
            pl.lit(","),
            pl.lit(nm.keys_encoded.gather(tail)),
            pl.lit("]"),
        )
    ).to_series()


def _misspell(names: pl.Series, h: np.ndarray) -> pl.Series:
    """A deterministic typo per name: one character dropped (names of 4+ chars) or doubled."""
    lens = names.str.len_chars().to_numpy().astype(np.int64)
    pos = (h % np.maximum(lens - 1, 1).astype(np.uint64)).astype(np.int64) + 1
    pos = np.minimum(pos, np.maximum(lens - 1, 0))
    p = pl.Series(pos)
    return pl.select(
        pl.when(pl.lit(pl.Series(lens)) >= 4)
        .then(
            pl.concat_str(
                pl.lit(names).str.slice(0, pl.lit(p)), pl.lit(names).str.slice(pl.lit(p) + 1)
            )
        )
        .otherwise(pl.concat_str(pl.lit(names), pl.lit(names).str.slice(-1)))
    ).to_series()


def _add_error_recovery(
    steps: pl.DataFrame, queries: pl.DataFrame, runtime: ToolRuntime, seed: int, ratio: float
) -> tuple[pl.DataFrame, pl.Series]:
    """Insert a failing call (misspelled anchor, real runtime error) before chosen first calls."""
    qid = queries["qid"].to_numpy()
    h = mix_hash(seed, 0xE770, qid)
    chosen = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53) < ratio
    pick = pl.DataFrame({"sid": queries["sid"], "chosen": chosen, "h": h})
    first = (
        steps.filter((pl.col("op") == pl.col("op").min().over("sid")) & (pl.col("pos") == 0))
        .join(pick, on="sid")
        .filter(pl.col("chosen"))
    )
    # a list call (batched; null ``argument``) of one anchor: its misspelled call lists it too
    one_of = (
        pl.concat_str(pl.lit("["), pl.col("arguments").str.extract(r'^\{"[^"]*":\[(.*)\]\}$', 1),
                      pl.lit("]")).str.json_decode(pl.List(pl.String))
    )  # fmt: skip
    first = first.with_columns(
        pl.col("argument").is_null().alias("is_list"),
        pl.coalesce("argument", one_of.list.first()).alias("name"),
        one_of.list.len().alias("n_list"),
    ).filter(~pl.col("is_list") | (pl.col("n_list") == 1))
    if first.height == 0:
        return steps, pl.Series("recovery", np.zeros(queries.height, bool))
    bad = _misspell(first["name"], first["h"].to_numpy())
    first = first.with_columns(bad.alias("bad"))
    uniq = first.select("api", "param", "bad", "is_list").unique(maintain_order=True)
    results = runtime.call_many((a, {p: [b] if lst else b}) for a, p, b, lst in uniq.iter_rows())
    uniq = uniq.with_columns(
        pl.Series("err_obs", [r.to_json() for r in results]),
        pl.Series("failed", [not r.ok for r in results]),
    )
    first = first.join(uniq, on=["api", "param", "bad", "is_list"], how="left").filter(
        pl.col("failed")
    )
    err = first.select(
        "sid",
        "op",
        (pl.col("pos") - 1).alias("pos"),
        pl.lit("error").alias("kind"),
        "api",
        "param",
        pl.when(pl.col("is_list")).then(pl.lit(None, pl.String)).otherwise("bad").alias("argument"),
        pl.concat_str(
            pl.lit('{"'),
            pl.col("param"),
            pl.when(pl.col("is_list")).then(pl.lit('":[')).otherwise(pl.lit('":')),
            json_str(pl.col("bad")),
            pl.when(pl.col("is_list")).then(pl.lit("]}")).otherwise(pl.lit("}")),
        ).alias("arguments"),
        pl.col("err_obs").alias("observation"),
        "thought",
        "rd",
        "ent",
        pl.lit(None, pl.Int64).alias("uid"),
        "sub",
        "from_anchor",
    )
    fix = first.select(
        "sid",
        "op",
        "pos",
        pl.concat_str(
            pl.lit("The call failed: "),
            pl.col("err_obs").str.json_path_match("$.message"),
            pl.lit(". The exact name is "),
            pl.col("name"),
            pl.lit(", so I call again with it."),
        )
        .pipe(_one_period)
        .alias("fix"),
    )
    steps = (
        steps.join(fix, on=["sid", "op", "pos"], how="left", maintain_order="left")
        .with_columns(pl.coalesce("fix", "thought").alias("thought"))
        .drop("fix")
    )
    steps = pl.concat([steps, err.select(steps.columns).cast(steps.schema)])
    rec = pick.join(first.select("sid", pl.lit(True).alias("r")), on="sid", how="left")
    return steps, rec["r"].fill_null(False).alias("recovery")


def verify(
    plan: Plan, queries: pl.DataFrame, traj: Trajectories, runtime: ToolRuntime
) -> tuple[np.ndarray, dict[str, int]]:
    """Replay every call and recompute the plan from replayed results: (ok mask per sid, failures)."""
    return verify_many([(plan, queries)], traj, runtime)


# Distinct calls replayed both ways (vectorised and runtime.call) to cross-check the encoder.
CROSS_CHECK_CALLS = 32
_ARGS_RE = r'^\{"([A-Za-z0-9_]+)":("(?:[^"\\]|\\.)*")\}$'


def _replay(
    calls: pl.DataFrame, runtime: ToolRuntime
) -> tuple[pl.Series, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict, np.ndarray]:
    """Replay distinct (api, arguments) calls: (observation text, ok, result offsets, result ids,
    argument entity id or -1, set-operation argument keys, list-call argument keys ``u << 31 |
    id``).

    List calls written as the builder writes them (``{"<param>":[display names]}``) are replayed
    vectorised (:func:`_replay_list_calls`) and a seeded few through :meth:`ToolRuntime.call`
    too; other list calls through :meth:`ToolRuntime.call_many`.

    Calls are parsed from their recorded JSON arguments and names resolved as the runtime does
    (display name first); those in the exact shape the builder writes run through
    :meth:`ToolRuntime.call_ids_batch` and :meth:`ToolRuntime.encode_results`, every other one
    (errors, unusual names) through :meth:`ToolRuntime.call_many`. A seeded few of the fast ones
    are replayed through :meth:`ToolRuntime.call` too, and must agree byte for byte.
    """
    nm = _names(runtime)
    api_names, _, _, is_rel = runtime._api_tables()
    apis = pl.DataFrame(
        {
            "api": api_names,
            "want": [a.param_names[0] if a.param_names else "" for a in runtime.catalog.apis],
            "rel": is_rel,
        }
    )
    by_name = pl.DataFrame(
        {"value": nm.names, "eid": np.arange(nm.names.len(), dtype=np.int32)}
    ).unique("value", keep="first")
    parsed = (
        calls.with_row_index("u")
        .with_columns(
            pl.col("arguments").str.extract(_ARGS_RE, 1).alias("param"),
            pl.col("arguments").str.extract(_ARGS_RE, 2).str.json_decode(pl.String).alias("value"),
        )
        .join(apis, on="api", how="left", maintain_order="left")
        .join(by_name, on="value", how="left", maintain_order="left")
    )
    fast_mask = (
        parsed.select(
            (pl.col("rel").fill_null(False) & (pl.col("param") == pl.col("want")))
            .fill_null(False)
            .__and__(pl.col("eid").is_not_null())
        )
        .to_series()
        .to_numpy()
    )
    m = calls.height
    counts = np.zeros(m, np.int64)
    arg_id = np.full(m, -1, np.int64)
    ok = np.ones(m, bool)
    obs = pl.repeat(None, m, dtype=pl.String, eager=True)
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, offsets, values)
    set_fast, set_args = _replay_set_ops(calls, runtime, by_name)
    if len(set_fast):
        rows, (off, vals) = set_fast, set_args["result"]
        obs = obs.scatter(rows, runtime.encode_results(off, vals))
        counts[rows] = np.diff(off)
        pieces.append((rows, off, vals))
        fast_set_mask = np.zeros(m, bool)
        fast_set_mask[rows] = True
        fast_mask = fast_mask & ~fast_set_mask
    else:
        fast_set_mask = np.zeros(m, bool)
    list_fast, list_res, list_args = _replay_list_calls(calls, runtime, by_name)
    list_keys = [list_args]
    if len(list_fast):
        off, vals = list_res
        obs = obs.scatter(list_fast, runtime.encode_results(off, vals))
        counts[list_fast] = np.diff(off)
        pieces.append((list_fast, off, vals))
        fast_set_mask[list_fast] = True  # not the single-call fast path, not the slow one
        fast_mask = fast_mask & ~fast_set_mask
        pick = list_fast[np.argsort(mix_hash(0x1157, list_fast), kind="stable")[:8]]
        _cross_check(calls, obs, pick, runtime, "list-call")
    fast = np.flatnonzero(fast_mask)
    slow = np.flatnonzero(~fast_mask & ~fast_set_mask)
    if len(fast):
        f = parsed[fast]
        eid = f["eid"].to_numpy().astype(np.int64)
        off, vals = runtime.call_ids_batch(f["api"], eid)
        obs = obs.scatter(fast, runtime.encode_results(off, vals))
        counts[fast] = np.diff(off)
        arg_id[fast] = eid
        pieces.append((fast, off, vals))
        pick = fast[np.argsort(mix_hash(0xC0C, fast), kind="stable")[:CROSS_CHECK_CALLS]]
        if len(set_fast):
            pick = np.r_[pick, set_fast[np.argsort(mix_hash(0x5E7, set_fast))[:8]]]
        _cross_check(calls, obs, pick, runtime, "")
    if len(set_fast) and not len(fast):  # cross-check the set-operation fast path
        pick = set_fast[np.argsort(mix_hash(0x5E7, set_fast), kind="stable")[:8]]
        _cross_check(calls, obs, pick, runtime, "set-operation")
    if len(slow):
        sub = calls[slow]
        results = runtime.call_many(sub.select("api", "arguments").iter_rows())
        obs = obs.scatter(slow, pl.Series([r.to_json() for r in results], dtype=pl.String))
        ok[slow] = [r.ok for r in results]
        lens = np.fromiter((len(r.entity_ids) for r in results), np.int64, len(results))
        counts[slow] = lens
        vals = (
            np.concatenate([np.asarray(r.entity_ids, np.int32) for r in results])
            if results
            else np.zeros(0, np.int32)
        )
        pieces.append((slow, np.r_[0, np.cumsum(lens)], vals))
        values_slow = sub.select(
            pl.col("arguments").str.extract(_ARGS_RE, 2).str.json_decode(pl.String)
        ).to_series()
        arg_id[slow] = [
            _resolve(runtime, v) if v is not None else -1 for v in values_slow.to_list()
        ]
        set_api = {a.name for a in runtime.catalog.apis if a.kind == "set_operation"}
        list_api = {a.name for a in runtime.catalog.apis if a.kind == LIST_KIND}
        for i, (api, args) in zip(slow, sub.select("api", "arguments").iter_rows(), strict=True):
            if api in list_api:
                try:
                    (names,) = orjson.loads(args).values()
                    ids = [_resolve(runtime, x) for x in names]
                    list_keys.append(
                        (np.full(len(ids), i, np.int64) << 31) | np.array(ids, np.int64)
                    )
                except Exception:
                    pass
                continue
            if api not in set_api:
                continue
            try:
                got = orjson.loads(args)
                for part in ("first", "second"):
                    ids = [_resolve(runtime, x) for x in got[part]]
                    set_args[part].append(
                        (np.full(len(ids), i, np.int64) << 31) | np.array(ids, np.int64)
                    )
            except Exception:
                continue
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    values = np.zeros(int(offsets[-1]), np.int32)
    for rows, off, vals in pieces:
        seg = np.diff(off)
        values[np.repeat(offsets[rows] - off[:-1], seg) + np.arange(len(vals))] = vals
    set_keys = {
        part: _unique(np.concatenate(set_args[part])) if set_args[part] else np.zeros(0, np.int64)
        for part in ("first", "second")
    }
    return obs, ok, offsets, values, arg_id, set_keys, _unique(np.concatenate(list_keys))


def _replay_list_calls(
    calls: pl.DataFrame, runtime: ToolRuntime, by_name: pl.DataFrame
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Vectorised replay of list calls written as the builder writes them (the list API's
    parameter, every name a display name): (their rows, sorted; result (offsets, ids in result
    order); argument keys ``row << 31 | id``). Others are left to the slow path."""
    empty = (np.zeros(0, np.int64), (np.zeros(1, np.int64), np.zeros(0, np.int32)))
    lists = [a for a in runtime.catalog.apis if a.kind == LIST_KIND]
    if not lists:
        return (*empty, np.zeros(0, np.int64))
    apis = pl.DataFrame(
        {
            "api": [a.name for a in lists],
            "want": [a.param_names[0] for a in lists],
            "rd": [int(a.relation_id or 0) * 2 + (a.direction == "inverse") for a in lists],
        }
    )
    f = (
        calls.with_row_index("u")
        .join(apis, on="api", how="inner", maintain_order="left")
        .with_columns(
            pl.col("arguments").str.extract(_LIST_ARGS_RE, 1).alias("param"),
            pl.col("arguments").str.extract(_LIST_ARGS_RE, 2).alias("body"),
        )
        .filter((pl.col("param") == pl.col("want")) & pl.col("body").is_not_null())
    )
    if f.height == 0:
        return (*empty, np.zeros(0, np.int64))
    e = (
        f.select(
            "u",
            "rd",
            pl.concat_str(pl.lit("["), pl.col("body"), pl.lit("]"))
            .str.json_decode(pl.List(pl.String))
            .alias("value"),
        )
        .explode("value")
        .drop_nulls("value")
        .join(by_name, on="value", how="left", maintain_order="left")
    )
    unresolved = e.filter(pl.col("eid").is_null())["u"].unique()
    rows = np.sort(f.filter(~pl.col("u").is_in(unresolved.implode()))["u"].to_numpy())
    rows = rows.astype(np.int64)
    e = e.filter(~pl.col("u").is_in(unresolved.implode()))
    eu = e["u"].to_numpy().astype(np.int64)
    eid = e["eid"].to_numpy().astype(np.int64)
    erd = e["rd"].to_numpy().astype(np.int64)
    off, val = _neighbor_lists(runtime.kg, erd // 2, (erd % 2).astype(bool), eid)
    key = _unique((np.repeat(eu, np.diff(off)) << 31) | np.asarray(val, np.int64))
    cnt = np.bincount(np.searchsorted(rows, key >> 31), minlength=len(rows)).astype(np.int64)
    ids = _by_rank(cnt, key & ((1 << 31) - 1), runtime.rank).astype(np.int32)
    return rows, (np.r_[0, np.cumsum(cnt)].astype(np.int64), ids), _unique((eu << 31) | eid)


_JSTR = r'"(?:[^"\\]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"'
_JLIST = rf"((?:{_JSTR}(?:,{_JSTR})*)?)"
_SET_ARGS_RE = rf'^\{{"first":\[{_JLIST}\],"second":\[{_JLIST}\]\}}$'
_LIST_ARGS_RE = rf'^\{{"([A-Za-z0-9_]+)":\[{_JLIST}\]\}}$'


def _cross_check(
    calls: pl.DataFrame, obs: pl.Series, pick: np.ndarray, runtime: ToolRuntime, what: str
) -> None:
    """Re-run a seeded few of the vectorised replay's calls one by one through
    ``runtime.call``: the batched paths must give exactly its bytes."""
    for (api, args), want in zip(
        calls[pick].select("api", "arguments").iter_rows(), obs.gather(pick).to_list(), strict=True
    ):
        got = runtime.call(api, args).to_json()
        if got != want:
            raise Kg2ToolError(
                f"vectorised {what + ' ' if what else ''}replay disagrees with runtime.call for "
                f"{api}({args}): {want[:80]} != {got[:80]}"
            )


def _replay_set_ops(
    calls: pl.DataFrame, runtime: ToolRuntime, by_name: pl.DataFrame
) -> tuple[np.ndarray, dict[str, Any]]:
    """Vectorised replay of set-operation calls written as the builder writes them
    (``{"first":[names],"second":[names]}``, every name a display name): (their rows, and
    ``result`` (offsets, ids in result order), ``first``/``second`` argument keys row << 31 | id).
    Other set-operation calls are left to the slow path (``first``/``second`` lists there)."""
    ops = {a.name: a.operation for a in runtime.catalog.apis if a.kind == "set_operation"}
    out: dict[str, Any] = {"first": [], "second": []}
    if not ops:
        return np.zeros(0, np.int64), out
    f = calls.with_row_index("u").filter(pl.col("api").is_in(list(ops)))
    f = f.with_columns(
        pl.col("arguments").str.extract(_SET_ARGS_RE, 1).alias("a"),
        pl.col("arguments").str.extract(_SET_ARGS_RE, 2).alias("b"),
    ).filter(pl.col("a").is_not_null() & pl.col("b").is_not_null())
    if f.height == 0:
        return np.zeros(0, np.int64), out
    lists = f.select(
        "u",
        pl.col("api").replace_strict(ops).alias("op"),
        pl.concat_str(pl.lit("["), pl.col("a"), pl.lit("]"))
        .str.json_decode(pl.List(pl.String))
        .alias("a"),
        pl.concat_str(pl.lit("["), pl.col("b"), pl.lit("]"))
        .str.json_decode(pl.List(pl.String))
        .alias("b"),
    )
    keys = {}
    unresolved = pl.Series("u", [], dtype=pl.UInt32)
    for part in ("a", "b"):
        e = lists.select("u", pl.col(part).alias("value")).explode("value").drop_nulls("value")
        e = e.join(by_name, on="value", how="left")
        unresolved = pl.concat([unresolved, e.filter(pl.col("eid").is_null())["u"]])
        e = e.drop_nulls("eid")
        keys[part] = _unique((e["u"].to_numpy().astype(np.int64) << 31) | e["eid"].to_numpy())
    good = lists.filter(~pl.col("u").is_in(unresolved.implode()))
    rows = good["u"].to_numpy().astype(np.int64)
    a, b = keys["a"], keys["b"]
    a, b = a[np.isin(a >> 31, rows)], b[np.isin(b >> 31, rows)]
    code = np.zeros(calls.height, np.int8)  # 0 intersection, 1 union, 2 difference
    code[rows] = (
        good.select(pl.col("op").replace_strict({"intersection": 0, "union": 1, "difference": 2}))
        .to_series()
        .to_numpy()
    )
    op_a, op_b = code[a >> 31], code[b >> 31]
    in_b = np.isin(a, b, assume_unique=True)
    res = _unique(
        np.concatenate([a[(op_a == 0) & in_b], a[(op_a == 2) & ~in_b], a[op_a == 1], b[op_b == 1]])
    )
    rows_sorted = np.sort(rows)
    rr = np.searchsorted(rows_sorted, res >> 31)
    cnt = np.bincount(rr, minlength=len(rows)).astype(np.int64)
    ids = _by_rank(cnt, (res & ((1 << 31) - 1)).astype(np.int64), runtime.rank).astype(np.int32)
    out["result"] = (np.r_[0, np.cumsum(cnt)].astype(np.int64), ids)
    out["first"].append(a)
    out["second"].append(b)
    return rows_sorted, out


def _bad_sids(engine: np.ndarray, replayed: np.ndarray, shift: int) -> np.ndarray:
    """Sample ids whose key groups differ between two key arrays (keys: sid << shift | ...)."""
    a, b = _unique(engine), _unique(replayed)
    if len(a) == len(b) and np.array_equal(a, b):
        return np.zeros(0, np.int64)
    both = np.sort(np.concatenate([a, b]))
    dup = np.r_[both[1:] == both[:-1], False] | np.r_[False, both[1:] == both[:-1]]
    return _unique(both[~dup] >> np.int64(shift))


def verify_many(
    items: list[tuple[Plan, pl.DataFrame]], traj: Trajectories, runtime: ToolRuntime
) -> tuple[np.ndarray, dict[str, int]]:
    """:func:`verify` over several patterns' queries at once (``sid`` unique across frames).

    1. Every distinct recorded call (API, arguments JSON) is replayed (see :func:`_replay`) and
       its output must equal the recorded observation byte for byte; error calls must fail.
    2. Per PROJECT op, the union of the replayed results of its calls must equal the engine's
       set, and the entities the recorded arguments resolve to (every listed one, for a list
       call) its input set; per set op, the
       operation on its input sets must give its set; the last set must equal the exact answer
       set, and the final answer must list exactly the answers' names.
    Returns the ok mask over the concatenated query rows and failure counts by reason.
    """
    steps = traj.steps
    sids = (
        np.concatenate([q["sid"].to_numpy() for _, q in items]).astype(np.int64)
        if items
        else np.zeros(0, np.int64)
    )
    n = len(sids)
    if n == 0:
        return np.zeros(0, bool), {}
    uniq = steps.select("api", "arguments").unique(maintain_order=True)
    st = steps.select(
        "sid",
        "op",
        "kind",
        "api",
        "arguments",
        "observation",
        pl.col("sub") if "sub" in steps.columns else pl.lit(-1, pl.Int64).alias("sub"),
        pl.col("pos") if "pos" in steps.columns else pl.lit(0, pl.Int64).alias("pos"),
    ).join(uniq.with_row_index("u"), on=["api", "arguments"], how="left", maintain_order="left")
    obs, ok_call, r_off, r_val, arg_id, set_keys, list_keys = _replay(uniq, runtime)
    u = st["u"].to_numpy().astype(np.int64)
    st_sid = st["sid"].to_numpy().astype(np.int64)
    is_err = (st["kind"] == "error").to_numpy()
    bad_obs = _unique(st_sid[(st["observation"] != obs.gather(u)).fill_null(True).to_numpy()])
    bad_err = _unique(st_sid[is_err == ok_call[u]])
    # op kind of every step (its pattern's plan)
    st_op_all = st["op"].to_numpy().astype(np.int64)
    kinds_tab = np.full((max(len(items), 1), 65), -1, np.int64)
    pat_parts = []
    for i, (plan, q) in enumerate(items):
        kinds_tab[i, : plan.num_ops] = plan.op_kind
        pat_parts.append(np.full(q.height, i, np.int64))
    pat_of_row = np.concatenate(pat_parts)
    s_order = np.argsort(sids, kind="stable")
    at = np.minimum(np.searchsorted(sids[s_order], st_sid), max(n - 1, 0))
    known = sids[s_order][at] == st_sid
    st_pat = np.where(known, pat_of_row[s_order][at], 0)
    st_kind = np.where(known, kinds_tab[st_pat, np.minimum(st_op_all, 64)], -1)
    special = (~is_err) & (st_kind != PROJECT)
    bad_special = [_unique(st_sid[(~is_err) & (st_kind < 0)])]
    if special.any():
        bad_special.append(
            _verify_special(items, st.filter(pl.Series(special)), st_pat[special], r_off, r_val,
                            arg_id, set_keys, runtime)
        )  # fmt: skip
    # replayed keys: (sid, op, result id) and (sid, op, argument id) of every PROJECT call
    call = (~is_err) & (st_kind == PROJECT)
    c_sid, c_op, c_u = st_sid[call], st["op"].to_numpy().astype(np.int64)[call], u[call]
    cnt = r_off[c_u + 1] - r_off[c_u]
    res = r_val[_ranges(r_off[c_u], cnt)].astype(np.int64)
    rep_res = (np.repeat(c_sid, cnt) << 36) | (np.repeat(c_op, cnt) << 31) | res
    rep_arg = (c_sid << 36) | (c_op << 31) | np.where(arg_id[c_u] >= 0, arg_id[c_u], (1 << 31) - 1)
    list_names = [a.name for a in runtime.catalog.apis if a.kind == LIST_KIND]
    if list_names:  # a list call's arguments: every listed entity
        c_list = uniq["api"].is_in(list_names).to_numpy()[c_u]
        lu = c_u[c_list]
        lo = np.searchsorted(list_keys >> 31, lu, side="left")
        ln = np.searchsorted(list_keys >> 31, lu, side="right") - lo
        l_arg = list_keys[_ranges(lo, ln)] & ((1 << 31) - 1)
        rep_arg = np.concatenate(
            [
                rep_arg[~c_list],
                (np.repeat(c_sid[c_list], ln) << 36) | (np.repeat(c_op[c_list], ln) << 31) | l_arg,
            ]
        )
    eng_res, eng_arg, bad_plan = [], [], []
    ans_cnt, ans_ids = [], []
    for plan, q in items:
        if q.height == 0:
            continue
        sets = _Sets(q["sets"], plan.num_ops)
        sid = q["sid"].to_numpy().astype(np.int64)
        for k in range(plan.num_ops):
            kind = int(plan.op_kind[k])
            ins = plan.inputs(k)
            cnt_k, ids_k = sets.flat(k)
            if kind == PROJECT:
                eng_res.append((np.repeat(sid, cnt_k) << 36) | (k << 31) | ids_k.astype(np.int64))
                cnt_j, ids_j = sets.flat(ins[0])
                eng_arg.append((np.repeat(sid, cnt_j) << 36) | (k << 31) | ids_j.astype(np.int64))
            elif kind in (INTERSECT, UNION, DIFFERENCE):
                keys = []
                for i in ins:
                    cnt_i, ids_i = sets.flat(i)
                    keys.append((np.repeat(sid, cnt_i) << 31) | ids_i.astype(np.int64))
                if kind == INTERSECT:
                    allk = np.sort(np.concatenate(keys))
                    r = len(keys)
                    got = allk[: len(allk) - r + 1][allk[r - 1 :] == allk[: len(allk) - r + 1]]
                elif kind == UNION:
                    got = _unique(np.concatenate(keys))
                else:
                    other = _unique(np.concatenate(keys[1:]))
                    pos = np.minimum(np.searchsorted(other, keys[0]), max(len(other) - 1, 0))
                    got = keys[0][other[pos] != keys[0]] if len(other) else keys[0]
                want = (np.repeat(sid, cnt_k) << 31) | ids_k.astype(np.int64)
                bad_plan.append(_bad_sids(want, got, 31))
        last_cnt, last_ids = sets.flat(plan.num_ops - 1)
        a_cnt, a_ids = _flat_lists(q["answer_ids"])
        a_ids = a_ids[np.lexsort((a_ids, np.repeat(np.arange(len(a_cnt)), a_cnt)))]
        bad_plan.append(
            _bad_sids(
                (np.repeat(sid, last_cnt) << 31) | last_ids.astype(np.int64),
                (np.repeat(sid, a_cnt) << 31) | a_ids,
                31,
            )
        )
        ans_cnt.append(last_cnt)
        ans_ids.append(last_ids)
    cat = np.concatenate
    bad_plan.append(_bad_sids(cat(eng_res) if eng_res else np.zeros(0, np.int64), rep_res, 36))
    bad_plan.append(_bad_sids(cat(eng_arg) if eng_arg else np.zeros(0, np.int64), rep_arg, 36))
    bad_plan.extend(bad_special)
    # the final answer lists exactly the answer set's names, in the runtime's order
    nm = _names(runtime)
    a_cnt = cat(ans_cnt)
    a_ids = _by_rank(a_cnt, cat(ans_ids), nm.rank)
    expect = _list_series(np.r_[0, np.cumsum(a_cnt)], nm.names.gather(a_ids).to_arrow(), "e")
    got_names = traj.samples.select("sid", "answer_names")
    if got_names.height == n and np.array_equal(got_names["sid"].to_numpy(), sids):
        same = (got_names["answer_names"] == expect).fill_null(False).to_numpy()
        bad_plan.append(sids[~same])
    else:
        bad_plan.append(sids)
    bad = _unique(cat(bad_plan))
    ok = ~np.isin(sids, bad)
    failures: dict[str, int] = {}
    if not ok.all():
        failures["plan_mismatch"] = int((~ok).sum())
    for reason, b in (("observation_mismatch", bad_obs), ("error_call_succeeded", bad_err)):
        if len(b):
            mask = np.isin(sids, b)
            failures[reason] = int(mask.sum())
            ok &= ~mask
    return ok, failures


def _diff_sids(a: pl.DataFrame, b: pl.DataFrame) -> np.ndarray:
    """Sample ids (column ``sid``) of rows in one frame but not the other (same columns)."""
    a, b = a.unique(), b.unique()
    cols = a.columns
    d = pl.concat([a.join(b, on=cols, how="anti"), b.join(a, on=cols, how="anti")])
    return _unique(d["sid"].to_numpy().astype(np.int64))


def _set_frame(sid: np.ndarray, cnt: np.ndarray, ids: np.ndarray, **cols: Any) -> pl.DataFrame:
    """(sid, id[, cols]) rows of per-sample sets."""
    f = pl.DataFrame({"sid": np.repeat(sid, cnt).astype(np.int64), "id": ids.astype(np.int64)})
    return f.with_columns(**{k: pl.lit(v) for k, v in cols.items()}) if cols else f


def _verify_special(
    items: list[tuple[Plan, pl.DataFrame]],
    st: pl.DataFrame,
    st_pat: np.ndarray,
    r_off: np.ndarray,
    r_val: np.ndarray,
    arg_id: np.ndarray,
    set_keys: dict[str, np.ndarray],
    runtime: ToolRuntime,
) -> np.ndarray:
    """Sample ids whose JOIN or set-operation calls do not recombine to the engine's sets.

    JOIN: per sub-step, the calls use the sub-step's API on exactly the source term's values
    (the anchor, or the candidates the replayed tree calls gave), and the bindings re-joined
    from the replayed links (closing links kept, negated links removed) give the op's set.
    Set operations: r-1 calls of the op's API per sample, ``first`` the first input's set (then
    the previous call's replayed result), ``second`` the next input's set, last result the set.
    """
    names, rel_of, inv_of, is_rel = runtime._api_tables()
    api_idx = dict(zip(names.to_list(), range(names.len()), strict=True))
    set_op_of = {a.name: a.operation for a in runtime.catalog.apis if a.kind == "set_operation"}
    u_all = st["u"].to_numpy().astype(np.int64)
    rd_of_api = {
        a: (int(rel_of[i]) * 2 + int(inv_of[i])) if is_rel[i] else -1 for a, i in api_idx.items()
    }
    st = st.with_columns(
        pl.Series("pat", st_pat),
        pl.col("api").replace_strict(rd_of_api, default=-2, return_dtype=pl.Int64).alias("rd"),
        pl.col("api").replace_strict(set_op_of, default="", return_dtype=pl.String).alias("setop"),
        pl.Series("arg", arg_id[u_all]),
    )
    cnt_u = r_off[1:] - r_off[:-1]
    bad: list[np.ndarray] = []

    def results(frame: pl.DataFrame) -> pl.DataFrame:
        """(the frame's columns but u, id) per replayed result id of its calls."""
        uu = frame["u"].to_numpy().astype(np.int64)
        c = cnt_u[uu]
        vals = r_val[_ranges(r_off[uu], c)].astype(np.int64)
        rep = frame.drop("u").select(pl.all().gather(np.repeat(np.arange(frame.height), c)))
        return rep.with_columns(pl.Series("id", vals))

    for i, (plan, q) in enumerate(items):
        mine = st.filter(pl.col("pat") == i)
        if mine.height == 0:
            continue
        sets = _Sets(q["sets"], plan.num_ops)
        qsid = q["sid"].to_numpy().astype(np.int64)
        rel_ids = _matrix(q["relation_ids"], len(plan.relation_slots))
        for k in range(plan.num_ops):
            kind = int(plan.op_kind[k])
            calls = mine.filter(pl.col("op") == k)
            if kind == JOIN:
                bad.append(_verify_join(plan, k, q, qsid, rel_ids, sets, calls, results))
            elif kind in _SET_OP_API:
                ins = plan.inputs(k)
                calls = calls.select("sid", "pos", "u", "setop")
                want_n = pl.DataFrame({"sid": qsid, "n": len(ins) - 1})
                got_n = calls.group_by("sid").agg(pl.len().cast(pl.Int32).alias("n"))
                bad.append(_diff_sids(want_n.cast({"n": pl.Int32}), got_n))
                bad.append(
                    _unique(
                        calls.filter(
                            (pl.col("setop") != _SET_OP_API[kind])
                            | (pl.col("pos") < 0)
                            | (pl.col("pos") >= len(ins) - 1)
                        )["sid"]
                        .to_numpy()
                        .astype(np.int64)
                    )
                )
                res = results(calls.select("sid", "pos", "u"))
                for part, base in (("first", 0), ("second", 1)):
                    keys = set_keys[part]
                    kf = pl.DataFrame({"u": keys >> 31, "id": keys & ((1 << 31) - 1)})
                    got = calls.select("sid", "pos", pl.col("u").cast(pl.Int64)).join(kf, on="u")
                    got = got.select("sid", pl.col("pos").cast(pl.Int64), "id")
                    want = []
                    for j in range(len(ins) - 1):
                        if part == "first" and j > 0:
                            prev = res.filter(pl.col("pos") == j - 1)
                            want.append(prev.select("sid", pl.lit(j, pl.Int64).alias("pos"), "id"))
                        else:
                            cnt, ids = sets.flat(ins[j + base])
                            want.append(_set_frame(qsid, cnt, ids, pos=j))
                    want_f = pl.concat(
                        [w.select("sid", pl.col("pos").cast(pl.Int64), "id") for w in want]
                    )
                    bad.append(_diff_sids(want_f, got))
                cnt, ids = sets.flat(k)
                last = res.filter(pl.col("pos") == len(ins) - 2).select("sid", "id")
                bad.append(_diff_sids(_set_frame(qsid, cnt, ids), last))
    return _unique(np.concatenate(bad)) if bad else np.zeros(0, np.int64)


def _verify_join(
    plan: Plan,
    k: int,
    q: pl.DataFrame,
    qsid: np.ndarray,
    rel_ids: np.ndarray,
    sets: _Sets,
    calls: pl.DataFrame,
    results: Any,
) -> np.ndarray:
    """Sample ids whose JOIN op ``k`` calls do not re-join to the engine's set (see above)."""
    steps_k = join_steps(plan, k)
    anc = _matrix(q["anchor_ids"], len(plan.anchor_slots))
    row_of = pl.DataFrame({"sid": qsid, "row": np.arange(len(qsid))})
    calls = calls.join(row_of, on="sid", how="left")
    bad: list[np.ndarray] = [
        _unique(
            calls.filter(~pl.col("sub").is_between(0, len(steps_k) - 1))["sid"]
            .to_numpy()
            .astype(np.int64)
        )
    ]

    def col(t: int) -> str:
        return f"v{t}" if t >= 0 else f"a{-1 - t}"

    bind = pl.DataFrame(
        {"sid": qsid, **{col(-1 - j): anc[:, j].astype(np.int64) for j in range(anc.shape[1])}}
    )
    cand: dict[int, pl.DataFrame] = {}
    for s_i, (role, slot, d, src, dst) in enumerate(steps_k):
        sc = calls.filter(pl.col("sub") == s_i)
        # the sub-step's API on every source value, and on nothing else
        rows = sc["row"].to_numpy().astype(np.int64)
        want_rd = rel_ids[rows, slot] * 2 + d
        bad.append(_unique(sc["sid"].to_numpy().astype(np.int64)[sc["rd"].to_numpy() != want_rd]))
        if src < 0:
            want_src = pl.DataFrame({"sid": qsid, "id": anc[:, -1 - src].astype(np.int64)})
        else:
            want_src = cand[src]
        bad.append(_diff_sids(want_src, sc.select("sid", pl.col("arg").cast(pl.Int64).alias("id"))))
        edges = results(sc.select("sid", pl.col("arg").cast(pl.Int64).alias(col(src)), "u"))
        edges = edges.rename({"id": col(dst)}).unique()
        if role == _TREE:
            cand[dst] = edges.select("sid", pl.col(col(dst)).alias("id")).unique()
            bind = bind.join(edges, on=["sid", col(src)], how="inner")
        elif role == _CLOSE:
            bind = bind.join(edges, on=["sid", col(src), col(dst)], how="semi")
        else:
            bind = bind.join(edges, on=["sid", col(src), col(dst)], how="anti")
    join = plan.joins[int(plan.op_arg[k])]
    got = bind.select("sid", pl.col(col(int(join.answer_var))).alias("id"))
    cnt, ids = sets.flat(k)
    bad.append(_diff_sids(_set_frame(qsid, cnt, ids), got))
    return _unique(np.concatenate(bad))


def _resolve(runtime: ToolRuntime, name: str) -> int:
    """Entity id the runtime resolves a name to, or -1."""
    try:
        return int(runtime.resolve(name))
    except Exception:
        return -1
