"""samples/s from grounded queries to written Parquet, per format, vs a per-sample Python loop."""

from __future__ import annotations

import json
from functools import cache

import polars as pl
import pytest

from kg2tool.dataset.assemble import SampleContext, build_dataset
from kg2tool.dataset.output import write_dataset
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.samples.formats import FORMATS

N = 280
PATTERNS = ["1p", "2p", "2i", "pi", "2in", "up", "3in"]


@cache
def ctx() -> SampleContext:
    """Shared context over CoDEx-S."""
    return SampleContext(KnowledgeGraph.load("codex-s"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_bench_vectorised(benchmark, tmp_path, fmt: str) -> None:
    c = ctx()

    def run() -> int:
        f = build_dataset(c.kg, PATTERNS, N, seed=0, format=fmt, context=c)
        write_dataset(f, tmp_path, fmt, card=False)
        return f.height

    rows = benchmark(run)
    assert rows > 0


def test_bench_per_sample_python(benchmark, tmp_path) -> None:
    """Reference: the same OpenAI records built call by call with runtime.call and json.dumps."""
    c = ctx()
    f = build_dataset(c.kg, PATTERNS, N, seed=0, format="openai", context=c)
    traces = f["trace"].to_list()
    questions = f["question"].to_list()

    def run() -> int:
        lines = []
        for q, tr in zip(questions, traces, strict=True):
            msgs = [{"role": "user", "content": q}]
            for i, step in enumerate(json.loads(tr)):
                res = c.runtime.call(step["name"], step["arguments"])
                cid = f"call_{i}"
                msgs.append(
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": cid,
                                "type": "function",
                                "function": {
                                    "name": step["name"],
                                    "arguments": json.dumps(step["arguments"]),
                                },
                            }
                        ],
                    }
                )
                msgs.append({"role": "tool", "tool_call_id": cid, "content": res.to_json()})
            lines.append(json.dumps({"messages": msgs, "parallel_tool_calls": False}))
        pl.DataFrame({"record": lines}).write_parquet(tmp_path / "ref.parquet")
        return len(lines)

    assert benchmark(run) == f.height
