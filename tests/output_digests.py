"""Digests of what kg2tool writes, for every format x set-op mode x call style.

A refactoring must not change one byte of output. ``tests/test_output_digests.py`` recomputes
these digests and compares them with ``tests/data/output_digests.json``, recorded before the
change. An intended change of output (a new template, a lexicon fix) re-records them:

    python tests/output_digests.py        # writes tests/data/output_digests.json

and says so in its commit message. Two levels are digested:

- ``frames``: every column of every row that ``build_dataset`` returns, on CoDEx-S (bundled)
  and FB15k-237 with names (shared data), for all 20 combinations of the settings;
- ``files``: every file a ``generate`` run writes on CoDEx-S, per format (and one run with
  set-op tools and batched calls), except those that hold times or paths (the manifest, the
  progress folder, the card's plots). Parquet files are digested by content, not bytes, so a
  Polars upgrade that re-encodes the same rows does not count as a change.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

RECORDED = Path(__file__).parent / "data" / "output_digests.json"
FORMATS = ("openai", "toolbench", "sharegpt", "xlam", "verl")
SET_OPS = ("thought", "tools")
CALL_STYLES = ("single", "batched")
BETAE = ("1p", "2p", "3p", "2i", "3i", "ip", "pi", "2u", "up", "2in", "3in", "inp", "pin", "pni")
FRAME_SAMPLES = {"codex-s": 280, "fb15k-237": 140}
FILE_SAMPLES = 300
# written by generate but holding run times, absolute paths or images: not digested
NOT_DIGESTED = ("manifest.json", "config.toml", ".kg2tool-generate", ".progress", ".png")


def combos() -> list[tuple[str, str, str]]:
    """Every (format, set_ops, call_style)."""
    return list(itertools.product(FORMATS, SET_OPS, CALL_STYLES))


def frame_digest(frame: pl.DataFrame) -> str:
    """sha256 of every row as sorted-key JSON, one line per row, in frame order."""
    h = hashlib.sha256()
    h.update(json.dumps(frame.columns).encode())
    for row in frame.iter_rows(named=True):
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def file_digests(out: Path) -> dict[str, str]:
    """Relative path -> sha256 of each digested file under ``out`` (Parquet by content)."""
    digests = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if any(part in rel for part in NOT_DIGESTED):
            continue
        if path.suffix == ".parquet":
            digests[rel] = frame_digest(pl.read_parquet(path))
        else:
            digests[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def load_kg(name: str) -> Any:
    """CoDEx-S (bundled) or FB15k-237 with its names (shared data)."""
    from kg2tool.kg.bundled import load_dataset
    from kg2tool.kg.graph import KnowledgeGraph

    if name == "codex-s":
        return KnowledgeGraph.load("codex-s")
    return KnowledgeGraph.from_tables(load_dataset(name)[0])


def frame_digests(
    name: str, kg: Any, build: Callable[..., pl.DataFrame] | None = None
) -> dict[str, str]:
    """``format/set_ops/call_style`` -> digest of build_dataset's frame on one KG."""
    from kg2tool.dataset.assemble import SampleContext, build_dataset

    build = build or build_dataset
    context = SampleContext(kg)  # one catalogue and lexicon for the 20 runs
    out = {}
    for fmt, set_ops, style in combos():
        frame = build(
            kg,
            list(BETAE),
            FRAME_SAMPLES[name],
            seed=11,
            format=fmt,
            set_ops=set_ops,
            call_style=style,
            context=context,
        )
        out[f"{fmt}/{set_ops}/{style}"] = frame_digest(frame)
    return out


def generate_runs() -> list[tuple[str, dict[str, Any]]]:
    """The generate runs digested at file level: (label, settings)."""
    runs = [(fmt, {"format": fmt}) for fmt in FORMATS]
    runs.append(("openai-tools-batched", {"set_ops": "tools", "call_style": "batched"}))
    return runs


def run_files(root: Path, label: str, settings: dict[str, Any]) -> dict[str, str]:
    """Digests of the files of one ``generate`` run on CoDEx-S under ``root / label``."""
    from kg2tool.pipeline.driver import generate

    out = root / label
    generate(
        out=str(out),
        kg="codex-s",
        num_samples=FILE_SAMPLES,
        seed=5,
        engine="local",
        threads=1,
        progress=False,
        log=lambda _line: None,
        **settings,
    )
    return file_digests(out)


def record(root: Path) -> dict[str, Any]:
    """All digests, as written to :data:`RECORDED`."""
    frames = {name: frame_digests(name, load_kg(name)) for name in FRAME_SAMPLES}
    files = {label: run_files(root, label, s) for label, s in generate_runs()}
    return {"frames": frames, "files": files}


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    with tempfile.TemporaryDirectory() as tmp:
        digests = record(Path(tmp))
    RECORDED.parent.mkdir(exist_ok=True)
    RECORDED.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORDED}")
