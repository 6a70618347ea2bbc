"""The graph: string-keyed tables, file readers, snapshots, the bundled and shared KGs."""

from __future__ import annotations
