"""Questions that pass the lint (:mod:`kg2tool.samples.linted`): the template chosen is the
seeded one or the next passing one in cyclic order, however the per-process memo was filled
before (which rows came first, which templates were probed), checked against every template
linted up front; only the templates samples ask for are probed."""

from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl
import pytest

from kg2tool.engine import sample_queries
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.samples import linted
from kg2tool.samples.lint import lint_texts
from kg2tool.samples.phrases import PLACEHOLDER, SLOT_PLACEHOLDER
from kg2tool.samples.questions import build_lexicon, mix_hash


@cache
def _kg(name: str) -> KnowledgeGraph:
    return KnowledgeGraph.load(name)


def _batch(name: str, pattern: str, n: int, seed: int) -> tuple:
    kg = _kg(name)
    b = sample_queries(kg, pattern, n, seed=seed)
    labels = kg.entities["label"]
    names = [labels.gather(b.anchor_ids[:, j]) for j in range(b.anchor_ids.shape[1])]
    return b, names, np.arange(len(b), dtype=np.uint64) + np.uint64(1000 * seed)


def _expected(b, names, qids, lexicon, seed: int) -> list[str | None]:
    """Every template of every sample rendered and linted with placeholder names; the first
    passing one from the seeded choice, filled with the names (by plain string work)."""
    n = len(b)
    k = len(linted._probe_bodies(b.plan, b.relation_ids[:1], len(names), lexicon)[0])
    first = (mix_hash(seed, qids) % np.uint64(k)).astype(np.int64)
    bodies, marks = linted._probe_bodies(b.plan, b.relation_ids, len(names), lexicon)
    texts = [
        pl.select(linted._finish_expr(pl.lit(bodies[t]), pl.lit(marks[t]))).to_series()
        for t in range(k)
    ]
    why = [lint_texts(texts[t]).to_list() for t in range(k)]
    chosen: list[int] = []
    for i in range(n):
        order = [(int(first[i]) + s) % k for s in range(k)]
        chosen.append(next((t for t in order if why[t][i] is None), -1))
    return [texts[t][i] if t >= 0 else None for i, t in enumerate(chosen)]


@pytest.mark.parametrize(
    ("name", "pattern"), [("codex-s", "2p"), ("codex-s", "pi"), ("codex-s", "2in")]
)
def test_choice_is_the_first_passing_template_whatever_came_before(name: str, pattern: str) -> None:
    lexicon = build_lexicon(_kg(name))
    b, names, qids = _batch(name, pattern, 60, seed=1)
    placeholders = [pl.Series([f"{PLACEHOLDER}{j}"] * len(b)) for j in range(len(names))]
    want = _expected(b, placeholders, qids, lexicon, seed=5)
    linted._PROBES.pop(lexicon, None)
    got_cold, _ = linted.verbalize_linted(
        b.plan, b.relation_ids, placeholders, qids, lexicon, seed=5
    )
    # a memo filled by other rows and other seeds first (other templates probed)
    linted._PROBES.pop(lexicon, None)
    other, other_names, other_q = _batch(name, pattern, 40, seed=2)
    for s in (1, 2, 3):
        linted.verbalize_linted(
            other.plan, other.relation_ids, other_names, other_q, lexicon, seed=s
        )
    got_warm, _ = linted.verbalize_linted(
        b.plan, b.relation_ids, placeholders, qids, lexicon, seed=5
    )
    assert got_cold.to_list() == got_warm.to_list()
    assert sum(q is not None for q in want) > len(want) // 2
    # placeholder names fill in as themselves ("XanchorT0" slots too: no article)
    assert got_cold.to_list() == [
        None if w is None else w.replace(SLOT_PLACEHOLDER, PLACEHOLDER) for w in want
    ]


@pytest.mark.parametrize("seed", range(6))
def test_only_the_templates_asked_for_are_probed(seed: int) -> None:
    lexicon = build_lexicon(_kg("codex-s"))
    linted._PROBES.pop(lexicon, None)
    b, names, qids = _batch("codex-s", "3p", 1, seed=3)
    linted.verbalize_linted(b.plan, b.relation_ids, names, qids, lexicon, seed=seed)
    (memo,) = linted._PROBES[lexicon].values()
    (entry,) = memo.values()
    k = len(entry)
    assert k > 1
    first = int(mix_hash(seed, qids)[0] % np.uint64(k))
    cyclic = [entry[(first + s) % k] for s in range(k)]
    # one sample: its seeded template, then the next ones only while they fail the lint
    passing = [s for s in range(k) if cyclic[s] is not None and cyclic[s][0] is None]
    last = passing[0] if passing else k - 1
    assert [e is not None for e in cyclic] == [True] * (last + 1) + [False] * (k - last - 1)


@pytest.mark.parametrize("pattern", ["2i", "pin", "3in"])
def test_names_fill_in_the_same_whatever_table_holds_their_forms(
    pattern: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kg2tool.samples import anchor_names

    kg = _kg("codex-s")
    lexicon = build_lexicon(kg)
    b, names, qids = _batch("codex-s", pattern, 80, seed=4)
    by_names, _ = linted.verbalize_linted(b.plan, b.relation_ids, names, qids, lexicon, seed=2)
    got = {}
    for every in (anchor_names.EVERY_NAME_AT_ONCE, 0):  # every entity's forms, or the batch's
        monkeypatch.setattr(anchor_names, "EVERY_NAME_AT_ONCE", every)
        forms = anchor_names.NameForms(kg.entities["label"])
        got[every], _ = linted.verbalize_linted(
            b.plan, b.relation_ids, names, qids, lexicon, seed=2,
            anchor_ids=b.anchor_ids, name_forms=forms,
        )  # fmt: skip
    assert got[0].to_list() == got[anchor_names.EVERY_NAME_AT_ONCE].to_list()
    assert got[0].to_list() == by_names.to_list()
    assert sum(q is not None for q in by_names.to_list()) > 40
