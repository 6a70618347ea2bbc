"""Replay verification of trajectories: every call re-run, every op's set recombined.

Verification (:func:`verify`) is independent of the builder: every distinct (API, arguments)
call is replayed through the runtime (vectorised, cross-checked byte for byte against
:meth:`ToolRuntime.call` on a seeded few) and must give the recorded observation byte for byte;
the replayed results are then re-combined along the plan and must give every op's engine set
(JOIN ops: the bindings are re-joined with Polars from the replayed links), the final one equal
to the exact answer set. Samples that fail are dropped and counted by reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import polars as pl

from kg2tool.arrays import by_rank, flat_lists, list_matrix, list_series, ranges, sorted_unique
from kg2tool.errors import Kg2ToolError
from kg2tool.patterns import (
    DIFFERENCE,
    INTERSECT,
    JOIN,
    JOIN_CLOSE,
    JOIN_TREE,
    PROJECT,
    UNION,
    Plan,
    join_steps,
)
from kg2tool.samples.calls import SET_OP_API, OpSets, Trajectories, name_tables, neighbor_lists
from kg2tool.samples.questions import mix_hash
from kg2tool.tools.catalog import LIST_KIND
from kg2tool.tools.runtime import ToolRuntime

__all__ = ["CROSS_CHECK_CALLS", "Replayed", "replay_calls", "verify", "verify_many"]

# Seeds of the fixed choice of fast-path calls that are also replayed on the runtime
_LIST_CHECK_SALT = 0x1157  # list calls
_CROSS_CHECK_SALT = 0xC0C  # relation calls
_SET_CHECK_SALT = 0x5E7  # set-operation calls


def verify(
    plan: Plan, queries: pl.DataFrame, traj: Trajectories, runtime: ToolRuntime
) -> tuple[np.ndarray, dict[str, int]]:
    """Replay every call and recompute the plan from replayed results: (ok mask per sid, failures)."""
    return verify_many([(plan, queries)], traj, runtime)


# Distinct calls replayed both ways (vectorised and runtime.call) to cross-check the encoder.
CROSS_CHECK_CALLS = 32
_ARGS_RE = r'^\{"([A-Za-z0-9_]+)":("(?:[^"\\]|\\.)*")\}$'


@dataclass
class Replayed:
    """Distinct calls replayed: per call its output text (``observation``, as
    :meth:`CallResult.to_json`), whether it succeeded, its result ids (``off``, ``val``, in
    result order) and argument entity (``arg_id``, or -1); the argument keys ``row << 31 | id``
    of set-operation calls (``set_keys``: first, second) and list calls (``list_keys``)."""

    observation: pl.Series
    ok: np.ndarray
    off: np.ndarray
    val: np.ndarray
    arg_id: np.ndarray
    set_keys: dict[str, np.ndarray]
    list_keys: np.ndarray


def replay_calls(calls: pl.DataFrame, runtime: ToolRuntime) -> Replayed:
    """Replay distinct calls (columns ``api``, ``arguments`` as JSON text) through the runtime.

    List calls written as the builder writes them (``{"<param>":[display names]}``) are replayed
    vectorised (:func:`_replay_list_calls`) and a seeded few through :meth:`ToolRuntime.call`
    too; other list calls through :meth:`ToolRuntime.call_many`.

    Calls are parsed from their recorded JSON arguments and names resolved as the runtime does
    (display name first); those in the exact shape the builder writes run through
    :meth:`ToolRuntime.call_ids_batch` and :meth:`ToolRuntime.encode_results`, every other one
    (errors, unusual names) through :meth:`ToolRuntime.call_many`. A seeded few of the fast ones
    are replayed through :meth:`ToolRuntime.call` too, and must agree byte for byte.
    """
    nm = name_tables(runtime)
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
        pick = list_fast[np.argsort(mix_hash(_LIST_CHECK_SALT, list_fast), kind="stable")[:8]]
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
        pick = fast[
            np.argsort(mix_hash(_CROSS_CHECK_SALT, fast), kind="stable")[:CROSS_CHECK_CALLS]
        ]
        if len(set_fast):
            pick = np.r_[pick, set_fast[np.argsort(mix_hash(_SET_CHECK_SALT, set_fast))[:8]]]
        _cross_check(calls, obs, pick, runtime, "")
    if len(set_fast) and not len(fast):  # cross-check the set-operation fast path
        pick = set_fast[np.argsort(mix_hash(_SET_CHECK_SALT, set_fast), kind="stable")[:8]]
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
        _slow_list_args(sub, slow, runtime, set_args, list_keys)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    values = np.zeros(int(offsets[-1]), np.int32)
    for rows, off, vals in pieces:
        seg = np.diff(off)
        values[np.repeat(offsets[rows] - off[:-1], seg) + np.arange(len(vals))] = vals
    set_keys = {
        part: sorted_unique(np.concatenate(set_args[part]))
        if set_args[part]
        else np.zeros(0, np.int64)
        for part in ("first", "second")
    }
    return Replayed(
        obs, ok, offsets, values, arg_id, set_keys, sorted_unique(np.concatenate(list_keys))
    )


def _slow_list_args(
    sub: pl.DataFrame, rows: np.ndarray, runtime: ToolRuntime, set_args: dict, list_keys: list
) -> None:
    """Argument keys (``row << 31 | id``) of the set-operation and list calls ``rows`` that
    the vectorised paths left (``sub``: their api, arguments), resolved as the runtime does;
    appended to ``set_args["first"/"second"]`` and ``list_keys`` (unparsable ones skipped)."""
    set_api = {a.name for a in runtime.catalog.apis if a.kind == "set_operation"}
    list_api = {a.name for a in runtime.catalog.apis if a.kind == LIST_KIND}
    for i, (api, args) in zip(rows, sub.select("api", "arguments").iter_rows(), strict=True):
        if api in list_api:
            try:
                (names,) = orjson.loads(args).values()
                ids = [_resolve(runtime, x) for x in names]
                list_keys.append((np.full(len(ids), i, np.int64) << 31) | np.array(ids, np.int64))
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
    off, val = neighbor_lists(runtime.kg, erd // 2, (erd % 2).astype(bool), eid)
    key = sorted_unique((np.repeat(eu, np.diff(off)) << 31) | np.asarray(val, np.int64))
    cnt = np.bincount(np.searchsorted(rows, key >> 31), minlength=len(rows)).astype(np.int64)
    ids = by_rank(cnt, key & ((1 << 31) - 1), runtime.rank).astype(np.int32)
    return rows, (np.r_[0, np.cumsum(cnt)].astype(np.int64), ids), sorted_unique((eu << 31) | eid)


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
        keys[part] = sorted_unique((e["u"].to_numpy().astype(np.int64) << 31) | e["eid"].to_numpy())
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
    res = sorted_unique(
        np.concatenate([a[(op_a == 0) & in_b], a[(op_a == 2) & ~in_b], a[op_a == 1], b[op_b == 1]])
    )
    rows_sorted = np.sort(rows)
    rr = np.searchsorted(rows_sorted, res >> 31)
    cnt = np.bincount(rr, minlength=len(rows)).astype(np.int64)
    ids = by_rank(cnt, (res & ((1 << 31) - 1)).astype(np.int64), runtime.rank).astype(np.int32)
    out["result"] = (np.r_[0, np.cumsum(cnt)].astype(np.int64), ids)
    out["first"].append(a)
    out["second"].append(b)
    return rows_sorted, out


def _bad_sids(engine: np.ndarray, replayed: np.ndarray, shift: int) -> np.ndarray:
    """Sample ids whose key groups differ between two key arrays (keys: sid << shift | ...)."""
    a, b = sorted_unique(engine), sorted_unique(replayed)
    if len(a) == len(b) and np.array_equal(a, b):
        return np.zeros(0, np.int64)
    both = np.sort(np.concatenate([a, b]))
    dup = np.r_[both[1:] == both[:-1], False] | np.r_[False, both[1:] == both[:-1]]
    return sorted_unique(both[~dup] >> np.int64(shift))


def verify_many(
    items: list[tuple[Plan, pl.DataFrame]], traj: Trajectories, runtime: ToolRuntime
) -> tuple[np.ndarray, dict[str, int]]:
    """:func:`verify` over several patterns' queries at once (``sid`` unique across frames).

    1. Every distinct recorded call (API, arguments JSON) is replayed (see :func:`replay_calls`) and
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
    rep = replay_calls(uniq, runtime)
    obs, ok_call, r_off, r_val, arg_id = rep.observation, rep.ok, rep.off, rep.val, rep.arg_id
    set_keys, list_keys = rep.set_keys, rep.list_keys
    u = st["u"].to_numpy().astype(np.int64)
    st_sid = st["sid"].to_numpy().astype(np.int64)
    is_err = (st["kind"] == "error").to_numpy()
    bad_obs = sorted_unique(st_sid[(st["observation"] != obs.gather(u)).fill_null(True).to_numpy()])
    bad_err = sorted_unique(st_sid[is_err == ok_call[u]])
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
    bad_special = [sorted_unique(st_sid[(~is_err) & (st_kind < 0)])]
    if special.any():
        bad_special.append(
            _verify_special(items, st.filter(pl.Series(special)), st_pat[special], r_off, r_val,
                            arg_id, set_keys, runtime)
        )  # fmt: skip
    # replayed keys: (sid, op, result id) and (sid, op, argument id) of every PROJECT call
    call = (~is_err) & (st_kind == PROJECT)
    c_sid, c_op, c_u = st_sid[call], st["op"].to_numpy().astype(np.int64)[call], u[call]
    cnt = r_off[c_u + 1] - r_off[c_u]
    res = r_val[ranges(r_off[c_u], cnt)].astype(np.int64)
    rep_res = (np.repeat(c_sid, cnt) << 36) | (np.repeat(c_op, cnt) << 31) | res
    rep_arg = (c_sid << 36) | (c_op << 31) | np.where(arg_id[c_u] >= 0, arg_id[c_u], (1 << 31) - 1)
    list_names = [a.name for a in runtime.catalog.apis if a.kind == LIST_KIND]
    if list_names:  # a list call's arguments: every listed entity
        c_list = uniq["api"].is_in(list_names).to_numpy()[c_u]
        lu = c_u[c_list]
        lo = np.searchsorted(list_keys >> 31, lu, side="left")
        ln = np.searchsorted(list_keys >> 31, lu, side="right") - lo
        l_arg = list_keys[ranges(lo, ln)] & ((1 << 31) - 1)
        rep_arg = np.concatenate(
            [
                rep_arg[~c_list],
                (np.repeat(c_sid[c_list], ln) << 36) | (np.repeat(c_op[c_list], ln) << 31) | l_arg,
            ]
        )
    eng_res, eng_arg, bad_plan, ans_cnt, ans_ids = _engine_keys(items)
    cat = np.concatenate
    bad_plan.append(_bad_sids(cat(eng_res) if eng_res else np.zeros(0, np.int64), rep_res, 36))
    bad_plan.append(_bad_sids(cat(eng_arg) if eng_arg else np.zeros(0, np.int64), rep_arg, 36))
    bad_plan.extend(bad_special)
    # the final answer lists exactly the answer set's names, in the runtime's order
    nm = name_tables(runtime)
    a_cnt = cat(ans_cnt)
    a_ids = by_rank(a_cnt, cat(ans_ids), nm.rank)
    expect = list_series(np.r_[0, np.cumsum(a_cnt)], nm.names.gather(a_ids).to_arrow(), "e")
    got_names = traj.samples.select("sid", "answer_names")
    if got_names.height == n and np.array_equal(got_names["sid"].to_numpy(), sids):
        same = (got_names["answer_names"] == expect).fill_null(False).to_numpy()
        bad_plan.append(sids[~same])
    else:
        bad_plan.append(sids)
    bad = sorted_unique(cat(bad_plan))
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


def _engine_keys(items: list[tuple[Plan, pl.DataFrame]]) -> tuple[list, list, list, list, list]:
    """From the engine's sets: the (sid << 36 | op << 31 | id) keys of every PROJECT op's
    results and arguments, the samples whose set ops or answer sets do not recombine, and
    per pattern the last op's sets (counts, ids)."""
    eng_res: list[np.ndarray] = []
    eng_arg: list[np.ndarray] = []
    bad_plan: list[np.ndarray] = []
    ans_cnt: list[np.ndarray] = []
    ans_ids: list[np.ndarray] = []
    for plan, q in items:
        if q.height == 0:
            continue
        sets = OpSets(q["sets"], plan.num_ops)
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
                    got = sorted_unique(np.concatenate(keys))
                else:
                    other = sorted_unique(np.concatenate(keys[1:]))
                    pos = np.minimum(np.searchsorted(other, keys[0]), max(len(other) - 1, 0))
                    got = keys[0][other[pos] != keys[0]] if len(other) else keys[0]
                want = (np.repeat(sid, cnt_k) << 31) | ids_k.astype(np.int64)
                bad_plan.append(_bad_sids(want, got, 31))
        last_cnt, last_ids = sets.flat(plan.num_ops - 1)
        a_cnt, a_ids = flat_lists(q["answer_ids"])
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
    return eng_res, eng_arg, bad_plan, ans_cnt, ans_ids


def _diff_sids(a: pl.DataFrame, b: pl.DataFrame) -> np.ndarray:
    """Sample ids (column ``sid``) of rows in one frame but not the other (same columns)."""
    a, b = a.unique(), b.unique()
    cols = a.columns
    d = pl.concat([a.join(b, on=cols, how="anti"), b.join(a, on=cols, how="anti")])
    return sorted_unique(d["sid"].to_numpy().astype(np.int64))


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
        vals = r_val[ranges(r_off[uu], c)].astype(np.int64)
        rep = frame.drop("u").select(pl.all().gather(np.repeat(np.arange(frame.height), c)))
        return rep.with_columns(pl.Series("id", vals))

    for i, (plan, q) in enumerate(items):
        mine = st.filter(pl.col("pat") == i)
        if mine.height == 0:
            continue
        sets = OpSets(q["sets"], plan.num_ops)
        qsid = q["sid"].to_numpy().astype(np.int64)
        rel_ids = list_matrix(q["relation_ids"], len(plan.relation_slots))
        for k in range(plan.num_ops):
            kind = int(plan.op_kind[k])
            calls = mine.filter(pl.col("op") == k)
            if kind == JOIN:
                bad.append(_verify_join(plan, k, q, qsid, rel_ids, sets, calls, results))
            elif kind in SET_OP_API:
                ins = plan.inputs(k)
                calls = calls.select("sid", "pos", "u", "setop")
                want_n = pl.DataFrame({"sid": qsid, "n": len(ins) - 1})
                got_n = calls.group_by("sid").agg(pl.len().cast(pl.Int32).alias("n"))
                bad.append(_diff_sids(want_n.cast({"n": pl.Int32}), got_n))
                bad.append(
                    sorted_unique(
                        calls.filter(
                            (pl.col("setop") != SET_OP_API[kind])
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
    return sorted_unique(np.concatenate(bad)) if bad else np.zeros(0, np.int64)


def _verify_join(
    plan: Plan,
    k: int,
    q: pl.DataFrame,
    qsid: np.ndarray,
    rel_ids: np.ndarray,
    sets: OpSets,
    calls: pl.DataFrame,
    results: Any,
) -> np.ndarray:
    """Sample ids whose JOIN op ``k`` calls do not re-join to the engine's set (see above)."""
    steps_k = join_steps(plan, k)
    anc = list_matrix(q["anchor_ids"], len(plan.anchor_slots))
    row_of = pl.DataFrame({"sid": qsid, "row": np.arange(len(qsid))})
    calls = calls.join(row_of, on="sid", how="left")
    bad: list[np.ndarray] = [
        sorted_unique(
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
        bad.append(
            sorted_unique(sc["sid"].to_numpy().astype(np.int64)[sc["rd"].to_numpy() != want_rd])
        )
        if src < 0:
            want_src = pl.DataFrame({"sid": qsid, "id": anc[:, -1 - src].astype(np.int64)})
        else:
            want_src = cand[src]
        bad.append(_diff_sids(want_src, sc.select("sid", pl.col("arg").cast(pl.Int64).alias("id"))))
        edges = results(sc.select("sid", pl.col("arg").cast(pl.Int64).alias(col(src)), "u"))
        edges = edges.rename({"id": col(dst)}).unique()
        if role == JOIN_TREE:
            cand[dst] = edges.select("sid", pl.col(col(dst)).alias("id")).unique()
            bind = bind.join(edges, on=["sid", col(src)], how="inner")
        elif role == JOIN_CLOSE:
            bind = bind.join(edges, on=["sid", col(src), col(dst)], how="semi")
        else:
            bind = bind.join(edges, on=["sid", col(src), col(dst)], how="anti")
    join = plan.joins[int(plan.op_arg[k])]
    got = bind.select("sid", pl.col(col(int(join.answer_var))).alias("id"))
    cnt, ids = sets.flat(k)
    bad.append(_diff_sids(_set_frame(qsid, cnt, ids), got))
    return sorted_unique(np.concatenate(bad))


def _resolve(runtime: ToolRuntime, name: str) -> int:
    """Entity id the runtime resolves a name to, or -1."""
    try:
        return int(runtime.resolve(name))
    except Exception:
        return -1
