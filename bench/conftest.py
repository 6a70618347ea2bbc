"""Shared fixtures of the benchmark suites: where the shared KGs are, and how big to go.

``KG2TOOL_BENCH_SCALE=1`` turns on the large synthetic runs (1M/10M/50M triples, minutes
and several GB); by default every benchmark uses small inputs so that
``pytest bench --benchmark-disable`` stays a quick test of the code paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class BenchData:
    shared: Path  # the shared KG folder (may be missing on a fresh machine)
    scale: bool  # KG2TOOL_BENCH_SCALE set to a true value

    @property
    def fb15k237_train(self) -> Path:
        return self.shared / "fb15k-237" / "train.txt"

    def require(self, path: Path) -> Path:
        """The path, or skip the test when the shared data is not there."""
        if not path.exists():
            pytest.skip(f"shared KG data missing: {path}")
        return path


def _shared_dir() -> Path:
    env = os.environ.get("KG2TOOL_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "kg"


@pytest.fixture(scope="session")
def bench_data() -> BenchData:
    scale = os.environ.get("KG2TOOL_BENCH_SCALE", "").strip().lower() not in (
        "",
        "0",
        "false",
        "no",
    )
    return BenchData(shared=_shared_dir(), scale=scale)
