"""Independent oracles for tests and benchmarks: formula evaluators written from the
semantics (plain Python, DuckDB), not from the compiled plans the engine runs."""

from __future__ import annotations
