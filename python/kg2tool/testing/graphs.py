"""Graphs for tests and benchmarks built straight from id arrays, without string keys."""

from __future__ import annotations

import numpy as np
import polars as pl

from kg2tool import _core
from kg2tool.kg.graph import KnowledgeGraph

__all__ = ["graph_from_ids"]


def graph_from_ids(
    head: np.ndarray,
    relation: np.ndarray,
    tail: np.ndarray,
    num_entities: int,
    num_relations: int,
    *,
    threads: int = 0,
) -> KnowledgeGraph:
    """A KnowledgeGraph straight from int32 id arrays (keys ``e<id>``, ``r<id>``).

    For large synthetic graphs: skips the string keys of :meth:`KnowledgeGraph.from_tables`.
    """
    arrays, _ = _core.build_arrays(
        np.ascontiguousarray(head, np.int32),
        np.ascontiguousarray(relation, np.int32),
        np.ascontiguousarray(tail, np.int32),
        int(num_entities),
        int(num_relations),
        threads,
    )
    native = _core.Graph(int(num_entities), int(num_relations), 0, arrays, validate=False)

    def table(prefix: str, n: int) -> pl.DataFrame:
        keys = pl.Series("key", np.arange(n)).cast(pl.String)
        keys = (prefix + keys).alias("key") if n else keys
        return pl.DataFrame(
            {
                "id": pl.Series(np.arange(n, dtype=np.int32)),
                "key": keys,
                "label": keys,
                "description": pl.Series([None] * n, dtype=pl.String),
            }
        )

    return KnowledgeGraph(
        native,
        table("e", int(num_entities)),
        table("r", int(num_relations)),
        pl.DataFrame(schema={"id": pl.Int32, "type": pl.String}),
        pl.DataFrame(schema={"key": pl.String, "label": pl.String, "description": pl.String}),
        source="ids",
    )
