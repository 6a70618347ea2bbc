"""``kg2tool serve``: the KG's APIs as a Model Context Protocol (MCP) server.

Built on the official ``mcp`` SDK's low-level server (``pip install "kg2tool[serve]"``): the
tool list is generated from the :class:`~kg2tool.tools.catalog.ApiCatalog` (every relation API, its
inverse, the set operations and optionally the list APIs), each with its JSON Schema, and
listed in pages (``cursor`` = the offset of the next page) so clients cope with KGs of
thousands of APIs. A call runs on the same :class:`~kg2tool.tools.runtime.ToolRuntime` as
``kg2tool call`` and the datasets: the result is the JSON list of entity names (text content,
and ``{"result": [...]}`` as structured content); a structured error (``unknown_api``,
``unknown_entity``, ...) comes back as a tool result marked ``isError`` with the error object,
so a model sees it and can recover, never as a protocol error.

Transports: ``stdio`` (the client starts ``kg2tool serve`` itself) and streamable ``http``
(``http://HOST:PORT/mcp``).
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from kg2tool.errors import InputError

__all__ = ["PAGE_SIZE", "TRANSPORTS", "build_server", "serve"]

PAGE_SIZE = 200
TRANSPORTS = ("stdio", "http")


def _mcp() -> tuple[Any, Any]:
    try:
        import mcp_types
        from mcp.server.lowlevel import Server
    except ImportError:
        raise InputError("kg2tool serve needs the MCP SDK: pip install 'kg2tool[serve]'") from None
    return Server, mcp_types


def build_server(runtime: Any, *, name: str = "kg2tool", page_size: int = PAGE_SIZE) -> Any:
    """An MCP low-level ``Server`` whose tools are ``runtime.catalog``'s APIs, run by ``runtime``."""
    server_cls, types = _mcp()
    if page_size < 1:
        raise InputError(f"page size must be >= 1, got {page_size}")
    tools = [
        types.Tool(
            name=t["function"]["name"],
            description=t["function"]["description"],
            input_schema=t["function"]["parameters"],
        )
        for t in runtime.catalog.to_openai_tools()
    ]

    async def list_tools(ctx: Any, params: Any) -> Any:
        cursor = getattr(params, "cursor", None) if params is not None else None
        try:
            start = int(cursor) if cursor else 0
            if not 0 <= start <= len(tools):
                raise ValueError
        except ValueError:
            from mcp.shared.exceptions import MCPError

            raise MCPError(
                code=types.INVALID_PARAMS, message=f"invalid cursor {cursor!r}"
            ) from None
        end = start + page_size
        return types.ListToolsResult(
            tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None
        )

    async def call_tool(ctx: Any, params: Any) -> Any:
        result = runtime.call(params.name, params.arguments or {})
        text = types.TextContent(type="text", text=result.to_json())
        if result.ok:
            return types.CallToolResult(
                content=[text], structured_content={"result": result.result}
            )
        return types.CallToolResult(content=[text], structured_content=result.error, is_error=True)

    return server_cls(
        name,
        instructions="Tools over a knowledge graph: each returns the JSON list of entity names "
        "linked to the given entity by one relation; pass names exactly as tools return them.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def check_port(host: str, port: int) -> None:
    """Raise InputError when ``host:port`` cannot be bound (in use, or not an address here)."""
    if not 0 < port < 65536:
        raise InputError(f"--port must be in 1..65535, got {port}")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, port))
    except OSError as exc:
        reason = (
            "is in use" if exc.errno in (98, 48, 10048) else f"cannot be bound ({exc.strerror})"
        )
        raise InputError(f"port {port} on {host} {reason}") from None


def serve(
    runtime: Any,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    page_size: int = PAGE_SIZE,
) -> None:
    """Serve the runtime's APIs over ``transport`` until the client leaves (stdio) or Ctrl-C."""
    if transport not in TRANSPORTS:
        raise InputError(f"unknown transport {transport!r}; choose one of {', '.join(TRANSPORTS)}")
    server = build_server(runtime, page_size=page_size)
    n = len(runtime.catalog.names)
    if transport == "stdio":
        import anyio
        from mcp.server.stdio import stdio_server

        async def run() -> None:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        print(f"kg2tool serve: {n} tools over stdio", file=sys.stderr, flush=True)
        anyio.run(run)
        return
    import uvicorn

    check_port(host, port)
    app = server.streamable_http_app(host=host, json_response=True)
    print(f"kg2tool serve: {n} tools on http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
