"""Dataset assembly: grounded queries -> questions + verified trajectories -> one Polars frame.

``build_dataset(kg, ["2p", ("2i", 2.0)], 1000, seed=0, format="openai")`` returns one row per
verified sample with the columns ``id, pattern, formula, bindings, question, answers,
answer_labels, tools, messages, num_calls, split`` plus provenance (``trace``, ``grounding``),
``record`` (the format's line; left out with ``with_record=False`` where it concatenates other
columns, see :func:`kg2tool.samples.formats.record_parts`), ``empty`` and ``recovery`` flags;
:func:`build_shard` also returns a ``report`` dict of counters.

A shard is a pure function of (kg, specs, shard id, sizes, seed, format, options): the
pipeline can redo any shard and get the same frame. De-duplication is on the canonical grounding
(pattern, relation ids, anchor ids) inside a shard; across shards use the ``id`` column (a hash
of the grounding). TYPE_FILTER patterns (and JOINs trajectories cannot follow) are skipped with
a message in the report. Dropped samples are replaced by queries drawn again (``redraw`` of
:func:`build_from_batches`), so shards reach their counts unless a pattern runs out.
Writing the frames to disk is :mod:`kg2tool.dataset.output`'s job.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from kg2tool.arrays import list_matrix
from kg2tool.dataset.exclusions import (
    exclusion_masks,
    namable_entities,
    touches,
    unlabelled_entities,
)
from kg2tool.dataset.paraphrase import attach_templates
from kg2tool.engine import QueryStream, execute_queries, resolve_pattern, sample_queries
from kg2tool.patterns import ANCHOR, JOIN, MAX_JOIN_CALLS, PROJECT, join_call_counts, pattern_counts
from kg2tool.samples.anchor_names import NameForms
from kg2tool.samples.calls import CALL_STYLES, UnsupportedPlanError, check_plan
from kg2tool.samples.formats import FORMATS, ToolFragments, build_records
from kg2tool.samples.linted import verbalize_linted
from kg2tool.samples.questions import RelationLexicon, build_lexicon, mix_hash
from kg2tool.samples.replay import verify_many
from kg2tool.samples.trajectories import build_trajectories_many
from kg2tool.tools.catalog import LIST_KIND, ApiCatalog
from kg2tool.tools.runtime import ToolRuntime

__all__ = [
    "COLUMNS",
    "SampleContext",
    "assign_splits",
    "build_dataset",
    "build_from_batches",
    "build_shard",
    "grounding_hashes",
]

# Hash salts: each names the draw it seeds (fixed values; changing one changes every dataset).
_EMPTY_ANCHOR_SALT = 0xE3  # the anchor swapped in to make an empty-answer question
_REDRAW_STREAM_SALT = 0x7ED  # the query stream a shard's top-up rounds draw from, per pattern
_GROUNDING_SALT = 0x0A7  # the seed-free grounding hash that decides which shard may redraw it
_DISTRACTOR_SALT = 0xD15  # the distractor tools offered beside the needed ones
_TOOL_ORDER_SALT = 0x70  # the order of a sample's tools
_SPLIT_SALT = 0x5B  # a sample's random split
_HOLDOUT_SALT = 0x40  # the relations, APIs or patterns held out for the test split

# qid = (pattern position << _PATTERN_QID_SHIFT) + stream index, plus an offset for queries
# not from the pattern's first stream: empty-answer variants and top-up redraws.
_PATTERN_QID_SHIFT = 40
_EMPTY_QID = 1 << 39
_REDRAW_QID = 1 << 38


def _int63(h: np.ndarray) -> int:
    """The first hash of ``h`` as a non-negative int64 seed."""
    return int(h[0] & np.uint64(0x7FFFFFFFFFFFFFFF))


COLUMNS = (
    "id pattern formula bindings question answers answer_labels tools messages num_calls split"
).split()


class SampleContext:
    """What building samples on one KG needs, built once and reused by every shard: the API
    catalogue, the tool runtime, the relation lexicon, the tool fragments of the formats and
    the entity masks (namable anchors, unlabelled entities)."""

    def __init__(
        self,
        kg: Any,
        catalog: ApiCatalog | None = None,
        overrides: Any = None,
        lexicon: RelationLexicon | None = None,
    ) -> None:
        """Build everything the per-batch work needs (``catalog`` and ``lexicon``: built
        already for this KG and overrides, e.g. by the driver of a process pool)."""
        self.kg = kg
        self.catalog = catalog or ApiCatalog.from_graph(kg, overrides=overrides)
        self.runtime = ToolRuntime(kg, self.catalog)
        self.lexicon: RelationLexicon = (
            lexicon if lexicon is not None else build_lexicon(kg, self.catalog, overrides)
        )
        self.fragments = ToolFragments(self.catalog)
        self.namable = namable_entities(kg)
        self.unlabelled = unlabelled_entities(kg)
        self.name_forms = NameForms(kg.entities["label"])

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

    def batched(self) -> SampleContext:
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


def _specs(patterns: Sequence[Any]) -> list[tuple[str, float]]:
    """Normalise pattern names / (spec, weight) pairs."""
    return [(p[0], float(p[1])) if isinstance(p, tuple) else (p, 1.0) for p in patterns]


def _empty_groundings(
    kg: Any, plan: Any, rel: np.ndarray, anc: np.ndarray, seed: int, index: np.ndarray
) -> Any:
    """Perturb the last anchor of each grounding (to an entity with the relation) and execute."""
    a_idx = len(plan.anchor_slots) - 1
    k = [
        i
        for i in range(plan.num_ops)
        if int(plan.op_kind[i]) == PROJECT
        and a_idx in [int(plan.op_arg[j]) for j in plan.inputs(i) if int(plan.op_kind[j]) == ANCHOR]
    ]
    t = kg.triples
    slot = int(plan.op_arg[k[0]]) if k else 0
    side = "tail" if (k and int(plan.op_dir[k[0]]) == 1) else "head"
    by_rel = t.select("relation", side).unique().sort("relation", side)
    rel_col = by_rel["relation"].to_numpy()
    ent_col = by_rel[side].to_numpy()
    starts = np.searchsorted(rel_col, np.arange(kg.num_relations + 1))
    r = rel[:, slot]
    cnt = starts[r + 1] - starts[r]
    h = mix_hash(seed, _EMPTY_ANCHOR_SALT, np.asarray(index, dtype=np.int64))
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
    context: SampleContext | None = None,
    max_intermediate: int = 10,
    **options: Any,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """One shard sampled on its own: (frame, report). Pure in its inputs; ``seed`` is mixed
    with ``shard_id``. Dropped samples are replaced by queries drawn again (``redraw`` of
    :func:`build_from_batches`), so each pattern gets its count unless it runs out. The
    pipeline instead draws shards from continuing query streams (de-duplicated across shards)
    and calls :func:`build_from_batches`."""
    specs = _specs(spec_list)
    counts = pattern_counts([w for _, w in specs], samples_in_shard)
    shard_seed = _int63(mix_hash(seed, shard_id, num_shards))
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
    context: SampleContext | None = None,
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
    ctx = context or SampleContext(kg)
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
    # a frame with no sample may lack columns (all its samples dropped): leave it out
    frame = pl.concat([f for f in frames if f.height] or frames[:1], how="vertical_relaxed")
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
    ctx: SampleContext,
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
    spec, batch = batches[p_idx]
    name = str(spec)
    shard, shards = int(redraw.get("shard", 0)), int(redraw.get("num_shards", 1))
    avoid = np.asarray(redraw.get("avoid", {}).get(name, ()), np.uint64)
    stream_seed = _int63(mix_hash(seed, _REDRAW_STREAM_SALT, shard, p_idx))
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
    return mix_hash(_GROUNDING_SALT, len(cols), *cols) if len(rel) else np.zeros(0, np.uint64)


def _no_queries(batch: Any) -> Any:
    """``batch`` without queries (a placeholder keeping the patterns' positions)."""
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
    context: SampleContext | None = None,
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
    ctx = context or SampleContext(kg)
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
        q = _batch_frame(batch, p_idx << _PATTERN_QID_SHIFT)
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
            eq = _batch_frame(eb, (p_idx << _PATTERN_QID_SHIFT) + _EMPTY_QID)
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
        frame = attach_templates(frame, items)
    frame = frame.unique(subset=["pattern", "bindings"], keep="first", maintain_order=True)
    frame = assign_splits(frame, split, seed, split_fractions, holdout, holdout_fraction, ctx)
    return frame, report


def _empty_frame() -> pl.DataFrame:
    """A frame with the dataset schema and no rows."""
    return pl.DataFrame(schema={c: pl.String for c in COLUMNS})


def _questions(
    ctx: SampleContext,
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
    anc = list_matrix(q["anchor_ids"], k_anc)
    rel = list_matrix(q["relation_ids"], len(plan.relation_slots))
    anchor_names = [labels.gather(anc[:, j]) for j in range(k_anc)]
    # anchors whose label is shared or is a raw id cannot be named in a question
    ok_anchor = ctx.namable[anc].all(axis=1) if k_anc else np.ones(q.height, bool)
    dropped = report["dropped"]
    if (~ok_anchor).any():
        dropped["unnamable_anchor"] = dropped.get("unnamable_anchor", 0) + int((~ok_anchor).sum())
    qids, forms = q["qid"].to_numpy(), ctx.name_forms
    question, lint = verbalize_linted(
        plan, rel, anchor_names, qids, ctx.lexicon, seed=seed, anchor_ids=anc, name_forms=forms
    )
    # no template of the pattern reads well for these relations: dropped and counted
    bad_text = lint.is_not_null().to_numpy() & ok_anchor
    if bad_text.any():
        dropped["question_lint"] = dropped.get("question_lint", 0) + int(bad_text.sum())
    keep = ok_anchor & ~bad_text
    if not allow_raw_keys:
        raw = touches(ctx.unlabelled, q, anc) & keep
        if raw.any():
            dropped["raw_key_entity"] = dropped.get("raw_key_entity", 0) + int(raw.sum())
        keep &= ~raw
    if exclusions is not None:  # excluded relations and entities
        bad_rel, bad_ent = exclusions
        out = (bad_rel[rel].any(axis=1) if rel.size else np.zeros(q.height, bool)) & keep
        if bad_ent.any():
            out |= touches(bad_ent, q, anc) & keep
        if out.any():
            dropped["excluded"] = dropped.get("excluded", 0) + int(out.sum())
        keep &= ~out
    return q.with_columns(question.alias("question")).filter(pl.Series(keep))


def _shard_rows(
    ctx: SampleContext,
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


def _stable_ids(s: pl.Series) -> pl.Series:
    """16-hex-digit ids from a stable hash of each string (same in every Polars version)."""
    return pl.Series([hashlib.blake2b(v.encode(), digest_size=8).hexdigest() for v in s.to_list()])


def _tool_ids(
    ctx: SampleContext,
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
            seed,
            _DISTRACTOR_SALT,
            np.repeat(qid["qid"].to_numpy(), k),
            np.tile(np.arange(k), qid.height),
        )
        parts.append(
            pl.DataFrame({"sid": sid, "t": pool[(h % np.uint64(len(pool))).astype(np.int64)]})
        )
    allt = pl.concat(parts).unique(maintain_order=True).join(qid, on="sid", how="left")
    # ordered by the stable query id, not the row: a sample's tools do not depend on its shard
    order = mix_hash(seed, _TOOL_ORDER_SALT, allt["qid"].to_numpy(), allt["t"].to_numpy())
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
    ctx: SampleContext | None = None,
) -> pl.DataFrame:
    """``split`` column: random by id hash, or test = samples touching held-out relations/APIs/patterns."""
    if frame.height == 0:
        return frame.with_columns(pl.lit("train").alias("split"))
    if how == "random":
        h = mix_hash(
            seed,
            _SPLIT_SALT,
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
    h = mix_hash(seed, _HOLDOUT_SALT, np.arange(len(names)))
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
    context: SampleContext | None = None,
    **options: Any,
) -> pl.DataFrame:
    """All samples in one shard (see :func:`build_shard` for the options)."""
    frame, _ = build_shard(
        kg, patterns, 0, 1, num_samples, seed, format, context=context, **options
    )
    return frame
