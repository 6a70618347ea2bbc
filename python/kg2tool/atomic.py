"""Atomic writes with ordinary permissions: the one way kg2tool puts a file or directory in place.

A file is written under a temporary name in its directory, then renamed over the target, so
a reader (or a run killed half-way) never sees half a file. ``tempfile.mkstemp`` and
``mkdtemp`` create private entries (0600 / 0700); before the rename they get what an ordinary
``open`` / ``mkdir`` would have given (``0o666`` / ``0o777`` less the umask), so datasets,
cards and snapshots stay readable by the other users of a shared filesystem.
Temporary names end in ``.tmp``, which a restarted ``generate`` deletes as leftovers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_dir",
    "atomic_file",
    "dir_mode",
    "file_mode",
    "make_public",
    "write_bytes",
    "write_text",
]

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where the OS tells it (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    with _UMASK_LOCK:  # os.umask can only be read by setting it: do it briefly, once at a time
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new ordinary file: ``0o666`` less the umask (0644 with the usual 022)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Mode of a new ordinary directory: ``0o777`` less the umask (0755 with the usual 022)."""
    return 0o777 & ~_umask()


def make_public(path: str | os.PathLike[str]) -> None:
    """Give a file made by ``mkstemp`` (or a directory made by ``mkdtemp``) ordinary modes."""
    p = Path(path)
    os.chmod(p, dir_mode() if p.is_dir() else file_mode())


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it gets ordinary modes and
    is renamed over ``path`` (``fsync``: flushed to disk first), on failure it is deleted."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> Path:
    """``data`` into ``path`` atomically, with ordinary modes."""
    with atomic_file(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = False) -> Path:
    """``text`` (UTF-8) into ``path`` atomically, with ordinary modes."""
    return write_bytes(path, text.encode("utf-8"), fsync=fsync)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory beside ``path`` to fill; on success it gets ordinary modes
    and replaces ``path`` (a previous directory there is removed), on failure it is deleted."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        os.chmod(tmp, dir_mode())
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            old.rmdir()
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
