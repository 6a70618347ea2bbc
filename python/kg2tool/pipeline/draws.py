"""The driver's draws: each pattern's grounded queries, shard after shard, from one stream per
pattern, with the queries a question cannot show (unnamable anchors, exclusions) drawn again,
and what shards will own when they redraw the samples they drop."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from kg2tool.pipeline.config import GenerateConfig, shard_counts


class ShardDraws:
    """The driver's draws, shard after shard: iterating gives (shard, {pattern position:
    [Drawn]}, samples no pattern could supply). Each pattern's queries come from one stream
    (de-duplicated across shards); a pattern out of distinct queries is marked exhausted and
    hands its share to the others. Rejection counts go to ``rejected``."""

    def __init__(
        self,
        kg: Any,
        cfg: GenerateConfig,
        specs: list[tuple[Any, float]],
        sample_opts: dict[str, Any],
        namable: np.ndarray | None,
        excluded: tuple[np.ndarray, np.ndarray] | None,
        per_shard: list[list[int]],
        num_shards: int,
        rejected: dict[str, int],
    ) -> None:
        from kg2tool.engine import QueryStream

        self.streams = [QueryStream(kg, spec, seed=cfg.seed, **sample_opts) for spec, _ in specs]
        self.names = [spec.name or spec.formula for spec, _ in specs]
        self.exhausted = [False] * len(specs)
        self.namable, self.excluded = namable, excluded
        self.per_shard, self.num_shards = per_shard, num_shards
        self.rejected = rejected

    def take(self, p: int, n: int, parts: dict[int, list[Any]]) -> int:
        """Draw n more usable queries of pattern p; a stream that runs short is marked
        exhausted. Queries with an anchor a question cannot name (a shared label or a raw
        id, see :func:`kg2tool.dataset.exclusions.namable_entities`) are skipped and drawn again, so
        shards hold the samples asked for; which ones depends only on the streams."""
        namable, excluded, exhausted = self.namable, self.excluded, self.exhausted
        got = rounds = 0
        while got < n and not exhausted[p] and rounds < 8:  # few rounds unless most drop
            rounds += 1
            batch = self.streams[p].take(n - got, strict=False)
            add_counts(self.rejected, batch.rejected)
            if len(batch) < n - got:
                exhausted[p] = True
            drawn = Drawn(batch.relation_ids, batch.anchor_ids, batch.query_index)
            if namable is not None and len(batch):
                ok = namable[batch.anchor_ids].all(axis=1)
                if not ok.all():
                    bad = int((~ok).sum())
                    add_counts(self.rejected, {"unnamable_anchor": bad})
                    drawn = Drawn(
                        batch.relation_ids[ok], batch.anchor_ids[ok], batch.query_index[ok]
                    )
            if excluded is not None and len(drawn.query_index):
                bad_rel, bad_ent = excluded  # drawn again, like unnamable anchors
                ok = ~bad_rel[drawn.relation_ids].any(axis=1)
                ok &= ~bad_ent[drawn.anchor_ids].any(axis=1)
                if not ok.all():
                    add_counts(self.rejected, {"excluded": int((~ok).sum())})
                    drawn = Drawn(
                        drawn.relation_ids[ok], drawn.anchor_ids[ok], drawn.query_index[ok]
                    )
            if len(drawn.query_index):
                parts.setdefault(p, []).append(drawn)
            got += len(drawn.query_index)
        return got

    def __iter__(self) -> Iterator[tuple[int, dict[int, list[Any]], int]]:
        specs = range(len(self.streams))
        for s in range(self.num_shards):
            parts: dict[int, list[Any]] = {}
            deficit = 0
            for p in specs:
                n = self.per_shard[p][s]
                if n and not self.exhausted[p]:
                    deficit += n - self.take(p, n, parts)
                else:
                    deficit += n
            # A pattern out of distinct queries hands its share to the others, in order.
            while deficit > 0:
                live = [p for p in specs if not self.exhausted[p]]
                if not live:
                    break
                share = shard_counts(deficit, len(live))
                deficit = sum(
                    n - self.take(p, n, parts) for p, n in zip(live, share, strict=True) if n
                )
            yield s, parts, deficit


def drops_likely(
    kg: Any,
    cfg: GenerateConfig,
    specs: list[tuple[Any, float]],
    excluded: tuple[np.ndarray, np.ndarray] | None,
) -> bool:
    """Whether shards will likely drop (and redraw) samples: entities without a name shown
    unless allowed, exclusions, cyclic (JOIN) patterns, or the xLAM format."""
    from kg2tool.dataset.exclusions import unlabelled_entities
    from kg2tool.engine import resolve_pattern
    from kg2tool.patterns import JOIN

    if excluded is not None or cfg.format == "xlam":
        return True
    if not cfg.allow_raw_keys and unlabelled_entities(kg).any():
        return True
    return any(JOIN in {int(x) for x in resolve_pattern(spec).op_kind} for spec, _ in specs)


def owned_stream_queries(
    shards: list[tuple[int, dict[int, list[Any]], int]], names: list[str], num_shards: int
) -> dict[int, dict[str, np.ndarray]]:
    """Per shard: per pattern name, the hashes of the stream queries (of any shard, as
    :class:`ShardDraws` gave them) whose grounding the shard owns (see
    :func:`kg2tool.dataset.assemble.grounding_hashes`); its redraws skip them."""
    from kg2tool.dataset.assemble import grounding_hashes

    owned: dict[int, dict[str, list[np.ndarray]]] = {}
    for _, parts, _ in shards:
        for p, batches in parts.items():
            for b in batches:
                h = grounding_hashes(b.relation_ids, b.anchor_ids)
                owner = (h % np.uint64(num_shards)).astype(np.int64)
                for o in np.unique(owner):
                    owned.setdefault(int(o), {}).setdefault(names[p], []).append(h[owner == o])
    return {
        o: {name: np.unique(np.concatenate(hs)) for name, hs in d.items()} for o, d in owned.items()
    }


@dataclass
class Drawn:
    """Queries the driver drew for a shard (one pattern): groundings and stream indices."""

    relation_ids: np.ndarray
    anchor_ids: np.ndarray
    query_index: np.ndarray


def namable_anchors(kg: Any) -> np.ndarray | None:
    """Per entity: whether a question can name it; None when every entity can, or none can (a KG
    without names: the samples are dropped and the run says why). From the KG alone
    (:func:`~kg2tool.dataset.exclusions.namable_entities`), so the draws need not wait for the
    catalogue."""
    from kg2tool.dataset.exclusions import namable_entities

    ok = namable_entities(kg)
    return None if ok.all() or not ok.any() else ok


def excluded_masks(kg: Any, cfg: GenerateConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """(relation mask, entity mask) of what the run excludes (patterns and the lexicon's
    ``exclude = true``), so such draws are replaced; None when nothing is excluded."""
    from kg2tool.dataset.exclusions import exclusion_masks
    from kg2tool.tools.lexicon import select_shipped

    fields = select_shipped(kg.relations["key"])
    if cfg.overrides:  # the user's file wins, field by field
        from kg2tool.tools.lexicon import read_lexicon

        for key, f in read_lexicon(cfg.overrides).items():
            if isinstance(f, dict):
                fields[key] = {**fields.get(key, {}), **f}
    flagged = [k for k, f in fields.items() if f.get("exclude")]
    return exclusion_masks(
        kg,
        cfg.exclusions("exclude_relations"),
        cfg.exclusions("exclude_entities"),
        flagged,
    )


def add_counts(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + int(v)
