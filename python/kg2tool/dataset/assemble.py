"""Dataset assembly: grounded queries -> questions + verified trajectories -> one Polars frame.

``build_dataset(kg, ["2p", ("2i", 2.0)], 1000, seed=0, format="openai")`` returns one row per
verified sample with the columns ``id, pattern, formula, bindings, question, answers,
answer_labels, tools, messages, num_calls, split`` plus provenance (``trace``, ``grounding``),
``record`` (the line written for the format; left out with ``with_record=False`` where the
line is a concatenation of other columns, see :func:`kg2tool.samples.formats.record_parts`), ``empty``
and ``recovery`` flags.
``frame.attrs``-like counters are returned by :func:`build_shard` as a ``report`` dict.

A shard is a pure function of (kg, specs, shard id, sizes, seed, format, options): the
pipeline can redo any shard and get the same frame. De-duplication is on the canonical grounding
(pattern, relation ids, anchor ids) inside a shard; across shards use the ``id`` column (a hash
of the grounding). TYPE_FILTER patterns (and JOINs trajectories cannot follow) are skipped with
a message in the report. Dropped samples are replaced by queries drawn again (``redraw`` of
:func:`build_from_batches`), so shards reach their counts unless a pattern runs out.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from kg2tool.atomic import atomic_file, write_bytes
from kg2tool.dataset.card import CARD_COLUMNS, card_examples, card_stats, write_card
from kg2tool.engine import execute_queries, resolve_pattern, sample_queries
from kg2tool.kg.names import RAW_KEY_PATTERN
from kg2tool.patterns import JOIN, MAX_JOIN_CALLS, join_call_counts, pattern_counts
from kg2tool.samples.calls import CALL_STYLES, UnsupportedPlanError, check_plan
from kg2tool.samples.formats import (
    FORMATS,
    ToolFragments,
    build_records,
    dataset_info_entry,
    record_parts,
)
from kg2tool.samples.questions import (
    RAW_ID_PATTERN,
    RelationLexicon,
    build_lexicon,
    mix_hash,
    verbalize_linted,
)
from kg2tool.samples.replay import verify_many
from kg2tool.samples.trajectories import build_trajectories_many
from kg2tool.textops import Str, Strings, write_lines
from kg2tool.tools.catalog import LIST_KIND, ApiCatalog
from kg2tool.tools.runtime import ToolRuntime

__all__ = [
    "COLUMNS",
    "Context",
    "assign_splits",
    "build_dataset",
    "build_from_batches",
    "build_shard",
    "grounding_hashes",
    "write_dataset",
]

COLUMNS = [
    "id",
    "pattern",
    "formula",
    "bindings",
    "question",
    "answers",
    "answer_labels",
    "tools",
    "messages",
    "num_calls",
    "split",
]


class Context:
    """Catalogue, runtime, lexicon and tool fragments of a KG, built once and reused."""

    def __init__(self, kg: Any, catalog: ApiCatalog | None = None, overrides: Any = None) -> None:
        """Build everything the per-batch work needs."""
        self.kg = kg
        self.catalog = catalog or ApiCatalog.from_graph(kg, overrides=overrides)
        self.runtime = ToolRuntime(kg, self.catalog)
        self.lexicon: RelationLexicon = build_lexicon(kg, self.catalog, overrides)
        self.fragments = ToolFragments(self.catalog)
        self.namable = namable_entities(self.runtime)
        self.unlabelled = unlabelled_entities(kg)

    def exclusions(
        self, relations: tuple[str, ...], entities: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(relation mask, entity mask) of what is excluded: the patterns given and the
        lexicon's ``exclude = true`` relations; None when nothing is. Cached per patterns."""
        cache = self.__dict__.setdefault("_exclusions", {})
        if (relations, entities) not in cache:
            flagged = [k for k, e in self.catalog.lexicon.items() if e.exclude]
            cache[(relations, entities)] = exclusion_masks(self.kg, relations, entities, flagged)
        return cache[(relations, entities)]

    def batched(self) -> Context:
        """This context with the list APIs (``call_style="batched"``), made once: the same
        names, lexicon and anchors; distractors drawn from the list APIs."""
        got = self.__dict__.get("_batched")
        if got is None:
            got = copy.copy(self)
            got.catalog = self.catalog.with_list_apis()
            got.runtime = self.runtime.with_catalog(got.catalog)
            got.fragments = ToolFragments(got.catalog)
            got.fragments.relation_ids = [
                i for i, a in enumerate(got.catalog.apis) if a.kind == LIST_KIND
            ]
            got.__dict__["_batched"] = got
            self.__dict__["_batched"] = got
        return got


def namable_entities(runtime: ToolRuntime) -> np.ndarray:
    """Per entity id: whether a question can name it as an anchor, i.e. its display name is its
    label (no other entity shares the label) and the label is not a raw KG id (``Q42``, ``/m/..``).
    Queries with another anchor are dropped by the sample builder; the ``generate`` driver skips
    them when it draws queries, so a run writes the samples it asks for."""
    labels = runtime.kg.entities["label"]
    names = pl.Series(runtime.names, dtype=pl.String)
    ok = (names == labels).fill_null(False) & ~labels.str.contains(RAW_ID_PATTERN).fill_null(False)
    return ok.to_numpy().astype(bool)


def unlabelled_entities(kg: Any) -> np.ndarray:
    """Per entity id: whether its name is an opaque key (no label, and a key such as ``Q42``
    or ``/m/0x`` that no words can be read from). Samples showing one are dropped unless
    ``allow_raw_keys``."""
    ents = kg.entities
    raw = (ents["label"] == ents["key"]).fill_null(True) & ents["key"].str.contains(RAW_KEY_PATTERN)
    return raw.to_numpy().astype(bool)


def _touches(mask: np.ndarray, q: pl.DataFrame, anc: np.ndarray) -> np.ndarray:
    """Per query row: whether an anchor, an intermediate entity or an answer is in ``mask``."""
    bad = mask[anc].any(axis=1) if anc.size else np.zeros(q.height, bool)
    if not mask.any():
        return bad
    col = "sets" if "sets" in q.columns else "answer_ids"
    ids = q.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("r"), pl.col(col).alias("i"))
    ids = ids.explode("i")
    if col == "sets":
        ids = ids.explode("i")
    ids = ids.drop_nulls("i")
    rows = ids["r"].to_numpy()[mask[ids["i"].to_numpy().astype(np.int64)]]
    bad[rows] = True
    return bad


def exclusion_masks(
    kg: Any, relations: Sequence[str], entities: Sequence[str], flagged: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray] | None:
    """(relation mask, entity mask) by id of what matches the patterns (keys in ``flagged``:
    relations a lexicon excludes); None when nothing is excluded."""
    rel = excluded(kg.relations, relations, flagged)
    ent = excluded(kg.entities, entities)
    return (rel, ent) if rel.any() or ent.any() else None


def _pattern_regex(patterns: Sequence[str]) -> str | None:
    """One case-insensitive regex for shell-style patterns ("*slur*", "P1?"), None if none."""
    pats = [p.strip() for p in patterns if p and p.strip()]
    if not pats:
        return None

    def glob(p: str) -> str:
        return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)

    return "(?i)^(?:" + "|".join(glob(p) for p in pats) + ")$"


def excluded(table: pl.DataFrame, patterns: Sequence[str], extra: Sequence[str] = ()) -> np.ndarray:
    """Per row of an id/key/label table: whether its key or label matches one of the
    shell-style ``patterns`` (case-insensitive), or its key is in ``extra``."""
    mask = table["key"].is_in(list(extra)).to_numpy() if extra else np.zeros(table.height, bool)
    regex = _pattern_regex(patterns)
    if regex is not None:
        hit = table["key"].str.contains(regex) | table["label"].str.contains(regex).fill_null(False)
        mask |= hit.to_numpy()
    return mask


def _specs(patterns: Sequence[Any]) -> list[tuple[str, float]]:
    """Normalise pattern names / (spec, weight) pairs."""
    out = []
    for p in patterns:
        if isinstance(p, tuple):
            out.append((p[0], float(p[1])))
        else:
            out.append((p, 1.0))
    return out


def _empty_groundings(
    kg: Any, plan: Any, rel: np.ndarray, anc: np.ndarray, seed: int, index: np.ndarray
) -> Any:
    """Perturb the last anchor of each grounding (to an entity with the relation) and execute."""
    last = plan.anchor_slots[-1]
    a_idx = len(plan.anchor_slots) - 1
    k = [
        i
        for i in range(plan.num_ops)
        if int(plan.op_kind[i]) == 1
        and a_idx in [int(plan.op_arg[j]) for j in plan.inputs(i) if int(plan.op_kind[j]) == 0]
    ]
    del last
    t = kg.triples
    slot = int(plan.op_arg[k[0]]) if k else 0
    side = "tail" if (k and int(plan.op_dir[k[0]]) == 1) else "head"
    by_rel = t.select("relation", side).unique().sort("relation", side)
    rel_col = by_rel["relation"].to_numpy()
    ent_col = by_rel[side].to_numpy()
    starts = np.searchsorted(rel_col, np.arange(kg.num_relations + 1))
    r = rel[:, slot]
    cnt = starts[r + 1] - starts[r]
    h = mix_hash(seed, 0xE3, np.asarray(index, dtype=np.int64))
    pick = starts[r] + (h % np.maximum(cnt, 1).astype(np.uint64)).astype(np.int64)
    anc2 = anc.copy()
    anc2[:, a_idx] = ent_col[np.minimum(pick, len(ent_col) - 1)]
    return execute_queries(kg, plan, rel, anc2, query_index=index)


def _batch_frame(batch: Any, qid0: int) -> pl.DataFrame:
    """The engine frame with sid (row) and qid (stable: pattern position + stream index)."""
    f = batch.frame()
    return f.with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("sid"),
        (pl.col("query_index").cast(pl.UInt64) + qid0).alias("qid"),
    )


def build_shard(
    kg: Any,
    spec_list: Sequence[Any],
    shard_id: int,
    num_shards: int,
    samples_in_shard: int,
    seed: int,
    format: str = "openai",
    *,
    context: Context | None = None,
    max_intermediate: int = 10,
    **options: Any,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """One shard sampled on its own: (frame, report). Pure in its inputs; ``seed`` is mixed
    with ``shard_id``. Dropped samples are replaced by queries drawn again (``redraw`` of
    :func:`build_from_batches`), so each pattern gets its count unless it runs out. The pipeline instead draws shards from continuing query streams
    (de-duplicated across shards) and calls :func:`build_from_batches`."""
    specs = _specs(spec_list)
    counts = pattern_counts([w for _, w in specs], samples_in_shard)
    shard_seed = int(mix_hash(seed, shard_id, num_shards)[0] & np.uint64(0x7FFFFFFFFFFFFFFF))
    batches = []
    want = {}
    for p_idx, ((spec, _), n) in enumerate(zip(specs, counts, strict=True)):
        if n == 0:
            continue
        plan = resolve_pattern(spec)
        batch = sample_queries(
            kg, plan, n, seed=shard_seed + p_idx, max_intermediate=max_intermediate, strict=False
        )
        batches.append((str(spec), batch))
        want[str(spec)] = n
    redraw = {
        "shard": shard_id,
        "num_shards": num_shards,
        "want": want,
        "sample": {"max_intermediate": max_intermediate},
    }
    return build_from_batches(
        kg, batches, seed=shard_seed, format=format, context=context, redraw=redraw, **options
    )


def build_from_batches(
    kg: Any,
    batches: Sequence[tuple[str, Any]],
    *,
    seed: int,
    format: str = "openai",
    context: Context | None = None,
    redraw: dict[str, Any] | None = None,
    **options: Any,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Verified samples from grounded queries, one (name, QueryBatch) per pattern (the options
    are :func:`_build_once`'s).

    ``redraw`` (``{"shard": id, "num_shards": n, "avoid": {pattern: hashes}, "want":
    {pattern: count}, "sample": sample_queries options}``): patterns that end with fewer
    samples than ``want`` (default: the queries given)
    (samples dropped: ``raw_key_entity``, ``question_lint``, ``excluded``,
    ``join_too_many_calls``, unverifiable) get more queries, drawn in rounds (at most
    ``REDRAW_ROUNDS``) from a stream per (seed, shard, pattern position). A redrawn query is
    new to the shard, one the shard owns (:func:`grounding_hashes` modulo ``num_shards``: no
    two shards redraw the same grounding) and not in ``avoid`` (queries given to other
    shards). Each round draws the shortfall scaled by the observed survival rate (+10%) and
    keeps the first survivors in draw order, appended after the first samples. A pattern whose stream runs out is listed in
    ``report["exhausted"]``, what is still missing in ``report["short"]``. Without drops
    nothing is drawn, so the frame is the one without ``redraw``."""
    ctx = context or Context(kg)
    frame, report = _build_once(kg, batches, seed=seed, format=format, context=ctx, **options)
    if redraw is None:
        return frame, report
    frames = [frame]
    for p_idx, (spec, batch) in enumerate(batches):
        want = int(redraw.get("want", {}).get(str(spec), len(batch)))
        got = report["per_pattern"].get(str(spec), 0)
        if not want or got >= want:
            continue
        extra = _redraw(
            kg, ctx, batches, p_idx, want - got, want, got, seed, format, options, redraw, report
        )
        frames.extend(extra)
    if len(frames) == 1:
        return frame, report
    frame = pl.concat(frames, how="vertical_relaxed")
    frame = frame.unique(subset=["pattern", "bindings"], keep="first", maintain_order=True)
    frame = assign_splits(
        frame,
        options.get("split", "random"),
        seed,
        options.get("split_fractions", (0.9, 0.05, 0.05)),
        options.get("holdout"),
        options.get("holdout_fraction", 0.1),
        ctx.batched() if options.get("call_style") == "batched" else ctx,
    )
    return frame, report


# Top-up rounds of a pattern whose samples were dropped (see build_from_batches' ``redraw``).
REDRAW_ROUNDS = 8
# qid offset of top-up queries (stream indices stay below it; empty groundings use 1 << 39).
_REDRAW_QID = 1 << 38


def _grounding_keys(batch: Any) -> set[bytes]:
    """Each query's grounding (relation ids, anchor ids) as bytes."""
    if not len(batch):
        return set()
    rel = np.ascontiguousarray(batch.relation_ids, dtype=np.int64)
    anc = np.ascontiguousarray(batch.anchor_ids, dtype=np.int64)
    both = np.concatenate([rel.reshape(len(rel), -1), anc.reshape(len(anc), -1)], axis=1)
    return {row.tobytes() for row in both}


def _redraw(
    kg: Any,
    ctx: Context,
    batches: Sequence[tuple[str, Any]],
    p_idx: int,
    need: int,
    drawn: float,
    survived: int,
    seed: int,
    format: str,
    options: dict[str, Any],
    redraw: dict[str, Any],
    report: dict[str, Any],
) -> list[pl.DataFrame]:
    """Frames of up to ``need`` more samples of pattern ``p_idx`` (see build_from_batches)."""
    from kg2tool.engine import QueryStream

    spec, batch = batches[p_idx]
    name = str(spec)
    shard, shards = int(redraw.get("shard", 0)), int(redraw.get("num_shards", 1))
    avoid = np.asarray(redraw.get("avoid", {}).get(name, ()), np.uint64)
    stream_seed = int(mix_hash(seed, 0x7ED, shard, p_idx)[0] & np.uint64(0x7FFFFFFFFFFFFFFF))
    stream = QueryStream(kg, batch.plan, seed=stream_seed, **redraw.get("sample", {}))
    taken = _grounding_keys(batch)
    out: list[pl.DataFrame] = []
    exhausted = False
    for _ in range(REDRAW_ROUNDS):
        if need <= 0 or exhausted:
            break
        rate = survived / drawn if drawn else 0.0
        k = math.ceil(need / max(rate, 0.01) * 1.1)  # draws at most ~110x what is missing
        k = min(max(k, need, 64), need * 110 + 256) * shards
        got = stream.take(k, strict=False)
        exhausted = bool(got.exhausted) and not len(got)  # a budget hit with some: go on
        keys = []
        keep = np.ones(len(got), bool)
        if len(got):
            rel = got.relation_ids.reshape(len(got), -1).astype(np.int64)
            anc = got.anchor_ids.reshape(len(got), -1).astype(np.int64)
            keys = [r.tobytes() for r in np.concatenate([rel, anc], axis=1)]
            keep = np.array([kk not in taken for kk in keys], bool)
            h = grounding_hashes(rel, anc)
            if shards > 1:  # each shard redraws only the groundings it owns: none in two shards
                keep &= (h % np.uint64(shards)).astype(np.int64) == shard
            if len(avoid):  # nor one the streams gave to another shard
                keep &= ~np.isin(h, avoid)
            if anc.size:  # anchors a question cannot name are sampling rejections, not drops
                keep &= ctx.namable[anc].all(axis=1)
        taken.update(keys)
        rows = np.flatnonzero(keep)
        drawn += len(got) / shards  # the survival rate counts the skipped ones too
        if not len(rows):
            continue
        sub = execute_queries(
            kg,
            batch.plan,
            got.relation_ids[rows],
            got.anchor_ids[rows],
            threads=1,
            query_index=np.asarray(got.query_index, np.int64)[rows] + _REDRAW_QID,
        )
        one = [(s, _no_queries(b)) for s, b in batches]
        one[p_idx] = (spec, sub)
        frame, rep = _build_once(kg, one, seed=seed, format=format, context=ctx, **options)
        _merge_counts(report, rep)
        survived += frame.height
        if not frame.height and len(got) >= 256 * shards:  # nothing survives: stop drawing
            break
        frame = frame.head(need)
        need -= frame.height
        if frame.height:
            out.append(frame)
    report["per_pattern"][name] = report["per_pattern"].get(name, 0) + sum(f.height for f in out)
    if need > 0:
        if exhausted:
            report.setdefault("exhausted", []).append(name)
        report.setdefault("short", {})[name] = need
    return out


def grounding_hashes(rel: np.ndarray, anc: np.ndarray) -> np.ndarray:
    """Per grounding row (relation ids, anchor ids): a seed-free 64-bit hash. Its value
    modulo the number of shards is the shard that may redraw the grounding."""
    rel = np.asarray(rel, np.int64).reshape(len(rel), -1)
    anc = np.asarray(anc, np.int64).reshape(len(anc), -1)
    cols = [rel[:, j] for j in range(rel.shape[1])] + [anc[:, j] for j in range(anc.shape[1])]
    return mix_hash(0x0A7, len(cols), *cols) if len(rel) else np.zeros(0, np.uint64)


def _no_queries(batch: Any) -> Any:
    """``batch`` without queries (a placeholder keeping the patterns' positions)."""
    from dataclasses import replace

    return replace(
        batch,
        relation_ids=batch.relation_ids[:0],
        anchor_ids=batch.anchor_ids[:0],
        query_index=batch.query_index[:0],
        set_offsets=np.zeros(1, np.int64),
        set_ids=batch.set_ids[:0],
    )


def _merge_counts(report: dict[str, Any], more: dict[str, Any]) -> None:
    """Add a top-up build's counters (dropped, paraphrase) to ``report``."""
    for key in ("dropped", "paraphrase"):
        if key in more:
            d = report.setdefault(key, {})
            for k, v in more[key].items():
                if isinstance(v, int | float):
                    d[k] = d.get(k, 0) + v
    report["skipped_patterns"].update(more.get("skipped_patterns", {}))


def _build_once(
    kg: Any,
    batches: Sequence[tuple[str, Any]],
    *,
    seed: int,
    format: str = "openai",
    context: Context | None = None,
    empty_ratio: float = 0.0,
    error_ratio: float = 0.0,
    distractors: int = 3,
    xlam_mode: str = "independent",
    split: str = "random",
    split_fractions: tuple[float, float, float] = (0.9, 0.05, 0.05),
    holdout: Sequence[str] | None = None,
    holdout_fraction: float = 0.1,
    paraphraser: Any = None,
    set_ops: str = "thought",
    max_join_calls: int = MAX_JOIN_CALLS,
    call_style: str = "single",
    with_record: bool = True,
    allow_raw_keys: bool = False,
    exclude_relations: Sequence[str] = (),
    exclude_entities: Sequence[str] = (),
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Verified samples from grounded queries, one (name, QueryBatch) per pattern.

    ``exclude_relations`` / ``exclude_entities``: shell-style patterns (``"*slur*"``,
    ``"P1?"``) matched case-insensitively against keys and labels; queries using such a
    relation or showing such an entity are dropped and counted (``excluded``). Relations
    whose lexicon entry says ``exclude = true`` are always excluded.

    Queries whose question or trajectory would show an entity without a name (an opaque key
    such as ``Q42``) are dropped and counted (``raw_key_entity``) unless ``allow_raw_keys``.

    ``set_ops``: ``"thought"`` (set operations explained in the thoughts) or ``"tools"``
    (calls of the set-operation APIs). ``call_style``: ``"single"`` (one call per entity) or
    ``"batched"`` (one list-API call per projection op, see :mod:`kg2tool.samples.calls`).
    Queries of JOIN (cyclic) patterns whose trajectory would need more than
    ``max_join_calls`` calls are dropped (``join_too_many_calls``).

    Every per-sample choice (template, distractors, split) is seeded by (seed, the query's
    pattern position and stream index), so a sample does not depend on which shard it is in.
    ``paraphraser`` (a :class:`kg2tool.dataset.paraphrase.Paraphraser`) rewrites a seeded share of
    the questions and adds the ``question_template`` column. ``with_record=False``: no
    ``record`` column where :func:`kg2tool.samples.formats.record_parts` can write the lines from the
    other columns (openai; the pipeline writes them straight to the JSONL files).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {FORMATS}")
    ctx = context or Context(kg)
    if call_style not in CALL_STYLES:
        raise ValueError(f"call_style must be one of {CALL_STYLES}, got {call_style!r}")
    if call_style == "batched":
        ctx = ctx.batched()
    report: dict[str, Any] = {"dropped": {}, "skipped_patterns": {}, "per_pattern": {}}
    exclusions = ctx.exclusions(tuple(exclude_relations), tuple(exclude_entities))
    items: list[tuple[Any, pl.DataFrame]] = []
    specs: list[str] = []
    base = 0
    for p_idx, (spec, batch) in enumerate(batches):
        plan = batch.plan
        n = len(batch)
        if n == 0:
            continue
        try:
            check_plan(plan)
        except UnsupportedPlanError as exc:
            report["skipped_patterns"][str(spec)] = str(exc)
            continue
        q = _batch_frame(batch, p_idx << 40)
        if JOIN in {int(x) for x in plan.op_kind}:
            big = join_call_counts(plan, q, kg) > max_join_calls
            if big.any():
                d = report["dropped"]
                d["join_too_many_calls"] = d.get("join_too_many_calls", 0) + int(big.sum())
                q = q.filter(pl.Series(~big))
                if q.height == 0:
                    continue
        n_empty = round(n * empty_ratio)
        if n_empty:
            eb = _empty_groundings(
                kg, plan, batch.relation_ids, batch.anchor_ids, seed + p_idx, batch.query_index
            )
            eq = _batch_frame(eb, (p_idx << 40) + (1 << 39))
            eq = eq.filter(pl.col("num_answers") == 0).head(n_empty)
            q = pl.concat([q.head(n - eq.height), eq.with_columns(pl.col("sid") + n)])
        # sids unique across the shard's patterns (rows stay in pattern order)
        q = q.with_columns(pl.col("sid") + base, pl.lit(len(specs), pl.Int32).alias("_p"))
        base += 2 * n + 1
        q = _questions(ctx, plan, q, seed, report, allow_raw_keys, exclusions)
        items.append((plan, q))
        specs.append(str(spec))
    if paraphraser is not None:
        items = paraphraser.apply(kg, items, seed, report)
    frame = (
        _shard_rows(
            ctx,
            items,
            specs,
            format,
            seed,
            error_ratio,
            distractors,
            xlam_mode,
            report,
            set_ops,
            call_style,
            with_record=with_record,
            banned=None if exclusions is None else exclusions[0],
        )
        if items
        else _empty_frame()
    )
    if paraphraser is not None:
        from kg2tool.dataset.paraphrase import attach_templates

        frame = attach_templates(frame, items)
    frame = frame.unique(subset=["pattern", "bindings"], keep="first", maintain_order=True)
    frame = assign_splits(frame, split, seed, split_fractions, holdout, holdout_fraction, ctx)
    return frame, report


def _empty_frame() -> pl.DataFrame:
    """A frame with the dataset schema and no rows."""
    return pl.DataFrame(schema={c: pl.String for c in COLUMNS})


def _questions(
    ctx: Context,
    plan: Any,
    q: pl.DataFrame,
    seed: int,
    report: dict[str, Any],
    allow_raw_keys: bool = False,
    exclusions: tuple[np.ndarray, np.ndarray] | None = None,
) -> pl.DataFrame:
    """One pattern's queries with their question; anchors that cannot be named are dropped,
    and (unless ``allow_raw_keys``) queries whose trajectory would show an entity without a
    name (``raw_key_entity``)."""
    labels = ctx.kg.entities["label"]
    k_anc = len(plan.anchor_slots)
    anc = _matrix(q["anchor_ids"], k_anc)
    rel = _matrix(q["relation_ids"], len(plan.relation_slots))
    anchor_names = [labels.gather(anc[:, j]) for j in range(k_anc)]
    # anchors whose label is shared or is a raw id cannot be named in a question
    ok_anchor = ctx.namable[anc].all(axis=1) if k_anc else np.ones(q.height, bool)
    dropped = report["dropped"]
    if (~ok_anchor).any():
        dropped["unnamable_anchor"] = dropped.get("unnamable_anchor", 0) + int((~ok_anchor).sum())
    question, lint = verbalize_linted(
        plan, rel, anchor_names, q["qid"].to_numpy(), ctx.lexicon, seed=seed
    )
    # no template of the pattern reads well for these relations: dropped and counted
    bad_text = lint.is_not_null().to_numpy() & ok_anchor
    if bad_text.any():
        dropped["question_lint"] = dropped.get("question_lint", 0) + int(bad_text.sum())
    keep = ok_anchor & ~bad_text
    if not allow_raw_keys:
        raw = _touches(ctx.unlabelled, q, anc) & keep
        if raw.any():
            dropped["raw_key_entity"] = dropped.get("raw_key_entity", 0) + int(raw.sum())
        keep &= ~raw
    if exclusions is not None:  # excluded relations and entities
        bad_rel, bad_ent = exclusions
        out = (bad_rel[rel].any(axis=1) if rel.size else np.zeros(q.height, bool)) & keep
        if bad_ent.any():
            out |= _touches(bad_ent, q, anc) & keep
        if out.any():
            dropped["excluded"] = dropped.get("excluded", 0) + int(out.sum())
        keep &= ~out
    return q.with_columns(question.alias("question")).filter(pl.Series(keep))


def _shard_rows(
    ctx: Context,
    items: list[tuple[Any, pl.DataFrame]],
    specs: list[str],
    fmt: str,
    seed: int,
    error_ratio: float,
    distractors: int,
    xlam_mode: str,
    report: dict[str, Any],
    set_ops: str = "thought",
    call_style: str = "single",
    *,
    with_record: bool = True,
    banned: np.ndarray | None = None,
) -> pl.DataFrame:
    """Trajectories, verification and records of every pattern's queries, all at once
    (``banned``: per relation id, excluded, so never offered as a distractor tool)."""
    rt = ctx.runtime
    dropped = report["dropped"]
    traj = build_trajectories_many(
        items,
        rt,
        ctx.lexicon,
        seed=seed,
        error_ratio=error_ratio,
        set_ops=set_ops,
        call_style=call_style,
    )
    ok, failures = verify_many(items, traj, rt)
    for k, v in failures.items():
        dropped[k] = dropped.get(k, 0) + v
    q = pl.concat([x for _, x in items], how="vertical_relaxed")
    oks = pl.Series(ok)
    q = q.filter(oks)
    samples = traj.samples.filter(oks)
    steps = traj.steps.filter(pl.col("sid").is_in(q["sid"].implode()))
    steps = steps.with_columns(
        (pl.col("kind") == "call").alias("_c"),
        pl.col("sid").cast(pl.Int64),
    )
    # calls whose argument is an anchor of the question: the builder's ``from_anchor``

    samples = samples.with_columns(pl.col("sid").cast(pl.Int64))
    q = q.with_columns(pl.col("sid").cast(pl.Int64))
    tool_ids = _tool_ids(ctx, samples, steps, q, distractors, seed, banned)
    samples = pl.concat(
        [
            samples,
            q.select(
                "qid", "question", "pattern", "formula", "bindings", "answers", "relation_ids", "_p"
            ),
        ],
        how="horizontal",
    )
    samples = samples.join(tool_ids, on="sid", how="left", maintain_order="left")
    samples = samples.with_columns(
        pl.concat_str(pl.col("pattern"), pl.lit("|"), pl.col("bindings"))
        .map_batches(_stable_ids, return_dtype=pl.String)
        .alias("id")
    )
    samples = samples.with_columns(
        pl.col("id").str.slice(0, 13).str.to_integer(base=16).alias("xlam_id")
    )
    rec = build_records(
        fmt, samples, steps, ctx.fragments, xlam_mode=xlam_mode, with_record=with_record
    )
    if not rec["sid"].equals(samples["sid"]):
        raise AssertionError("records out of sample order")
    out = pl.concat([samples, rec.drop("sid")], how="horizontal")
    if fmt == "xlam":
        nx = int(out["record"].is_null().sum())
        if nx:
            dropped["xlam_not_expressible"] = dropped.get("xlam_not_expressible", 0) + nx
        out = out.filter(pl.col("record").is_not_null())
    counts = np.bincount(out["_p"].to_numpy(), minlength=len(specs)) if out.height else None
    for i, spec in enumerate(specs):
        report["per_pattern"][spec] = int(counts[i]) if counts is not None else 0
    used_apis = steps.group_by("sid").agg(pl.col("api").unique().sort().alias("apis"))
    out = out.join(used_apis, on="sid", how="left", maintain_order="left")
    return out.select(
        "pattern",
        "formula",
        "bindings",
        "question",
        "answers",
        pl.col("answer_names").alias("answer_labels"),
        "tools",
        "messages",
        "num_calls",
        "trace",
        "grounding",
        *(["record"] if "record" in out.columns else []),
        "empty",
        "recovery",
        pl.col("relation_ids"),
        pl.col("apis").fill_null(pl.lit([], pl.List(pl.String))),
        "id",
    )


def _matrix(col: pl.Series, width: int) -> np.ndarray:
    """A fixed-width List(Int) column as an [n, width] int64 matrix (no Python lists)."""
    return np.asarray(col.explode().to_numpy(), dtype=np.int64).reshape(len(col), width)


def _stable_ids(s: pl.Series) -> pl.Series:
    """16-hex-digit ids from a stable hash of each string (same in every Polars version)."""
    import hashlib

    return pl.Series([hashlib.blake2b(v.encode(), digest_size=8).hexdigest() for v in s.to_list()])


def _tool_ids(
    ctx: Context,
    samples: pl.DataFrame,
    steps: pl.DataFrame,
    q: pl.DataFrame,
    k: int,
    seed: int,
    banned: np.ndarray | None = None,
) -> pl.DataFrame:
    """Per sample: needed API indices + up to ``k`` seeded distractors, in a seeded order
    (never an API of a ``banned`` relation)."""
    idx = ctx.fragments.index
    needed = steps.select(
        "sid",
        pl.col("api")
        .replace_strict(list(idx), list(idx.values()), return_dtype=pl.Int64)
        .alias("t"),
    )
    pool = np.asarray(ctx.fragments.relation_ids, dtype=np.int64)
    if banned is not None and banned.any() and len(pool):
        rel_of = np.array([ctx.catalog.apis[i].relation_id for i in pool], dtype=np.int64)
        pool = pool[~banned[rel_of]]
    qid = q.select("sid", "qid").filter(pl.col("sid").is_in(samples["sid"].implode()))
    parts = [needed]
    if k > 0 and len(pool):
        sid = np.repeat(qid["sid"].to_numpy(), k)
        h = mix_hash(
            seed, 0xD15, np.repeat(qid["qid"].to_numpy(), k), np.tile(np.arange(k), qid.height)
        )
        parts.append(
            pl.DataFrame({"sid": sid, "t": pool[(h % np.uint64(len(pool))).astype(np.int64)]})
        )
    allt = pl.concat(parts).unique(maintain_order=True).join(qid, on="sid", how="left")
    # ordered by the stable query id, not the row: a sample's tools do not depend on its shard
    order = mix_hash(seed, 0x70, allt["qid"].to_numpy(), allt["t"].to_numpy())
    return (
        allt.with_columns(pl.Series("o", order))
        .sort("sid", "o")
        .group_by("sid", maintain_order=True)
        .agg(pl.col("t").alias("tool_ids"))
    )


def assign_splits(
    frame: pl.DataFrame,
    how: str,
    seed: int,
    fractions: tuple[float, float, float] = (0.9, 0.05, 0.05),
    holdout: Sequence[str] | None = None,
    holdout_fraction: float = 0.1,
    ctx: Context | None = None,
) -> pl.DataFrame:
    """``split`` column: random by id hash, or test = samples touching held-out relations/APIs/patterns."""
    if frame.height == 0:
        return frame.with_columns(pl.lit("train").alias("split"))
    if how == "random":
        h = mix_hash(
            seed,
            0x5B,
            pl.Series([int(i, 16) for i in frame["id"].to_list()], dtype=pl.UInt64).to_numpy(),
        )
        u = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        tr, va = fractions[0], fractions[0] + fractions[1]
        split = np.where(u < tr, "train", np.where(u < va, "validation", "test"))
        return frame.with_columns(pl.Series("split", split))
    if how == "pattern":
        names = sorted(set(frame["pattern"].to_list()))
        held = set(holdout) if holdout else _pick(names, holdout_fraction, seed)
        test = frame["pattern"].is_in(sorted(held))
    elif how == "relation":
        keys = ctx.kg.relations["key"] if ctx else None
        names = keys.to_list() if keys is not None else []
        held = set(holdout) if holdout else _pick(names, holdout_fraction, seed)
        held_ids = [i for i, k in enumerate(names) if k in held]
        test = frame.select(
            pl.col("relation_ids").list.eval(pl.element().is_in(held_ids)).list.any()
        )
        test = test.to_series()
    elif how == "api":
        names = ctx.catalog.names if ctx else []
        held = set(holdout) if holdout else _pick(names, holdout_fraction, seed)
        test = frame.select(
            pl.col("apis").list.eval(pl.element().is_in(sorted(held))).list.any()
        ).to_series()
    else:
        raise ValueError("split must be 'random', 'relation', 'api' or 'pattern'")
    return frame.with_columns(
        pl.when(pl.lit(test)).then(pl.lit("test")).otherwise(pl.lit("train")).alias("split")
    )


def _pick(names: list[str], fraction: float, seed: int) -> set[str]:
    """A seeded subset of names of the given fraction (at least one)."""
    if not names:
        return set()
    h = mix_hash(seed, 0x40, np.arange(len(names)))
    order = np.argsort(h, kind="stable")
    k = max(1, round(fraction * len(names)))
    return {names[i] for i in order[:k]}


def build_dataset(
    kg: Any,
    patterns: Sequence[Any],
    num_samples: int,
    *,
    seed: int = 0,
    format: str = "openai",
    context: Context | None = None,
    **options: Any,
) -> pl.DataFrame:
    """All samples in one shard (see :func:`build_shard` for the options)."""
    frame, _ = build_shard(
        kg, patterns, 0, 1, num_samples, seed, format, context=context, **options
    )
    return frame


def _atomic_write(path: Path, data: bytes) -> None:
    """Write bytes to path via a temp file + rename (:mod:`kg2tool.atomic`)."""
    write_bytes(path, data)


def _write_lines(path: Path, col: pl.Series) -> None:
    """A String column written as one line per value (each followed by a newline), atomically.

    Polars writes it natively (a one-column CSV that never quotes: JSON records hold no raw
    newline), with no Python string per record (joining ~50k non-ASCII Python strings costs
    seconds)."""
    if col.null_count():
        raise ValueError("null record")
    with atomic_file(path) as tmp:
        pl.DataFrame([col.alias("r")]).write_csv(
            tmp, include_header=False, quote_style="never", line_terminator="\n"
        )


@dataclass
class Lines:
    """Record lines to write: ``n`` rows of :mod:`kg2tool.textops` parts, each row then a
    newline (see :func:`kg2tool.samples.formats.record_parts`)."""

    n: int
    parts: list[Any]

    @classmethod
    def of(cls, col: pl.Series) -> Lines:
        """The values of a String column (a ``record`` column) as lines."""
        if col.null_count():
            raise ValueError("null record")
        return cls(len(col), [Str(Strings(col))])

    def write(self, fd: int) -> int:
        """Written to ``fd`` from its offset (natively, no text column built); bytes written."""
        return write_lines(fd, self.n, *self.parts)


def write_lines_at(path: Path, at: int, lines: Lines, *, atomic: bool = False) -> int:
    """``lines`` written into ``path`` from byte ``at``, the file cut there first (created if
    missing); returns the new size. ``atomic`` (with ``at == 0``): into a temporary file in the
    same directory, then renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if atomic:
        with atomic_file(path) as tmp:
            fd = os.open(tmp, os.O_WRONLY)
            try:
                return lines.write(fd)
            finally:
                os.close(fd)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)  # less the umask, as open() does
    try:
        os.ftruncate(fd, at)
        os.lseek(fd, at, os.SEEK_SET)
        return at + lines.write(fd)
    finally:
        os.close(fd)


def write_dataset(
    frame: pl.DataFrame,
    out_dir: str | os.PathLike[str],
    format: str = "openai",
    *,
    shard_size: int = 100_000,
    config: dict[str, Any] | None = None,
    card: bool = True,
) -> Path:
    """Parquet shards ``data/{split}-{i:05d}-of-{n:05d}.parquet`` (without ``record``), JSON(L)
    per split (the records), card."""
    out = Path(out_dir)
    (out / "data").mkdir(parents=True, exist_ok=True)
    for split in sorted(set(frame["split"].to_list())):
        part = frame.filter(pl.col("split") == split)
        n = max(1, -(-part.height // shard_size))
        for i in range(n):
            chunk = part.slice(i * shard_size, shard_size)
            path = out / "data" / f"{split}-{i:05d}-of-{n:05d}.parquet"
            _write_parquet(parquet_frame(chunk), path)
        if format == "toolbench":  # one JSON array of step records
            records = part["record"].to_list()
            inner = [r[1:-1] for r in records if len(r) > 2]
            _atomic_write(out / f"{split}.json", ("[" + ",".join(inner) + "]").encode())
        else:
            _write_lines(out / f"{split}.jsonl", part["record"])
    if format == "sharegpt":
        info = {}
        for split in sorted(set(frame["split"].to_list())):
            info.update(dataset_info_entry(f"{split}.jsonl", f"kg2tool_{split}"))
        _atomic_write(out / "dataset_info.json", json.dumps(info, indent=2).encode())
    if config is not None:
        _atomic_write(out / "config.json", orjson.dumps(config, option=orjson.OPT_INDENT_2))
    if card:
        write_card(frame, out, format, config)
    return out


# Parquet settings of the shards: zstd level 1 compresses the ~120 MB of JSON text of a
# 20k-sample openai shard ~10% faster than the default level 3, for ~8% larger files.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1}


def parquet_frame(frame: pl.DataFrame, *, with_record: bool = False) -> pl.DataFrame:
    """The columns stored in a Parquet shard: all but ``record`` (the format's line, kept in
    the JSON(L) files; for openai it is just ``messages`` + ``tools`` again, ~40% of the text),
    unless ``with_record`` (a run that writes no JSON(L) keeps its records there)."""
    return frame if with_record or "record" not in frame.columns else frame.drop("record")


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """``frame`` to ``path`` atomically (a temporary name in the same directory, then rename)."""
    with atomic_file(path) as tmp:
        frame.write_parquet(tmp, **PARQUET_OPTIONS)


def write_shard(
    frame: pl.DataFrame,
    out: Path,
    shard_id: int,
    num_shards: int,
    format: str,
    *,
    jsonl: bool = True,
    records: dict[str, Lines] | None = None,
) -> list[Path]:
    """One shard's files, each atomically: ``data/{split}-{i:05d}-of-{n:05d}.parquet`` and, with
    ``jsonl``, the format's records in ``records/{split}-{i:05d}-of-{n:05d}.jsonl`` (then the
    Parquet files leave the ``record`` column out; see :func:`parquet_frame`), or, when
    ``records`` is a dict, no record files: each split's :class:`Lines` go into it (the
    pipeline writes them into the split files itself). The lines come from the ``record``
    column, or from the other columns when the frame has none (see ``with_record`` of
    :func:`build_from_batches`)."""
    files = []
    splits = sorted(set(frame["split"].to_list())) if frame.height else ["train"]
    columns = _StringColumns(frame)
    for split in splits:
        mask = frame["split"] == split
        part = frame.filter(mask)
        name = f"{split}-{shard_id:05d}-of-{num_shards:05d}"
        path = out / "data" / f"{name}.parquet"
        _write_parquet(parquet_frame(part, with_record=not jsonl), path)
        files.append(path)
        if not jsonl:
            continue
        if "record" in frame.columns:
            lines = Lines.of(part["record"])
        else:
            rows = np.flatnonzero(mask.to_numpy())
            parts = record_parts(format, columns, rows)
            if parts is None:
                raise ValueError(f"{format} records need the record column")
            lines = Lines(len(rows), parts)
        if records is not None:
            records[split] = lines
        else:
            rec = out / "records" / f"{name}.jsonl"
            write_lines_at(rec, 0, lines, atomic=True)
            files.append(rec)
    return files


class _StringColumns(dict):
    """``frame``'s String columns as :class:`~kg2tool.textops.Strings`, each made once."""

    def __init__(self, frame: pl.DataFrame) -> None:
        super().__init__()
        self.frame = frame

    def __missing__(self, name: str) -> Strings:
        self[name] = got = Strings(self.frame[name])
        return got


def finalize_outputs(
    out: Path,
    files: Sequence[str],
    format: str,
    config: dict[str, Any] | None,
    *,
    kg: Any = None,
    merged: tuple[dict[str, Path], dict[str, int]] | None = None,
    report: dict[str, Any] | None = None,
    sections: Sequence[tuple[str, Sequence[str]]] = (),
) -> None:
    """Merge shard records into one file per split (a JSON array for ToolBench, else JSONL),
    the LLaMA-Factory ``dataset_info.json`` for ShareGPT, and the dataset card. ``merged``:
    JSONL split files already assembled (in shard order) and their sizes, renamed into place
    (then ``files`` lists no shard record files). ``report`` and ``sections`` go to
    :func:`kg2tool.dataset.card.write_card`."""
    del kg
    records = sorted(f for f in files if f.startswith("records/"))
    by_split: dict[str, list[str]] = {}
    for f in records:
        by_split.setdefault(Path(f).name.rsplit("-", 3)[0], []).append(f)
    if merged is not None:
        for split, part in sorted(merged[0].items()):
            target = out / f"{split}.jsonl"
            size = merged[1][split]
            if part.is_file() and part.stat().st_size == size:
                os.replace(part, target)
            elif not (target.is_file() and target.stat().st_size == size):
                raise OSError(f"{part}: not the {size:,} bytes of merged records expected")
            by_split.setdefault(split, [])
        with contextlib.suppress(OSError):
            (out / "records").rmdir()  # empty once every shard's records are merged
    for split, parts in sorted(by_split.items()):
        if merged is not None and split in merged[0]:
            continue
        target = out / (f"{split}.json" if format == "toolbench" else f"{split}.jsonl")
        with atomic_file(target) as tmp, open(tmp, "wb") as dst:
            if format == "toolbench":  # each line is one step record: make one JSON array
                dst.write(b"[")
                first = True
                for p in parts:
                    with open(out / p, "rb") as src:
                        for line in src:
                            line = line.rstrip(b"\n")
                            if not line:
                                continue
                            inner = line[1:-1] if line.startswith(b"[") else line
                            if not inner:
                                continue
                            dst.write((b"" if first else b",") + inner)
                            first = False
                dst.write(b"]")
            else:
                _concat_files([out / p for p in parts], dst)
    if format == "sharegpt":
        info = {}
        for split in sorted(by_split):
            info.update(dataset_info_entry(f"{split}.jsonl", f"kg2tool_{split}"))
        _atomic_write(out / "dataset_info.json", json.dumps(info, indent=2).encode())
    parquet = [out / f for f in files if f.endswith(".parquet")]
    examples, columns = None, None
    if parquet:
        stats, rels = card_stats(pl.scan_parquet(parquet))
        examples, columns = card_examples(pl.scan_parquet(parquet))
    else:
        stats, rels = pl.DataFrame(schema=dict.fromkeys(CARD_COLUMNS, pl.Int64)), 0
    write_card(
        stats,
        out,
        format,
        config,
        relations=rels,
        examples=examples,
        columns=columns,
        report=report,
        sections=sections,
    )


def _append_file(src: Path, dst: Path, at: int) -> int:
    """Write ``src`` into ``dst`` (created if missing) at offset ``at``, cutting ``dst`` there
    first; returns the new size of ``dst``. A kernel copy (``os.copy_file_range``) when it can."""
    size = src.stat().st_size
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o666)  # less the umask, as open() does
    try:
        os.ftruncate(fd, at)
        with open(src, "rb") as fh:
            done = 0
            try:
                if not hasattr(os, "copy_file_range"):
                    raise OSError("no copy_file_range")
                while done < size:
                    n = os.copy_file_range(fh.fileno(), fd, size - done, done, at + done)
                    if n == 0:
                        raise OSError("copy_file_range copied nothing")
                    done += n
            except OSError:
                if done:
                    raise
                os.lseek(fd, at, os.SEEK_SET)
                while chunk := fh.read(1 << 22):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return at + size


def _concat_files(parts: Sequence[Path], dst: Any, workers: int = 2) -> None:
    """Write the files one after another into ``dst`` (empty, opened "wb").

    Each part goes to its own offset with ``os.copy_file_range`` (a kernel copy), a few
    parts at a time on threads: merging the shards of a 1M-sample run is ~4 GB of copying.
    Falls back to a plain sequential copy where the call is missing or refused."""
    sizes = [p.stat().st_size for p in parts]
    starts = [0]
    for n in sizes:
        starts.append(starts[-1] + n)

    def one(k: int) -> None:
        with open(parts[k], "rb") as src:
            done = 0
            while done < sizes[k]:
                n = os.copy_file_range(
                    src.fileno(), dst.fileno(), sizes[k] - done, done, starts[k] + done
                )
                if n == 0:
                    raise OSError("copy_file_range copied nothing")
                done += n

    try:
        if not hasattr(os, "copy_file_range"):
            raise OSError("no copy_file_range")
        os.ftruncate(dst.fileno(), starts[-1])
        if workers > 1 and len(parts) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(workers, len(parts))) as pool:
                list(pool.map(one, range(len(parts))))
        else:
            for k in range(len(parts)):
                one(k)
        return
    except OSError:
        pass
    dst.seek(0)
    dst.truncate()
    for p in parts:
        with open(p, "rb") as src:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
