"""The ``kg2tool`` command: a thin layer over the Python API (every command is one call away).

Errors a user can fix (bad input, unknown names, bad arguments) print one line on stderr
and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from kg2tool.errors import Kg2ToolError

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


# Options several commands share, declared once.
StyleOption = Annotated[
    str, typer.Option("--style", help="API naming style: kg2tool, plain or camel.")
]
OverridesOption = Annotated[
    Path | None,
    typer.Option(
        "--overrides",
        help="TOML/YAML relation lexicon (docs/LEXICONS.md) that wins over the shipped ones, "
        "field by field: phrases, questions, API names, descriptions, types.",
    ),
]
ListApisOption = Annotated[
    bool,
    typer.Option(
        "--list-apis",
        help="Also the list (batched) form of every relation API, as --call-style batched "
        "datasets call them.",
    ),
]


def _fail(message: str) -> None:
    typer.echo(f"kg2tool: error: {message}", err=True)
    raise typer.Exit(2)


SeparatorOption = Annotated[
    str | None,
    typer.Option(
        "--separator", help="Field separator of a triples file (one character, or tab/comma)."
    ),
]
HeaderOption = Annotated[
    bool | None,
    typer.Option(
        "--header/--no-header",
        help="The triples file has a header line (default: detected when it names the columns).",
    ),
]
ColumnsOption = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="Head, relation and tail columns: indices (2,0,1) or header names (s,p,o).",
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option("--format", help="Triples file format (tsv, csv, txt, parquet, nt, ttl, ...)."),
]
StrictOption = Annotated[
    bool,
    typer.Option("--strict", help="Label/type rows naming keys outside the triples are an error."),
]


def _read_options(
    separator: str | None, header: bool | None, columns: str | None, fmt: str | None
) -> dict[str, object]:
    """The CLI's triples-file options as keyword arguments of ``kg2tool.kg.io.read_triples``."""
    options: dict[str, object] = {}
    if separator is not None:
        options["separator"] = separator
    if header is not None:
        options["has_header"] = header
    if fmt is not None:
        options["format"] = fmt
    if columns is not None:
        parts = [c.strip() for c in columns.split(",")]
        if len(parts) != 3 or not all(parts):
            raise typer.BadParameter(
                f"three comma-separated columns (head,relation,tail), got {columns!r}",
                param_hint="--columns",
            )
        if all(p.isdigit() for p in parts):
            options["columns"] = [int(p) for p in parts]
        else:
            options["columns"] = parts
            options.setdefault("has_header", True)
    return options


def _is_tty() -> bool:
    return sys.stderr.isatty()


@contextmanager
def _phase(what: str) -> Iterator[Callable[[int], None]]:
    """On a terminal: a spinner while a long phase runs, then its time, rows and rate.

    Yields a function to report the phase's row count; off a terminal it does nothing.
    """
    rows: list[int] = []
    if not _is_tty():
        yield rows.append
        return
    from rich.console import Console

    console = Console(stderr=True)
    t0 = time.perf_counter()
    with console.status(f"{what} ..."):
        yield rows.append
    dt = time.perf_counter() - t0
    n = rows[-1] if rows else None
    rate = f", {n / dt:,.0f} rows/s" if n and dt > 0 else ""
    line = f"{what}: " + (f"{n:,} rows, " if n else "") + f"{dt:.1f} s{rate}"
    console.print(line, soft_wrap=True, highlight=False, markup=False)


def _echo_load_report(report: dict[str, int]) -> None:
    """Say what the loader skipped or detected (unknown label keys, a header line, ...)."""
    notes = {
        "header_line": "the first line was read as a header (--no-header reads it as a triple)",
        "skipped_unknown_keys": "label/type rows skipped: their key is in no triple (--strict "
        "makes this an error)",
        "literal_triples": "literal-valued triples left out",
        "blank_node_triples": "triples with a blank node left out",
    }
    for key, value in report.items():
        base = key.split(".", 1)[0]
        if base in notes and key == base:
            typer.echo(
                f"note: {notes[base]}: {value:,}"
                if base != "header_line"
                else f"note: {notes[base]}"
            )
        elif base == "skipped_unknown_keys":
            typer.echo(f"note:   {key.split('.', 1)[1]}: {value:,}")


@app.command()
def stats(
    kg: KgOption = "codex-s",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    separator: SeparatorOption = None,
    header: HeaderOption = None,
    columns: ColumnsOption = None,
    fmt: FormatOption = None,
    strict: StrictOption = False,
) -> None:
    """Print entity, relation and triple counts of a KG, and what its loading skipped."""
    from kg2tool.kg.graph import KnowledgeGraph

    with _phase(f"loading {kg}") as done:
        graph = KnowledgeGraph.load(
            kg, strict=strict, **_read_options(separator, header, columns, fmt)
        )
        done(graph.num_triples)
    info = graph.stats()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        typer.echo(f"{key:>20}: {value:,}" if isinstance(value, int) else f"{key:>20}: {value}")


@app.command("import")
def import_kg(
    source: Annotated[
        str,
        typer.Argument(
            help="Triples file, canonical directory, benchmark folder, Wikidata JSON dump "
            "or shared dataset name."
        ),
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
    separator: SeparatorOption = None,
    header: HeaderOption = None,
    columns: ColumnsOption = None,
    fmt: FormatOption = None,
    strict: StrictOption = False,
    properties: Annotated[
        str | None,
        typer.Option(
            "--properties",
            help="Wikidata dump: comma-separated properties to keep (default: every "
            "item-valued one).",
        ),
    ] = None,
    lang: Annotated[
        str, typer.Option("--lang", help="Wikidata dump: language of labels and descriptions.")
    ] = "en",
) -> None:
    """Import a KG into a snapshot (fast to open) or the canonical KG directory layout."""
    from kg2tool.kg.importing import import_kg as run

    result = run(
        source,
        out,
        snapshot=snapshot,
        overwrite=overwrite,
        strict=strict,
        read_options=_read_options(separator, header, columns, fmt),
        properties=None
        if properties is None
        else [p.strip() for p in properties.split(",") if p.strip()],
        lang=lang,
        progress=sys.stderr.isatty(),
        phase=_phase,
    )
    if result.wikidata_report is not None:
        read = result.wikidata_report
        counts = {k: v for k, v in read.items() if v and k not in ("items", "triples")}
        typer.echo(
            f"read {read['items']:,} items, {read['triples']:,} triples; "
            "counted and left out or noted: "
            + (", ".join(f"{k} {v:,}" for k, v in counts.items()) or "nothing")
        )
    _echo_load_report(result.load_report)
    typer.echo(result.summary())


@app.command()
def bench(
    kg: Annotated[
        list[str],
        typer.Option(
            "--kg",
            help="KG name or directory (repeat for several KGs: the plot shows throughput vs size).",
        ),
    ] = ["codex-s"],  # noqa: B006 (typer reads the default; it is never mutated)
    patterns: Annotated[
        str | None,
        typer.Option(
            "--patterns",
            help="Comma-separated library names or formulas (default: generate's patterns).",
        ),
    ] = None,
    threads: Annotated[
        str, typer.Option("--threads", help="Thread counts, comma-separated (e.g. 1,2).")
    ] = "1",
    seconds: Annotated[
        float, typer.Option("--seconds", help="Target duration of one sampling run.")
    ] = 1.0,
    queries: Annotated[
        int, typer.Option("--queries", help="Queries per sampling run (0: from --seconds).")
    ] = 0,
    repeat: Annotated[int, typer.Option("--repeat", help="Timed repetitions.")] = 3,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up runs.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full report as JSON here.")
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write flat rows as CSV here.")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write a PNG of throughput vs threads and vs KG size."),
    ] = None,
) -> None:
    """Sampling, execution and matching throughput per pattern (median of repetitions)."""
    from kg2tool import benchmark
    from kg2tool.kg.graph import KnowledgeGraph
    from kg2tool.patterns import parse_patterns
    from kg2tool.pipeline.config import DEFAULT_PATTERN_TEXT

    try:
        thread_counts = [int(t) for t in threads.split(",") if t.strip()]
    except ValueError:
        thread_counts = []
    if not thread_counts or min(thread_counts) < 1:
        raise typer.BadParameter(
            f"comma-separated counts >= 1, got {threads!r}", param_hint="--threads"
        )
    if repeat < 1 or warmup < 0 or seconds <= 0 or queries < 0:
        raise typer.BadParameter("need --repeat >= 1, --warmup >= 0, --seconds > 0, --queries >= 0")
    specs = [spec for spec, _ in parse_patterns(patterns or DEFAULT_PATTERN_TEXT)]
    reports = []
    for name in kg:
        graph = KnowledgeGraph.load(name)
        report = benchmark.run_bench(
            graph,
            specs,
            threads=thread_counts,
            queries=queries,
            seconds=seconds,
            warmup=warmup,
            repeat=repeat,
            seed=seed,
            kg_name=name,
        )
        reports.append(report)
        typer.echo(f"{name}: {graph.num_triples:,} triples, {graph.num_entities:,} entities")
        typer.echo(benchmark.format_table(report))
    if json_out is not None:
        benchmark.write_json(reports[0] if len(reports) == 1 else reports, json_out)
        typer.echo(f"wrote {json_out}")
    if csv_out is not None:
        benchmark.write_csv(reports, csv_out)
        typer.echo(f"wrote {csv_out}")
    if plot is not None:
        benchmark.plot_report(reports, plot)
        typer.echo(f"wrote {plot}")


class _GenerateCommand:
    """Generate a verified tool-use dataset from a KG (sharded, resumable)."""

    # One option per run setting, its type, help and default from
    # kg2tool.pipeline.config.settings() when typer builds the CLI (not when it is imported);
    # a flag left out falls back to --config, then to the setting's default.
    __name__ = "generate"

    def __init__(self) -> None:
        self.__annotations__: dict[str, object] = {}  # typer reads the signature's instead

    @property
    def __signature__(self) -> inspect.Signature:
        from kg2tool.pipeline.config import settings

        params = []
        for s in settings():
            shown = s.default is not None and s.default != "" and not isinstance(s.default, bool)
            option = typer.Option(
                *filter(None, (s.flag, s.short)),
                help=s.help,
                show_default=str(s.default) if shown else False,
                rich_help_panel=s.group,
            )
            kind = s.type if isinstance(s.type, type) else str  # ``str | None``: a string
            params.append(_keyword(s.name, Annotated[kind | None, option], None))
        params += [
            _keyword("config", _ConfigOption, None),
            _keyword("quiet", _QuietOption, False),
            _keyword("overwrite", _OverwriteOption, False),
        ]
        return inspect.Signature(params)

    def __call__(self, config: Path | None, quiet: bool, overwrite: bool, **flags: object) -> None:
        from kg2tool.pipeline.config import GenerateConfig
        from kg2tool.pipeline.driver import generate as run

        given = {k: v for k, v in flags.items() if v is not None}
        cfg = GenerateConfig.from_file(config, **given) if config else GenerateConfig(**given)
        report = run(
            cfg,
            progress=None if not quiet else False,
            overwrite=overwrite,
            log=lambda msg: typer.echo(f"kg2tool: warning: {msg}", err=True),
        )
        typer.echo(report.summary())


def _keyword(name: str, annotation: object, default: object) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


_ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML file with any of these settings; flags win."),
]
_QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
_OverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace the run already in --out (only the files kg2tool wrote there) "
        "instead of resuming it.",
    ),
]
generate = app.command("generate")(_GenerateCommand())


@app.command()
def apis(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the tool definitions and manifest.")
    ],
    kg: KgOption = "codex-s",
    style: StyleOption = "kg2tool",
    overrides: OverridesOption = None,
    list_apis: ListApisOption = False,
) -> None:
    """Export the KG's APIs: OpenAI tools, ToolBench tool JSON, xLAM tools and the manifest."""
    from kg2tool.kg.graph import KnowledgeGraph
    from kg2tool.tools.catalog import ApiCatalog
    from kg2tool.tools.export import export_tools

    catalog = ApiCatalog.from_graph(
        KnowledgeGraph.load(kg), style=style, overrides=overrides, list_apis=list_apis
    )
    export_tools(catalog, out)
    typer.echo(f"wrote {len(catalog.names)} APIs to {out}")


@app.command("patterns")
def patterns_cmd(
    check: Annotated[
        str | None,
        typer.Argument(help="A pattern list to validate, e.g. '2p,r1(s1,e1)&r2(e1,f)'."),
    ] = None,
) -> None:
    """List the pattern library, or validate a pattern list and show its plans."""
    from kg2tool.patterns import LIBRARY, compile_pattern, parse_patterns

    if check is None:
        for name, spec in LIBRARY.items():
            typer.echo(f"{name:>10}  {spec.formula}")
        return
    for spec, weight in parse_patterns(check):
        typer.echo(f"# weight {weight:g}")
        typer.echo(compile_pattern(spec).describe())


@app.command()
def call(
    api: Annotated[str, typer.Argument(help="API name, e.g. get_birthplace_of_person.")],
    arguments: Annotated[
        str, typer.Argument(help='JSON arguments, e.g. \'{"person": "Douglas Adams"}\'.')
    ] = "{}",
    kg: KgOption = "codex-s",
) -> None:
    """Run one API call over the KG and print the observation (errors are JSON too)."""
    from kg2tool.kg.graph import KnowledgeGraph
    from kg2tool.tools.catalog import ApiCatalog
    from kg2tool.tools.runtime import ToolRuntime

    graph = KnowledgeGraph.load(kg)
    result = ToolRuntime(graph, ApiCatalog.from_graph(graph, list_apis=True)).call(api, arguments)
    typer.echo(result.to_json())
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def verify(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="A dataset directory written by generate, or one .jsonl/.json/.parquet file "
            "of any format."
        ),
    ],
    kg: KgOption = "codex-s",
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Also exit 1 when a sample could only be partly checked (no recorded answer "
            "set, or xLAM calls without observations).",
        ),
    ] = False,
    show: Annotated[int, typer.Option("--show", help="How many failures to print.")] = 10,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Where to write the full JSON report (default: DATASET.verify-report.json "
            "beside the dataset).",
        ),
    ] = None,
) -> None:
    """Replay every call of every training sample against a KG; exit 1 if any no longer holds."""
    from kg2tool.dataset.verify import verify_dataset
    from kg2tool.kg.graph import KnowledgeGraph

    if not dataset.exists():
        _fail(f"{dataset}: no such file or directory")
    graph = KnowledgeGraph.load(kg)
    # beside the dataset, not inside it (a dataset directory holds only what generate wrote)
    where = dataset.resolve()
    target = report or where.parent / f"{where.name}.verify-report.json"
    if target.is_dir():
        _fail(f"{target}: --report names a directory; give a file path")
    result = verify_dataset(dataset, graph)
    try:
        result.write(target)
    except OSError as exc:
        _fail(f"{target}: cannot write the report ({exc.strerror or exc}); give --report PATH")
    shown: set[str] = set()
    for f in result.failures:  # the first failure of each of the first `show` samples
        if len(shown) >= show:
            break
        if f["id"] not in shown:
            shown.add(f["id"])
            typer.echo(f"{f['id']}: {f['reason']}: {f['detail']} (in {f['where']})")
    typer.echo(result.summary())
    typer.echo(f"full report: {target}")
    if result.failed or (strict and result.partial):
        raise typer.Exit(1)


@app.command()
def serve(
    kg: KgOption = "codex-s",
    transport: Annotated[
        str, typer.Option("--transport", help="stdio (the client starts the server) or http.")
    ] = "stdio",
    host: Annotated[str, typer.Option("--host", help="Address to listen on (http).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (http).")] = 8000,
    list_apis: ListApisOption = False,
    style: StyleOption = "kg2tool",
    overrides: OverridesOption = None,
    page_size: Annotated[
        int, typer.Option("--page-size", help="Tools per page of the tool list.")
    ] = 200,
) -> None:
    """Give an agent the KG's tools: an MCP server (stdio or streamable HTTP) over the runtime."""
    from kg2tool.kg.graph import KnowledgeGraph
    from kg2tool.serve import serve as run
    from kg2tool.tools.catalog import ApiCatalog
    from kg2tool.tools.runtime import ToolRuntime

    graph = KnowledgeGraph.load(kg)
    catalog = ApiCatalog.from_graph(graph, style=style, overrides=overrides, list_apis=list_apis)
    run(ToolRuntime(graph, catalog), transport=transport, host=host, port=port, page_size=page_size)


@app.command("eval")
def eval_cmd(
    dataset: Annotated[Path, typer.Argument(help="A dataset directory written by generate.")],
    kg: KgOption = "codex-s",
    model: Annotated[
        str | None, typer.Option("--model", help="Model name the endpoint serves.")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="OpenAI-compatible API root, e.g. http://localhost:8000/v1."
        ),
    ] = None,
    agent: Annotated[
        str,
        typer.Option(
            "--agent",
            help="'model' (the endpoint) or 'reference' (replay the dataset's own trajectories: "
            "the harness's self-test).",
        ),
    ] = "model",
    split: Annotated[
        str, typer.Option("--split", help="Split to evaluate ('all' for every split).")
    ] = "test",
    limit: Annotated[int | None, typer.Option("--limit", help="First N samples (by id).")] = None,
    max_turns: Annotated[
        int, typer.Option("--max-turns", help="Assistant turns before an episode is cut.")
    ] = 30,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Episodes run at once.")] = 4,
    out: Annotated[
        Path | None, typer.Option("--out", help="Report directory (default DATASET/eval).")
    ] = None,
    retries: Annotated[
        int, typer.Option("--retries", help="Retries of a failed request (exponential backoff).")
    ] = 3,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per reply.")] = 120.0,
    temperature: Annotated[float, typer.Option("--temperature")] = 0.0,
    system: Annotated[
        str | None,
        typer.Option("--system", help="A system message before each question (default none)."),
    ] = None,
    key_env: Annotated[
        str,
        typer.Option("--key-env", help="Environment variable holding the API key (unset: none)."),
    ] = "OPENAI_API_KEY",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a model (any OpenAI-compatible endpoint) as an agent on a dataset and score it exactly."""
    from kg2tool.evaluate import evaluate
    from kg2tool.kg.graph import KnowledgeGraph

    target = out if out is not None else dataset / "eval"
    report = evaluate(
        dataset,
        KnowledgeGraph.load(kg),
        agent=agent,
        model=model,
        base_url=base_url,
        split=None if split == "all" else split,
        limit=limit,
        max_turns=max_turns,
        concurrency=concurrency,
        out=target,
        kg_name=kg,
        retries=retries,
        timeout=timeout,
        temperature=temperature,
        progress=not quiet and sys.stderr.isatty(),
        system=system,
        key_env=key_env,
    )
    typer.echo(report.table(), nl=False)
    typer.echo(f"wrote {', '.join(report.files)} to {target}")


@app.command()
def betae(
    out: Annotated[Path, typer.Option("--out", help="Output directory (written atomically).")],
    kg: Annotated[
        str,
        typer.Option(
            "--kg",
            help="Shared dataset name (fb15k-237, codex-m, ...), bundled codex-s, canonical "
            "directory with valid/test, or a folder of train.txt/valid.txt/test.txt.",
        ),
    ] = "codex-s",
    counts: Annotated[
        str,
        typer.Option(
            "--counts",
            help="Changes to the default counts (KGReasoning's FB15k-237 ones): split.type=N, "
            "comma-separated; '*' for every split or type, 'all' for every 1p query, 0 for none. "
            "E.g. 'train.*=1000,valid.*=100,test.*=100'.",
        ),
    ] = "",
    max_answers: Annotated[
        int,
        typer.Option(
            "--max-answers",
            help="KGReasoning's max_ans_num for multi-hop types: at most this many train "
            "answers, hard answers and answers lost to a negation per query (0: no cap).",
        ),
    ] = 100,
    max_answers_1p: Annotated[
        int,
        typer.Option("--max-answers-1p", help="The same cap for 1p (0, the default: no cap)."),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same files).")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="Native threads (0: all cores).")] = 0,
    tables: Annotated[
        bool,
        typer.Option("--tables/--no-tables", help="Also every query in queries.parquet."),
    ] = True,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="Also every query in queries.jsonl.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Export a logical-query benchmark in the BetaE/KGReasoning layout (easy/hard answers)."""
    from kg2tool.betae import export_betae, parse_counts

    report = export_betae(
        kg,
        out,
        counts=parse_counts(counts),
        max_answers=max_answers or None,
        max_answers_1p=max_answers_1p or None,
        seed=seed,
        threads=threads,
        overwrite=overwrite,
        tables=tables,
        jsonl=jsonl,
    )
    typer.echo(report.summary())


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning kg2tool errors into one line and exit status 2."""
    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            return code
    except Kg2ToolError as exc:
        typer.echo(f"kg2tool: error: {exc}", err=True)
        return 2
    except OSError as exc:  # the environment (disk full, permissions): fixable, not a bug
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
