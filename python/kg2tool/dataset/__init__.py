"""A dataset from samples: assembly into frames (``assemble``), what a sample may not show
(``exclusions``), the files on disk (``output``) and their card (``card``), optional
paraphrasing, and verification of what was written."""

from __future__ import annotations

_EXPORTS = {
    "build_dataset": "kg2tool.dataset.assemble",
    "build_from_batches": "kg2tool.dataset.assemble",
    "build_shard": "kg2tool.dataset.assemble",
    "SampleContext": "kg2tool.dataset.assemble",
    "finalize_outputs": "kg2tool.dataset.output",
    "write_dataset": "kg2tool.dataset.output",
    "write_shard": "kg2tool.dataset.output",
}
# Older names that keep working: name -> (module, name there).
_ALIASES = {"Context": ("kg2tool.dataset.assemble", "SampleContext")}
__all__ = sorted([*_EXPORTS, *_ALIASES])


def __getattr__(name: str) -> object:
    """Import the public names on first use, so importing the package stays cheap."""
    if name in _EXPORTS or name in _ALIASES:
        import importlib

        module, attr = _ALIASES.get(name, (_EXPORTS.get(name), name))
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
