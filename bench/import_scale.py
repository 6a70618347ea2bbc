# Import-to-snapshot and snapshot-open at Wikidata-like scale (issue 18).
#
# Input: a seeded synthetic KG from bench.synthetic (power-law degrees, typed) written as a
# headerless TSV with Wikidata-like keys: entity i is `Q<i+1>`, relation r is `P<r+1>`.
# Jobs, each in a fresh interpreter so peak RSS (VmHWM) is the job's own:
#   write     generate N triples and write the TSV (not timed as part of the import)
#   import    kg2tool import TSV --out SNAPSHOT: KnowledgeGraph.load (read, key mapping, CSR)
#             then save_snapshot; wall time per phase and peak RSS
#   open      KnowledgeGraph.load(snapshot) (the cheap check), then what a run needing names
#             pays (entities table), then the full `validate()`
# `--src DIR` runs the import/open jobs against another checkout's python/ directory (the
# code before a change), so before/after figures come from the same run on the same files.
#
# CLI: python -m bench.import_scale --triples 20000000 --dir WORKDIR [--src OTHER/python]

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def write_tsv(triples: int, path: str, seed: int = 0) -> dict[str, Any]:
    """Write the seeded synthetic KG as `Q<id>`/`P<id>` TSV (streamed by Polars)."""
    import polars as pl

    from bench.synthetic import generate

    t0 = time.perf_counter()
    kg = generate(triples, seed=seed)
    ids = pl.LazyFrame({"h": kg.head, "r": kg.relation, "t": kg.tail})
    ids.select(
        pl.format("Q{}", pl.col("h") + 1),
        pl.format("P{}", pl.col("r") + 1),
        pl.format("Q{}", pl.col("t") + 1),
    ).sink_csv(path, separator="\t", include_header=False)
    return {"write_s": time.perf_counter() - t0, "bytes": os.path.getsize(path)}


def import_job(tsv: str, snapshot: str) -> dict[str, Any]:
    """What `kg2tool import TSV --out SNAPSHOT` does, timed per phase."""
    from kg2tool.kg.graph import KnowledgeGraph

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    kg = KnowledgeGraph.load(tsv)
    out["load_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    kg.save_snapshot(snapshot)
    out["save_s"] = time.perf_counter() - t1
    out["import_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = _peak_rss_mb()
    out.update(triples=kg.num_triples, entities=kg.num_entities)
    return out


def open_job(snapshot: str) -> dict[str, Any]:
    """Open a snapshot; then load the names a run needs; then the full check if there is one."""
    from kg2tool.kg.graph import KnowledgeGraph

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    kg = KnowledgeGraph.load(snapshot)
    out["open_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _ = kg.entities.height
    out["names_s"] = time.perf_counter() - t0
    if hasattr(kg, "validate"):
        t0 = time.perf_counter()
        kg.validate()
        out["validate_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


JOBS = {"write": write_tsv, "import": import_job, "open": open_job}


def run(job: str, params: dict[str, Any], src: str | None = None) -> dict[str, Any]:
    """Run one job in a fresh interpreter with `src` (a python/ dir) first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [src, str(REPO / "python"), str(REPO), env.get("PYTHONPATH")])
    )
    proc = subprocess.run(
        [sys.executable, "-m", "bench.import_scale", "--job", job, json.dumps(params)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{job} {params} exited with {proc.returncode}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.import_scale")
    ap.add_argument("--job", choices=sorted(JOBS))
    ap.add_argument("params", nargs="?", default="{}")
    ap.add_argument("--triples", type=int, default=5_000_000)
    ap.add_argument("--dir", type=Path, default=None, help="work directory for TSV + snapshots")
    ap.add_argument("--src", default=None, help="python/ dir of the code to compare against")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.job:
        print(json.dumps(JOBS[args.job](**json.loads(args.params))))
        return 0
    if args.dir is None:
        ap.error("--dir is required")
    args.dir.mkdir(parents=True, exist_ok=True)
    tsv = args.dir / f"wd-{args.triples}.tsv"
    if not tsv.is_file():
        print(json.dumps({"write": run("write", {"triples": args.triples, "path": str(tsv)})}))
    variants = [("this", None)] + ([("src", args.src)] if args.src else [])
    for name, src in variants:
        snap = args.dir / f"snap-{name}-{args.triples}"
        result = {"variant": name, "triples_in_file": args.triples}
        result["import"] = run("import", {"tsv": str(tsv), "snapshot": str(snap)}, src)
        result["open"] = run("open", {"snapshot": str(snap)}, src)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
