"""The KG as a live tool environment: eval harness overhead and MCP call throughput.

- ``kg2tool eval`` overhead: N reference episodes of CoDEx-S samples, (a) ``agent="reference"``
  in process and (b) the scripted OpenAI-compatible server (tests/chat_server.py) playing the
  reference over HTTP on 127.0.0.1, without a reply cache (target: 1,000 episodes <= 10 s);
- MCP ``tools/call`` per second over stdio and over streamable HTTP (the server a subprocess,
  the SDK's client), next to direct ``ToolRuntime.call`` in the same run.

Run: ``python -m pytest bench/test_bench_env.py --benchmark-only`` (CI: ``--benchmark-disable``
runs each once on a small N).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kg2tool.evaluate import evaluate, load_samples
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.pipeline.driver import generate
from kg2tool.tools.catalog import ApiCatalog
from kg2tool.tools.runtime import ToolRuntime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from chat_server import ScriptedPolicies, serve_policies

EPISODES = 1000
CALLS = 500


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("env") / "ds"
    generate(out=str(out), kg="codex-s", patterns="1p,2p,2i,2in,pi,2u", num_samples=EPISODES,
             seed=0, engine="local")  # fmt: skip
    kg = KnowledgeGraph.load("codex-s")
    rt = ToolRuntime(kg, ApiCatalog.from_graph(kg, list_apis=True))
    calls = []
    for h in range(CALLS):
        api = rt.catalog.apis[h % 20]
        if api.kind != "relation":
            continue
        rel = kg.triples.filter(kg.triples["relation"] == api.relation_id)
        col = "head" if api.direction == "forward" else "tail"
        ent = rel[col][h % rel.height]
        calls.append((api.name, {api.param_names[0]: rt.names[ent]}))
    return {"dataset": out, "kg": kg, "rt": rt, "calls": calls}


def _n(benchmark: Any, full: int, small: int) -> int:
    return small if benchmark.disabled else full


def test_eval_reference_in_process(benchmark: Any, env: dict[str, Any]) -> None:
    n = _n(benchmark, EPISODES, 100)
    report = benchmark.pedantic(
        lambda: evaluate(env["dataset"], env["kg"], agent="reference", split=None, limit=n),
        rounds=1 if benchmark.disabled else 3,
    )
    assert len(report.episodes) == n and report.summary["overall"]["exact_match"] == 1.0


def test_eval_reference_scripted_server(benchmark: Any, env: dict[str, Any]) -> None:
    n = _n(benchmark, EPISODES, 100)
    samples = load_samples(env["dataset"], None)
    rt = env["rt"]
    policies = ScriptedPolicies(samples, dict(zip(rt.keys, rt.names, strict=True)))
    with serve_policies(policies) as url:
        report = benchmark.pedantic(
            lambda: evaluate(
                env["dataset"],
                env["kg"],
                model="reference",
                base_url=url,
                split=None,
                limit=n,
                concurrency=4,
            ),
            rounds=1,
        )
    assert len(report.episodes) == n and report.summary["overall"]["exact_match"] == 1.0
    benchmark.extra_info["requests"] = report.summary["requests"]["sent"]


def test_runtime_direct_calls(benchmark: Any, env: dict[str, Any]) -> None:
    rt, calls = env["rt"], env["calls"]
    got = benchmark(lambda: [rt.call(n, a) for n, a in calls])
    assert all(r.ok for r in got)
    benchmark.extra_info["calls"] = len(calls)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mcp_calls_per_second(client_factory: Any, calls: list[tuple[str, dict]]) -> float:
    import anyio

    async def go() -> float:
        async with client_factory() as client:
            await client.list_tools()
            t0 = time.perf_counter()
            for name, args in calls:
                r = await client.call_tool(name, args)
                assert not r.is_error
            return len(calls) / (time.perf_counter() - t0)

    return anyio.run(go)


def _server_args(*extra: str) -> list[str]:
    return ["-m", "kg2tool.cli", "serve", "--kg", "codex-s", "--list-apis", *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_mcp_calls(benchmark: Any, env: dict[str, Any], transport: str) -> None:
    pytest.importorskip("mcp")
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    calls = env["calls"][: _n(benchmark, CALLS, 50)]
    proc = None
    if transport == "stdio":
        params = StdioServerParameters(command=sys.executable, args=_server_args(), env=_env())

        def factory() -> Any:
            return Client(params)
    else:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, *_server_args("--transport", "http", "--port", str(port))],
            env=_env(), stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)

        def factory() -> Any:
            return Client(f"http://127.0.0.1:{port}/mcp")

    try:
        rate = benchmark.pedantic(lambda: _mcp_calls_per_second(factory, calls), rounds=1)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    assert rate > 0
    benchmark.extra_info["calls_per_second"] = rate
    print(f"\nMCP {transport}: {rate:,.0f} calls/s ({len(calls)} calls)")
