"""Regenerate the shipped lemminflect answers (python/kg2tool/data/lexicons/lemminflect.json).

Usage: ``PYTHONPATH=python python tools/make_word_table.py [--shared DIR]``. Builds the API
catalogue, the relation lexicon and a few hundred samples of every pattern on the bundled
CoDEx-S and on every shared KG found, asking lemminflect itself (the shipped table is not
read), and writes each answer it gave. With the table, a run on these KGs never loads
lemminflect's tables (~0.4 s); tests/test_word_table.py checks the answers and that cover.
Run it after editing a shipped lexicon or the rules that ask lemminflect about words.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from kg2tool.dataset.assemble import SampleContext, build_dataset
from kg2tool.kg.bundled import dataset_names, load_dataset, shared_data_dir
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.io import read_triples
from kg2tool.patterns import BETAE_TYPES
from kg2tool.tools import inflection
from kg2tool.tools.lexicon import WIKIDATA_FILE, shipped_keys

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "python" / "kg2tool" / inflection.WORD_TABLE


def exercise(kg: KnowledgeGraph) -> None:
    """Everything a generate run asks lemminflect on ``kg``: catalogue, lexicon, samples."""
    ctx = SampleContext(kg)
    build_dataset(kg, list(BETAE_TYPES), 400, seed=1, context=ctx)


def wikidata_kg() -> KnowledgeGraph:
    """A KG with one triple per property of the shipped Wikidata lexicon (users' subsets)."""
    keys = sorted(shipped_keys()[WIKIDATA_FILE])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "triples.tsv"
        path.write_text("".join(f"Q{2 * i + 1}\t{k}\tQ{2 * i + 2}\n" for i, k in enumerate(keys)))
        return KnowledgeGraph.from_tables(read_triples(path))


def write_table(path: Path) -> None:
    """The answers as JSON, one word per line (small diffs when a word is added)."""
    answers = inflection.word_answers()
    lines = []
    for part in ("lemmas", "inflections"):
        items = [
            f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
            for k, v in answers[part].items()
        ]
        lines.append(f" {json.dumps(part)}: {{\n" + ",\n".join(items) + "\n }")
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=None, help="the shared KG data folder")
    args = ap.parse_args()
    inflection._LEMMAS.clear()
    inflection._INFLECTIONS.clear()
    inflection._load_word_table = lambda: None  # type: ignore[assignment]
    exercise(KnowledgeGraph.load("codex-s"))
    SampleContext(wikidata_kg())
    shared = args.shared or shared_data_dir()
    for name in dataset_names():
        try:
            tables, _ = load_dataset(name, shared)
        except Exception as exc:  # a dataset absent from this copy of the shared data
            print(f"skipped {name}: {exc}")
            continue
        exercise(KnowledgeGraph.from_tables(tables))
        print(f"{name}: {len(inflection._LEMMAS)} words so far")
    write_table(OUT)
    print(f"wrote {OUT.relative_to(REPO)}: {len(inflection._LEMMAS)} words")


if __name__ == "__main__":
    main()
