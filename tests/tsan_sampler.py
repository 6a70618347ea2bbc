"""ThreadSanitizer check of the sampler's worker pool (run by .ci/run, not by pytest).

The sampler overlaps drawing one batch with de-duplicating the last one, on a pool of
threads: this runs it under ThreadSanitizer at 1, 2 and 3 threads and checks the outputs
agree. Polars does not load under ThreadSanitizer, so the work is split in two processes:

    python tests/tsan_sampler.py dump IN.pkl    # normal build: graph arrays + native plans
    LD_PRELOAD=$(gcc -print-file-name=libtsan.so) PYTHONPATH=<TSan build> \\
        python tests/tsan_sampler.py check IN.pkl   # loads only numpy and the extension
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

PATTERNS = ["1p", "2p", "2i", "pi", "2in", "pni", "2u", "up", "triangle"]
SIZES = [40, 3000, 12000]  # 12,000: more than one batch, so two are in flight
THREADS = [1, 2, 3]


def dump(path: Path) -> None:
    """Writes FB15k-237 (+ inverse edges) as engine arrays and the plans of PATTERNS."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np

    import kg2tool.engine as engine
    from bench.test_bench_engine import _load_fb15k237_with_inverses

    kg = _load_fb15k237_with_inverses()
    g = kg.native
    make_plan = engine._core.Plan
    engine._core.Plan = lambda spec: spec  # keep the spec native_plan builds
    try:
        plans = {p: engine.native_plan(kg, engine.resolve_pattern(p)) for p in PATTERNS}
    finally:
        engine._core.Plan = make_plan
    counts = (g.num_entities, g.num_relations, g.num_types)
    arrays = {k: np.array(v) for k, v in g.arrays.items()}
    path.write_bytes(pickle.dumps({"counts": counts, "arrays": arrays, "plans": plans}))


def check(path: Path) -> None:
    """Samples every pattern at every size and thread count; outputs must agree."""
    from kg2tool import _core

    data = pickle.loads(path.read_bytes())
    g = _core.Graph(*data["counts"], data["arrays"], validate=True)
    for name, spec in data["plans"].items():
        plan = _core.Plan(spec)
        for n in SIZES:
            outs = []
            for threads in THREADS:
                out = _core.sample(
                    g,
                    plan,
                    n,
                    3,
                    threads=threads,
                    answers_only=n > 5000,
                    min_answers=1,
                    max_answers=-1,
                    max_intermediate=-1,
                )
                keys = ("relation_bindings", "anchor_bindings", "set_offsets", "set_ids")
                outs.append(b"".join(out[k].tobytes() for k in keys))
                assert len(out["candidate_index"]) == n, (name, n, threads)
            assert all(o == outs[0] for o in outs), f"{name}: outputs differ across threads"
        print(f"tsan: {name} ok", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("dump", "check"):
        sys.exit("usage: tsan_sampler.py dump|check FILE")
    (dump if sys.argv[1] == "dump" else check)(Path(sys.argv[2]))
