"""Provenance of trajectories: the graph triples each call relied on, the trace of every
sample, and error recovery (a failing call with a misspelled name, then the corrected one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import polars as pl

from kg2tool.arrays import list_series
from kg2tool.samples.calls import CallTables, Executed, NameTables
from kg2tool.samples.questions import mix_hash
from kg2tool.samples.render import one_period
from kg2tool.textops import Int, Join, Str, Strings, concat, concat_built, json_str
from kg2tool.tools.runtime import ToolRuntime

__all__ = ["add_error_recovery", "add_trace"]

_ERROR_SALT = 0xE770  # mixes the seed for which samples get an error-recovery step


def _joined(offsets: np.ndarray, frags: pl.Series, name: str, sep: str = ",") -> pl.Series:
    """``"[" + sep.join(frags[offsets[i]:offsets[i+1]]) + "]"`` per i (frags grouped in order)."""
    lists = list_series(offsets, frags.to_arrow(), name)
    return pl.select(
        pl.concat_str(pl.lit("["), pl.lit(lists).list.join(sep), pl.lit("]")).alias(name)
    ).to_series()


def _grounding_triples(
    rd: np.ndarray, ent: np.ndarray, off: np.ndarray, val: np.ndarray, kg: Any, nm: NameTables
) -> pl.Series:
    """Per distinct call: JSON list of [head, relation, tail] key triples it relied on."""
    return _joined(off, _triple_strings(rd, ent, off, val, kg, nm), "triples")


def _triple_strings(
    rd: np.ndarray, ent: np.ndarray, off: np.ndarray, val: np.ndarray, kg: Any, nm: NameTables
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


def add_error_recovery(
    steps: pl.DataFrame, queries: pl.DataFrame, runtime: ToolRuntime, seed: int, ratio: float
) -> tuple[pl.DataFrame, pl.Series]:
    """Insert a failing call (misspelled anchor, real runtime error) before chosen first calls."""
    qid = queries["qid"].to_numpy()
    h = mix_hash(seed, _ERROR_SALT, qid)
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
        .pipe(one_period)
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


def add_trace(
    steps: pl.DataFrame, samples: pl.DataFrame, t: CallTables, ex: Executed, kg: Any,
    nm: NameTables,
) -> tuple[pl.DataFrame, pl.DataFrame]:  # fmt: skip
    """Number the steps of every sample (``step``) and add per sample ``trace`` (every call
    with its observation), ``grounding`` (the triples every call relied on) and
    ``num_calls``; ``steps`` in (sid, op, pos) order."""
    sid_all = samples["sid"].to_numpy()
    st_sid = steps["sid"].to_numpy()
    step_off = np.searchsorted(st_sid, sid_all, side="left")
    step_end = np.searchsorted(st_sid, sid_all, side="right")
    step_in = np.arange(len(st_sid)) - np.repeat(step_off, step_end - step_off)
    steps = steps.with_columns(pl.Series("step", step_in.astype(np.int64)))
    # grounding triples per distinct call, then per sample
    trip = _grounding_triples(ex.rd, ex.ent, ex.off, ex.val, kg, nm)
    lc = t.list_calls
    n_lx = len(lc.rd)
    if n_lx:  # a list call relied on the triples of every listed entity
        e_call = np.repeat(np.arange(n_lx), lc.cnt)
        per_call = np.bincount(e_call, np.diff(ex.e_off), minlength=n_lx).astype(np.int64)
        flat = _triple_strings(ex.e_rd, lc.ids, ex.e_off, ex.e_val, kg, nm)
        trip = pl.concat(
            [trip, _joined(np.r_[0, np.cumsum(per_call)].astype(np.int64), flat, "triples")]
        )
    st_uid = steps["uid"].fill_null(-1).to_numpy()
    # error calls (no uid) rely on no triple: "[]", one value after the distinct calls'
    trip_or_none = Strings(pl.concat([trip, pl.Series(["[]"], dtype=pl.String)]))
    g_idx = np.where(st_uid >= 0, st_uid, len(trip)).astype(np.int64)
    st_step = step_in.astype(np.int64)
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
        concat(n_s, "[", Join(t_frag, offs), "]", name="trace"),
        concat(n_s, "[", Join(g_frag, offs), "]", name="grounding"),
        pl.Series("num_calls", (step_end - step_off).astype(np.int32)),
    )
    return steps, samples
