"""Questions that pass the lint: each sample's seeded template, or the next one where the
question fails :func:`kg2tool.samples.lint.lint_texts`.

The lint runs on the question with placeholder anchor names (so a name such as "Duran Duran"
is not taken for a doubled word), which depends on the sample's relations only: each distinct
relation row is probed once per process, and only for the templates its samples ask for; the
chosen questions are then filled with each sample's names.
"""

from __future__ import annotations

import weakref

import numpy as np
import polars as pl

from kg2tool.patterns import Plan
from kg2tool.samples.anchor_names import NameForms, fill_names
from kg2tool.samples.phrases import MAX_PLACEHOLDERS, PLACEHOLDER, RelationLexicon
from kg2tool.samples.questions import _finish_expr, _render, _templates, mix_hash

__all__ = ["verbalize_linted"]


# Probe verdicts per lexicon, pattern and relation row: per template, None while not yet
# probed, else (lint reason or None, question with placeholder names); the same rows recur
# across batches and shards. Only the templates samples ask for are finished and linted.
_PROBES: weakref.WeakKeyDictionary[RelationLexicon, dict[tuple, dict[bytes, list]]] = (
    weakref.WeakKeyDictionary()
)
_PROBES_MAX = 1 << 20


def _probe_bodies(
    plan: Plan, relation_ids: np.ndarray, num_anchors: int, lexicon: RelationLexicon
) -> tuple[list[pl.Series], list[str]]:
    """Every template's unfinished question for relation rows, with placeholder anchor names
    (one Series per template), and the templates' final marks."""
    m = len(relation_ids)
    placeholders = [
        pl.Series([f"{PLACEHOLDER}{j}"] * m, dtype=pl.String) for j in range(num_anchors)
    ]
    probe = _templates(plan, relation_ids, placeholders, lexicon, probe=True)
    k = len(probe)
    bodies = pl.select(*(body.alias(f"t{t}") for t, (body, _) in enumerate(probe)))
    if bodies.height != m:
        bodies = pl.DataFrame({f"t{t}": pl.Series([None] * m, dtype=pl.String) for t in range(k)})
    return [bodies[f"t{t}"] for t in range(k)], [mark for _, mark in probe]


def _finish_and_lint(bodies: pl.Series, marks: pl.Series) -> tuple[list, list]:
    """Finished questions (one pass for all) and their lint reasons ("missing" for none)."""
    from kg2tool.samples.lint import lint_distinct

    flat = pl.select(_finish_expr(pl.lit(bodies), pl.lit(marks)).alias("t")).to_series()
    uniq = flat.unique().drop_nulls()
    verdict = pl.DataFrame({"t": uniq, "why": lint_distinct(uniq)})
    why = (
        flat.to_frame("t")
        .join(verdict, on="t", how="left", maintain_order="left")
        .select(pl.when(pl.col("t").is_null()).then(pl.lit("missing")).otherwise("why"))
        .to_series()
    )
    return why.to_list(), flat.to_list()


class _Probes:
    """The probe verdicts one :func:`verbalize_linted` call needs, from the memo, else by
    building the templates of the rows (once per call) and finishing and linting only the
    (row, template) pairs asked for."""

    def __init__(
        self, plan: Plan, urel: np.ndarray, num_anchors: int, lexicon: RelationLexicon
    ) -> None:
        self.plan, self.urel, self.num_anchors, self.lexicon = plan, urel, num_anchors, lexicon
        memos = _PROBES.setdefault(lexicon, {})
        self.memo = memos.setdefault((plan.name, plan.formula), {})
        if sum(len(v) for v in memos.values()) > _PROBES_MAX:
            for v in memos.values():
                v.clear()
        self.keys = [row.tobytes() for row in urel]
        self.bodies: dict[int, tuple[int, list[pl.Series]]] = {}  # row -> (index, bodies)
        self.marks: list[str] = []
        self.k = next((len(v) for v in self.memo.values()), 0)
        self.fresh = [i for i, key in enumerate(self.keys) if key not in self.memo]
        if not self.k:  # the first rows of this pattern: the template count is known after
            self._build(self.fresh)

    def start(self, rows: np.ndarray, templates: np.ndarray) -> None:
        """Build, in one go, the templates of the new rows and of known rows asking for a
        template not probed yet (the first choices); then probe those pairs."""
        memo, keys = self.memo, self.keys
        build = {i for i in self.fresh if i not in self.bodies}
        build.update(
            int(i)
            for i, t in zip(rows.tolist(), templates.tolist(), strict=True)
            if i not in self.bodies and keys[i] in memo and memo[keys[i]][t] is None
        )
        if build:
            self._build(sorted(build))
        self.need(rows, templates)

    def _build(self, rows: list[int]) -> None:
        bodies, self.marks = _probe_bodies(
            self.plan, self.urel[np.asarray(rows, np.int64)], self.num_anchors, self.lexicon
        )
        self.k = len(bodies)
        for j, i in enumerate(rows):
            self.bodies[i] = (j, bodies)
            self.memo.setdefault(self.keys[i], [None] * self.k)

    def need(self, rows: np.ndarray, templates: np.ndarray) -> None:
        """Probe the (row, template) pairs not probed yet."""
        pairs = {
            (int(i), int(t))
            for i, t in zip(rows.tolist(), templates.tolist(), strict=True)
            if self.memo[self.keys[i]][t] is None
        }
        if not pairs:
            return
        missing = sorted({i for i, _ in pairs if i not in self.bodies})
        if missing:  # rows of earlier calls asking for a template not probed then
            self._build(missing)
        # the texts gathered per (built batch, template), not one Series item at a time
        groups: dict[tuple[int, int], list[int]] = {}
        pairs_l = sorted(pairs)
        for i, t in pairs_l:
            groups.setdefault((id(self.bodies[i][1]), t), []).append(i)
        order: list[tuple[int, int]] = []
        parts: list[pl.Series] = []
        for (_, t), rows_t in groups.items():
            bodies = self.bodies[rows_t[0]][1]
            parts.append(bodies[t].gather([self.bodies[i][0] for i in rows_t]))
            order.extend((i, t) for i in rows_t)
        texts = pl.concat(parts)
        marks = pl.Series([self.marks[t] for _, t in order], dtype=pl.String)
        why, text = _finish_and_lint(texts, marks)
        for (i, t), w, q in zip(order, why, text, strict=True):
            self.memo[self.keys[i]][t] = (w, q)

    def passes(self, rows: np.ndarray, templates: np.ndarray) -> np.ndarray:
        memo, keys = self.memo, self.keys
        return np.array(
            [
                memo[keys[i]][t][0] is None
                for i, t in zip(rows.tolist(), templates.tolist(), strict=True)
            ],
            dtype=bool,
        )

    def entry(self, row: int, template: int) -> tuple[str | None, str | None]:
        return self.memo[self.keys[row]][template]


def verbalize_linted(
    plan: Plan,
    relation_ids: np.ndarray,
    anchor_names: list[pl.Series],
    query_ids: np.ndarray,
    lexicon: RelationLexicon,
    *,
    seed: int = 0,
    anchor_ids: np.ndarray | None = None,
    name_forms: NameForms | None = None,
) -> tuple[pl.Series, pl.Series]:
    """:func:`verbalize` whose template choice is redrawn where the question fails the lint
    (:func:`kg2tool.samples.lint.lint_texts`, on the template with placeholder anchor names, so a
    name such as "Duran Duran" is not taken for a doubled word): the seeded choice first,
    then the next templates in turn. Returns (questions, lint reason per row): the reason
    is null for a question that passes, else the first template's reason and a null
    question. ``anchor_ids`` (rows x anchors) and ``name_forms`` (the KG's, whose labels are
    the anchor names): the names' forms are computed once per entity and process."""
    n = len(query_ids)
    if not n:
        empty = _render(_templates(plan, relation_ids, anchor_names, lexicon), np.zeros(0), 0)
        return empty, pl.Series("reason", [], dtype=pl.String)
    # With placeholder names a probe question depends on the row's relations only: each
    # distinct relation row's templates are built, finished and linted once per process
    # (and only the templates its samples ask for), then the verdicts are spread.
    shape = np.asarray(relation_ids).shape
    urel, inverse = np.unique(np.asarray(relation_ids).reshape(n, -1), axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1).astype(np.int64)
    probes = _Probes(plan, urel.reshape((len(urel), *shape[1:])), len(anchor_names), lexicon)
    k = probes.k
    first = (mix_hash(seed, query_ids) % np.uint64(k)).astype(np.int64)
    choice = np.full(n, -1, np.int64)
    idx = np.arange(n)
    for step in range(k):  # the earliest passing template in cyclic order wins
        t = (first[idx] + step) % k
        ucode, back = np.unique(inverse[idx] * k + t, return_inverse=True)
        (probes.start if step == 0 else probes.need)(ucode // k, ucode % k)
        ok = probes.passes(ucode // k, ucode % k)[np.asarray(back).reshape(-1)]
        choice[idx[ok]] = t[ok]
        idx = idx[~ok]
        if not len(idx):
            break
    if len(anchor_names) <= MAX_PLACEHOLDERS:  # the chosen probe question, filled with the names
        # the distinct (row, template) texts, gathered per sample: no Python string per sample
        ucode, back = np.unique(inverse * k + np.maximum(choice, 0), return_inverse=True)
        texts = [probes.entry(int(c) // k, int(c) % k)[1] for c in ucode.tolist()]
        if anchor_ids is not None and name_forms is not None:
            forms, rows = name_forms.table([anchor_ids[:, j] for j in range(len(anchor_names))])
        else:
            forms, rows = NameForms.of_names(anchor_names)
        out = fill_names(texts, np.asarray(back).reshape(-1), rows, forms)
    else:
        out = _render(
            _templates(plan, relation_ids, anchor_names, lexicon), np.maximum(choice, 0), n
        )
    reason = pl.Series("reason", [None] * n, dtype=pl.String)
    if len(idx):  # no template passes: the first one's reason (every one was probed)
        why_first = [probes.entry(int(inverse[r]), int(first[r]))[0] for r in idx.tolist()]
        reason = reason.scatter(idx, pl.Series(why_first, dtype=pl.String))
        out = out.scatter(idx, pl.Series([None] * len(idx), dtype=pl.String))
    return out, reason
