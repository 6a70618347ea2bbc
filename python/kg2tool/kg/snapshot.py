"""Graph snapshots: one directory of raw numpy arrays plus Parquet tables, memory-mapped back.

Layout: ``manifest.json`` (format name, version, counts, and for every file its size and
CRC-32), ``arrays/<name>.npy`` and ``tables/<name>.parquet``. Saving is atomic (a temporary
directory renamed into place).

Opening has two levels. The cheap check, always done, costs the same at any size: the
manifest, every file's size, the ``.npy`` headers (dtype, shape), the checksums of the small
files (up to :data:`SMALL_FILE` bytes) and the row counts in the Parquet footers; tables
are read when first needed. The full check (``verify=True``, or ``KnowledgeGraph.validate``)
adds the checksum of every file, computed in parallel threads, and the native check of every
CSR invariant, so a truncated, corrupt or foreign snapshot raises :class:`SnapshotError`
instead of crashing.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kg2tool.atomic import atomic_dir
from kg2tool.errors import READ_ERRORS, SnapshotError

FORMAT = "kg2tool-snapshot"
VERSION = 1
_CHUNK = 1 << 24
#: Files up to this size are checksummed on every open; larger ones by the full check.
SMALL_FILE = 1 << 22


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def is_snapshot(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a directory holding a snapshot manifest."""
    return (Path(path) / "manifest.json").is_file()


def save_snapshot(
    path: str | os.PathLike[str],
    arrays: dict[str, np.ndarray],
    tables: dict[str, pl.DataFrame],
    meta: dict[str, Any],
) -> Path:
    """Write arrays and tables atomically to ``path`` (replacing a previous snapshot there)."""
    target = Path(path)
    with atomic_dir(target) as tmp:
        files: dict[str, dict[str, Any]] = {}
        (tmp / "arrays").mkdir()
        (tmp / "tables").mkdir()
        for name, arr in arrays.items():
            rel = f"arrays/{name}.npy"
            np.save(tmp / rel, np.ascontiguousarray(arr), allow_pickle=False)
            files[rel] = {"dtype": str(arr.dtype), "shape": list(arr.shape)}
        for name, df in tables.items():
            rel = f"tables/{name}.parquet"
            df.write_parquet(tmp / rel)
            files[rel] = {}
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            crcs = dict(zip(files, pool.map(lambda rel: _crc32(tmp / rel), files), strict=True))
        for rel, info in files.items():
            info["bytes"] = (tmp / rel).stat().st_size
            info["crc32"] = crcs[rel]
        manifest = {"format": FORMAT, "version": VERSION, "meta": meta, "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return target


def _manifest(root: Path) -> dict[str, Any]:
    """The parsed, format- and version-checked manifest of a snapshot directory."""
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise SnapshotError(f"{root}: not a kg2tool snapshot (no manifest.json)")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotError(f"{mpath}: corrupt manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SnapshotError(f"{mpath}: not a kg2tool snapshot manifest")
    if manifest.get("version") != VERSION:
        raise SnapshotError(
            f"{mpath}: snapshot format version {manifest.get('version')!r}, this kg2tool reads "
            f"version {VERSION}; rebuild it with `kg2tool import`"
        )
    if not isinstance(manifest.get("files"), dict):
        raise SnapshotError(f"{mpath}: manifest has no file list")
    return manifest


def verify_checksums(path: str | os.PathLike[str], *, min_bytes: int = 0, threads: int = 0) -> None:
    """Check the CRC-32 of every snapshot file of at least ``min_bytes`` (threads in parallel)."""
    root = Path(path)
    files = _manifest(root)["files"]
    todo = [
        rel
        for rel, info in sorted(files.items())
        if isinstance(info, dict) and int(info.get("bytes") or 0) >= min_bytes
    ]

    def check(rel: str) -> str | None:
        fpath = root / rel
        try:
            ok = _crc32(fpath) == files[rel].get("crc32")
        except OSError as exc:
            return f"{fpath}: unreadable ({exc})"
        return None if ok else f"{fpath}: checksum mismatch (the file is corrupt)"

    workers = threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for problem in pool.map(check, todo):  # zlib.crc32 releases the GIL
            if problem:
                raise SnapshotError(problem)


def _read_table(fpath: Path, rows: int | None) -> pl.DataFrame:
    """Read a snapshot table; an unreadable file or a row count off the footer's is an error."""
    try:
        df = pl.read_parquet(fpath)
    except READ_ERRORS as exc:
        raise SnapshotError(f"{fpath}: unreadable ({exc})") from None
    if rows is not None and df.height != rows:
        raise SnapshotError(f"{fpath}: {df.height} rows, its footer says {rows}")
    return df


def _footer_rows(fpath: Path) -> int:
    """Row count from a Parquet footer (reads the footer only)."""
    try:
        return int(pl.scan_parquet(fpath).select(pl.len()).collect().item())
    except READ_ERRORS as exc:
        raise SnapshotError(f"{fpath}: unreadable ({exc})") from None


def load_snapshot(
    path: str | os.PathLike[str], *, verify: bool | None = True
) -> tuple[dict[str, np.ndarray], dict[str, Callable[[], pl.DataFrame]], dict[str, Any]]:
    """Memory-map a snapshot's arrays; return (arrays, table loaders, meta).

    Always: manifest, sizes, ``.npy`` headers against the manifest, checksums of files up to
    :data:`SMALL_FILE` bytes, Parquet footers (row counts in ``meta["table_rows"]``).
    ``verify=True`` checksums every file and reads the tables now; ``verify=False``
    checksums nothing but reads the tables now; ``None`` (the cheap open) leaves the large
    files' checksums and the tables to later (``verify_checksums``, the loaders).
    """
    root = Path(path)
    manifest = _manifest(root)
    files = manifest["files"]
    arrays: dict[str, np.ndarray] = {}
    loaders: dict[str, Callable[[], pl.DataFrame]] = {}
    table_rows: dict[str, int] = {}
    for rel, info in sorted(files.items()):
        fpath = root / rel
        if not isinstance(info, dict):
            raise SnapshotError(f"{fpath}: bad manifest entry")
        if not fpath.is_file():
            raise SnapshotError(f"{fpath}: missing from the snapshot")
        size = fpath.stat().st_size
        if size != info.get("bytes"):
            raise SnapshotError(
                f"{fpath}: {size} bytes, the manifest says {info.get('bytes')} (truncated?)"
            )
        small = size <= SMALL_FILE
        if (verify or (verify is None and small)) and _crc32(fpath) != info.get("crc32"):
            raise SnapshotError(f"{fpath}: checksum mismatch (the file is corrupt)")
        try:
            if rel.startswith("arrays/") and rel.endswith(".npy"):
                arr = np.load(fpath, mmap_mode="r", allow_pickle=False)
                if str(arr.dtype) != info.get("dtype") or list(arr.shape) != info.get("shape"):
                    raise SnapshotError(f"{fpath}: dtype/shape differ from the manifest")
                arrays[rel[len("arrays/") : -len(".npy")]] = arr
            elif rel.startswith("tables/") and rel.endswith(".parquet"):
                name = rel[len("tables/") : -len(".parquet")]
                if verify is None:
                    rows = table_rows[name] = _footer_rows(fpath)
                    loaders[name] = lambda f=fpath, n=rows: _read_table(f, n)
                else:
                    df = _read_table(fpath, None)
                    table_rows[name] = df.height
                    loaders[name] = lambda df=df: df
        except SnapshotError:
            raise
        except READ_ERRORS as exc:
            raise SnapshotError(f"{fpath}: unreadable ({exc})") from None
    meta = manifest.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta["table_rows"] = table_rows
    return arrays, loaders, meta
