"""count_matches (the join matcher) against brute-force counts over dict adjacency, and a
triangle count against rustworkx on a single-relation projection of CoDEx-S."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl
import pytest
import rustworkx as rx

from kg2tool.engine import count_matches
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.tables import KGTables

P530 = "P530"  # diplomatic relation: dense among countries, symmetric in CoDEx-S


@pytest.fixture(scope="module")
def adjacency(codex_s):
    t = codex_s.triples
    out: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    for h, r, tl in zip(
        t["head"].to_list(), t["relation"].to_list(), t["tail"].to_list(), strict=True
    ):
        out[r][h].add(tl)
    return out


def anchors_with_out_edges(codex_s, k: int, relation: int | None = None) -> np.ndarray:
    t = codex_s.triples
    if relation is not None:
        t = t.filter(t["relation"] == relation)
    heads = np.unique(t["head"].to_numpy())
    rng = np.random.default_rng(5)
    return np.sort(rng.choice(heads, size=min(k, len(heads)), replace=False)).astype(np.int32)


def test_2p_free_relations_fixed_anchor(codex_s, adjacency):
    anchors = anchors_with_out_edges(codex_s, 50)
    got = count_matches(codex_s, "2p", anchors.reshape(-1, 1), threads=2)
    for s1, c in zip(anchors.tolist(), got.tolist(), strict=True):
        expected = sum(
            len(fs)
            for r1 in adjacency
            for e1 in adjacency[r1].get(s1, ())
            for r2 in adjacency
            for fs in [adjacency[r2].get(e1, ())]
        )
        assert c == expected, s1


def test_triangle_fixed_relations(codex_s, adjacency):
    rels = codex_s.relation_ids(["P530", "P530", "P463"]).astype(np.int32)
    r1, r2, r3 = rels.tolist()
    anchors = anchors_with_out_edges(codex_s, 50, r1)
    got = count_matches(
        codex_s, "triangle", anchors.reshape(-1, 1), np.tile(rels, (len(anchors), 1)), threads=2
    )
    assert got.sum() > 0
    for s1, c in zip(anchors.tolist(), got.tolist(), strict=True):
        expected = sum(
            1
            for e1 in adjacency[r1].get(s1, ())
            for f in adjacency[r2].get(e1, ())
            if f in adjacency[r3].get(s1, ())
        )
        assert c == expected, s1


def test_limit_caps_the_count(codex_s):
    anchors = anchors_with_out_edges(codex_s, 20)
    full = count_matches(codex_s, "2p", anchors.reshape(-1, 1), threads=2)
    capped = count_matches(codex_s, "2p", anchors.reshape(-1, 1), limit=5, threads=2)
    np.testing.assert_array_equal(capped, np.minimum(full, 5))


def test_triangle_count_on_single_relation_projection(codex_s, adjacency):
    """Undirected triangles of the P530 projection: rustworkx (via transitivity), plain
    Python, and the matcher on a KG of the symmetric closure (6 ordered matches each)."""
    r = int(codex_s.relation_ids([P530])[0])
    edges = {(min(h, t), max(h, t)) for h, ts in adjacency[r].items() for t in ts if h != t}
    nodes = sorted({x for e in edges for x in e})
    graph = rx.PyGraph(multigraph=False)
    index = dict(zip(nodes, graph.add_nodes_from(nodes), strict=True))
    graph.add_edges_from_no_data([(index[h], index[t]) for h, t in edges])
    degrees = np.array([graph.degree(i) for i in graph.node_indices()], dtype=np.int64)
    triads = int((degrees * (degrees - 1) // 2).sum())
    rx_triangles = round(rx.transitivity(graph) * triads / 3)
    nbrs: dict[int, set[int]] = defaultdict(set)
    for h, t in edges:
        nbrs[h].add(t)
        nbrs[t].add(h)
    plain = sum(len(nbrs[u] & nbrs[v]) for u, v in edges) // 3
    assert plain == rx_triangles > 0
    keys = codex_s.entities["key"]
    sym = [(keys[h], "x", keys[t]) for a, b in edges for h, t in ((a, b), (b, a))]
    kg = KnowledgeGraph.from_tables(
        KGTables(triples=pl.DataFrame(sym, schema=["head", "relation", "tail"], orient="row"))
    )
    anchors = np.arange(kg.num_entities, dtype=np.int32).reshape(-1, 1)
    counts = count_matches(kg, "triangle", anchors, threads=2)
    assert int(counts.sum()) == 6 * rx_triangles
