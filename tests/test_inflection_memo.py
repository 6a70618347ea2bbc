"""Process-pool workers take the driver's inflect answers, so none imports inflect (whose
import costs seconds); the answers are the same either way."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys

from kg2tool.dataset.assemble import SampleContext
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.pipeline.worker import init_worker
from kg2tool.tools import inflection, lexicon


def _worker_builds_context() -> tuple[bool, list[str]]:
    ctx = SampleContext(KnowledgeGraph.load("codex-s"))
    return "inflect" in sys.modules, ctx.catalog.names


def test_seeded_worker_never_imports_inflect() -> None:
    SampleContext(KnowledgeGraph.load("codex-s"))  # what the generate driver does before its pool
    memo = lexicon.inflections()
    assert memo and all(isinstance(k, tuple) and len(k) == 2 for k in memo)
    with mp.get_context("spawn").Pool(1, init_worker, (os.getpid(), memo)) as pool:
        imported, names = pool.apply(_worker_builds_context)
    assert not imported
    assert names == SampleContext(KnowledgeGraph.load("codex-s")).catalog.names


def test_memo_gives_inflect_s_answers() -> None:
    for word in ("city", "person", "analysis", "series", "hour", "university"):
        assert inflection.inflected("plural_noun", word) == inflection._inflect().plural_noun(word)
        assert inflection.inflected("a", word) == inflection._inflect().a(word)
