"""The dataset on disk: Parquet shards, the format's record files, LLaMA-Factory's
``dataset_info.json``, the merge of shard records into one file per split, and the card.

Every file is put in place through :mod:`kg2tool.atomic` (a temporary name in the same
directory, then a rename, with ordinary modes), so a reader or a killed run never sees half a
file; the one exception is :func:`write_lines_at` / :func:`append_file`, which extend the split
files of a resumable run at offsets its state records. Every file copy goes through one loop
(:func:`_copy_into`: a kernel copy where the OS offers one).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from kg2tool.atomic import atomic_file, write_bytes
from kg2tool.dataset.card import CARD_COLUMNS, CardSection, card_examples, card_stats, write_card
from kg2tool.samples.formats import dataset_info_entry, record_parts
from kg2tool.textops import Str, Strings, write_lines

__all__ = [
    "PARQUET_OPTIONS",
    "Lines",
    "append_file",
    "finalize_outputs",
    "parquet_frame",
    "shard_name",
    "write_dataset",
    "write_lines_at",
    "write_shard",
]

# Parquet settings of the shards: zstd level 1 trades slightly larger files for faster writes.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1}

_COPY_CHUNK = 1 << 22  # bytes per read where no kernel copy is available


# ----- record lines ---------------------------------------------------------------------------


@dataclass
class Lines:
    """Record lines to write: ``n`` rows of :mod:`kg2tool.textops` parts, each row then a
    newline (see :func:`kg2tool.samples.formats.record_parts`)."""

    n: int
    parts: list[Any]

    @classmethod
    def of(cls, col: pl.Series) -> Lines:
        """The values of a String column (a ``record`` column) as lines."""
        if col.null_count():
            raise ValueError("null record")
        return cls(len(col), [Str(Strings(col))])

    def write(self, fd: int) -> int:
        """Written to ``fd`` from its offset (natively, no text column built); bytes written."""
        return write_lines(fd, self.n, *self.parts)


@contextlib.contextmanager
def _cut_at(path: Path, at: int) -> Iterator[int]:
    """A write descriptor of ``path`` (created if missing, with the modes ``open`` gives),
    the file cut at byte ``at`` and the offset there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)  # less the umask, as open() does
    try:
        os.ftruncate(fd, at)
        os.lseek(fd, at, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)


def write_lines_at(path: Path, at: int, lines: Lines, *, atomic: bool = False) -> int:
    """``lines`` written into ``path`` from byte ``at``, the file cut there first (created if
    missing); returns the new size. ``atomic`` (with ``at == 0``): into a temporary file in the
    same directory, then renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if atomic:
        with atomic_file(path) as tmp, _cut_at(tmp, 0) as fd:
            return lines.write(fd)
    with _cut_at(path, at) as fd:
        return at + lines.write(fd)


def _write_toolbench_array(path: Path, lines: Iterable[bytes]) -> None:
    """ToolBench's split file: the step records of every line (each a JSON array) as one JSON
    array, atomically."""
    with atomic_file(path) as tmp, open(tmp, "wb") as dst:
        dst.write(b"[")
        first = True
        for line in lines:
            line = line.rstrip(b"\n")
            inner = line[1:-1] if line.startswith(b"[") else line
            if inner:
                dst.write((b"" if first else b",") + inner)
                first = False
        dst.write(b"]")


def _write_dataset_info(out: Path, splits: Iterable[str]) -> None:
    """LLaMA-Factory's ``dataset_info.json`` registering each split's ShareGPT file."""
    info: dict[str, Any] = {}
    for split in sorted(splits):
        info.update(dataset_info_entry(f"{split}.jsonl", f"kg2tool_{split}"))
    write_bytes(out / "dataset_info.json", json.dumps(info, indent=2).encode())


# ----- Parquet shards -------------------------------------------------------------------------


def parquet_frame(frame: pl.DataFrame, *, with_record: bool = False) -> pl.DataFrame:
    """The columns stored in a Parquet shard: all but ``record`` (the format's line, kept in
    the JSON(L) files; for openai it is just ``messages`` + ``tools`` again), unless
    ``with_record`` (a run that writes no JSON(L) keeps its records there)."""
    return frame if with_record or "record" not in frame.columns else frame.drop("record")


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """``frame`` to ``path`` atomically, with :data:`PARQUET_OPTIONS`."""
    with atomic_file(path) as tmp:
        frame.write_parquet(tmp, **PARQUET_OPTIONS)


def shard_name(split: str, index: int, count: int) -> str:
    """A shard's file name without suffix: ``{split}-{index:05d}-of-{count:05d}``."""
    return f"{split}-{index:05d}-of-{count:05d}"


def _records_name(split: str, format: str) -> str:
    """The split's record file: one JSON array for ToolBench, else JSON lines."""
    return f"{split}.json" if format == "toolbench" else f"{split}.jsonl"


def _splits(frame: pl.DataFrame) -> list[str]:
    return sorted(set(frame["split"].to_list()))


def write_dataset(
    frame: pl.DataFrame,
    out_dir: str | os.PathLike[str],
    format: str = "openai",
    *,
    shard_size: int = 100_000,
    config: dict[str, Any] | None = None,
    card: bool = True,
) -> Path:
    """Parquet shards ``data/{split}-{i:05d}-of-{n:05d}.parquet`` (without ``record``), JSON(L)
    per split (the records), card."""
    out = Path(out_dir)
    (out / "data").mkdir(parents=True, exist_ok=True)
    for split in _splits(frame):
        part = frame.filter(pl.col("split") == split)
        n = max(1, -(-part.height // shard_size))
        for i in range(n):
            chunk = part.slice(i * shard_size, shard_size)
            _write_parquet(
                parquet_frame(chunk), out / "data" / f"{shard_name(split, i, n)}.parquet"
            )
        target = out / _records_name(split, format)
        if format == "toolbench":
            _write_toolbench_array(target, (r.encode() for r in part["record"].to_list()))
        else:
            write_lines_at(target, 0, Lines.of(part["record"]), atomic=True)
    if format == "sharegpt":
        _write_dataset_info(out, _splits(frame))
    if config is not None:
        write_bytes(out / "config.json", orjson.dumps(config, option=orjson.OPT_INDENT_2))
    if card:
        write_card(frame, out, format, config)
    return out


class _StringColumns(dict):
    """``frame``'s String columns as :class:`~kg2tool.textops.Strings`, each made once."""

    def __init__(self, frame: pl.DataFrame) -> None:
        super().__init__()
        self.frame = frame

    def __missing__(self, name: str) -> Strings:
        self[name] = got = Strings(self.frame[name])
        return got


def write_shard(
    frame: pl.DataFrame,
    out: Path,
    shard_id: int,
    num_shards: int,
    format: str,
    *,
    jsonl: bool = True,
    records: dict[str, Lines] | None = None,
) -> list[Path]:
    """One shard's files, each atomically: ``data/{split}-{i:05d}-of-{n:05d}.parquet`` and, with
    ``jsonl``, the format's records in ``records/{split}-{i:05d}-of-{n:05d}.jsonl`` (then the
    Parquet files leave the ``record`` column out; see :func:`parquet_frame`), or, when
    ``records`` is a dict, no record files: each split's :class:`Lines` go into it (the
    pipeline writes them into the split files itself). The lines come from the ``record``
    column, or from the other columns when the frame has none (see ``with_record`` of
    :func:`kg2tool.dataset.assemble.build_from_batches`)."""
    files = []
    splits = _splits(frame) if frame.height else ["train"]
    columns = _StringColumns(frame)
    for split in splits:
        mask = frame["split"] == split
        part = frame.filter(mask)
        name = shard_name(split, shard_id, num_shards)
        path = out / "data" / f"{name}.parquet"
        _write_parquet(parquet_frame(part, with_record=not jsonl), path)
        files.append(path)
        if not jsonl:
            continue
        if "record" in frame.columns:
            lines = Lines.of(part["record"])
        else:
            rows = np.flatnonzero(mask.to_numpy())
            parts = record_parts(format, columns, rows)
            if parts is None:
                raise ValueError(f"{format} records need the record column")
            lines = Lines(len(rows), parts)
        if records is not None:
            records[split] = lines
        else:
            rec = out / "records" / f"{name}.jsonl"
            write_lines_at(rec, 0, lines, atomic=True)
            files.append(rec)
    return files


# ----- copying and merging --------------------------------------------------------------------


def _copy_into(src: Path, fd: int, at: int) -> int:
    """The bytes of ``src`` written into ``fd`` from offset ``at`` (the descriptor's own offset
    is not used, so threads may share it); returns how many. A kernel copy
    (``os.copy_file_range``) when it can, else reads and positioned writes."""
    size = src.stat().st_size
    done = 0
    with open(src, "rb") as fh:
        if hasattr(os, "copy_file_range"):
            try:
                while done < size:
                    n = os.copy_file_range(fh.fileno(), fd, size - done, done, at + done)
                    if n == 0:
                        raise OSError("copy_file_range copied nothing")
                    done += n
                return done
            except OSError:
                if done:
                    raise
        while chunk := fh.read(_COPY_CHUNK):
            view = memoryview(chunk)
            while view:
                n = os.pwrite(fd, view, at + done)
                view, done = view[n:], done + n
    return done


def append_file(src: Path, dst: Path, at: int) -> int:
    """Write ``src`` into ``dst`` (created if missing) at offset ``at``, cutting ``dst`` there
    first; returns the new size of ``dst``."""
    with _cut_at(dst, at) as fd:
        return at + _copy_into(src, fd, at)


def _concat_files(parts: Sequence[Path], dst: Path, workers: int = 2) -> None:
    """The files one after another into ``dst`` (an existing empty file), each part copied to
    its own offset, a few at a time on threads (merging a large run's shards is gigabytes)."""
    starts = list(itertools.accumulate((p.stat().st_size for p in parts), initial=0))
    with _cut_at(dst, 0) as fd:
        jobs = list(zip(parts, starts[:-1], strict=True))
        if workers > 1 and len(jobs) > 1:
            with ThreadPoolExecutor(min(workers, len(jobs))) as pool:
                list(pool.map(lambda job: _copy_into(job[0], fd, job[1]), jobs))
        else:
            for part, at in jobs:
                _copy_into(part, fd, at)


def _read_lines(paths: Iterable[Path]) -> Iterator[bytes]:
    """Every line of the files, in order."""
    for path in paths:
        with open(path, "rb") as src:
            yield from src


def _place_merged(out: Path, parts: dict[str, Path], sizes: dict[str, int]) -> None:
    """Split files assembled while the run went on, renamed into place once their size is
    the one recorded (a finished run started again finds them in place already)."""
    for split, part in sorted(parts.items()):
        target = out / f"{split}.jsonl"
        size = sizes[split]
        if part.is_file() and part.stat().st_size == size:
            os.replace(part, target)
        elif not (target.is_file() and target.stat().st_size == size):
            raise OSError(f"{part}: not the {size:,} bytes of merged records expected")
    with contextlib.suppress(OSError):
        (out / "records").rmdir()  # empty once every shard's records are merged


def _merge_records(out: Path, split: str, parts: Sequence[Path], format: str) -> None:
    """A split's shard record files merged into its record file, atomically."""
    target = out / _records_name(split, format)
    if format == "toolbench":  # each line is one step record: make one JSON array
        _write_toolbench_array(target, _read_lines(parts))
    else:
        with atomic_file(target) as tmp:
            _concat_files(parts, tmp)


def _write_card_of_shards(
    out: Path,
    files: Sequence[str],
    format: str,
    config: dict[str, Any] | None,
    report: dict[str, Any] | None,
    sections: Sequence[CardSection],
) -> None:
    """The card of a dataset on disk, its numbers read from the Parquet shards."""
    parquet = [out / f for f in files if f.endswith(".parquet")]
    examples, columns = None, None
    if parquet:
        stats, rels = card_stats(pl.scan_parquet(parquet))
        examples, columns = card_examples(pl.scan_parquet(parquet))
    else:
        stats, rels = pl.DataFrame(schema=dict.fromkeys(CARD_COLUMNS, pl.Int64)), 0
    write_card(
        stats,
        out,
        format,
        config,
        relations=rels,
        examples=examples,
        columns=columns,
        report=report,
        sections=sections,
    )


def finalize_outputs(
    out: Path,
    files: Sequence[str],
    format: str,
    config: dict[str, Any] | None,
    *,
    kg: Any = None,
    merged: tuple[dict[str, Path], dict[str, int]] | None = None,
    report: dict[str, Any] | None = None,
    sections: Sequence[CardSection] = (),
) -> None:
    """Merge shard records into one file per split (a JSON array for ToolBench, else JSONL),
    the LLaMA-Factory ``dataset_info.json`` for ShareGPT, and the dataset card. ``merged``:
    JSONL split files already assembled (in shard order) and their sizes, renamed into place
    (then ``files`` lists no shard record files). ``report`` and ``sections`` go to
    :func:`kg2tool.dataset.card.write_card`; ``kg`` is not read (callers may still pass it)."""
    by_split: dict[str, list[Path]] = {}
    for f in sorted(f for f in files if f.startswith("records/")):
        by_split.setdefault(Path(f).name.rsplit("-", 3)[0], []).append(out / f)
    done = set()
    if merged is not None:
        _place_merged(out, *merged)
        done = set(merged[0])
    for split, parts in sorted(by_split.items()):
        if split not in done:
            _merge_records(out, split, parts, format)
    if format == "sharegpt":
        _write_dataset_info(out, set(by_split) | done)
    _write_card_of_shards(out, files, format, config, report, sections)
