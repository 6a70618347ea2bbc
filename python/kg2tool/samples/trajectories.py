"""Trajectories of executed plans: the call table (:mod:`~kg2tool.samples.calls`), run and
written out (:mod:`~kg2tool.samples.render`), with provenance and error recovery
(:mod:`~kg2tool.samples.provenance`); :mod:`~kg2tool.samples.replay` verifies them.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from kg2tool.patterns import Plan
from kg2tool.samples.calls import (
    CALL_STYLES,
    SET_OPS_MODES,
    Trajectories,
    api_tables,
    call_tables,
    execute_calls,
    name_tables,
)
from kg2tool.samples.provenance import add_error_recovery, add_trace
from kg2tool.samples.questions import RelationLexicon
from kg2tool.samples.render import final_answers, render_steps
from kg2tool.tools.runtime import ToolRuntime

__all__ = ["build_trajectories", "build_trajectories_many"]


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
    projection op; :mod:`kg2tool.samples.calls`).
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
    if call_style not in CALL_STYLES:
        raise ValueError(f"call_style must be one of {CALL_STYLES}, got {call_style!r}")
    if call_style == "batched":
        api_tables(runtime, lists=True)  # raises without the list APIs, before any work
    nm = name_tables(runtime)
    tables = call_tables(
        items, runtime.kg, nm.rank, tools=set_ops == "tools", batched=call_style == "batched"
    )
    executed = execute_calls(tables, runtime)
    steps, final_pre = render_steps(tables, executed, runtime, lexicon, nm)
    samples = final_answers(tables, final_pre, nm)
    n = samples.height
    recovery = pl.Series("recovery", np.zeros(n, bool))
    if error_ratio > 0:
        qframe = pl.concat([q.select("sid", "qid") for _, q in items if q.height]) if n else None
        steps, recovery = add_error_recovery(steps, qframe, runtime, seed, error_ratio)
        steps = steps.sort("sid", "op", "pos")
    steps, samples = add_trace(
        steps, samples.with_columns(recovery), tables, executed, runtime.kg, nm
    )
    return Trajectories(steps=steps, samples=samples)
