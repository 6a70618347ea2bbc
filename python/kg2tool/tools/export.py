"""Write a KG's tool definitions for training and serving frameworks (``kg2tool apis``)."""

from __future__ import annotations

from pathlib import Path

import orjson

from kg2tool.atomic import write_bytes
from kg2tool.errors import InputError
from kg2tool.tools.catalog import ApiCatalog

TOOL_FILES = ("openai_tools.json", "toolbench_tool.json", "xlam_tools.json", "manifest.json")


def export_tools(catalog: ApiCatalog, out: str | Path) -> list[Path]:
    """OpenAI tools, the ToolBench tool JSON, xLAM tools and the catalogue's manifest, each
    written atomically into the directory ``out`` (made when missing); the paths written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file; --out names the directory for the tool definitions")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"{out}: cannot create the output directory: {exc.strerror or exc}"
        ) from None
    openai, toolbench, xlam, manifest = (out / name for name in TOOL_FILES)
    for path, data in (
        (openai, catalog.to_openai_tools()),
        (toolbench, catalog.to_toolbench()),
        (xlam, catalog.to_xlam_tools()),
    ):
        write_bytes(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
    catalog.write_manifest(manifest)
    return [openai, toolbench, xlam, manifest]
