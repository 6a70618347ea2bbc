"""verl's RL dataset files from a run's shards: ``verl/{split}.parquet`` and the tool config.

``kg2tool generate --format verl`` writes them beside the ``openai`` records; the columns and
the tool class they name are described in :mod:`kg2tool.rl.verl`, which reads them in training.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from kg2tool.atomic import atomic_file, write_text

__all__ = ["ABILITY", "SYSTEM_PROMPT", "TOOL_CLASS", "write_verl"]

SYSTEM_PROMPT = (
    "Answer the question with the tools. Pass entity names exactly as the tools return them. "
    "When you know the answer, reply without calling a tool and give the answers as a JSON "
    'list of names, e.g. The answers are: ["A", "B"].'
)
ABILITY = "kg_tool_use"
TOOL_CLASS = "kg2tool.rl.verl.KgTool"


def write_verl(out: Path, files: Sequence[Path], kg: Any, kg_spec: str) -> list[str]:
    """Write ``verl/{split}.parquet`` and ``verl/tool_config.yaml`` from a run's shards;
    returns their paths relative to ``out``."""
    import yaml

    from kg2tool.tools.catalog import ApiCatalog
    from kg2tool.tools.runtime import ToolRuntime

    shards = [f for f in files if f.suffix == ".parquet"]
    cols = ["id", "split", "pattern", "question", "answers", "tools"]
    frame = pl.concat([pl.read_parquet(f, columns=cols) for f in shards]).sort("id")
    rt = ToolRuntime(kg, ApiCatalog.from_graph(kg, list_apis=True))
    name_of = dict(zip(rt.keys, rt.names, strict=True))
    source = f"kg2tool/{Path(kg_spec).name or kg_spec}"
    target = out / "verl"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    offered: dict[str, dict[str, Any]] = {}
    for (split,), part in frame.group_by("split", maintain_order=True):
        rows = []
        for i, r in enumerate(part.iter_rows(named=True)):
            for t in json.loads(r["tools"]):
                offered.setdefault(t["function"]["name"], t)
            rows.append(
                {
                    "data_source": source,
                    "prompt": [
                        {"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": r["question"]},
                    ],
                    "ability": ABILITY,
                    "reward_model": {
                        "style": "rule",
                        "ground_truth": [name_of[k] for k in r["answers"]],
                    },
                    "extra_info": {
                        "index": i,
                        "id": r["id"],
                        "split": split,
                        "pattern": r["pattern"],
                        "kg": kg_spec,
                        "tools": r["tools"],
                    },
                }
            )
        path = target / f"{split}.parquet"
        with atomic_file(path) as tmp:
            pl.DataFrame(rows).write_parquet(tmp)
        written.append(f"verl/{split}.parquet")
    order = {n: i for i, n in enumerate(rt.catalog.names)}
    config = {
        "tools": [
            {
                "class_name": TOOL_CLASS,
                "config": {"type": "native", "kg": kg_spec},
                "tool_schema": offered[n],
            }
            for n in sorted(offered, key=lambda n: order.get(n, len(order)))
        ]
    }
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    write_text(target / "tool_config.yaml", text)
    return [*sorted(written), "verl/tool_config.yaml"]
