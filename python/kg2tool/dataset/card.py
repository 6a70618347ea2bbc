"""The dataset card: a README.md a person (and the Hugging Face Hub) can pick up.

It says what a sample is, every column, the pattern codes with an example each, one full
record, the KG's source, licence and citation, the kg2tool version and the settings that
reproduce the run, and what fell short; then counts, histograms and coverage. The YAML header
is the Hub's dataset-card metadata (configs with ``data_files`` per split, licence, task
categories, size category, tags). Other parts add a :class:`CardSection` through
``write_card(..., sections=[...])`` (the paraphrase report does) instead of editing the
written text. No absolute path is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import Any

import polars as pl
import tomli_w
import yaml

from kg2tool.atomic import atomic_file, write_text

__all__ = [
    "CARD_COLUMNS",
    "COLUMN_DOCS",
    "KNOWN_KGS",
    "CardSection",
    "KgInfo",
    "card_examples",
    "card_stats",
    "kg_info",
    "write_card",
]

CARD_COLUMNS = ["pattern", "split", "n_answers", "num_calls", "qlen", "empty", "recovery"]

# What each Parquet column holds (the card lists the ones the dataset has, in its order).
COLUMN_DOCS: dict[str, str] = {
    "id": "stable sample id (hash of the query), unique in the dataset",
    "split": "train, validation or test (decided by a seeded hash of the query)",
    "pattern": "the query pattern's code (see *Pattern codes*)",
    "formula": "the pattern as a first-order-logic formula in DNF (see *Pattern codes*)",
    "bindings": "JSON object: relation slots `rN` and anchors `sN` bound to KG keys",
    "question": "the natural-language question the model is given",
    "question_template": "the template question before paraphrasing",
    "answers": "KG keys of the exact answer set",
    "answer_labels": "display names of the answers, in the same order",
    "tools": "JSON list of the tool definitions offered in the sample (format's schema)",
    "messages": "JSON list of the conversation: user question, assistant thoughts and tool "
    "calls, tool observations, final answer",
    "num_calls": "number of tool calls in the trajectory",
    "trace": "JSON list of the calls as replayed on the KG: name, arguments, observation",
    "grounding": "JSON list per call of the KG triples that justify its observation",
    "empty": "true when the question's answer set is empty (the model must say so)",
    "recovery": "true when the trajectory shows a failed call and its correction",
    "relation_ids": "ids of the KG relations the query uses",
    "apis": "names of the APIs the trajectory calls",
    "record": "the sample in the chosen trainer format (also the JSON(L) files' lines)",
}

FORMAT_DOCS: dict[str, str] = {
    "openai": "OpenAI tool-calling chat messages (`messages` with `tool_calls` and `tool` "
    "turns) plus `tools`, one JSON object per line",
    "sharegpt": "ShareGPT conversations for LLaMA-Factory (`conversations` with "
    "`function_call` / `observation` turns, `tools`); `dataset_info.json` registers them",
    "toolbench": "ToolBench step records (Thought / Action / Action Input / Observation), "
    "one JSON array per split",
    "xlam": "APIGen/xLAM records (`query`, `tools`, `answers` as the calls made)",
}

FORMULA_DOC = (
    "Formulas are in DNF (EFO-k/FIT notation): atoms `rN(a,b)` with relation slots `rN`, "
    "anchors `sN` (given entities), existential variables `eN` and the answer variable `f`; "
    "`&` is conjunction, `!` negation (of an atom or of a parenthesised conjunction), `|` "
    "union between parenthesised conjunctions. `bindings` maps slots and anchors to KG keys."
)


@dataclass(frozen=True)
class KgInfo:
    """Where a KG comes from: its name, Hub licence id, source and citation."""

    name: str
    license: str  # a Hugging Face licence id ("mit", "cc-by-2.5", "other", "unknown")
    license_text: str
    source: str
    citation: str


KNOWN_KGS: dict[str, KgInfo] = {
    "codex": KgInfo(
        "CoDEx",
        "mit",
        "MIT (CoDEx triples); built from Wikidata, which is CC0",
        "CoDEx (Safavi and Koutra, EMNLP 2020), github.com/tsafavi/codex",
        "@inproceedings{safavi2020codex,\n  title={{CoDEx}: A Comprehensive Knowledge Graph "
        "Completion Benchmark},\n  author={Safavi, Tara and Koutra, Danai},\n  booktitle="
        "{EMNLP},\n  year={2020}\n}",
    ),
    "fb15k-237": KgInfo(
        "FB15k-237",
        "cc-by-2.5",
        "derived from Freebase (CC-BY); entity names from MIT / Apache-2.0 repositories",
        "FB15k-237 (Toutanova and Chen, 2015), a subset of Freebase",
        "@inproceedings{toutanova2015observed,\n  title={Observed versus latent features for "
        "knowledge base and text inference},\n  author={Toutanova, Kristina and Chen, Danqi},\n"
        "  booktitle={3rd Workshop on Continuous Vector Space Models and their "
        "Compositionality},\n  year={2015}\n}",
    ),
    "wn18rr": KgInfo(
        "WN18RR",
        "other",
        "WordNet 3.0 licence",
        "WN18RR (Dettmers et al., AAAI 2018), a subset of WordNet 3.0",
        "@inproceedings{dettmers2018conve,\n  title={Convolutional 2D Knowledge Graph "
        "Embeddings},\n  author={Dettmers, Tim and Minervini, Pasquale and Stenetorp, Pontus "
        "and Riedel, Sebastian},\n  booktitle={AAAI},\n  year={2018}\n}",
    ),
    "nations": KgInfo(
        "Nations",
        "mit",
        "MIT",
        "Nations (Kok and Domingos, ICML 2007), from Rummel's Dimensionality of Nations",
        "@inproceedings{kok2007statistical,\n  title={Statistical predicate invention},\n  "
        "author={Kok, Stanley and Domingos, Pedro},\n  booktitle={ICML},\n  year={2007}\n}",
    ),
    "countries": KgInfo(
        "Countries",
        "unknown",
        "as stated in the upstream repository",
        "Countries (Bouchard, Singh and Trouillon, 2015)",
        "@inproceedings{bouchard2015approximate,\n  title={On approximate reasoning "
        "capabilities of low-rank vector spaces},\n  author={Bouchard, Guillaume and Singh, "
        "Sameer and Trouillon, Theo},\n  booktitle={AAAI Spring Symposium on Knowledge "
        "Representation and Reasoning},\n  year={2015}\n}",
    ),
}

METHOD_REFERENCE = "KG2Tool (arXiv:2506.21071), the method kg2tool implements."


def kg_name(kg: Any) -> str:
    """The KG as the card names it: a bundled or shared name, or a path's last component
    (never an absolute path)."""
    text = str(kg) if kg is not None else "unknown"
    if os.sep in text or "/" in text:
        p = PurePath(text.rstrip("/"))
        if p.stem in ("train", "triples", "snapshot") and p.parent.name:
            return p.parent.name  # a benchmark folder's or a canonical directory's file
        for suffix in (".gz", ".bz2", ".zst"):
            if p.name.endswith(suffix):
                p = p.with_name(p.name[: -len(suffix)])
        return p.stem if p.suffix in (".tsv", ".txt", ".csv", ".parquet", ".nt", ".ttl") else p.name
    return text


def kg_info(kg: Any) -> KgInfo | None:
    """Source, licence and citation when the KG is one kg2tool knows (by name), else None."""
    name = kg_name(kg).lower().replace("_", "-")
    if "codex" in name:
        return KNOWN_KGS["codex"]
    for key in ("fb15k-237", "wn18rr", "nations", "countries"):
        if key in name or key.replace("-", "") in name.replace("-", ""):
            return KNOWN_KGS[key]
    return None


def card_stats(frame: pl.DataFrame | pl.LazyFrame) -> tuple[pl.DataFrame, int]:
    """The few per-sample numbers the card needs, and the number of relations covered."""
    lf = frame.lazy()
    names = lf.collect_schema().names()
    stats = lf.select(
        "pattern",
        "split",
        pl.col("answers").list.len().alias("n_answers"),
        pl.col("num_calls"),
        pl.col("question").str.len_chars().alias("qlen"),
        (pl.col("empty") if "empty" in names else pl.lit(False)).alias("empty"),
        (pl.col("recovery") if "recovery" in names else pl.lit(False)).alias("recovery"),
    ).collect()
    rels = 0
    if "relation_ids" in names:
        rels = lf.select(pl.col("relation_ids").explode().drop_nulls().n_unique()).collect().item()
    return stats, int(rels)


def card_examples(frame: pl.DataFrame | pl.LazyFrame) -> tuple[pl.DataFrame, list[str]]:
    """One example per pattern (formula, question, answer names, calls) and the column names."""
    lf = frame.lazy()
    names = lf.collect_schema().names()
    if "pattern" not in names or "question" not in names:
        return pl.DataFrame(), names
    labels = "answer_labels" if "answer_labels" in names else "answers"
    cols = [c for c in ("formula", "question", labels, "num_calls") if c in names]
    ex = (
        (lf.filter(pl.col("split") == "train") if "split" in names else lf)
        .group_by("pattern", maintain_order=True)
        .agg(pl.col(c).first() for c in cols)
    )
    got = ex.collect()
    if got.height < lf.select(pl.col("pattern").n_unique()).collect().item():
        got = lf.group_by("pattern", maintain_order=True).agg(pl.col(c).first() for c in cols)
        got = got.collect()
    if labels != "answer_labels":
        got = got.rename({labels: "answer_labels"})
    return got.sort("pattern"), names


def _size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")]
    bounds += [(1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
    for top, name in bounds:
        if n < top:
            return name
    return "100M<n<1B"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("kg2tool")
    except Exception:
        return "unknown"


def _portable_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's settings that decide its bytes, with no absolute path and no output dir."""
    skip = {"out", "threads", "engine", "ray_address", "workers", "paraphrase_cache"}
    out: dict[str, Any] = {}
    for key, value in (config or {}).items():
        if key in skip or value is None or value == {}:
            continue
        if key == "kg" and isinstance(value, str | os.PathLike) and os.path.isabs(str(value)):
            value = kg_name(value)
        out[key] = (
            value if isinstance(value, str | int | float | bool | dict | list) else str(value)
        )
    return out


def _first_record(out: Path, format: str, splits: Sequence[str]) -> str | None:
    """The first record of the train split (else of the first split) as pretty JSON."""
    order = [s for s in ("train", *splits) if s in splits]
    for split in order:
        path = out / (f"{split}.json" if format == "toolbench" else f"{split}.jsonl")
        if not path.is_file():
            continue
        with open(path, "rb") as fh:
            head = fh.read(1 << 20).decode("utf-8", "replace")
        try:
            if format == "toolbench":
                obj, _ = json.JSONDecoder().raw_decode(head.lstrip()[1:].lstrip())
            else:
                obj = json.loads(head.split("\n", 1)[0])
        except ValueError:
            continue
        return json.dumps(obj, indent=2, ensure_ascii=False)
    return None


def warm_up() -> None:
    """Import the plotting library ahead of :func:`write_card` (~0.5 s), for a caller that
    waits on other work meanwhile (the generate driver while its shards are built)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot


def _plots(frame: pl.DataFrame, out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = {}
    for name, col, title in (
        ("answers_hist.png", "n_answers", "answers per question"),
        ("calls_hist.png", "num_calls", "tool calls per sample"),
        ("question_length_hist.png", "qlen", "question length (characters)"),
    ):
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.hist(frame[col].to_numpy(), bins=30)
        ax.set_title(title)
        fig.tight_layout()
        with atomic_file(out / name) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        plots[name] = title
    return plots


def _header(n: int, splits: Sequence[str], info: KgInfo | None, name: str) -> str:
    meta: dict[str, Any] = {
        "pretty_name": f"kg2tool tool-use data from {info.name if info else name}",
        "license": info.license if info else "unknown",
        "language": ["en"],
        "task_categories": ["text-generation", "question-answering"],
        "tags": ["tool-use", "function-calling", "knowledge-graph", "synthetic", "kg2tool"],
        "size_categories": [_size_category(n)],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits],
            }
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _shortfalls(
    frame: pl.DataFrame, config: Mapping[str, Any], report: Mapping[str, Any]
) -> list[str]:
    lines = []
    asked = config.get("num_samples")
    if isinstance(asked, int) and asked > frame.height:
        lines.append(
            f"- {asked - frame.height:,} of the {asked:,} samples asked for were not written "
            "(the patterns ran out of distinct queries, or samples were dropped below)."
        )
    for pattern in report.get("exhausted") or ():
        lines.append(
            f"- pattern `{pattern}` ran out of distinct queries on this KG; its share went "
            "to the other patterns."
        )
    for reason, count in sorted((report.get("dropped") or {}).items()):
        if count:
            lines.append(f"- dropped ({reason}): {count:,}")
    return lines or ["- none: every sample asked for was written."]


@dataclass(frozen=True)
class CardSection:
    """One ``## title`` section of the card: how a part of kg2tool (paraphrasing) adds to the
    card through :func:`write_card` instead of editing the text it wrote."""

    title: str
    lines: Sequence[str]

    def render(self) -> list[str]:
        """The section's lines: title, a blank line, its lines, a blank line."""
        return [f"## {self.title}", "", *self.lines, ""]


def _kg_identity(config: Mapping[str, Any]) -> tuple[str, KgInfo | None]:
    """The KG's name as the card shows it and what kg2tool knows of it (CoDEx sizes named)."""
    name = kg_name(config.get("kg"))
    info = kg_info(config.get("kg"))
    if info is not None and info.name == "CoDEx" and name.lower().startswith("codex-"):
        info = replace(info, name=f"CoDEx-{name.split('-', 1)[1].upper()}")
    return name, info


def _ordered_splits(per_split: pl.DataFrame) -> list[str]:
    """The splits present: train, validation, test first, then any other in name order."""
    present = set(per_split["split"])
    splits = [s for s in ("train", "validation", "test") if s in present]
    return splits + sorted(present - set(splits))


def _sample_section(relations: int, per_split: pl.DataFrame) -> CardSection:
    """What a sample holds and why its answers are exact; relations covered, split sizes."""
    return CardSection(
        "What a sample is",
        [
            "Each sample is a question about the knowledge graph, the tools (APIs) that answer "
            "it, and a trajectory that solves it: the assistant's thoughts, its tool calls, the "
            "tools' observations and a final answer. Every relation of the KG is an API (a "
            "forward one and its inverse); the question is grounded from a first-order-logic "
            "pattern on the graph, and every call in the trajectory was replayed on the graph "
            "and its observation checked, so the final answer is the exact answer set. The "
            "`tools` of a sample are the APIs it needs plus distractors.",
            "",
            f"Relations covered: {relations}. Samples per split: "
            + ", ".join(f"{s} {n:,}" for s, n in per_split.iter_rows())
            + ".",
        ],
    )


def _files_section(format: str) -> CardSection:
    """The files of the dataset and what reads each."""
    return CardSection(
        "Files",
        [
            "- `data/{split}-NNNNN-of-NNNNN.parquet`: the samples as columns (below); the Hub "
            "configuration above points at them.",
            f"- `{{split}}.{'json' if format == 'toolbench' else 'jsonl'}`: the samples in the "
            f"`{format}` format, ready for a trainer.",
            "- `manifest.json`, `config.toml`: what the run did and its settings.",
        ],
    )


def _columns_section(columns: Sequence[str] | None) -> CardSection:
    """A table of the Parquet columns the dataset has (all documented ones if unknown)."""
    rows = [f"| `{c}` | {COLUMN_DOCS.get(c, '')} |" for c in (columns or COLUMN_DOCS)]
    return CardSection("Columns", ["| column | what it holds |", "|---|---|", *rows])


def _patterns_section(per_pattern: pl.DataFrame, examples: pl.DataFrame | None) -> CardSection:
    """Each pattern's count, formula and an example question with its answers."""
    lines = [
        FORMULA_DOC,
        "",
        "| pattern | samples | formula | example question | its answers |",
        "|---|---|---|---|---|",
    ]
    counts = dict(per_pattern.iter_rows())
    seen = set()
    rows = examples.iter_rows(named=True) if examples is not None and examples.height else []
    for row in rows:
        p = row["pattern"]
        seen.add(p)
        answers = row.get("answer_labels") or []
        shown = ", ".join(map(str, answers[:5])) + (" ..." if len(answers) > 5 else "")
        q = str(row.get("question", "")).replace("|", "\\|")
        f = str(row.get("formula", "")).replace("|", "\\|")
        lines.append(f"| {p} | {counts.get(p, 0):,} | `{f}` | {q} | {shown.replace('|', '/')} |")
    lines += [f"| {p} | {n:,} | | | |" for p, n in per_pattern.iter_rows() if p not in seen]
    return CardSection("Pattern codes", lines)


def _record_section(record: str, splits: Sequence[str]) -> CardSection:
    """The first record of the first split, folded away, as a trainer reads it."""
    first = splits[0] if splits else "train"
    return CardSection(
        "An example record",
        [
            f"The first `{first}` record, as a trainer reads it:",
            "",
            "<details><summary>show</summary>",
            "",
            "```json",
            record,
            "```",
            "",
            "</details>",
        ],
    )


def _source_section(name: str, info: KgInfo | None) -> CardSection:
    """Where the KG comes from, its licence and citation (or a request to fill them in)."""
    if info:
        lines = [
            f"- Knowledge graph: {info.source}.",
            f"- Licence of the KG data: {info.license_text}. The samples are derived from it "
            "and carry its terms.",
            "",
            "```bibtex",
            info.citation,
            "```",
        ]
    else:
        lines = [
            f"- Knowledge graph: `{name}`, supplied by the user; kg2tool does not know its "
            "source or licence: fill in the `license` field above and this section."
        ]
    return CardSection(
        "Source, licence and citation", [*lines, "", f"The method: {METHOD_REFERENCE}"]
    )


def _reproduce_section(config: Mapping[str, Any]) -> CardSection:
    """The settings that reproduce the run, as a TOML file for ``generate --config``."""
    return CardSection(
        "Reproduce",
        [
            f"Made with kg2tool {_version()}. Save these settings as `run.toml` and run "
            "`kg2tool generate --config run.toml --out DIR` (same seed, same bytes, at any "
            "thread count):",
            "",
            "```toml",
            tomli_w.dumps(_portable_config(config)).rstrip(),
            "```",
        ],
    )


def _distributions_section(stats: pl.DataFrame, plots: Mapping[str, str]) -> CardSection:
    """Answer, call and question-length statistics and the histogram images."""
    ans, calls, qlen = stats["n_answers"], stats["num_calls"], stats["qlen"]
    return CardSection(
        "Distributions",
        [
            f"- answers per question: mean {ans.mean() or 0:.2f}, max {ans.max() or 0}",
            f"- tool calls per sample: mean {calls.mean() or 0:.2f}, max {calls.max() or 0}",
            f"- question length: mean {qlen.mean() or 0:.1f} characters",
            f"- empty-answer samples: {int(stats['empty'].sum())}",
            f"- error-recovery samples: {int(stats['recovery'].sum())}",
            "",
            *[f"![{t}]({n})" for n, t in plots.items()],
        ],
    )


def write_card(
    frame: pl.DataFrame,
    out: Path,
    format: str,
    config: dict[str, Any] | None,
    *,
    relations: int | None = None,
    examples: pl.DataFrame | None = None,
    columns: Sequence[str] | None = None,
    report: Mapping[str, Any] | None = None,
    sections: Sequence[CardSection] = (),
) -> None:
    """README.md: Hub metadata, what a sample is, columns, pattern codes with examples, one
    full record, source/licence/citation, version and reproduction, shortfalls, counts and
    histograms (PNG, matplotlib Agg), then ``sections``.

    ``frame`` is either the dataset or its :func:`card_stats` (for datasets on disk);
    ``examples``/``columns`` come from :func:`card_examples` (computed from ``frame`` when it
    is the dataset); ``report``: ``dropped`` {reason: count} and ``exhausted`` (patterns out
    of queries)."""
    out = Path(out)
    config = dict(config or {})
    if examples is None and "question" in frame.columns:
        examples, columns = card_examples(frame)
    if "n_answers" not in frame.columns:
        frame, relations = card_stats(frame)
    per_pattern = frame.group_by("pattern").agg(pl.len().alias("n")).sort("pattern")
    per_split = frame.group_by("split").agg(pl.len().alias("n")).sort("split")
    splits = _ordered_splits(per_split)
    name, info = _kg_identity(config)
    plots = _plots(frame, out)
    record = _first_record(out, format, splits)
    shown = info.name if info else name
    lines = [
        _header(frame.height, splits, info, name),
        f"# Tool-use data from {shown} (kg2tool)",
        "",
        f"Samples: {frame.height:,}. Verified tool-use samples generated by "
        f"[kg2tool](https://pypi.org/project/kg2tool/) {_version()} from the knowledge graph "
        f"**{shown}**, in the `{format}` format ({FORMAT_DOCS.get(format, format)}).",
        "",
    ]
    body = [
        _sample_section(relations or 0, per_split),
        _files_section(format),
        _columns_section(columns),
        _patterns_section(per_pattern, examples),
        *([_record_section(record, splits)] if record is not None else []),
        _source_section(name, info),
        _reproduce_section(config),
        CardSection("Known shortfalls", _shortfalls(frame, config, report or {})),
        _distributions_section(frame, plots),
        *sections,
    ]
    for section in body:
        lines += section.render()
    write_text(out / "README.md", "\n".join(lines))
