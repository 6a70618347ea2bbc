"""A dataset from samples: assembly into frames (``assemble``), what a sample may not show
(``exclusions``), the files on disk (``output``) and their card (``card``), optional
paraphrasing, and verification of what was written."""

from __future__ import annotations

from kg2tool.exports import lazy_exports

_EXPORTS = {
    "build_dataset": "kg2tool.dataset.assemble",
    "build_from_batches": "kg2tool.dataset.assemble",
    "build_shard": "kg2tool.dataset.assemble",
    "SampleContext": "kg2tool.dataset.assemble",
    "finalize_outputs": "kg2tool.dataset.output",
    "write_dataset": "kg2tool.dataset.output",
    "write_shard": "kg2tool.dataset.output",
    "Context": "kg2tool.dataset.assemble:SampleContext",  # its name before SampleContext
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
