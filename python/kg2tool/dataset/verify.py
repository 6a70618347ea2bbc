"""Re-verify written training data against a KG (the same one or an updated one).

``verify_dataset`` checks what trainers read: the records of the format's JSON / JSONL files
and the Parquet ``messages`` column (parsed back by :mod:`kg2tool.samples.readback`), plus the
provenance ``trace`` of each Parquet row. Every call of every sample is replayed through
:class:`~kg2tool.tools.runtime.ToolRuntime` (relation calls, list calls ``<name>_batch`` and
set-operation calls alike), and every failure is counted, none skipped:

- ``observation_changed``: a call's replayed result differs from the recorded observation
  (byte for byte; a removed entity or API replays as the runtime's error value);
- ``call_fails``: an xLAM call (recorded without observation) no longer succeeds;
- ``call_changed``: a record's calls are not the calls of the sample's trace;
- ``final_answer_changed``: the final assistant text does not name exactly the sample's
  answer set (``answer_labels``; a stand-alone file: the names must come from the replayed
  observations, and the sample counts as only partly checked);
- ``answers_changed`` / ``unknown_key``: the answer set recomputed natively from the sample's
  formula and bindings differs, or a key the bindings name is gone.

A dataset directory pairs ``{split}.jsonl`` (ToolBench ``{split}.json``) line by line with its
``data/{split}-*.parquet`` rows; a single file of any format is read on its own (the format is
detected from the records).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from kg2tool.errors import READ_ERRORS, InputError
from kg2tool.samples.readback import (
    ReadCall,
    ReadSample,
    read_file,
    sample_of_record,
    samples_of_messages,
)
from kg2tool.samples.replay import replay_calls

__all__ = ["VerifyReport", "dataset_files", "stated_answers", "verify_dataset"]

# Parquet columns used when present (messages and id are required)
_ROW_COLUMNS = ["id", "formula", "bindings", "answers", "answer_labels", "trace", "messages"]


@dataclass
class VerifyReport:
    """What was checked and every failure (sample id, where, reason, detail)."""

    checked: int = 0
    calls_checked: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    partial: int = 0
    sources: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Samples with at least one failure."""
        return len({f["id"] for f in self.failures})

    def by_reason(self) -> dict[str, int]:
        """Samples failing for each reason (a sample may count under several)."""
        seen = {(f["id"], f["reason"]) for f in self.failures}
        return dict(sorted(Counter(reason for _, reason in seen).items()))

    def summary(self) -> str:
        """One line: samples and calls checked, how many no longer hold and why."""
        text = ", ".join(f"{k} {v:,}" for k, v in self.by_reason().items()) or "none"
        part = f"; {self.partial:,} only partly checked" if self.partial else ""
        return (
            f"checked {self.checked:,} samples ({self.calls_checked:,} calls): "
            f"{self.failed:,} no longer hold ({text}){part}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The full report (what ``--report`` writes)."""
        return {
            "checked": self.checked,
            "calls_checked": self.calls_checked,
            "failed": self.failed,
            "partial": self.partial,
            "by_reason": self.by_reason(),
            "sources": self.sources,
            "failures": self.failures,
        }

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON atomically (temporary name, then rename)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2))
        os.replace(tmp, target)
        return target


def dataset_files(path: str | os.PathLike[str]) -> list[Path]:
    """The Parquet shards of a dataset directory (or the file itself)."""
    p = Path(path)
    if p.is_file():
        return [p]
    files = (
        sorted((p / "data").glob("*.parquet"))
        if (p / "data").is_dir()
        else sorted(p.glob("*.parquet"))
    )
    if not files:
        raise InputError("not a kg2tool dataset directory (no data/*.parquet shards)", path=str(p))
    return files


# ------------------------------------------------------------------------- final answers

_ANSWER_HEAD = re.compile(r"So the (?:answer is|(\d+) answers are) ")
_SEPARATORS = (", ", " and ", ",")


def stated_answers(text: str | None, vocabulary: Iterable[str]) -> list[str] | None:
    """The answer names a final text states, or None when it states none readably.

    A trailing JSON list of strings wins; else "no entity satisfies" means none; else the
    list after the last "So the answer is" / "So the N answers are" ("A, B and C") is split
    into names of ``vocabulary`` (names may hold commas or "and"), and must have N names."""
    if text is None:
        return None
    end = text.rstrip().removesuffix(".").rstrip()
    if end.endswith("]"):  # a trailing JSON list (names may hold brackets: try each "[")
        start = len(end)
        for _ in range(64):
            start = end.rfind("[", 0, start)
            if start < 0:
                break
            try:
                names = orjson.loads(end[start:])
            except orjson.JSONDecodeError:
                continue
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                return names
            break
    if "no entity satisfies" in text:
        return []
    heads = list(_ANSWER_HEAD.finditer(text))
    if not heads:
        return None
    head = heads[-1]
    tail = text[head.end() :]
    vocab = sorted({v for v in vocabulary if v}, key=len, reverse=True)

    def split(pos: int) -> list[str] | None:
        for name in vocab:
            if not tail.startswith(name, pos):
                continue
            end = pos + len(name)
            if tail[end:] in ("", "."):
                return [name]
            for sep in _SEPARATORS:
                if tail.startswith(sep, end):
                    rest = split(end + len(sep))
                    if rest is not None:
                        return [name, *rest]
        return None

    names = split(0)
    if names is None:
        return None
    want = int(head.group(1)) if head.group(1) else 1
    return names if len(names) == want else None


# ------------------------------------------------------------------------------ checking


@dataclass
class _Entry:
    """One sample to check: its id, its readings (records, messages), its Parquet row."""

    id: str
    where: str
    readings: list[tuple[str, ReadSample]]
    row: dict[str, Any] | None = None
    trace: list[ReadCall] = field(default_factory=list)


class _Checker:
    """Replays calls once per distinct (name, arguments) and records failures."""

    def __init__(self, kg: Any) -> None:
        from kg2tool.tools.catalog import ApiCatalog
        from kg2tool.tools.runtime import ToolRuntime

        # with the list APIs: call_style="batched" datasets call them (the other names are the same)
        self.kg = kg
        self.runtime = ToolRuntime(kg, ApiCatalog.from_graph(kg, list_apis=True))
        self.report = VerifyReport()
        self.results: dict[tuple[str, str], tuple[bool, str, list[str], str]] = {}

    def fail(self, entry: _Entry, reason: str, detail: str, where: str | None = None) -> None:
        self.report.failures.append(
            {
                "id": entry.id,
                "where": where or entry.where,
                "reason": reason,
                "detail": detail[:300],
            }
        )

    def replay(self, entries: list[_Entry]) -> None:
        """Run every distinct call of ``entries`` through the runtime, once; keep per call
        (ok, result JSON, result names, error message)."""
        todo: dict[tuple[str, str], tuple[str, Any]] = {}
        for e in entries:
            for c in [c for _, s in e.readings for c in s.calls] + e.trace:
                k = c.key
                if k not in self.results and k not in todo:
                    todo[k] = (c.name, c.arguments)
        if not todo:
            return
        calls = pl.DataFrame(
            {
                "api": [name for name, _ in todo.values()],
                "arguments": [
                    a if isinstance(a, str) else orjson.dumps(a).decode() for _, a in todo.values()
                ],
            },
            schema={"api": pl.String, "arguments": pl.String},
        )
        rep = replay_calls(calls, self.runtime)
        names = self.runtime.names
        for i, (k, got) in enumerate(zip(todo, rep.observation.to_list(), strict=True)):
            ok = bool(rep.ok[i])
            result = [names[x] for x in rep.val[rep.off[i] : rep.off[i + 1]]] if ok else []
            self.results[k] = (ok, got, result, "" if ok else orjson.loads(got)["message"])

    def check_calls(
        self, entry: _Entry, source: str, calls: list[ReadCall], returned: set[str] | None = None
    ) -> None:
        """Compare each call's replay with its recorded observation (``returned``: add the
        names the calls returned)."""
        for c in calls:
            ok, got, names, error = self.results[c.key]
            if returned is not None and ok:
                returned.update(names)
            if c.observation is None:
                if not ok:
                    self.fail(entry, "call_fails", f"{c.name}: now {got[:160]}", source)
            elif c.observation != got or (c.error is not None and c.error != error):
                self.fail(
                    entry,
                    "observation_changed",
                    f"{c.name}: recorded {c.observation[:120]} now {got[:120]}",
                    source,
                )

    def check_entry(self, entry: _Entry) -> None:
        """Every check of one sample (see the module docstring)."""
        rep = self.report
        rep.checked += 1
        if entry.trace:
            self.check_calls(entry, f"{entry.where} trace", entry.trace)
        trace_keys = [c.key for c in entry.trace]
        calls = len(entry.trace)  # the sample's calls: its trace, or its longest reading
        labels = None if entry.row is None else entry.row.get("answer_labels")
        partial = False
        for source, sample in entry.readings:
            returned: set[str] | None = set() if labels is None else None
            self.check_calls(entry, source, sample.calls, returned)
            last = sample.parts[-1] if sample.parts else (0, len(sample.calls))
            calls = max(calls, last[1] - last[0])
            keys = [c.key for c in sample.calls]
            if entry.row is not None and entry.row.get("trace") is not None:
                if not _same_calls(sample, keys, trace_keys):
                    self.fail(entry, "call_changed", "the calls are not the trace's", source)
            if sample.format == "xlam":
                partial = partial or labels is None
                continue
            if labels is not None:
                stated = stated_answers(sample.final_text, labels)
                if stated is None or sorted(stated) != sorted(labels):
                    self.fail(
                        entry,
                        "final_answer_changed",
                        f"{str(sample.final_text)[-160:]!r} does not name exactly "
                        f"{list(labels)[:8]}",
                        source,
                    )
            else:
                partial = True
                stated = stated_answers(sample.final_text, returned or ())
                if stated is None:
                    self.fail(
                        entry,
                        "final_answer_changed",
                        f"{str(sample.final_text)[-160:]!r} names an entity no "
                        "replayed call returned",
                        source,
                    )
        rep.partial += partial
        rep.calls_checked += calls


def _same_calls(sample: ReadSample, keys: list[tuple[str, str]], trace: list[Any]) -> bool:
    """A record's calls against the trace's: equal (ToolBench: every step record a prefix,
    the last all of it); xLAM: some of them (its calls from anchors)."""
    if sample.format == "xlam":
        have = Counter(trace)
        return all(v <= have[k] for k, v in Counter(keys).items())
    parts = sample.parts or [(0, len(keys))]
    for start, end in parts:
        if keys[start:end] != trace[: end - start]:
            return False
    return parts[-1][1] - parts[-1][0] == len(trace)


def _trace_calls(text: str | None) -> list[ReadCall]:
    if not text:
        return []
    return [
        ReadCall(s["name"], s["arguments"], observation=s["observation"])
        for s in orjson.loads(text)
    ]


def _read_rows(files: list[Path]) -> pl.DataFrame:
    """The columns verify uses from Parquet shards (those present), in file order."""
    frames = []
    for file in files:
        try:
            names = pl.read_parquet_schema(file)
            if "messages" not in names and "record" not in names:
                raise InputError(
                    "not a kg2tool dataset shard (no messages or record column)", path=str(file)
                )
            cols = [c for c in [*_ROW_COLUMNS, "record"] if c in names]
            frame = pl.read_parquet(file, columns=cols)
        except InputError:
            raise
        except READ_ERRORS as exc:
            raise InputError(f"not a kg2tool dataset shard ({exc})", path=str(file)) from None
        frames.append(frame.with_columns(pl.lit(file.name).alias("_file")))
    return pl.concat(frames, how="diagonal_relaxed")


def _row_entries(rows: pl.DataFrame) -> list[_Entry]:
    """One entry per Parquet row: its messages (and record) read back, its trace."""
    out = []
    file_row: dict[str, int] = {}
    for row in rows.iter_rows(named=True):
        i = file_row[row["_file"]] = file_row.get(row["_file"], -1) + 1
        where = f"{row['_file']}[row {i}]"
        sid = str(row["id"]) if row.get("id") is not None else where
        readings = []
        if row.get("record") is not None:  # a run that wrote no JSON(L) keeps its records here
            readings.append((f"{where} record", sample_of_record(row["record"], where)))
        if row.get("messages") is not None:
            readings.append((f"{where} messages", samples_of_messages(row["messages"], where)))
        entry = _Entry(sid, where, readings, row, _trace_calls(row.get("trace")))
        out.append(entry)
    return out


def _pair(entries: list[_Entry], records: list[ReadSample], file: Path) -> None:
    """Attach the samples of a split file to their Parquet rows (same order)."""
    fmt = records[0].format if records else None
    if fmt == "xlam":  # xLAM records carry the sample's xlam id: the first 13 hex digits
        by_id = {}
        for e in entries:
            try:
                by_id[int(e.id[:13], 16)] = e
            except ValueError:
                break
        if len(by_id) == len(entries):
            for r in records:
                target = by_id.get(int(r.id)) if r.id is not None and r.id.isdigit() else None
                if target is None:
                    raise InputError(f"{r.where}: no Parquet row has xLAM id {r.id}", path=None)
                target.readings.insert(0, (r.where, r))
            return
    if len(records) != len(entries):
        raise InputError(
            f"holds {len(records):,} samples but the Parquet shards {len(entries):,} rows",
            path=str(file),
        )
    for e, r in zip(entries, records, strict=True):
        e.readings.insert(0, (r.where, r))


def _split_file(root: Path, split: str) -> Path | None:
    for name in (f"{split}.jsonl", f"{split}.json"):
        if (root / name).is_file():
            return root / name
    return None


def _dataset_entries(root: Path, report: VerifyReport) -> list[_Entry]:
    files = dataset_files(root)
    entries: list[_Entry] = []
    by_split: dict[str, list[Path]] = {}
    for f in files:
        by_split.setdefault(f.name.rsplit("-", 3)[0], []).append(f)
    for split, shards in sorted(by_split.items()):
        part = _row_entries(_read_rows(shards))
        report.sources += [str(s.relative_to(root)) for s in shards]
        split_file = _split_file(root, split)
        if split_file is not None:
            _pair(part, read_file(split_file), split_file)
            report.sources.append(split_file.name)
        entries += part
    return entries


def _file_entries(path: Path, report: VerifyReport) -> list[_Entry]:
    report.sources.append(path.name)
    if path.suffix == ".parquet":
        return _row_entries(_read_rows([path]))
    if path.suffix not in (".jsonl", ".json"):
        raise InputError(
            "not a dataset: give a dataset directory or a .jsonl, .json or .parquet file",
            path=str(path),
        )
    records = read_file(path)
    if not records:
        raise InputError("no records to verify", path=str(path))
    split = path.name.rsplit(".", 1)[0]
    shards = sorted((path.parent / "data").glob(f"{split}-*-of-*.parquet"))
    if shards:  # a split file of a dataset directory: checked against its rows
        report.sources += [f"data/{s.name}" for s in shards]
        entries = _row_entries(_read_rows(shards))
        _pair(entries, records, path)
        return entries
    return [_Entry(r.id or r.where, r.where, [(r.where, r)]) for r in records]


def verify_dataset(
    path: str | os.PathLike[str],
    kg: Any,
    *,
    report_path: str | os.PathLike[str] | None = None,
) -> VerifyReport:
    """Replay every sample's calls and check its answers on ``kg``; see the module docstring.

    ``path``: a dataset directory or one ``.jsonl`` / ``.json`` / ``.parquet`` file of any
    format. ``report_path``: where to write the full JSON report (none when None)."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or directory", path=str(p))
    checker = _Checker(kg)
    entries = (
        _dataset_entries(p, checker.report) if p.is_dir() else _file_entries(p, checker.report)
    )
    checker.replay(entries)
    for entry in entries:
        checker.check_entry(entry)
    _check_answers(checker, [e for e in entries if e.row is not None and e.row.get("formula")])
    if report_path is not None:
        checker.report.write(report_path)
    return checker.report


def _check_answers(checker: _Checker, entries: list[_Entry]) -> None:
    """Recompute each sample's answers natively from formula + bindings (one run per formula)."""
    from kg2tool.engine import execute_queries, resolve_pattern

    kg = checker.kg
    ent_index = dict(zip(kg.entities["key"].to_list(), range(kg.num_entities), strict=True))
    rel_index = dict(zip(kg.relations["key"].to_list(), range(kg.num_relations), strict=True))
    groups: dict[str, list[_Entry]] = {}
    for e in entries:
        groups.setdefault(str(e.row["formula"]), []).append(e)  # type: ignore[index]
    for formula, group in groups.items():
        plan = resolve_pattern(formula)
        rel_rows, anc_rows, kept = [], [], []
        for e in group:
            b = orjson.loads(e.row["bindings"])  # type: ignore[index]
            try:
                rel_rows.append([rel_index[b[s]] for s in plan.relation_slots])
                anc_rows.append([ent_index[b[s]] for s in plan.anchor_slots])
                kept.append(e)
            except KeyError as exc:
                checker.fail(e, "unknown_key", f"{exc.args[0]} is not in the KG")
        if not kept:
            continue
        batch = execute_queries(
            kg, plan, np.array(rel_rows, np.int32), np.array(anc_rows, np.int32)
        )
        for e, got in zip(kept, batch.frame()["answers"].to_list(), strict=True):
            want = list(e.row["answers"])  # type: ignore[index]
            if want != list(got):
                checker.fail(e, "answers_changed", f"recorded {want[:5]} now {list(got)[:5]}")
