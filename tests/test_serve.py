"""kg2tool serve: the MCP server started as a subprocess, driven by the SDK's own client over
stdio and over streamable HTTP on 127.0.0.1, compared call by call with the runtime."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp", reason="the serve extra (mcp) is not installed")

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from kg2tool.cli import main
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.tools.catalog import ApiCatalog
from kg2tool.tools.runtime import ToolRuntime

ERROR_KINDS = {
    "unknown_api", "missing_argument", "unexpected_argument", "invalid_argument",
    "unknown_entity", "ambiguous_entity",
}  # fmt: skip


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def serve_args(kg: str, *extra: str) -> list[str]:
    return ["-m", "kg2tool.cli", "serve", "--kg", kg, "--list-apis", "--page-size", "40", *extra]


@pytest.fixture(scope="module")
def tiny_kg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A KG where two entities share the label 'Springfield' (for ambiguous_entity)."""
    d = tmp_path_factory.mktemp("tiny")
    triples = [("homer", "lives_in", "spr_il"), ("marge", "lives_in", "spr_il"),
               ("ned", "lives_in", "spr_ma"), ("homer", "spouse", "marge"),
               ("spr_il", "located_in", "usa"), ("spr_ma", "located_in", "usa")]  # fmt: skip
    (d / "triples.tsv").write_text("".join("\t".join(t) + "\n" for t in triples))
    labels = {"homer": "Homer", "marge": "Marge", "ned": "Ned", "spr_il": "Springfield",
              "spr_ma": "Springfield", "usa": "United States"}  # fmt: skip
    (d / "entities.tsv").write_text(
        "key\tlabel\tdescription\n" + "".join(f"{k}\t{v}\ttown\n" for k, v in labels.items())
    )
    return d


def runtime_of(kg: str) -> ToolRuntime:
    graph = KnowledgeGraph.load(kg)
    return ToolRuntime(graph, ApiCatalog.from_graph(graph, list_apis=True))


def call_plan(rt: ToolRuntime) -> list[tuple[str, dict[str, Any]]]:
    """Forward, inverse, list and set-operation calls with real entities, then every error."""
    apis = rt.catalog.apis
    fwd = next(a for a in apis if a.kind == "relation" and a.direction == "forward")
    inv = next(a for a in apis if a.kind == "relation" and a.direction == "inverse")
    lst = next(a for a in apis if a.kind == "relation_list")
    heads = rt.kg.triples.filter(rt.kg.triples["relation"] == fwd.relation_id)["head"].to_list()
    tails = rt.kg.triples.filter(rt.kg.triples["relation"] == inv.relation_id)["tail"].to_list()
    h, t = rt.names[heads[0]], rt.names[tails[0]]
    first, second = rt.call(fwd.name, {fwd.param_names[0]: h}).result, [h, *rt.names[:3]]
    plan = [
        (fwd.name, {fwd.param_names[0]: h}),
        (inv.name, {inv.param_names[0]: t}),
        (lst.name, {lst.param_names[0]: rt.names[:5]}),
        ("get_intersection_of", {"first": [*first, h], "second": second}),
        ("get_union_of", {"first": first, "second": second}),
        ("get_negation_of", {"first": second, "second": first}),
        ("get_nothing_of_anything", {}),  # unknown_api
        (fwd.name, {}),  # missing_argument
        (fwd.name, {fwd.param_names[0]: h, "extra": 1}),  # unexpected_argument
        (fwd.name, {fwd.param_names[0]: 3}),  # invalid_argument
        (fwd.name, {fwd.param_names[0]: h + "zzq"}),  # unknown_entity
    ]
    shared = [lab for lab in set(rt.labels) if rt.labels.count(lab) > 1]
    if shared:
        plan.append((fwd.name, {fwd.param_names[0]: shared[0]}))  # ambiguous_entity
    return plan


async def check_server(client: Client, rt: ToolRuntime) -> set[str]:
    """List every tool (all pages) and run the call plan; return the error kinds seen."""
    tools, cursor, pages = [], None, 0
    while True:
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == -(-len(rt.catalog.names) // 40)
    assert [t.name for t in tools] == rt.catalog.names
    want = {t["function"]["name"]: t["function"] for t in rt.catalog.to_openai_tools()}
    for t in tools:
        assert t.input_schema == want[t.name]["parameters"]
        assert t.description == want[t.name]["description"]
    kinds = set()
    for name, args in call_plan(rt):
        got = await client.call_tool(name, args)
        direct = rt.call(name, args)
        assert got.content[0].text == direct.to_json(), name
        assert got.is_error == (not direct.ok)
        if direct.ok:
            assert got.structured_content == {"result": direct.result}
        else:
            assert got.structured_content == direct.error
            kinds.add(direct.error["error"])
    return kinds


def test_stdio_codex_s() -> None:
    rt = runtime_of("codex-s")

    async def go() -> set[str]:
        params = StdioServerParameters(
            command=sys.executable, args=serve_args("codex-s"), env=server_env()
        )
        async with Client(params) as client:
            return await check_server(client, rt)

    kinds = anyio.run(go)
    assert kinds == ERROR_KINDS - {"ambiguous_entity"}  # no label is shared in CoDEx-S


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def http_server(tiny_kg: Path) -> Iterator[str]:
    port = free_port()
    args = serve_args(str(tiny_kg), "--transport", "http", "--port", str(port))
    proc = subprocess.Popen([sys.executable, *args], env=server_env(), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_http_every_error_kind(http_server: str, tiny_kg: Path) -> None:
    rt = runtime_of(str(tiny_kg))

    async def go() -> set[str]:
        async with Client(http_server) as client:
            return await check_server(client, rt)

    assert anyio.run(go) == ERROR_KINDS


def test_port_in_use_and_bad_transport(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--transport", "http", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"kg2tool: error: port {port} on 127.0.0.1 is in use"
    assert main(["serve", "--transport", "carrier-pigeon"]) == 2
    assert "unknown transport 'carrier-pigeon'" in capsys.readouterr().err


def test_bad_cursor_is_a_protocol_error() -> None:
    """A cursor the server never gave is invalid params (in-process client, no transport)."""
    from mcp.shared.exceptions import MCPError

    from kg2tool.serve import build_server

    server = build_server(runtime_of("codex-s"), page_size=50)

    async def go() -> None:
        async with Client(server) as client:
            page = await client.list_tools()
            assert len(page.tools) == 50 and page.next_cursor == "50"
            with pytest.raises(MCPError, match="invalid cursor"):
                await client.list_tools(cursor="not-a-cursor")

    anyio.run(go)
