"""Graph snapshots: one directory of raw numpy arrays plus Parquet tables, memory-mapped back.

Layout: ``manifest.json`` (format name, version, counts, and for every file its size and
CRC-32), ``arrays/<name>.npy`` and ``tables/<name>.parquet``. Saving is atomic (a temporary
directory renamed into place); opening checks the manifest, sizes and (by default) the
checksums, and the native side re-validates every CSR invariant, so a truncated, corrupt
or foreign snapshot raises :class:`SnapshotError` instead of crashing.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .atomic import atomic_dir
from .errors import READ_ERRORS, SnapshotError

FORMAT = "kg2tool-snapshot"
VERSION = 1
_CHUNK = 1 << 24


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
        for rel, info in files.items():
            info["bytes"] = (tmp / rel).stat().st_size
            info["crc32"] = _crc32(tmp / rel)
        manifest = {"format": FORMAT, "version": VERSION, "meta": meta, "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return target


def load_snapshot(
    path: str | os.PathLike[str], *, verify: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
    """Memory-map a snapshot's arrays and read its tables; checks sizes and, if ``verify``, CRCs."""
    root = Path(path)
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
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise SnapshotError(f"{mpath}: manifest has no file list")
    arrays: dict[str, np.ndarray] = {}
    tables: dict[str, pl.DataFrame] = {}
    for rel, info in sorted(files.items()):
        fpath = root / rel
        if not fpath.is_file():
            raise SnapshotError(f"{fpath}: missing from the snapshot")
        size = fpath.stat().st_size
        if size != info.get("bytes"):
            raise SnapshotError(
                f"{fpath}: {size} bytes, the manifest says {info.get('bytes')} (truncated?)"
            )
        if verify and _crc32(fpath) != info.get("crc32"):
            raise SnapshotError(f"{fpath}: checksum mismatch (the file is corrupt)")
        try:
            if rel.startswith("arrays/") and rel.endswith(".npy"):
                arr = np.load(fpath, mmap_mode="r", allow_pickle=False)
                if str(arr.dtype) != info.get("dtype") or list(arr.shape) != info.get("shape"):
                    raise SnapshotError(f"{fpath}: dtype/shape differ from the manifest")
                arrays[rel[len("arrays/") : -len(".npy")]] = arr
            elif rel.startswith("tables/") and rel.endswith(".parquet"):
                tables[rel[len("tables/") : -len(".parquet")]] = pl.read_parquet(fpath)
        except SnapshotError:
            raise
        except READ_ERRORS as exc:
            raise SnapshotError(f"{fpath}: unreadable ({exc})") from None
    return arrays, tables, manifest.get("meta", {})
