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

import numpy as np
import polars as pl
import pyarrow as pa

from kg2tool.errors import Kg2ToolError
from kg2tool.patterns import ANCHOR, DIFFERENCE, INTERSECT, PROJECT, UNION, Plan
from kg2tool.runtime import ToolRuntime
from kg2tool.verbalize import RelationLexicon, mix_hash, name_list_text

__all__ = [
    "SUPPORTED_OPS",
    "Trajectories",
    "UnsupportedPlanError",
    "build_trajectories",
    "check_plan",
    "json_str",
    "verify",
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


_NAME_CACHE: dict[int, _Names] = {}


def _names(runtime: ToolRuntime) -> _Names:
    """Per-entity name tables of a runtime (built once per runtime)."""
    got = _NAME_CACHE.get(id(runtime))
    if got is None:
        names = pl.Series("name", runtime.names, dtype=pl.String)
        keys = pl.Series("key", runtime.keys, dtype=pl.String)
        enc = pl.select(json_str(pl.lit(names))).to_series()
        kenc = pl.select(json_str(pl.lit(keys))).to_series()
        got = _Names(names, enc, runtime.rank, kenc)
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
    kg: object, rel: np.ndarray, inverse: np.ndarray, ent: np.ndarray, nm: _Names
) -> tuple[pl.Series, pl.Series, np.ndarray, np.ndarray]:
    """Observation JSON, grounding triples JSON and result (offsets, ids) of distinct calls."""
    n = len(ent)
    counts = np.zeros(n, np.int64)
    chunks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for inv in (False, True):
        sel = np.flatnonzero(inverse == inv)
        if len(sel) == 0:
            continue
        off, ids = kg.neighbors(ent[sel].astype(np.int32), rel[sel].astype(np.int32), inverse=inv)
        chunks[int(inv)] = (sel, np.asarray(off, np.int64), np.asarray(ids, np.int32))
        counts[sel] = np.diff(off)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    values = np.zeros(offsets[-1], np.int32)
    for sel, off, ids in chunks.values():
        seg_len = np.diff(off)
        dst = np.repeat(offsets[sel], seg_len) + (
            np.arange(seg_len.sum()) - np.repeat(off[:-1], seg_len)
        )
        values[dst] = ids
    values = _sorted_lists(offsets, values, nm.rank).astype(np.int32)
    enc = _list_series(offsets, nm.encoded.gather(values).to_arrow(), "o")
    obs = pl.select(pl.concat_str(pl.lit("["), pl.lit(enc).list.join(","), pl.lit("]"))).to_series()
    return obs, enc, offsets, values


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
    check_plan(plan)
    kg = runtime.kg
    nm = _names(runtime)
    catalog = runtime.catalog
    n = queries.height
    rel_ids = np.asarray(queries["relation_ids"].to_list(), dtype=np.int64).reshape(
        n, len(plan.relation_slots)
    )
    # relation id * 2 + direction -> API name / parameter
    rel_keys = kg.relations["key"].to_list()
    api_names, api_params = [], []
    for key in rel_keys:
        for d in ("forward", "inverse"):
            a = catalog.api_for(key, d)
            api_names.append(a.name)
            api_params.append(a.param_names[0])
    api_name_s = pl.Series(api_names, dtype=pl.String)
    api_param_s = pl.Series(api_params, dtype=pl.String)
    sid = queries["sid"]
    parts = []
    input_is_anchor = {}
    for k in range(plan.num_ops):
        if int(plan.op_kind[k]) != PROJECT:
            continue
        j = plan.inputs(k)[0]
        input_is_anchor[k] = int(plan.op_kind[j]) == ANCHOR
        rd = rel_ids[:, int(plan.op_arg[k])] * 2 + int(plan.op_dir[k])
        part = (
            pl.DataFrame({"sid": sid, "rd": rd, "ent": queries["sets"].list.get(j)})
            .with_columns(pl.col("ent").list.len().alias("m"))
            .explode("ent")
            .drop_nulls("ent")
            .with_columns(pl.lit(k, pl.Int32).alias("op"))
        )
        parts.append(part)
    calls = pl.concat(parts) if parts else pl.DataFrame()
    calls = calls.with_columns(
        pl.Series("rank", nm.rank[calls["ent"].to_numpy()]) if calls.height else pl.lit(0)
    ).sort("sid", "op", "rank")
    calls = calls.with_columns(
        pl.int_range(pl.len()).over("op", "sid").alias("pos"),
    )
    # distinct calls -> observations
    uniq = calls.select("rd", "ent").unique(maintain_order=True)
    rd_u = uniq["rd"].to_numpy()
    obs, _enc, r_off, r_val = _observations(
        kg, rd_u // 2, (rd_u % 2).astype(bool), uniq["ent"].to_numpy(), nm
    )
    uniq = uniq.with_columns(obs.alias("observation"), pl.int_range(pl.len()).alias("uid"))
    calls = calls.join(uniq, on=["rd", "ent"], how="left", maintain_order="left")
    ent_np = calls["ent"].to_numpy()
    rd_np = calls["rd"].to_numpy()
    lex = lexicon.frame
    np_phrase = pl.concat_str(
        pl.lit(lex["prefix"].gather(rd_np)),
        pl.lit(nm.names.gather(ent_np)),
        pl.lit(lex["suffix"].gather(rd_np)),
    )
    calls = calls.with_columns(
        pl.Series("api", api_name_s.gather(rd_np)),
        pl.Series("param", api_param_s.gather(rd_np)),
        pl.Series("argument", nm.names.gather(ent_np)),
        pl.Series("arg_enc", nm.encoded.gather(ent_np)),
        pl.select(np_phrase).to_series().alias("phrase"),
        pl.col("op")
        .replace_strict(
            list(input_is_anchor), list(input_is_anchor.values()), return_dtype=pl.Boolean
        )
        .alias("from_anchor"),
    )
    thought = (
        pl.when(pl.col("from_anchor"))
        .then(pl.concat_str(pl.lit("I need to find "), pl.col("phrase"), pl.lit(".")))
        .when(pl.col("pos") == 0)
        .then(
            pl.concat_str(
                pl.lit("Now I look up "),
                pl.col("phrase"),
                pl.when(pl.col("m") > 1)
                .then(pl.format(", the first of the {} entities found so far.", pl.col("m")))
                .otherwise(pl.lit(".")),
            )
        )
        .otherwise(pl.concat_str(pl.lit("Next, "), pl.col("phrase"), pl.lit(".")))
    )
    calls = calls.with_columns(thought.alias("thought"), pl.lit("call").alias("kind"))

    # explanations of set operations (and of several calls of one op), attached to the next call
    sets_names = {}
    expl_rows = []
    for k in range(plan.num_ops):
        kind = int(plan.op_kind[k])
        ins = plan.inputs(k)
        if kind == ANCHOR:
            continue
        names_k = _id_lists_to_names(queries["sets"].list.get(k), nm)
        sets_names[k] = names_k
        listed = name_list_text(pl.lit(names_k))
        empty = pl.lit(names_k).list.len() == 0
        if kind == PROJECT:
            if input_is_anchor[k]:
                continue
            text = (
                pl.when(empty)
                .then(pl.lit("These lookups found nothing."))
                .when(pl.lit(queries["sets"].list.get(ins[0]).list.len()) > 1)
                .then(pl.concat_str(pl.lit("Together, these lookups give "), listed, pl.lit(".")))
                .otherwise(pl.lit(None, pl.String))
            )
        elif kind == INTERSECT:
            both = "both lists" if len(ins) == 2 else f"all {len(ins)} lists"
            text = (
                pl.when(empty)
                .then(pl.lit(f"No entity appears in {both}."))
                .otherwise(
                    pl.concat_str(pl.lit(f"The entities found in {both} are "), listed, pl.lit("."))
                )
            )
        elif kind == UNION:
            text = (
                pl.when(empty)
                .then(pl.lit("Both lists are empty."))
                .otherwise(
                    pl.concat_str(pl.lit("Taken together, the lists give "), listed, pl.lit("."))
                )
            )
        else:
            text = (
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
        expl_rows.append(
            pl.DataFrame({"sid": sid})
            .with_columns(
                pl.select(text.alias("text")).to_series(), pl.lit(k, pl.Int32).alias("after")
            )
            .drop_nulls("text")
        )
    first_call = (
        calls.group_by("sid", "op").agg(pl.col("pos").min().alias("p0")).select("sid", "op")
    )
    if expl_rows:
        expl = pl.concat(expl_rows)
        attach = (
            expl.join(first_call, on="sid", how="left")
            .with_columns(
                pl.when(pl.col("op") > pl.col("after"))
                .then(pl.col("op"))
                .otherwise(None)
                .alias("at")
            )
            .group_by("sid", "after", "text", maintain_order=True)
            .agg(pl.col("at").min())
            .sort("sid", "after")
        )
        at_call = (
            attach.drop_nulls("at")
            .group_by("sid", "at", maintain_order=True)
            .agg(pl.col("text").str.join(" ").alias("pre"))
            .rename({"at": "op"})
            .with_columns(pl.lit(0, pl.Int64).alias("pos"), pl.col("op").cast(pl.Int32))
        )
        at_final = (
            attach.filter(pl.col("at").is_null())
            .group_by("sid", maintain_order=True)
            .agg(pl.col("text").str.join(" ").alias("final_pre"))
        )
        calls = (
            calls.join(
                at_call.with_columns(pl.col("pos").cast(calls["pos"].dtype)),
                on=["sid", "op", "pos"],
                how="left",
                maintain_order="left",
            )
            .with_columns(
                pl.when(pl.col("pre").is_not_null())
                .then(pl.concat_str(pl.col("pre"), pl.lit(" "), pl.col("thought")))
                .otherwise(pl.col("thought"))
                .alias("thought")
            )
            .drop("pre")
        )
    else:
        at_final = pl.DataFrame({"sid": sid[:0], "final_pre": pl.Series([], dtype=pl.String)})

    # final answer
    last = plan.num_ops - 1
    ans_names = sets_names[last]
    last_kind = int(plan.op_kind[last])
    reason = {
        PROJECT: "the last lookup returned no entity",
        INTERSECT: "the lists have no entity in common",
        UNION: "every lookup came back empty",
        DIFFERENCE: "every candidate is excluded",
    }[last_kind]
    answer_sentence = (
        pl.when(pl.col("answer_names").list.len() == 0)
        .then(pl.lit(f"So no entity satisfies the question: {reason}."))
        .when(pl.col("answer_names").list.len() == 1)
        .then(
            pl.concat_str(
                pl.lit("So the answer is "), name_list_text(pl.col("answer_names")), pl.lit(".")
            )
        )
        .otherwise(
            pl.concat_str(
                pl.format("So the {} answers are ", pl.col("answer_names").list.len()),
                name_list_text(pl.col("answer_names")),
                pl.lit("."),
            )
        )
    )
    samples = (
        pl.DataFrame({"sid": sid, "answer_names": ans_names})
        .join(at_final, on="sid", how="left", maintain_order="left")
        .with_columns(answer_sentence.alias("answer_sentence"))
        .with_columns(
            pl.when(pl.col("final_pre").is_not_null())
            .then(pl.concat_str(pl.col("final_pre"), pl.lit(" "), pl.col("answer_sentence")))
            .otherwise(pl.col("answer_sentence"))
            .alias("final_text"),
            (pl.col("answer_names").list.len() == 0).alias("empty"),
        )
        .drop("final_pre", "answer_sentence")
    )

    # arguments JSON and grounding triples of each distinct call
    calls = calls.with_columns(
        pl.concat_str(
            pl.lit('{"'), pl.col("param"), pl.lit('":'), pl.col("arg_enc"), pl.lit("}")
        ).alias("arguments")
    )
    steps = calls.select(
        "sid",
        "op",
        "pos",
        "kind",
        "api",
        "param",
        "argument",
        "arguments",
        "observation",
        "thought",
        "rd",
        "ent",
        "uid",
    )
    recovery = pl.Series("recovery", np.zeros(n, bool))
    if error_ratio > 0:
        steps, recovery = _add_error_recovery(steps, queries, runtime, seed, error_ratio)
    steps = steps.sort("sid", "op", "pos").with_columns(
        pl.int_range(pl.len()).over("sid").alias("step")
    )
    # provenance: grounding triples per distinct call, then per sample
    uid_trip = _grounding_triples(
        uniq["rd"].to_numpy(), uniq["ent"].to_numpy(), r_off, r_val, kg, nm
    )
    prov = (
        steps.with_columns(
            pl.col("uid").fill_null(-1),
        )
        .join(uid_trip, on="uid", how="left", maintain_order="left")
        .with_columns(
            pl.concat_str(
                pl.lit('{"step":'),
                pl.col("step").cast(pl.String),
                pl.lit(',"name":"'),
                pl.col("api"),
                pl.lit('","arguments":'),
                pl.col("arguments"),
                pl.lit(',"observation":'),
                json_str(pl.col("observation")),
                pl.lit("}"),
            ).alias("t"),
            pl.concat_str(
                pl.lit('{"step":'),
                pl.col("step").cast(pl.String),
                pl.lit(',"triples":'),
                pl.col("triples").fill_null("[]"),
                pl.lit("}"),
            ).alias("g"),
        )
        .group_by("sid", maintain_order=True)
        .agg(
            pl.concat_str(pl.lit("["), pl.col("t").str.join(","), pl.lit("]")).alias("trace"),
            pl.concat_str(pl.lit("["), pl.col("g").str.join(","), pl.lit("]")).alias("grounding"),
            pl.len().alias("num_calls"),
        )
    )
    samples = (
        samples.with_columns(recovery)
        .join(prov, on="sid", how="left", maintain_order="left")
        .with_columns(
            pl.col("trace").fill_null("[]"),
            pl.col("grounding").fill_null("[]"),
            pl.col("num_calls").fill_null(0).cast(pl.Int32),
        )
    )
    return Trajectories(steps=steps, samples=samples)


def _grounding_triples(
    rd: np.ndarray, ent: np.ndarray, off: np.ndarray, val: np.ndarray, kg: object, nm: _Names
) -> pl.DataFrame:
    """Per distinct call (uid): JSON list of [head, relation, tail] key triples it relied on."""
    counts = np.diff(off)
    uid = np.repeat(np.arange(len(rd)), counts)
    rel = np.repeat(rd // 2, counts)
    inv = np.repeat(rd % 2 == 1, counts)
    arg = np.repeat(ent, counts)
    head = np.where(inv, val, arg)
    tail = np.where(inv, arg, val)
    rkeys = pl.select(json_str(pl.lit(kg.relations["key"]))).to_series()
    t = pl.DataFrame(
        {
            "uid": uid,
            "s": pl.select(
                pl.concat_str(
                    pl.lit("["),
                    pl.lit(nm.keys_encoded.gather(head)),
                    pl.lit(","),
                    pl.lit(rkeys.gather(rel)),
                    pl.lit(","),
                    pl.lit(nm.keys_encoded.gather(tail)),
                    pl.lit("]"),
                )
            ).to_series(),
        }
    )
    return (
        t.group_by("uid", maintain_order=True)
        .agg(pl.concat_str(pl.lit("["), pl.col("s").str.join(","), pl.lit("]")).alias("triples"))
        .with_columns(pl.col("uid").cast(pl.Int64))
    )


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
    steps = traj.steps
    n = queries.height
    uniq = steps.select("api", "arguments").unique(maintain_order=True)
    results = runtime.call_many(
        zip(uniq["api"].to_list(), uniq["arguments"].to_list(), strict=True)
    )
    lens = np.fromiter((len(r.entity_ids) for r in results), np.int64, len(results))
    off = np.r_[0, np.cumsum(lens)]
    flat = (
        np.concatenate([r.entity_ids for r in results]).astype(np.int32)
        if len(results)
        else np.zeros(0, np.int32)
    )
    uniq = uniq.with_columns(
        pl.Series("replayed", [r.to_json() for r in results], dtype=pl.String),
        _list_series(off, flat, "res"),
        pl.Series("ok_call", [r.ok for r in results]),
    )
    rep = steps.join(uniq, on=["api", "arguments"], how="left", maintain_order="left")
    bad_obs = rep.filter(pl.col("replayed") != pl.col("observation"))["sid"].unique()
    bad_err = rep.filter((pl.col("kind") == "error") == pl.col("ok_call"))["sid"].unique()
    good = rep.filter(pl.col("kind") == "call")
    # the argument entity as the runtime resolves the recorded name (not the builder's id)
    arg_names = good["argument"].unique(maintain_order=True)
    resolved = pl.DataFrame(
        {"argument": arg_names, "arg_id": [_resolve(runtime, a) for a in arg_names.to_list()]},
        schema={"argument": pl.String, "arg_id": pl.Int32},
    )
    good = good.join(resolved, on="argument", how="left", maintain_order="left")
    # recompute each op's set from replayed results and compare with the engine's sets
    checks = []
    per_op = good.group_by("sid", "op").agg(
        pl.col("res")
        .list.explode(keep_nulls=False, empty_as_null=False)
        .unique()
        .sort()
        .alias("got"),
        pl.col("arg_id").sort().alias("args"),
    )
    frame = queries.select("sid", "sets", "answer_ids")
    for k in range(plan.num_ops):
        kind = int(plan.op_kind[k])
        col = f"s{k}"
        if kind == PROJECT:
            got = per_op.filter(pl.col("op") == k).select(
                "sid", pl.col("got").alias(col), pl.col("args").alias(f"a{k}")
            )
            frame = frame.join(got, on="sid", how="left", maintain_order="left").with_columns(
                pl.col(col).fill_null(pl.lit([], pl.List(pl.Int32))).cast(pl.List(pl.Int32)),
                pl.col(f"a{k}").fill_null(pl.lit([], pl.List(pl.Int32))).cast(pl.List(pl.Int32)),
            )
            j = plan.inputs(k)[0]
            checks.append(pl.col(f"a{k}") == pl.col("sets").list.get(j).list.sort())
        elif kind == ANCHOR:
            frame = frame.with_columns(pl.col("sets").list.get(k).alias(col))
        else:
            ins = [pl.col(f"s{i}") for i in plan.inputs(k)]
            e = ins[0]
            for other in ins[1:]:
                if kind == INTERSECT:
                    e = e.list.set_intersection(other)
                elif kind == UNION:
                    e = e.list.set_union(other)
                else:
                    e = e.list.set_difference(other)
            frame = frame.with_columns(e.list.sort().cast(pl.List(pl.Int32)).alias(col))
        checks.append(pl.col(col) == pl.col("sets").list.get(k).list.sort())
    last = plan.num_ops - 1
    checks.append(pl.col(f"s{last}") == pl.col("answer_ids").list.sort())
    ok_sets = frame.select(pl.all_horizontal(checks).alias("ok"))["ok"].to_numpy()
    sids = queries["sid"].to_numpy()
    ok = ok_sets.copy()
    failures: dict[str, int] = {}
    if not ok_sets.all():
        failures["plan_mismatch"] = int((~ok_sets).sum())
    for reason, bad in (("observation_mismatch", bad_obs), ("error_call_succeeded", bad_err)):
        if len(bad):
            mask = np.isin(sids, bad.to_numpy())
            failures[reason] = int(mask.sum())
            ok &= ~mask
    return ok if n else np.zeros(0, bool), failures


def _resolve(runtime: ToolRuntime, name: str) -> int:
    """Entity id the runtime resolves a name to, or -1."""
    try:
        return int(runtime.resolve(name))
    except Exception:
        return -1
