"""kg2tool: turn a knowledge graph into verified tool-use instruction data for LLMs.

The stages, each a subpackage, data flowing one way (no stage imports one above it):
``kg`` (graph, files, snapshots) -> ``patterns`` (FOL patterns, plans) -> ``engine``
(sampling, execution) -> ``tools`` (API catalogue, runtime, lexicon) -> ``samples``
(questions, calls, formats, replay) -> ``dataset`` (assembly, output, card, verify) ->
``pipeline`` (config, driver, runners) -> ``cli``. The common entry points are importable
from here: ``from kg2tool import KnowledgeGraph, build_dataset, generate``.
"""

from __future__ import annotations

from kg2tool.exports import lazy_exports

_EXPORTS = {
    "KnowledgeGraph": "kg2tool.kg.graph",
    "sample_queries": "kg2tool.engine",
    "execute_queries": "kg2tool.engine",
    "ApiCatalog": "kg2tool.tools.catalog",
    "ToolRuntime": "kg2tool.tools.runtime",
    "build_dataset": "kg2tool.dataset.assemble",
    "verify_dataset": "kg2tool.dataset.verify",
    "generate": "kg2tool.pipeline.driver",
    "GenerateConfig": "kg2tool.pipeline.config",
    "export_betae": "kg2tool.betae",
    "evaluate": "kg2tool.evaluate",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
