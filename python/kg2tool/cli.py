"""The ``kg2tool`` command: a thin layer over the Python API (every command is one call away).

Errors a user can fix (bad input, unknown names, bad arguments) print one line on stderr
and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .errors import Kg2ToolError

app = typer.Typer(
    name="kg2tool",
    help="Turn a knowledge graph into verified tool-use instruction data for LLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

KgOption = Annotated[
    str,
    typer.Option(
        "--kg", help="Bundled KG name (codex-s), canonical KG directory, snapshot or triples file."
    ),
]


def _fail(message: str) -> None:
    typer.echo(f"kg2tool: error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def stats(
    kg: KgOption = "codex-s",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print entity, relation and triple counts of a KG."""
    from .graph import KnowledgeGraph

    graph = KnowledgeGraph.load(kg)
    info = graph.stats()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        typer.echo(f"{key:>20}: {value:,}" if isinstance(value, int) else f"{key:>20}: {value}")


@app.command("import")
def import_kg(
    source: Annotated[
        str, typer.Argument(help="Triples file, canonical directory, or shared dataset name.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    snapshot: Annotated[
        bool,
        typer.Option(
            "--snapshot/--canonical",
            help="Write a memory-mappable snapshot (default) or a canonical KG directory.",
        ),
    ] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Import a KG into a snapshot (fast to open) or the canonical KG directory layout."""
    from . import datasets, io
    from .graph import KnowledgeGraph

    if out.exists() and not overwrite:
        _fail(f"{out} exists; pass --overwrite to replace it")
    if not snapshot:
        if source in datasets.dataset_names():
            datasets.import_dataset(source, datasets.shared_data_dir(), out, overwrite=overwrite)
        else:
            io.write_kg_dir(io.read_kg(source), out, overwrite=overwrite)
        typer.echo(f"wrote {out}")
        return
    if source in datasets.dataset_names() and not Path(source).exists():
        tables, _ = datasets.load_dataset(source)
        graph = KnowledgeGraph.from_tables(tables)
    else:
        graph = KnowledgeGraph.load(source)
    graph.save_snapshot(out)
    typer.echo(f"wrote snapshot {out} ({graph.num_triples:,} triples)")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning kg2tool errors into one line and exit status 2."""
    try:
        app(args=argv, standalone_mode=False)
    except Kg2ToolError as exc:
        typer.echo(f"kg2tool: error: {exc}", err=True)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        typer.echo("kg2tool: aborted", err=True)
        return 130
    except Exception as exc:
        # Usage errors from the (vendored) click parser: bad options, missing arguments.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            return int(exc.exit_code) or 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
