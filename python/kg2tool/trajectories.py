"""Solution paths from executed plans, and their replay verification, as long Polars frames.

A trajectory follows the plan op by op. Every ``PROJECT`` op makes one tool call per entity of
its input set (in the runtime's (label, key) order), through the API of its relation slot and
direction; the observation is the runtime's JSON output (a sorted list of display names, which
a later call accepts back exactly). Set operations (and the union of several calls of one op)
are explained in the thought text of the next call, or in the final answer, which lists every
answer by display name. The catalogue's relation APIs take one entity, so there is no batched
call style; ``JOIN`` (cyclic) and ``TYPE_FILTER`` ops are not turned into trajectories:
:class:`UnsupportedPlanError` says so and the dataset builder skips those patterns.

Verification (:func:`verify`) is independent of the builder: every distinct (API, arguments)
call is replayed through :meth:`ToolRuntime.call_many` (the model-facing path: JSON argument
parsing, name resolution, orjson output) and must give the recorded observation byte for byte;
the replayed results are then re-combined with Polars list set operations along the plan and
must give every op's engine set, the final one equal to the exact answer set. Samples that fail
are dropped and counted by reason.

Frames: ``steps`` has one row per call (``sid``, ``step``, ``op``, ``kind`` "call" | "error",
``api``, ``param``, ``argument``, ``arguments`` (JSON object text), ``observation``,
``thought``); ``samples`` one row per sample (``sid``, ``final_text``, ``answer_names``,
``num_calls``, ``trace``, ``grounding``, ``empty``, ``recovery``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from kg2tool.errors import Kg2ToolError
from kg2tool.patterns import ANCHOR, DIFFERENCE, INTERSECT, PROJECT, UNION, Plan
from kg2tool.runtime import ToolRuntime
from kg2tool.textops import Int, Join, Str, Strings, concat, concat_built
from kg2tool.verbalize import RelationLexicon, mix_hash, name_list_text

__all__ = [
    "SUPPORTED_OPS",
    "Trajectories",
    "UnsupportedPlanError",
    "build_trajectories",
    "build_trajectories_many",
    "check_plan",
    "json_str",
    "verify",
    "verify_many",
]

SUPPORTED_OPS = (ANCHOR, PROJECT, INTERSECT, UNION, DIFFERENCE)


class UnsupportedPlanError(Kg2ToolError):
    """The plan has an op trajectories cannot express (JOIN for cyclic patterns, TYPE_FILTER)."""


def check_plan(plan: Plan) -> None:
    """Raise UnsupportedPlanError unless every op is ANCHOR/PROJECT/INTERSECT/UNION/DIFFERENCE."""
    bad = sorted({int(k) for k in plan.op_kind} - set(SUPPORTED_OPS))
    if bad:
        from kg2tool.patterns import OP_NAMES

        raise UnsupportedPlanError(
            f"pattern {plan.name or plan.formula!r} compiles to {', '.join(OP_NAMES[b] for b in bad)}"
            " ops, which trajectories do not support yet (one call per entity cannot follow a "
            "cyclic join); use a tree pattern"
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
    values = _sorted_lists(offsets, values, runtime.rank).astype(np.int32)
    return runtime.encode_results(offsets, values), offsets, values


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
) -> Trajectories:
    """Trajectories of one pattern's queries (columns sid, qid, relation_ids, anchor_ids, sets).

    ``error_ratio``: share of samples whose first call uses a misspelled anchor name, gets the
    runtime's real error, then is corrected.
    """
    return build_trajectories_many(
        [(plan, queries)], runtime, lexicon, seed=seed, error_ratio=error_ratio
    )


_EXPL_PROJECT, _EXPL_INTERSECT, _EXPL_UNION, _EXPL_DIFFERENCE = 0, 1, 2, 3
_REASONS = [
    "the last lookup returned no entity",
    "the lists have no entity in common",
    "every lookup came back empty",
    "every candidate is excluded",
]
_KIND_CODE = {PROJECT: 0, INTERSECT: 1, UNION: 2, DIFFERENCE: 3}


def _api_tables(runtime: ToolRuntime) -> tuple[pl.Series, pl.Series]:
    """API name and parameter per relation id * 2 + direction."""
    kg, catalog = runtime.kg, runtime.catalog
    api_names, api_params = [], []
    for key in kg.relations["key"].to_list():
        for d in ("forward", "inverse"):
            a = catalog.api_for(key, d)
            api_names.append(a.name)
            api_params.append(a.param_names[0])
    return pl.Series(api_names, dtype=pl.String), pl.Series(api_params, dtype=pl.String)


def build_trajectories_many(
    items: list[tuple[Plan, pl.DataFrame]],
    runtime: ToolRuntime,
    lexicon: RelationLexicon,
    *,
    seed: int = 0,
    error_ratio: float = 0.0,
) -> Trajectories:
    """Trajectories of several patterns' queries at once (``sid`` unique across all frames,
    increasing); the same rows as :func:`build_trajectories` per pattern, concatenated.

    The structure (which call, in which order, which explanation where) is computed with
    numpy per pattern; every text is then built by one Polars pass over all patterns.
    """
    kg = runtime.kg
    nm = _names(runtime)
    rank = nm.rank
    c_sid, c_op, c_pos, c_rd, c_ent, c_m, c_anchor = ([] for _ in range(7))
    e_sid, e_after, e_kind, e_nin, e_at, e_cnt, e_ids = ([] for _ in range(7))
    a_sid, a_cnt, a_ids, a_kind = [], [], [], []
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
        for k in range(ops):
            if kinds[k] != PROJECT:
                continue
            j = plan.inputs(k)[0]
            cnt, ids = sets.flat(j)
            ids = _by_rank(cnt, ids, rank)
            has_calls[:, k] = cnt > 0
            c_sid.append(np.repeat(sid, cnt))
            c_op.append(np.full(len(ids), k, np.int32))
            c_pos.append(np.arange(len(ids)) - np.repeat(np.cumsum(cnt) - cnt, cnt))
            rd = rel_ids[:, int(plan.op_arg[k])] * 2 + int(plan.op_dir[k])
            c_rd.append(np.repeat(rd, cnt))
            c_ent.append(ids.astype(np.int64))
            c_m.append(np.repeat(cnt, cnt))
            c_anchor.append(np.full(len(ids), kinds[j] == ANCHOR))
        for k in range(ops):
            kind = kinds[k]
            if kind == ANCHOR:
                continue
            ins = plan.inputs(k)
            if kind == PROJECT and kinds[ins[0]] == ANCHOR:
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
            e_sid.append(sid)
            e_after.append(np.full(n, k, np.int32))
            e_kind.append(np.full(n, _KIND_CODE[kind], np.int8))
            e_nin.append(nin)
            e_at.append(at)
            e_cnt.append(cnt)
            e_ids.append(_by_rank(cnt, ids, rank))
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
    }
    order = np.lexsort((c["pos"], c["op"], c["sid"]))
    c = {k: v[order] for k, v in c.items()}
    ncalls = len(order)
    # distinct calls -> observations
    key = c["rd"] * max(kg.num_entities, 1) + c["ent"]
    ukey, uid = _unique_inverse(key)
    urd, uent = ukey // max(kg.num_entities, 1), ukey % max(kg.num_entities, 1)
    obs, r_off, r_val = _observations(kg, urd // 2, (urd % 2).astype(bool), uent, runtime)
    api_name_s, api_param_s = _api_tables(runtime)
    lex = lexicon.frame
    rd, ent = c["rd"], c["ent"]

    # explanations, attached to the first call of the next op with calls, or to the final text
    e_order = np.lexsort((cat(e_after), cat(e_sid)))
    ex_sid = cat(e_sid)[e_order]
    ex_at = cat(e_at)[e_order]
    ex_cnt_raw = cat(e_cnt)
    ex_names = _list_series(
        np.r_[0, np.cumsum(ex_cnt_raw)], nm.names.gather(cat(e_ids)).to_arrow(), "names"
    )[e_order]
    expl = pl.DataFrame(
        {
            "names": ex_names,
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
    ex_text = expl.select(text.alias("t"))["t"]
    keep = ex_text.is_not_null().to_numpy()
    # target call row: first call of (sid, at); calls are sorted by (sid, op, pos)
    call_key = c["sid"] * 64 + c["op"]
    to_call = keep & (ex_at >= 0)
    tgt = np.searchsorted(call_key, ex_sid[to_call] * 64 + ex_at[to_call])
    pre = pl.repeat(None, ncalls, dtype=pl.String, eager=True)
    if to_call.any():
        g = pl.DataFrame({"tgt": tgt, "t": ex_text.filter(pl.Series(to_call))})
        g = g.group_by("tgt", maintain_order=True).agg(pl.col("t").str.join(" "))
        pre = pre.scatter(g["tgt"].to_numpy(), g["t"])
    to_final = keep & (ex_at < 0)
    final_pre = pl.repeat(None, len(sid_all), dtype=pl.String, eager=True)
    if to_final.any():
        g = pl.DataFrame({"sid": ex_sid[to_final], "t": ex_text.filter(pl.Series(to_final))})
        g = g.group_by("sid", maintain_order=True).agg(pl.col("t").str.join(" "))
        final_pre = final_pre.scatter(np.searchsorted(sid_all, g["sid"].to_numpy()), g["t"])

    phrase = pl.concat_str(
        pl.lit(lex["prefix"].gather(rd)),
        pl.lit(nm.names.gather(ent)),
        pl.lit(lex["suffix"].gather(rd)),
    )
    thought = (
        pl.when(pl.col("from_anchor"))
        .then(pl.concat_str(pl.lit("I need to find "), phrase, pl.lit(".")))
        .when(pl.col("pos") == 0)
        .then(
            pl.concat_str(
                pl.lit("Now I look up "),
                phrase,
                pl.when(pl.col("m") > 1)
                .then(pl.format(", the first of the {} entities found so far.", pl.col("m")))
                .otherwise(pl.lit(".")),
            )
        )
        .otherwise(pl.concat_str(pl.lit("Next, "), phrase, pl.lit(".")))
    )
    thought = (
        pl.when(pl.col("pre").is_not_null())
        .then(pl.concat_str(pl.col("pre"), pl.lit(" "), thought))
        .otherwise(thought)
    )
    param = api_param_s.gather(rd)
    steps = pl.DataFrame(
        {
            "sid": c["sid"],
            "op": c["op"],
            "pos": c["pos"],
            "m": c["m"],
            "from_anchor": c["from_anchor"],
            "pre": pre,
        }
    ).select(
        "sid",
        "op",
        "pos",
        pl.lit("call").alias("kind"),
        pl.lit(api_name_s.gather(rd)).alias("api"),
        pl.lit(param).alias("param"),
        pl.lit(nm.names.gather(ent)).alias("argument"),
        pl.concat_str(
            pl.lit('{"'), pl.lit(param), pl.lit('":'), pl.lit(nm.encoded.gather(ent)), pl.lit("}")
        ).alias("arguments"),
        pl.lit(obs.gather(uid)).alias("observation"),
        thought.alias("thought"),
        pl.lit(pl.Series(rd)).alias("rd"),
        pl.lit(pl.Series(ent)).alias("ent"),
        pl.lit(pl.Series(uid.astype(np.int64))).alias("uid"),
    )

    # final answer
    ans_cnt = cat(a_cnt)
    ans_names = _list_series(
        np.r_[0, np.cumsum(ans_cnt)], nm.names.gather(cat(a_ids)).to_arrow(), "answer_names"
    )
    na = pl.col("answer_names").list.len()
    reason = pl.lit(pl.Series(_REASONS, dtype=pl.String).gather(cat(a_kind, np.int64)))
    answer_sentence = (
        pl.when(na == 0)
        .then(pl.concat_str(pl.lit("So no entity satisfies the question: "), reason, pl.lit(".")))
        .when(na == 1)
        .then(
            pl.concat_str(
                pl.lit("So the answer is "), name_list_text(pl.col("answer_names")), pl.lit(".")
            )
        )
        .otherwise(
            pl.concat_str(
                pl.format("So the {} answers are ", na),
                name_list_text(pl.col("answer_names")),
                pl.lit("."),
            )
        )
    )
    samples = pl.DataFrame(
        {"sid": sid_all, "answer_names": ans_names, "final_pre": final_pre}
    ).select(
        "sid",
        "answer_names",
        pl.when(pl.col("final_pre").is_not_null())
        .then(pl.concat_str(pl.col("final_pre"), pl.lit(" "), answer_sentence))
        .otherwise(answer_sentence)
        .alias("final_text"),
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
    counts = np.diff(off)
    rel = np.repeat(rd // 2, counts)
    inv = np.repeat(rd % 2 == 1, counts)
    arg = np.repeat(ent, counts)
    head = np.where(inv, val, arg)
    tail = np.where(inv, arg, val)
    rkeys = pl.Series([orjson.dumps(k).decode() for k in kg.relations["key"].to_list()])
    s = pl.select(
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
    return _joined(off, s, "triples")


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
    if first.height == 0:
        return steps, pl.Series("recovery", np.zeros(queries.height, bool))
    bad = _misspell(first["argument"], first["h"].to_numpy())
    first = first.with_columns(bad.alias("bad"))
    uniq = first.select("api", "param", "bad").unique(maintain_order=True)
    results = runtime.call_many((a, {p: b}) for a, p, b in uniq.iter_rows())
    uniq = uniq.with_columns(
        pl.Series("err_obs", [r.to_json() for r in results]),
        pl.Series("failed", [not r.ok for r in results]),
    )
    first = first.join(uniq, on=["api", "param", "bad"], how="left").filter(pl.col("failed"))
    err = first.select(
        "sid",
        "op",
        (pl.col("pos") - 1).alias("pos"),
        pl.lit("error").alias("kind"),
        "api",
        "param",
        pl.col("bad").alias("argument"),
        pl.concat_str(
            pl.lit('{"'), pl.col("param"), pl.lit('":'), json_str(pl.col("bad")), pl.lit("}")
        ).alias("arguments"),
        pl.col("err_obs").alias("observation"),
        "thought",
        "rd",
        "ent",
        pl.lit(None, pl.Int64).alias("uid"),
    )
    fix = first.select(
        "sid",
        "op",
        "pos",
        pl.concat_str(
            pl.lit("The call failed: "),
            pl.col("err_obs").str.json_path_match("$.message"),
            pl.lit(". The exact name is "),
            pl.col("argument"),
            pl.lit(", so I call again with it."),
        ).alias("fix"),
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
) -> tuple[pl.Series, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Replay distinct (api, arguments) calls: (observation text, ok, result offsets, result ids,
    argument entity id or -1).

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
    fast = np.flatnonzero(fast_mask)
    slow = np.flatnonzero(~fast_mask)
    counts = np.zeros(m, np.int64)
    arg_id = np.full(m, -1, np.int64)
    ok = np.ones(m, bool)
    obs = pl.repeat(None, m, dtype=pl.String, eager=True)
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, offsets, values)
    if len(fast):
        f = parsed[fast]
        eid = f["eid"].to_numpy().astype(np.int64)
        off, vals = runtime.call_ids_batch(f["api"], eid)
        obs = obs.scatter(fast, runtime.encode_results(off, vals))
        counts[fast] = np.diff(off)
        arg_id[fast] = eid
        pieces.append((fast, off, vals))
        pick = fast[np.argsort(mix_hash(0xC0C, fast), kind="stable")[:CROSS_CHECK_CALLS]]
        sub = calls[pick]
        for (api, args), want in zip(
            sub.select("api", "arguments").iter_rows(), obs.gather(pick).to_list(), strict=True
        ):
            got = runtime.call(api, args).to_json()
            if got != want:
                raise Kg2ToolError(
                    f"vectorised replay disagrees with runtime.call for {api}({args}): "
                    f"{want[:80]} != {got[:80]}"
                )
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
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    values = np.zeros(int(offsets[-1]), np.int32)
    for rows, off, vals in pieces:
        seg = np.diff(off)
        values[np.repeat(offsets[rows] - off[:-1], seg) + np.arange(len(vals))] = vals
    return obs, ok, offsets, values, arg_id


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
       set, and the entities the recorded arguments resolve to its input set; per set op, the
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
    st = steps.select("sid", "op", "kind", "api", "arguments", "observation").join(
        uniq.with_row_index("u"), on=["api", "arguments"], how="left", maintain_order="left"
    )
    obs, ok_call, r_off, r_val, arg_id = _replay(uniq, runtime)
    u = st["u"].to_numpy().astype(np.int64)
    st_sid = st["sid"].to_numpy().astype(np.int64)
    is_err = (st["kind"] == "error").to_numpy()
    bad_obs = _unique(st_sid[(st["observation"] != obs.gather(u)).fill_null(True).to_numpy()])
    bad_err = _unique(st_sid[is_err == ok_call[u]])
    # replayed keys: (sid, op, result id) and (sid, op, argument id) of every non-error call
    call = ~is_err
    c_sid, c_op, c_u = st_sid[call], st["op"].to_numpy().astype(np.int64)[call], u[call]
    cnt = r_off[c_u + 1] - r_off[c_u]
    res = r_val[_ranges(r_off[c_u], cnt)].astype(np.int64)
    rep_res = (np.repeat(c_sid, cnt) << 36) | (np.repeat(c_op, cnt) << 31) | res
    rep_arg = (c_sid << 36) | (c_op << 31) | np.where(arg_id[c_u] >= 0, arg_id[c_u], (1 << 31) - 1)
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


def _resolve(runtime: ToolRuntime, name: str) -> int:
    """Entity id the runtime resolves a name to, or -1."""
    try:
        return int(runtime.resolve(name))
    except Exception:
        return -1
