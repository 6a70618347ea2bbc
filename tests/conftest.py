"""Shared fixtures: the bundled CoDEx-S graph, FB15k-237 (train) from the shared data dir,
their plain-Python reference adjacency, and a session cache of sampled query batches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import kg2tool.kg.io
from kg2tool.kg.bundled import shared_data_dir
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.testing.reference import ReferenceKG


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_data_dir()


@pytest.fixture(scope="session")
def codex_s() -> KnowledgeGraph:
    return KnowledgeGraph.load("codex-s")


@pytest.fixture(scope="session")
def fb15k237(shared_dir: Path) -> KnowledgeGraph:
    path = shared_dir / "fb15k-237" / "train.txt"
    if not path.exists():
        pytest.skip(f"FB15k-237 not in the shared data dir ({path})")
    return KnowledgeGraph.from_tables(kg2tool.kg.io.read_triples(path))


def reference_of(kg: KnowledgeGraph) -> ReferenceKG:
    """Dict-of-sets adjacency over the KG's id triples (independent of the native CSR)."""
    t = kg.triples
    return ReferenceKG.from_triples(
        zip(t["head"].to_list(), t["relation"].to_list(), t["tail"].to_list(), strict=True)
    )


@pytest.fixture(scope="session")
def kgs(request: pytest.FixtureRequest) -> Callable[[str], tuple[KnowledgeGraph, ReferenceKG]]:
    """``kgs("codex_s" | "fb15k237")`` -> (graph, reference adjacency), built once."""
    cache: dict[str, tuple[KnowledgeGraph, ReferenceKG]] = {}

    def get(name: str) -> tuple[KnowledgeGraph, ReferenceKG]:
        if name not in cache:
            kg = request.getfixturevalue(name)
            cache[name] = (kg, reference_of(kg))
        return cache[name]

    return get
