"""``generate``: configuration (config), the sharded resumable driver (driver), its draws of
queries (draws), the runners of its shards (runners) and the work of one shard (worker)."""

from __future__ import annotations

from kg2tool.exports import lazy_exports

_EXPORTS = {
    "generate": "kg2tool.pipeline.driver",
    "GenerateConfig": "kg2tool.pipeline.config",
    "GenerateReport": "kg2tool.pipeline.driver",
    "DEFAULT_PATTERNS": "kg2tool.pipeline.config",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
