"""The output directory of ``generate``: whose it is, who writes it now, what is ours to delete.

- A directory ``generate`` made holds the marker file ``.kg2tool-generate``. A run refuses a
  non-empty directory without it (nothing of the user's is overwritten), with or without
  ``--overwrite``; a directory of an older kg2tool (``.progress/config.json``) counts as ours.
- The marker is also the lock: a run holds an exclusive ``flock`` on it until it ends (the
  kernel releases it when the process dies, even by SIGKILL), so a second run on the same
  directory stops at once with one line instead of mixing its files with the first's.
- :func:`remove_own_files` deletes only the files ``generate`` writes (for ``--overwrite``, or
  the state of a run that wrote no sample); anything else in the directory stays.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from kg2tool.atomic import file_mode
from kg2tool.errors import InputError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: no lock, the marker still guards
    fcntl = None  # type: ignore[assignment]

MARKER = ".kg2tool-generate"
PROGRESS = ".progress"
# Files of a finished run at the top of the directory (besides the split files).
TOP_FILES = (
    "manifest.json",
    "config.toml",
    "config.json",
    "README.md",
    "dataset_info.json",
    "answers_hist.png",
    "calls_hist.png",
    "question_length_hist.png",
)
SPLITS = ("train", "validation", "test")


def is_ours(out: Path) -> bool:
    """Whether ``out`` was made by ``generate`` (its marker, or an older run's state)."""
    return (out / MARKER).is_file() or (out / PROGRESS / "config.json").is_file()


def check_ownership(out: Path) -> None:
    """Raise InputError when ``out`` is a non-empty directory ``generate`` did not make."""
    if not out.is_dir() or is_ours(out):
        return
    with contextlib.suppress(OSError):
        entries = sorted(p.name for p in out.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise InputError(
                f"not empty ({shown}) and not made by kg2tool generate (no {MARKER} file); "
                "choose a new or empty --out (--overwrite only replaces kg2tool's own output)",
                path=str(out),
            )


class OutputLock:
    """The run's exclusive hold on its output directory (an ``flock`` on the marker file)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.fd: int | None = None

    def acquire(self) -> OutputLock:
        """Create the marker if missing and lock it; InputError if another run holds it."""
        path = self.out / MARKER
        fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode())
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f" (pid {holder})" if holder else ""
                raise InputError(
                    f"another kg2tool generate{who} is writing to this directory; wait for it "
                    "to finish or use another --out",
                    path=str(self.out),
                ) from None
        info = json.dumps({"written_by": "kg2tool generate", "pid": os.getpid()}) + "\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        """Let the directory go (closing the file releases the lock)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return int(json.loads(os.pread(fd, 4096, 0).decode()).get("pid"))
    return None


def holds_samples(out: Path) -> bool:
    """Whether a run in ``out`` finished or wrote a shard with samples (its markers say)."""
    if (out / "manifest.json").is_file():
        return True
    for marker in (out / PROGRESS).glob("shard-*.json"):
        try:
            if json.loads(marker.read_text()).get("written", 1):
                return True
        except (OSError, ValueError, AttributeError):
            return True  # unreadable: keep it, resume decides
    return False


def remove_own_files(out: Path) -> None:
    """Delete what ``generate`` writes in ``out`` (its state, shards, records, split files,
    manifest, config and card); the marker, the paraphrase reply cache (keyed by content,
    valid for any run) and every other file stay."""
    listed: list[str] = []
    with contextlib.suppress(OSError, ValueError, TypeError):
        listed = list(json.loads((out / "manifest.json").read_text())["files"])
    shutil.rmtree(out / PROGRESS, ignore_errors=True)
    names = [*TOP_FILES, *(f"{s}.{ext}" for s in SPLITS for ext in ("jsonl", "json")), *listed]
    for name in names:
        p = (out / name).resolve()
        if p.parent in (out.resolve(), (out / "data").resolve(), (out / "records").resolve()):
            p.unlink(missing_ok=True)
    for sub, suffixes in (("data", (".parquet",)), ("records", (".jsonl",))):
        d = out / sub
        if d.is_dir():
            for p in d.iterdir():
                if p.is_file() and (p.name.endswith(suffixes) or p.name.endswith(".tmp")):
                    p.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                d.rmdir()  # only when nothing else is left in it
    for p in out.glob("*.tmp"):
        if p.is_file():
            p.unlink(missing_ok=True)
