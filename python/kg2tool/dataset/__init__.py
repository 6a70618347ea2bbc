"""A dataset from samples: assembly into frames, the files on disk and their card,
optional paraphrasing, and verification of what was written."""

from __future__ import annotations

_EXPORTS = {
    "build_dataset": "kg2tool.dataset.assemble",
    "build_shard": "kg2tool.dataset.assemble",
    "Context": "kg2tool.dataset.assemble",
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
