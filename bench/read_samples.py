"""Dump what a reader grades: 3 questions per BetaE pattern and every API definition of a KG.

    python bench/read_samples.py OUT_DIR [KG ...] [--seed 7] [--per 3]

KG: a shared dataset name (fb15k-237, wn18rr, codex-s, codex-m, ...) or a triples file (e.g.
``bench/data/verb_relations_kg.tsv``, a KG with verb relations, keys as names and no lexicon).
Writes ``OUT_DIR/<kg>-s<seed>.txt`` (pattern, formula, the formula with names bound, question,
first thought, final answer) and ``OUT_DIR/<kg>-apis.txt`` (name, types, description,
parameters). docs/READABILITY.md says how these were graded and what was found.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import orjson

from kg2tool import ApiCatalog, KnowledgeGraph, build_dataset
from kg2tool.kg.bundled import load_dataset

BETAE = ["1p", "2p", "3p", "2i", "3i", "ip", "pi", "2u", "up", "2in", "3in", "inp", "pin", "pni"]
DEFAULT_KGS = ["fb15k-237", "wn18rr", "codex-s", "codex-m", "bench/data/verb_relations_kg.tsv"]


def _bound(formula: str, bindings: dict, ent: dict, rel: dict) -> str:
    """The formula with relation labels and anchor names in place of its slots."""

    def sub(m: re.Match) -> str:
        val = bindings.get(m.group(0))
        if val is None:
            return m.group(0)
        return f"<{rel.get(val, val)}>" if m.group(0).startswith("r") else f"'{ent.get(val, val)}'"

    return re.sub(r"\b[rs]\d+\b", sub, formula)


def questions(kg: KnowledgeGraph, seed: int, per: int) -> list[str]:
    """Per BetaE pattern, ``per`` samples as text blocks."""
    ent = dict(zip(kg.entities["key"].to_list(), kg.entities["label"].to_list(), strict=True))
    rel = dict(zip(kg.relations["key"].to_list(), kg.relations["label"].to_list(), strict=True))
    lines: list[str] = []
    for pattern in BETAE:
        frame = build_dataset(kg, [pattern], per, seed=seed, format="openai")
        if frame.height == 0:
            lines += [f"== {pattern}: no sample", ""]
        for i, row in enumerate(frame.iter_rows(named=True)):
            said = [m for m in orjson.loads(row["messages"]) if m["role"] == "assistant"]
            lines += [
                f"== {pattern} #{i + 1}",
                f"formula : {row['formula']}",
                f"bound   : {_bound(row['formula'], orjson.loads(row['bindings']), ent, rel)}",
                f"question: {row['question']}",
                f"thought1: {said[0].get('content') if said else None}",
                f"final   : {said[-1].get('content') if said else None}",
                "",
            ]
    return lines


def apis(kg: KnowledgeGraph) -> list[str]:
    """Every API definition (relation APIs, their list forms, the set operations)."""
    lines: list[str] = []
    for api in ApiCatalog.from_graph(kg, list_apis=True).apis:
        lines += [
            f"{api.name}  (in={api.input_type}, out={api.output_type}, len={len(api.name)})",
            f"  description: {api.description}",
            f"  parameters : {orjson.dumps(api.parameters).decode()}",
            "",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("kgs", nargs="*", default=DEFAULT_KGS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per", type=int, default=3)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in args.kgs:
        path = Path(spec)
        kg = (
            KnowledgeGraph.load(spec)
            if path.exists()
            else KnowledgeGraph.from_tables(load_dataset(spec)[0])
        )
        name = path.stem if path.exists() else spec
        (args.out / f"{name}-s{args.seed}.txt").write_text(
            "\n".join(questions(kg, args.seed, args.per))
        )
        (args.out / f"{name}-apis.txt").write_text("\n".join(apis(kg)))
        print(f"{name}: written to {args.out}")


if __name__ == "__main__":
    main()
