"""Re-verify a written dataset against a KG (the same one or an updated one).

Every sample carries its provenance: the execution ``trace`` (call, arguments, recorded
observation) and its grounding (``formula`` + ``bindings``). ``verify_dataset`` replays
every call through the runtime of the given KG and recomputes every answer set natively;
a sample fails when a call's observation or its answers no longer hold, or when a key it
names is gone from the KG. List calls (``call_style="batched"``) are replayed like single
ones: the runtime's catalogue here includes the list APIs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from .errors import READ_ERRORS, InputError


@dataclass
class VerifyReport:
    """Counts of checked and failed samples, and the failures (id, reason, detail)."""

    checked: int = 0
    calls_checked: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len({f["id"] for f in self.failures})

    def summary(self) -> str:
        reasons: dict[str, int] = {}
        for f in self.failures:
            reasons[f["reason"]] = reasons.get(f["reason"], 0) + 1
        text = ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items())) or "none"
        return (
            f"checked {self.checked:,} samples ({self.calls_checked:,} calls): "
            f"{self.failed:,} no longer hold ({text})"
        )


def dataset_files(path: str | os.PathLike[str]) -> list[Path]:
    """The Parquet files of a dataset directory (or the file itself)."""
    p = Path(path)
    if p.is_file():
        return [p]
    files = (
        sorted((p / "data").glob("*.parquet"))
        if (p / "data").is_dir()
        else sorted(p.glob("*.parquet"))
    )
    if not files:
        raise InputError("no Parquet files of a kg2tool dataset here", path=str(p))
    return files


def verify_dataset(
    path: str | os.PathLike[str], kg: Any, *, max_failures: int = 1000
) -> VerifyReport:
    """Replay every sample's calls and recompute its answers on ``kg``; see the module docstring."""
    from .apis import ApiCatalog
    from .engine import execute_queries
    from .runtime import ToolRuntime

    # with the list APIs: call_style="batched" datasets call them (the other names are the same)
    runtime = ToolRuntime(kg, ApiCatalog.from_graph(kg, list_apis=True))
    report = VerifyReport()
    need = ["id", "formula", "bindings", "answers", "trace"]
    ent_index = dict(zip(kg.entities["key"].to_list(), range(kg.num_entities), strict=True))
    rel_index = dict(zip(kg.relations["key"].to_list(), range(kg.num_relations), strict=True))

    def fail(sample: str, reason: str, detail: str) -> None:
        if len(report.failures) < max_failures:
            report.failures.append({"id": sample, "reason": reason, "detail": detail[:300]})

    for file in dataset_files(path):
        try:
            frame = pl.read_parquet(file, columns=need)
        except READ_ERRORS as exc:
            raise InputError(f"not a kg2tool dataset shard ({exc})", path=str(file)) from None
        report.checked += frame.height
        # 1. replay every recorded call
        calls, owners, recorded = [], [], []
        for sid, trace in zip(frame["id"].to_list(), frame["trace"].to_list(), strict=True):
            for step in orjson.loads(trace):
                calls.append((step["name"], step["arguments"]))
                owners.append(sid)
                recorded.append(step["observation"])
        for owner, result, want in zip(owners, runtime.call_many(calls), recorded, strict=True):
            report.calls_checked += 1
            got = result.to_json()
            if got != want:
                fail(
                    owner,
                    "observation_changed",
                    f"{result.api}: recorded {want[:120]} now {got[:120]}",
                )
        # 2. recompute answers, one execution per formula
        for (formula,), group in frame.group_by("formula", maintain_order=True):
            from .engine import resolve_pattern

            plan = resolve_pattern(str(formula))
            rel_rows, anc_rows, keep = [], [], []
            for sid, bindings in zip(
                group["id"].to_list(), group["bindings"].to_list(), strict=True
            ):
                b = orjson.loads(bindings)
                try:
                    rel_rows.append([rel_index[b[s]] for s in plan.relation_slots])
                    anc_rows.append([ent_index[b[s]] for s in plan.anchor_slots])
                    keep.append(True)
                except KeyError as exc:
                    fail(sid, "unknown_key", f"{exc.args[0]} is not in the KG")
                    keep.append(False)
            if not rel_rows:
                continue
            batch = execute_queries(
                kg, plan, np.array(rel_rows, np.int32), np.array(anc_rows, np.int32)
            )
            now = batch.frame()["answers"].to_list()
            kept = group.filter(pl.Series(keep))
            for sid, want, got in zip(
                kept["id"].to_list(), kept["answers"].to_list(), now, strict=True
            ):
                if list(want) != list(got):
                    fail(sid, "answers_changed", f"recorded {list(want)[:5]} now {list(got)[:5]}")
    return report
