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
        str, typer.Option("--patterns", help="Comma-separated library names or formulas.")
    ] = "1p,2p,3p,2i,3i,ip,pi,2in,3in,inp,pin,pni,2u,up",
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
    from . import benchmark
    from .graph import KnowledgeGraph
    from .patterns import parse_patterns

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
    specs = [spec for spec, _ in parse_patterns(patterns)]
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


@app.command()
def generate(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output directory (resumes when it holds the same run)."),
    ] = None,
    kg: Annotated[
        str | None,
        typer.Option("--kg", help="Bundled name, canonical directory, snapshot or triples file."),
    ] = None,
    patterns: Annotated[
        str | None,
        typer.Option(
            "--patterns",
            help="Library names and/or formulas with weights, e.g. '1p,2p:2,r1(s1,f)&r2(s2,f)'.",
        ),
    ] = None,
    num_samples: Annotated[
        int | None, typer.Option("--num-samples", "-n", help="Number of samples.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (same seed, same output).")
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", help="openai, toolbench, sharegpt or xlam.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Native threads (0: all cores).")
    ] = None,
    shard_size: Annotated[
        int | None,
        typer.Option("--shard-size", help="Samples per shard (unit of resume and distribution)."),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="auto (default: a local worker pool for large runs on 2+ CPUs, else local), "
            "local, process (local worker pool) or ray.",
        ),
    ] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (with --engine ray).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Worker processes (auto/process/ray engines; 0: all CPUs)."),
    ] = None,
    min_answers: Annotated[int | None, typer.Option("--min-answers")] = None,
    max_answers: Annotated[int | None, typer.Option("--max-answers")] = None,
    max_intermediate: Annotated[
        int | None,
        typer.Option(
            "--max-intermediate", help="Largest intermediate set (bounds the calls per sample)."
        ),
    ] = None,
    set_ops: Annotated[
        str | None,
        typer.Option(
            "--set-ops",
            help="How intersections, unions and differences appear: 'thought' (explained in "
            "the reasoning, the default) or 'tools' (calls of get_intersection_of, "
            "get_union_of, get_negation_of, replayed and verified).",
        ),
    ] = None,
    call_style: Annotated[
        str | None,
        typer.Option(
            "--call-style",
            help="'single' (one call per entity of each intermediate set, the default) or "
            "'batched' (one call of a list API, e.g. get_x_of_y_batch, per projection step).",
        ),
    ] = None,
    allow_raw_keys: Annotated[
        bool | None,
        typer.Option(
            "--allow-raw-keys",
            help="Keep samples that show entities without a name (opaque keys such as Q42); "
            "by default they are dropped and counted.",
        ),
    ] = None,
    exclude_relations: Annotated[
        str | None,
        typer.Option(
            "--exclude-relations",
            help="Comma-separated patterns (shell-style, case-insensitive) of relation keys or "
            "labels to leave out, e.g. 'P1038,*slur*'.",
        ),
    ] = None,
    exclude_entities: Annotated[
        str | None,
        typer.Option(
            "--exclude-entities",
            help="Comma-separated patterns of entity keys or labels to leave out.",
        ),
    ] = None,
    overrides: Annotated[
        Path | None,
        typer.Option(
            "--overrides",
            help="TOML/YAML relation lexicon (docs/LEXICONS.md) that wins over the shipped "
            "ones, field by field: phrases, questions, API names, descriptions, types.",
        ),
    ] = None,
    paraphrase_url: Annotated[
        str | None,
        typer.Option(
            "--paraphrase-url",
            help="OpenAI-compatible API root (e.g. https://api.openai.com/v1, "
            "http://localhost:8000/v1): paraphrase questions there. Off by default.",
            rich_help_panel="Paraphrasing",
        ),
    ] = None,
    paraphrase_model: Annotated[
        str | None,
        typer.Option(
            "--paraphrase-model", help="Model name to ask.", rich_help_panel="Paraphrasing"
        ),
    ] = None,
    paraphrase_ratio: Annotated[
        float | None,
        typer.Option(
            "--paraphrase-ratio",
            help="Share of questions to paraphrase, 0..1 (chosen by seed; default 1).",
            rich_help_panel="Paraphrasing",
        ),
    ] = None,
    paraphrase_key_env: Annotated[
        str | None,
        typer.Option(
            "--paraphrase-key-env",
            help="Environment variable holding the API key (default OPENAI_API_KEY; "
            "never written to disk).",
            rich_help_panel="Paraphrasing",
        ),
    ] = None,
    paraphrase_temperature: Annotated[
        float | None,
        typer.Option(
            "--paraphrase-temperature",
            help="Sampling temperature (default 0.7).",
            rich_help_panel="Paraphrasing",
        ),
    ] = None,
    paraphrase_batch: Annotated[
        int | None,
        typer.Option(
            "--paraphrase-batch",
            help="Questions per request (default 1; >1 asks for a JSON array).",
            rich_help_panel="Paraphrasing",
        ),
    ] = None,
    paraphrase_concurrency: Annotated[
        int | None,
        typer.Option(
            "--paraphrase-concurrency",
            help="Requests in flight at once, per worker (default 4).",
            rich_help_panel="Paraphrasing",
        ),
    ] = None,
    paraphrase_timeout: Annotated[
        float | None,
        typer.Option(
            "--paraphrase-timeout",
            help="Seconds to wait for one reply (default 60).",
            rich_help_panel="Paraphrasing",
        ),
    ] = None,
    paraphrase_retries: Annotated[
        int | None,
        typer.Option(
            "--paraphrase-retries",
            help="Retries of a failed request, with exponential backoff (default 3).",
            rich_help_panel="Paraphrasing",
        ),
    ] = None,
    paraphrase_lenient: Annotated[
        bool | None,
        typer.Option(
            "--paraphrase-lenient/--paraphrase-strict",
            help="When the endpoint fails (down, timeouts, HTTP 429/5xx) keep the template "
            "questions and count it, instead of stopping (strict, the default).",
            rich_help_panel="Paraphrasing",
        ),
    ] = None,
    paraphrase_cache: Annotated[
        str | None,
        typer.Option(
            "--paraphrase-cache",
            help="Reply cache directory (default OUT/.paraphrase-cache).",
            rich_help_panel="Paraphrasing",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML file with any of these settings; flags win."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Generate a verified tool-use dataset from a KG (sharded, resumable)."""
    from .pipeline import GenerateConfig
    from .pipeline import generate as run

    flags = {
        "out": None if out is None else str(out),
        "kg": kg,
        "patterns": patterns,
        "num_samples": num_samples,
        "seed": seed,
        "format": format,
        "threads": threads,
        "shard_size": shard_size,
        "engine": engine,
        "ray_address": address,
        "workers": workers,
        "min_answers": min_answers,
        "max_answers": max_answers,
        "max_intermediate": max_intermediate,
        "set_ops": set_ops,
        "call_style": call_style,
        "allow_raw_keys": allow_raw_keys,
        "exclude_relations": exclude_relations,
        "exclude_entities": exclude_entities,
        "overrides": None if overrides is None else str(overrides),
        "paraphrase_url": paraphrase_url,
        "paraphrase_model": paraphrase_model,
        "paraphrase_ratio": paraphrase_ratio,
        "paraphrase_key_env": paraphrase_key_env,
        "paraphrase_temperature": paraphrase_temperature,
        "paraphrase_batch": paraphrase_batch,
        "paraphrase_concurrency": paraphrase_concurrency,
        "paraphrase_timeout": paraphrase_timeout,
        "paraphrase_retries": paraphrase_retries,
        "paraphrase_lenient": paraphrase_lenient,
        "paraphrase_cache": paraphrase_cache,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    cfg = GenerateConfig.from_file(config, **flags) if config else GenerateConfig(**flags)
    report = run(cfg, progress=None if not quiet else False)
    typer.echo(report.summary())


@app.command()
def apis(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the tool definitions and manifest.")
    ],
    kg: KgOption = "codex-s",
    style: Annotated[
        str, typer.Option("--style", help="Naming style: kg2tool, plain or camel.")
    ] = "kg2tool",
    overrides: Annotated[
        Path | None,
        typer.Option("--overrides", help="TOML/YAML file of per-relation names and descriptions."),
    ] = None,
    list_apis: Annotated[
        bool,
        typer.Option(
            "--list-apis",
            help="Also the list (batched) form of every relation API, as --call-style batched "
            "datasets call them.",
        ),
    ] = False,
) -> None:
    """Export the KG's APIs: OpenAI tools, ToolBench tool JSON, xLAM tools and the manifest."""
    import orjson

    from .apis import ApiCatalog
    from .graph import KnowledgeGraph

    catalog = ApiCatalog.from_graph(
        KnowledgeGraph.load(kg), style=style, overrides=overrides, list_apis=list_apis
    )
    out.mkdir(parents=True, exist_ok=True)
    for name, data in (
        ("openai_tools.json", catalog.to_openai_tools()),
        ("toolbench_tool.json", catalog.to_toolbench()),
        ("xlam_tools.json", catalog.to_xlam_tools()),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        tmp.replace(out / name)
    catalog.write_manifest(out / "manifest.json")
    typer.echo(f"wrote {len(catalog.names)} APIs to {out}")


@app.command("patterns")
def patterns_cmd(
    check: Annotated[
        str | None,
        typer.Argument(help="A pattern list to validate, e.g. '2p,r1(s1,e1)&r2(e1,f)'."),
    ] = None,
) -> None:
    """List the pattern library, or validate a pattern list and show its plans."""
    from .patterns import LIBRARY, compile_pattern, parse_patterns

    if check is None:
        for name, spec in LIBRARY.items():
            typer.echo(f"{name:>10}  {spec.formula}")
        return
    for spec, weight in parse_patterns(check):
        typer.echo(f"# weight {weight:g}")
        typer.echo(compile_pattern(spec).describe())


@app.command()
def call(
    api: Annotated[str, typer.Argument(help="API name, e.g. get_place_of_birth_of_human.")],
    arguments: Annotated[
        str, typer.Argument(help='JSON arguments, e.g. \'{"human": "Douglas Adams"}\'.')
    ] = "{}",
    kg: KgOption = "codex-s",
) -> None:
    """Run one API call over the KG and print the observation (errors are JSON too)."""
    from .apis import ApiCatalog
    from .graph import KnowledgeGraph
    from .runtime import ToolRuntime

    graph = KnowledgeGraph.load(kg)
    result = ToolRuntime(graph, ApiCatalog.from_graph(graph, list_apis=True)).call(api, arguments)
    typer.echo(result.to_json())
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def verify(
    dataset: Annotated[
        Path, typer.Argument(help="A dataset directory written by generate (or one Parquet shard).")
    ],
    kg: KgOption = "codex-s",
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when any sample no longer holds.")
    ] = False,
    show: Annotated[int, typer.Option("--show", help="How many failures to print.")] = 10,
) -> None:
    """Replay every sample's calls and answers against a KG; report those that no longer hold."""
    from .graph import KnowledgeGraph
    from .verify import verify_dataset

    report = verify_dataset(dataset, KnowledgeGraph.load(kg))
    for f in report.failures[:show]:
        typer.echo(f"{f['id']}: {f['reason']}: {f['detail']}")
    typer.echo(report.summary())
    if strict and report.failed:
        raise typer.Exit(1)


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
