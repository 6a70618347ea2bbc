"""The split files of a JSONL run, assembled in shard order while the shards are built.

Shards finish in any order on any worker; their records must end up in ``{split}.jsonl`` in
shard order, byte for byte as one process writing them in turn would, and a run killed at any
moment must resume to the same bytes. :class:`SplitParts` is that protocol (the state, the
lock, the merge and the restart); the shard markers it reads live beside it in ``.progress/``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kg2tool import atomic
from kg2tool.dataset.output import append_file, write_lines_at
from kg2tool.errors import Kg2ToolError

try:  # the split-file lock; without it only the driver merges records
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

MARKERS = ".progress"  # the run's state: shard markers, merge state, parts, KG snapshot


def marker_path(out: Path, shard: int) -> Path:
    """The completion marker of a shard (its hash, counts and files' sizes)."""
    return out / MARKERS / f"shard-{shard:05d}.json"


def write_marker(out: Path, shard: int, info: dict[str, Any]) -> None:
    """Mark a shard complete, once its files are in place (the last step of a shard)."""
    atomic.write_text(marker_path(out, shard), json.dumps(info, indent=1), fsync=True)


def appends_records(format: str, jsonl: bool) -> bool:
    """Whether shards' records go into the split files while the run goes on (JSONL formats);
    ToolBench (one JSON array per split) and runs without JSON(L) merge at the end."""
    return bool(jsonl) and format != "toolbench"


def can_merge_in_workers() -> bool:
    """Whether workers on this machine may append to the split files (``flock`` exists)."""
    return fcntl is not None


class SplitParts:
    """The split files of a JSONL run, assembled in shard order while shards are built.

    ``.progress/{split}.jsonl.part`` holds the records of shards 0..k-1 back to back and
    ``.progress/merge.json`` the size of every part after each of them. A worker that finishes
    shard k when shards 0..k-1 are in (the usual case: shards are handed out in order) writes
    its records straight into the parts at their end; otherwise it leaves them in
    ``records/{split}-{k:05d}-of-{n:05d}.jsonl``, and whoever next holds the lock with
    shard k next in line (a worker, or the driver) appends that file and deletes it. Every step
    is under an exclusive ``flock`` on ``.progress/merge.lock``; the bytes are written before
    the state that counts them, and a shard's marker (with its records' size per split) only
    after that, so a restart cuts the parts back to the recorded sizes, takes back out of them
    (into ``records/``) the shards after the first one to redo, and carries on: the final files
    are the same bytes as an uninterrupted run's. The records are thus written once, instead
    of into per-shard files and then copied again.
    """

    def __init__(self, out: Path, run_hash: str, num_shards: int) -> None:
        self.out, self.hash, self.num_shards = out, run_hash, num_shards
        self.state_path = out / MARKERS / "merge.json"

    # ----- files ------------------------------------------------------------------------
    def part(self, split: str) -> Path:
        return self.out / MARKERS / f"{split}.jsonl.part"

    def shard_file(self, split: str, shard: int) -> Path:
        return self.out / "records" / f"{split}-{shard:05d}-of-{self.num_shards:05d}.jsonl"

    def marker(self, shard: int) -> Path:
        return marker_path(self.out, shard)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive access to the parts and the state (a no-op where ``flock`` is missing:
        then only the driver merges, see ``direct`` in :class:`kg2tool.pipeline.driver.Generator`)."""
        fd = os.open(self.out / MARKERS / "merge.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def load(self) -> list[dict[str, int]]:
        """Per merged shard, every part's size after it ([] when there is no valid state)."""
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return []
        if state.get("hash") != self.hash or state.get("num_shards") != self.num_shards:
            return []
        return [dict(x) for x in state.get("sizes", [])]

    def save(self, sizes: list[dict[str, int]]) -> None:
        state = {"hash": self.hash, "num_shards": self.num_shards, "sizes": sizes}
        atomic.write_text(self.state_path, json.dumps(state), fsync=True)

    def _info(self, shard: int) -> dict[str, Any] | None:
        try:
            info = json.loads(self.marker(shard).read_text())
        except (OSError, ValueError):
            return None
        return info if info.get("hash") == self.hash else None

    def _files_intact(self, shard: int, records: dict[str, int]) -> bool:
        for split, size in records.items():
            f = self.shard_file(split, shard)
            if not f.is_file() or f.stat().st_size != size:
                return False
        return True

    # ----- a worker's shard -----------------------------------------------------------
    def write_shard(
        self, shard: int, records: dict[str, Any], info: dict[str, Any], *, direct: bool
    ) -> None:
        """Put a shard's records (per split, :class:`kg2tool.dataset.assemble.Lines`) in place,
        then write its marker (``info`` plus ``records``: bytes per split). ``direct``: into
        the parts when the shard is next in line (else, and always without ``direct``, into
        ``records/`` files to be merged)."""
        if direct:
            with self.locked():
                sizes = self.load()
                if len(sizes) == shard:
                    new = dict(sizes[-1]) if sizes else {}
                    info["records"] = {}
                    for split, lines in sorted(records.items()):
                        at = new.get(split, 0)
                        new[split] = write_lines_at(self.part(split), at, lines)
                        info["records"][split] = new[split] - at
                    sizes.append(new)
                    self.save(sizes)
                    write_marker(self.out, shard, info)
                    self._drain(sizes)
                    return
        info["records"] = {}
        for split, lines in sorted(records.items()):
            path = self.shard_file(split, shard)
            info["records"][split] = write_lines_at(path, 0, lines, atomic=True)
        write_marker(self.out, shard, info)
        if direct:
            self.drain()

    # ----- merging ------------------------------------------------------------------------
    def drain(self) -> list[dict[str, int]]:
        """Append every shard next in line whose records wait in ``records/`` files."""
        with self.locked():
            return self._drain(self.load())

    def _drain(self, sizes: list[dict[str, int]]) -> list[dict[str, int]]:
        while len(sizes) < self.num_shards:
            k = len(sizes)
            info = self._info(k)
            if info is None or "records" not in info or not self._files_intact(k, info["records"]):
                break
            new = dict(sizes[-1]) if sizes else {}
            for split in sorted(info["records"]):
                new[split] = append_file(
                    self.shard_file(split, k), self.part(split), new.get(split, 0)
                )
            sizes.append(new)
            self.save(sizes)
            for split in info["records"]:
                self.shard_file(split, k).unlink(missing_ok=True)
        return sizes

    # ----- resume -------------------------------------------------------------------------
    def restore(self, done: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """At the start of a run: of the shards whose marker and Parquet files are intact
        (``done``), those whose records are in the parts or in intact ``records/`` files. The
        parts are cut back to the state, the state to the shards before the first one to redo
        (the records of done shards after it go back into ``records/`` files)."""
        with self.locked():
            sizes = self.load()
            last = sizes[-1] if sizes else {}
            for split in last:  # a finished run started again: take its split files back
                final = self.out / f"{split}.jsonl"
                if not self.part(split).exists() and final.exists():
                    os.replace(final, self.part(split))
            for split, size in last.items():
                part = self.part(split)
                if not part.exists() or part.stat().st_size < size:
                    sizes = []  # the parts do not hold what the state says: start over
                    break

            def complete(s: int, info: dict[str, Any]) -> bool:
                rec = info.get("records")
                if not isinstance(rec, dict):
                    return False
                if s < len(sizes):
                    prev = sizes[s - 1] if s else {}
                    return all(
                        sizes[s].get(k, 0) - prev.get(k, 0) == rec.get(k, 0)
                        for k in set(rec) | set(sizes[s])
                    )
                return self._files_intact(s, rec)

            done = {s: info for s, info in done.items() if complete(s, info)}
            first_missing = min(set(range(self.num_shards)) - set(done), default=self.num_shards)
            for k in range(first_missing + 1, len(sizes)):  # merged, but after a shard to redo
                if k in done:
                    for split, size in done[k]["records"].items():
                        src, at = self.part(split), sizes[k - 1].get(split, 0)
                        copy_range(src, at, size, self.shard_file(split, k))
            sizes = sizes[: min(len(sizes), first_missing)]
            keep = sizes[-1] if sizes else {}
            for part in (self.out / MARKERS).glob("*.jsonl.part"):
                split = part.name[: -len(".jsonl.part")]
                if split in keep:
                    with open(part, "r+b") as fh:
                        fh.truncate(keep[split])
                else:
                    part.unlink()
            for s in range(len(sizes)):  # records files left by a kill after their merge
                for split in done[s]["records"]:
                    self.shard_file(split, s).unlink(missing_ok=True)
            self.save(sizes)
            self._drain(sizes)
        return done

    def finish(self) -> tuple[dict[str, Path], dict[str, int]]:
        """The complete parts and their sizes, once every shard is in."""
        sizes = self.drain()
        if len(sizes) != self.num_shards:
            missing = len(sizes)
            raise Kg2ToolError(
                f"the records of shard {missing} were not merged; run the same command again "
                "to resume"
            )
        last = sizes[-1] if sizes else {}
        return {split: self.part(split) for split in last}, last


def copy_range(src: Path, at: int, size: int, dst: Path) -> None:
    """Bytes [at, at + size) of ``src`` into a new file ``dst`` (atomically)."""
    with atomic.atomic_file(dst) as tmp, open(src, "rb") as fh, open(tmp, "wb") as out:
        fh.seek(at)
        left = size
        while left:
            chunk = fh.read(min(left, 1 << 22))
            if not chunk:
                raise OSError(f"{src}: shorter than its recorded size")
            out.write(chunk)
            left -= len(chunk)
