"""The KG as an RL environment: the same tools (:class:`~kg2tool.tools.runtime.ToolRuntime`) and the
same exact reward (:func:`kg2tool.samples.scoring.score_episode`) in the shapes RL frameworks read.

- :mod:`kg2tool.rl.verl`: ``generate --format verl`` rows, a tool config, a tool class and
  ``compute_score`` for verl's multi-turn tool recipes;
- :mod:`kg2tool.rl.verifiers_env`: ``load_environment(kg=..., dataset=...)`` for PrimeIntellect's
  verifiers.

Neither framework is a dependency of kg2tool: install the one you train with.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["runtime_for"]


@functools.lru_cache(maxsize=4)
def runtime_for(kg: str, list_apis: bool = True) -> Any:
    """One :class:`~kg2tool.tools.runtime.ToolRuntime` per KG spec and process (reward workers and
    tool instances share it)."""
    from kg2tool.kg.graph import KnowledgeGraph
    from kg2tool.tools.catalog import ApiCatalog
    from kg2tool.tools.runtime import ToolRuntime

    graph = KnowledgeGraph.load(kg)
    return ToolRuntime(graph, ApiCatalog.from_graph(graph, list_apis=list_apis))
