"""``kg2tool.pipeline.driver``: shards, resume after SIGKILL, determinism across threads, shard
sizes and engines (local, process pool, Ray).

Every run here uses the same content settings (``SETTINGS``), so each one can be compared
byte for byte with one uninterrupted reference run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from kg2tool.cli import main
from kg2tool.dataset.merge import MARKERS
from kg2tool.errors import InputError
from kg2tool.patterns import pattern_counts
from kg2tool.pipeline.config import GenerateConfig, shard_counts
from kg2tool.pipeline.driver import Generator, generate

N = 300
SHARD = 30  # 10 shards
SETTINGS = {"num_samples": N, "shard_size": SHARD, "seed": 7, "format": "openai"}
ARGS = ["-n", str(N), "--shard-size", str(SHARD), "--seed", "7", "--format", "openai"]


def output_bytes(out: Path) -> dict[str, bytes]:
    """Every file under data/ and records/, and the merged JSONL files."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if p.is_file() and (rel.parts[0] in ("data", "records") or p.suffix == ".jsonl"):
            files[str(rel)] = p.read_bytes()
    assert any(k.startswith("data/") for k in files) and any(k.endswith(".jsonl") for k in files)
    return files


def manifest_of(out: Path) -> dict:
    """The manifest without the settings that do not change the output (path, engine, ...)."""
    m = json.loads((out / "manifest.json").read_text())
    for key in GenerateConfig._RUNTIME_ONLY:
        m["config"].pop(key)
    return m


def sorted_rows(out: Path) -> pl.DataFrame:
    return pl.read_parquet(sorted((out / "data").glob("*.parquet"))).sort("id")


def sorted_records(out: Path) -> list[bytes]:
    return sorted(line for f in out.glob("*.jsonl") for line in f.read_bytes().splitlines())


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith((".tmp", ".tmp.png"))]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted local run with one native thread."""
    out = tmp_path_factory.mktemp("reference") / "out"
    report = generate(out=str(out), threads=1, progress=False, **SETTINGS)
    assert report.shards == N // SHARD and report.shards_skipped == 0
    assert report.written == N - sum(report.dropped.values()) > 0.9 * N
    assert report.rejected and report.seconds > 0 and report.peak_rss_mb > 0
    return out


# ----- units -------------------------------------------------------------------------


def test_pattern_and_shard_counts() -> None:
    assert pattern_counts([1, 1, 1], 10) == [4, 3, 3]
    assert pattern_counts([1, 2], 7) == [2, 5]
    assert sum(pattern_counts([0.3, 0.3, 0.4, 1e-9], 1001)) == 1001
    assert shard_counts(10, 3) == [4, 3, 3]
    assert shard_counts(2, 4) == [1, 1, 0, 0]


def test_content_hash_ignores_runtime_settings() -> None:
    a = GenerateConfig(out="x", **SETTINGS)
    b = GenerateConfig(out="y", threads=2, engine="ray", workers=3, ray_address="auto", **SETTINGS)
    assert a.content_hash() == b.content_hash()
    assert a.content_hash() != GenerateConfig(out="x", **{**SETTINGS, "seed": 8}).content_hash()
    assert (
        a.content_hash() != GenerateConfig(out="x", **{**SETTINGS, "shard_size": 31}).content_hash()
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"out": ""}, "no output directory"),
        ({"num_samples": 0}, "num_samples must be positive"),
        ({"num_samples": "5"}, "num_samples must be int"),
        ({"seed": True}, "seed must be int"),
        ({"workers": -1}, "threads and workers"),
        ({"relation_choice": "random"}, "relation_choice"),
        ({"min_answers": -1}, "impossible answer bounds"),
    ],
)
def test_config_validation(tmp_path, change: dict, message: str) -> None:
    settings = {**SETTINGS, "out": str(tmp_path), **change}
    with pytest.raises(InputError, match=message):
        Generator(GenerateConfig(**settings))


# ----- resume ------------------------------------------------------------------------


def test_kill_and_resume_is_identical(reference: Path, tmp_path: Path, capsys) -> None:
    """SIGKILL after the first shard marker; the same command again completes the run, and
    the files equal the uninterrupted run's (stale temp files and unmarked shards redone)."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "kg2tool.cli", "generate", "--out", str(out), *ARGS, "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    markers = out / MARKERS
    deadline = time.monotonic() + 120
    try:
        while not list(markers.glob("shard-*.json")):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no shard marker within 120 s"
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "manifest.json").exists()
    done = sorted(markers.glob("shard-*.json"))
    assert 1 <= len(done) < N // SHARD

    # A finished shard that lost its marker, and a shard file of an unfinished shard
    # (killed between the rename and the marker) are both redone; stale temp files go.
    first = json.loads(done[0].read_text())
    done[0].unlink()
    victim = out / next(f for f in first["files"] if f.endswith(".parquet"))
    victim.write_bytes(b"garbage of a half-written shard")
    last = f"train-{N // SHARD - 1:05d}-of-{N // SHARD:05d}"
    (out / "data" / f"{last}.parquet").write_bytes(b"not parquet")
    (out / "data" / f".{last}.parquet.tmp").write_bytes(b"partial")
    (out / "records").mkdir(exist_ok=True)
    (out / "records" / f"{last}.jsonl.abc123.tmp").write_bytes(b"partial")
    (out / MARKERS / ".shard-00009.json.tmp").write_text("{")

    capsys.readouterr()
    assert main(["generate", "--out", str(out), *ARGS, "-q"]) == 0
    summary = capsys.readouterr().out
    assert f"({len(done) - 1} already done)" in summary
    assert output_bytes(out) == output_bytes(reference)
    assert manifest_of(out) == manifest_of(reference)
    assert not leftovers(out)
    assert len(list(markers.glob("shard-*.json"))) == N // SHARD

    # Started again once complete: nothing to redo, nothing changes.
    before = output_bytes(out)
    assert main(["generate", "--out", str(out), *ARGS, "-q"]) == 0
    assert f"({N // SHARD} already done)" in capsys.readouterr().out
    assert output_bytes(out) == before

    # Other settings in the same directory: a clear error, the data untouched.
    assert main(["generate", "--out", str(out), *ARGS, "--seed", "8", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a run with different settings" in err
    assert output_bytes(out) == before


def test_kill_process_pool_and_resume_is_identical(reference: Path, tmp_path: Path) -> None:
    """With the process pool the workers write the split files themselves (under a lock);
    a SIGKILL of the whole run at any point, then the same command, gives the reference bytes."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "kg2tool.cli", "generate", "--out", str(out), *ARGS, "-q"]
    cmd += ["--engine", "process", "--workers", "2"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    markers = out / MARKERS
    deadline = time.monotonic() + 120
    try:
        while len(list(markers.glob("shard-*.json"))) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no shard markers within 120 s"
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers
        proc.wait()
        proc.stderr.close()
    assert not (out / "manifest.json").exists()
    assert main(["generate", "--out", str(out), *ARGS, "-q", "--engine", "process"]) == 0
    assert output_bytes(out) == output_bytes(reference)
    assert manifest_of(out) == manifest_of(reference)
    assert not leftovers(out) and not (out / "records").exists()


def test_resume_after_deleted_shard_files(reference: Path, tmp_path: Path) -> None:
    """A marker whose files are gone (or changed size) does not count: the shard is redone.
    The records of the done shards after it are taken back out of the split files (into
    records/ files) and merged again after it."""
    out = tmp_path / "out"
    generate(out=str(out), threads=1, progress=False, **SETTINGS)
    assert not (out / "records").exists()  # every shard's records are in the split files
    shard = sorted((out / "data").glob("*-00004-of-*.parquet"))[0]
    shard.unlink()
    other = sorted((out / "data").glob("*-00002-of-*.parquet"))[0]
    other.write_bytes(other.read_bytes() + b"\n")
    report = generate(out=str(out), threads=2, progress=False, **SETTINGS)
    assert report.shards_skipped == N // SHARD - 2
    assert output_bytes(out) == output_bytes(reference)
    assert manifest_of(out) == manifest_of(reference)
    assert not (out / "records").exists() and not list((out / MARKERS).glob("*.part"))


def test_resume_after_split_file_changed(reference: Path, tmp_path: Path) -> None:
    """A split file with bytes added is cut back to what the shards wrote (nothing redone); one
    that lost bytes no longer holds every shard's records, so every shard is redone."""
    out = tmp_path / "out"
    generate(out=str(out), progress=False, **SETTINGS)
    with open(out / "train.jsonl", "ab") as fh:
        fh.write(b'{"appended"}\n')
    report = generate(out=str(out), progress=False, **SETTINGS)
    assert report.shards_skipped == N // SHARD
    assert output_bytes(out) == output_bytes(reference)
    data = (out / "validation.jsonl").read_bytes()
    (out / "validation.jsonl").write_bytes(data[:-10])
    report = generate(out=str(out), progress=False, **SETTINGS)
    assert report.shards_skipped == 0
    assert output_bytes(out) == output_bytes(reference)


def test_records_left_in_shard_files_are_merged(
    reference: Path, tmp_path: Path, monkeypatch
) -> None:
    """Shards that are not next in line when they finish (or whose worker may not write the
    split files, as on Ray) leave their records in records/ files; they are merged in order."""
    import kg2tool.dataset.merge as pipeline

    real = pipeline.SplitParts.write_shard
    seen = []

    def odd_shards_wait(self, shard, records, info, *, direct):
        seen.append(direct)
        return real(self, shard, records, info, direct=direct and shard % 2 == 0)

    monkeypatch.setattr(pipeline.SplitParts, "write_shard", odd_shards_wait)
    generate(out=str(tmp_path), progress=False, **SETTINGS)
    assert seen and all(seen)  # a local run writes the split files itself
    assert output_bytes(tmp_path) == output_bytes(reference)
    assert manifest_of(tmp_path) == manifest_of(reference)
    assert not (tmp_path / "records").exists()


def test_records_merged_as_shards_finish_resume(
    reference: Path, tmp_path: Path, monkeypatch
) -> None:
    """Split files are merged while shards are built (.progress/*.jsonl.part + merge.json); a
    run that dies mid-way, with bytes appended to a part after its state was saved (a kill
    between the append and the state update), resumes to the reference's bytes."""
    import kg2tool.pipeline.runners as pipeline

    real = pipeline.build_and_write_shard

    def dies_at_shard_6(kg, config, task):
        if task.shard_id == 6:
            raise RuntimeError("killed")
        return real(kg, config, task)

    monkeypatch.setattr(pipeline, "build_and_write_shard", dies_at_shard_6)
    with pytest.raises(RuntimeError, match="killed"):
        generate(out=str(tmp_path), progress=False, **SETTINGS)
    state = json.loads((tmp_path / MARKERS / "merge.json").read_text())
    assert len(state["sizes"]) == 6 and not list(tmp_path.glob("*.jsonl"))
    part = tmp_path / MARKERS / "train.jsonl.part"
    assert part.stat().st_size == state["sizes"][-1]["train"]
    with open(part, "ab") as fh:
        fh.write(b'{"half of shard 6"')
    (tmp_path / MARKERS / "shard-00003.json").unlink()  # and shard 3 is redone
    monkeypatch.setattr(pipeline, "build_and_write_shard", real)
    report = generate(out=str(tmp_path), progress=False, **SETTINGS)
    assert report.shards_skipped == 5
    assert output_bytes(tmp_path) == output_bytes(reference)
    assert not list((tmp_path / MARKERS).glob("*.part"))


# ----- determinism -------------------------------------------------------------------


def test_threads_do_not_change_output(reference: Path, tmp_path: Path) -> None:
    generate(out=str(tmp_path), threads=2, progress=False, **SETTINGS)
    assert output_bytes(tmp_path) == output_bytes(reference)
    assert manifest_of(tmp_path) == manifest_of(reference)


@pytest.mark.parametrize("shard_size", [100, 300])
def test_shard_size_does_not_change_samples(reference: Path, tmp_path: Path, shard_size) -> None:
    report = generate(out=str(tmp_path), progress=False, **{**SETTINGS, "shard_size": shard_size})
    assert report.shards == N // shard_size
    assert sorted_rows(tmp_path).equals(sorted_rows(reference))
    assert sorted_records(tmp_path) == sorted_records(reference)


def test_same_seed_same_output_other_seed_differs(reference: Path, tmp_path: Path) -> None:
    generate(out=str(tmp_path), progress=False, **{**SETTINGS, "seed": 8})
    assert (
        sorted_rows(tmp_path)["bindings"].to_list() != sorted_rows(reference)["bindings"].to_list()
    )


def test_process_engine_equals_local(reference: Path, tmp_path: Path) -> None:
    report = generate(out=str(tmp_path), engine="process", workers=2, progress=False, **SETTINGS)
    assert report.shards == N // SHARD
    assert output_bytes(tmp_path) == output_bytes(reference)
    assert manifest_of(tmp_path) == manifest_of(reference)
    # the workers opened a snapshot of the KG, written once into the progress directory
    assert (tmp_path / MARKERS / "kg-snapshot" / "manifest.json").is_file()


@pytest.mark.ray
def test_ray_engine_equals_local(reference: Path, tmp_path: Path, capsys) -> None:
    """``--engine ray`` on a local 2-CPU Ray instance started here gives the local bytes."""
    import ray

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert ray.cluster_resources()["CPU"] == 2
        capsys.readouterr()
        code = main(["generate", "--out", str(tmp_path), *ARGS, "--engine", "ray", "-q"])
        assert code == 0, capsys.readouterr().err
        assert ray.is_initialized()  # the pipeline used the running instance, left it up
    finally:
        ray.shutdown()
    assert output_bytes(tmp_path) == output_bytes(reference)
    assert manifest_of(tmp_path) == manifest_of(reference)
    assert time.perf_counter() - t0 < 120


# ----- patterns running out of distinct queries --------------------------------------


def test_exhausted_pattern_hands_its_share_to_the_others(tmp_path: Path) -> None:
    """P112 has 4 edges in CoDEx-S: 1p on it runs out; 2i takes the rest of the samples."""
    report = generate(
        out=str(tmp_path), patterns="1p[r1=P112],2i", num_samples=60, shard_size=20, progress=False
    )
    assert report.exhausted == ["1p"] and report.shortfall == 0
    assert report.written == 60
    counts = dict(pl.read_parquet(tmp_path / "data").group_by("pattern").len().iter_rows())
    assert counts["1p"] <= 8 and counts["1p"] + counts["2i"] == 60
    assert "their share went to the other patterns" in report.summary()


def test_every_pattern_exhausted_writes_what_there_is(tmp_path: Path, capsys) -> None:
    """Shards left without queries have a marker and no files; the run can be resumed."""
    args = ["generate", "--out", str(tmp_path), "--patterns", "1p[r1=P112]", "-n", "60"]
    args += ["--shard-size", "20", "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"1p; \d+ samples could not be drawn at all", out)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert 0 < manifest["num_samples"] <= 8 and manifest["num_shards"] == 3
    assert len(list((tmp_path / MARKERS).glob("shard-*.json"))) == 3
    assert pl.read_parquet(tmp_path / "data").height == manifest["num_samples"]
    before = output_bytes(tmp_path)
    assert main(args) == 0
    assert "(3 already done)" in capsys.readouterr().out
    assert output_bytes(tmp_path) == before


# ----- anchors a question cannot name ---------------------------------------------------


@pytest.fixture(scope="module")
def shared_labels_kg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CoDEx-S where every 8th entity takes the label of the one before it (both become
    unnamable: their display names are qualified, "Label (description)")."""
    import shutil

    import kg2tool

    src = Path(kg2tool.__file__).parent / "data" / "codex-s"
    kg = tmp_path_factory.mktemp("shared") / "kg"
    shutil.copytree(src, kg)
    lines = (kg / "entities.tsv").read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines[1:]]
    for i in range(8, len(rows), 8):
        rows[i][1] = rows[i - 1][1]
    text = "\n".join([lines[0], *("\t".join(r) for r in rows)]) + "\n"
    (kg / "entities.tsv").write_text(text, encoding="utf-8")
    return kg


def test_unnamable_anchors_are_redrawn(shared_labels_kg: Path, tmp_path: Path) -> None:
    """Queries whose anchors have a shared label are skipped when drawn, not dropped from shards:
    the run writes exactly N samples, and which ones does not depend on the shard size."""
    settings = {"kg": str(shared_labels_kg), "num_samples": 200, "seed": 3, "progress": False}
    a = generate(out=str(tmp_path / "a"), shard_size=50, **settings)
    assert a.written == 200 and not any(a.dropped.values())
    assert a.rejected["unnamable_anchor"] > 0
    b = generate(out=str(tmp_path / "b"), shard_size=200, **settings)
    assert b.written == 200 and b.rejected["unnamable_anchor"] == a.rejected["unnamable_anchor"]
    assert sorted_rows(tmp_path / "a").equals(sorted_rows(tmp_path / "b"))
    assert sorted_records(tmp_path / "a") == sorted_records(tmp_path / "b")
