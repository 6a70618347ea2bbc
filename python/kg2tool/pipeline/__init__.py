"""``generate``: configuration (config), the sharded resumable driver (driver), its draws of
queries (draws), the runners of its shards (runners) and the work of one shard (worker)."""

from __future__ import annotations

_EXPORTS = {
    "generate": "kg2tool.pipeline.driver",
    "GenerateConfig": "kg2tool.pipeline.config",
    "GenerateReport": "kg2tool.pipeline.driver",
    "DEFAULT_PATTERNS": "kg2tool.pipeline.config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Import the public names on first use, so importing the package stays cheap."""
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
