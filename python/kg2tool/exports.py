"""Public names a package offers without importing them up front (PEP 562).

A package ``__init__`` lists ``name -> module`` and takes ``__getattr__``/``__dir__`` from
:func:`lazy_exports`, so ``import kg2tool`` stays cheap and ``from kg2tool import generate``
imports only what ``generate`` needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, exports: Mapping[str, str], own: Mapping[str, object]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose names ``exports`` maps to a module
    (``"kg2tool.engine"``) or to a module and another name there, for a renamed object kept
    under its old name (``"kg2tool.dataset.assemble:SampleContext"``); ``own``: the
    package's globals (listed by ``__dir__`` too)."""

    def getattr_(name: str) -> object:
        if name in exports:
            module, _, attr = exports[name].partition(":")
            return getattr(importlib.import_module(module), attr or name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted([*own, *exports])

    return getattr_, dir_
