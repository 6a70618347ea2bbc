"""The KG's tools: the API catalogue built from relations, the runtime that executes calls,
and the relation lexicon both are written from."""

from __future__ import annotations
