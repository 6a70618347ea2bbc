"""``generate``'s output directory: nothing of the user's lost, nothing silently wrong.

The directory, concurrent-run and kill cases run the CLI in a subprocess (the lock and the
workers' fate depend on real processes); the rest call the Python API.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from kg2tool import atomic
from kg2tool.dataset.outdir import MARKER
from kg2tool.errors import InputError
from kg2tool.patterns import parse_patterns
from kg2tool.patterns.syntax import is_anchor
from kg2tool.pipeline import driver as pipeline
from kg2tool.pipeline import runners
from kg2tool.pipeline.config import DEFAULT_PATTERN_TEXT

CLI = [sys.executable, "-m", "kg2tool.cli", "generate"]
SMALL = ["-n", "12", "--patterns", "1p,2i", "--seed", "1", "-q"]


def run_cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("kg2tool: error: "), proc.stderr
    return lines[0]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def data_bytes(out: Path) -> dict[str, bytes]:
    """The files that depend only on the settings: Parquet shards and split files."""
    return {
        k: v
        for k, v in tree_bytes(out).items()
        if (k.startswith("data/") and k.endswith(".parquet"))
        or (k.endswith(".jsonl") and "/" not in k)
    }


# ----- 1. a directory the user owns ------------------------------------------------------


def test_user_directory_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("my project\n")
    (repo / "config.toml").write_text("mine = 1\n")
    (repo / "train.jsonl").write_text('{"mine": true}\n')
    os.chmod(repo / "README.md", 0o664)
    before = tree_bytes(repo)
    for extra in ([], ["--overwrite"]):
        line = one_line_error(run_cli("--out", repo, *SMALL, *extra))
        assert str(repo) in line and "not made by kg2tool generate" in line
        assert tree_bytes(repo) == before
        assert stat.S_IMODE((repo / "README.md").stat().st_mode) == 0o664
        assert not (repo / MARKER).exists() and not (repo / ".progress").exists()


def test_overwrite_replaces_only_own_files_and_resume_still_works(tmp_path: Path) -> None:
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    proc = run_cli("--out", out, *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert (out / MARKER).is_file()
    again = run_cli("--out", out, *SMALL)  # same settings: resumes, all done
    assert again.returncode == 0 and "(1 already done)" in again.stdout
    (out / "notes.txt").write_text("keep me\n")  # the user's files inside the run's directory
    (out / "data" / "mine.txt").write_text("keep me too\n")
    first = data_bytes(out)

    line = one_line_error(run_cli("--out", out, *SMALL, "--seed", "2"))
    assert "holds a run with different settings" in line and "--overwrite" in line
    assert data_bytes(out) == first  # refused: nothing touched

    proc = run_cli("--out", out, *SMALL, "--seed", "2", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert (out / "notes.txt").read_text() == "keep me\n"
    assert (out / "data" / "mine.txt").read_text() == "keep me too\n"
    assert run_cli("--out", fresh, *SMALL, "--seed", "2").returncode == 0
    assert data_bytes(out) == data_bytes(fresh) != first
    assert json.loads((out / "manifest.json").read_text())["config"]["seed"] == 2


# ----- 7. a failed run does not block the corrected one ----------------------------------


def test_failed_run_before_sampling_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    line = one_line_error(run_cli("--out", out, "--patterns", "2p[r1=P9999]", "-n", "5", "-q"))
    assert "P9999" in line
    assert not out.exists()
    empty = tmp_path / "empty"  # an empty directory of the user's stays, and stays empty
    empty.mkdir()
    one_line_error(run_cli("--out", empty, "--patterns", "2p[r1=P9999]", "-n", "5", "-q"))
    assert list(empty.iterdir()) == []
    proc = run_cli("--out", out, "--patterns", "2p", "-n", "5", "-q")
    assert proc.returncode == 0, proc.stderr
    assert pl.read_parquet(out / "data").height == 5


def test_run_that_wrote_no_sample_does_not_block_other_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    settings = {"num_samples": 8, "patterns": "1p", "progress": False, "engine": "local"}

    def broken(*args: object, **kwargs: object) -> dict:
        raise OSError("the disk went away")

    monkeypatch.setattr(runners, "build_and_write_shard", broken)
    with pytest.raises(OSError, match="disk went away"):
        pipeline.generate(out=str(out), seed=1, **settings)
    assert not out.exists()  # it made the directory, wrote no sample: all of it is gone
    monkeypatch.undo()
    report = pipeline.generate(out=str(out), seed=2, **settings)
    assert report.written == 8


# ----- 8. two runs on one directory --------------------------------------------------------


def test_second_concurrent_run_gets_one_line_and_the_first_is_intact(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--out", out, "-n", "4000", "--shard-size", "400", "--seed", "3", "-q"]
    first = subprocess.Popen(
        [*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / ".progress" / "config.json").exists():  # the first run holds the lock
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = run_cli(*args)
        running = first.poll() is None
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert running, "the first run ended before the second started; make it longer"
    line = one_line_error(second)
    assert "another kg2tool generate" in line and f"pid {first.pid}" in line
    assert first.returncode == 0, stderr
    assert not (out / "records").exists()  # no duplicate record files left behind
    written = json.loads((out / "manifest.json").read_text())["num_samples"]
    lines = sum(len(p.read_bytes().splitlines()) for p in out.glob("*.jsonl"))
    assert written == lines == pl.read_parquet(out / "data").height == 4000


def test_runs_started_together_one_runs_one_gets_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [*CLI, "--out", str(out), "-n", "600", "--shard-size", "200", "--seed", "4", "-q"]
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    err = next(e for code, _, e in results if code == 2)
    assert err.count("\n") == 1 and "another kg2tool generate" in err and "Traceback" not in err
    assert not (out / "records").exists()
    lines = sum(len(p.read_bytes().splitlines()) for p in out.glob("*.jsonl"))
    assert lines == pl.read_parquet(out / "data").height == 600


def test_directory_of_an_older_kg2tool_still_resumes(tmp_path: Path) -> None:
    """A run made before the marker existed (it has .progress/config.json) is still ours."""
    out = tmp_path / "out"
    settings = {"num_samples": 10, "patterns": "1p", "progress": False, "engine": "local"}
    pipeline.generate(out=str(out), **settings)
    (out / MARKER).unlink()
    report = pipeline.generate(out=str(out), **settings)
    assert report.shards_skipped == 1 and report.written == 10
    assert (out / MARKER).is_file()


# ----- 6. workers die with the driver -----------------------------------------------------


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_kill_9_of_the_driver_leaves_no_worker(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--out", out, "-n", "20000", "--shard-size", "500", "--engine", "process"]
    driver = subprocess.Popen(
        [*CLI, *map(str, args), "--workers", "2", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while not list((out / ".progress").glob("shard-*.json")):
            assert driver.poll() is None, "the run ended before a shard was written"
            assert time.monotonic() < deadline, "no shard within 90 s"
            time.sleep(0.02)
        kids = _children(driver.pid)
        workers = [k for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]
        assert driver.poll() is None
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert len(workers) == 2, kids
    deadline = time.monotonic() + 10
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [k for k in kids if _alive(k)] == []


# ----- 4. xLAM writes the N asked -----------------------------------------------------------


def _anchored(spec: object) -> bool:
    """Independently of the plan: every atom has an anchor term (BetaE shapes only)."""
    return all(is_anchor(a.head) or is_anchor(a.tail) for a, _ in spec.parsed.iter_atoms())  # type: ignore[attr-defined]


def test_xlam_writes_exactly_n_and_names_what_it_left_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = pipeline.generate(out=str(out), format="xlam", num_samples=300, progress=False)
    expected_out = [s.name for s, _ in parse_patterns(DEFAULT_PATTERN_TEXT) if not _anchored(s)]
    assert set(expected_out) == {"2p", "3p", "ip", "pi", "inp", "pin", "pni", "up"}
    assert report.written == 300 and report.not_expressible == expected_out
    assert "xlam_not_expressible" not in report.dropped
    lines = [ln for p in out.glob("*.jsonl") for ln in p.read_bytes().splitlines()]
    assert len(lines) == 300
    frame = pl.read_parquet(out / "data")
    assert not set(frame["pattern"].unique()) & set(expected_out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_samples"] == 300 and manifest["not_expressible"] == expected_out
    assert "not expressible in this format" in report.summary()
    assert "WARNING" not in report.summary()


def test_xlam_with_no_expressible_pattern_fails_up_front(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"xlam format cannot express pattern\(s\) triangle, 2p"):
        pipeline.generate(
            out=str(out), format="xlam", patterns="triangle,2p", num_samples=10, progress=False
        )
    assert not out.exists()


def test_summary_warns_when_a_run_is_short() -> None:
    report = pipeline.GenerateReport(out=Path("o"), written=429, asked=1000)
    assert "WARNING: wrote 429 of the 1,000 samples asked (571 short" in report.summary()


# ----- 5. modes follow the umask -------------------------------------------------------------


@pytest.mark.parametrize(
    ("umask", "fmode", "dmode"),
    [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750), (0o002, 0o664, 0o775)],
)
@pytest.mark.parametrize("fmt", ["sharegpt", "toolbench"])
def test_files_and_directories_get_the_umask_modes(
    tmp_path: Path, umask: int, fmode: int, dmode: int, fmt: str
) -> None:
    from kg2tool.kg.graph import KnowledgeGraph
    from kg2tool.tools.catalog import ApiCatalog

    old = os.umask(umask)
    try:
        out = tmp_path / "out"
        pipeline.generate(
            out=str(out), format=fmt, num_samples=20, shard_size=10, progress=False, jsonl=True
        )
        kg = KnowledgeGraph.load("codex-s")
        kg.save_snapshot(tmp_path / "snap")
        ApiCatalog.from_graph(kg).write_manifest(tmp_path / "apis" / "manifest.json")
    finally:
        os.umask(old)
    if fmt == "sharegpt":
        assert (out / "dataset_info.json").is_file()
    else:
        assert list((out / "records").glob("*.jsonl"))
    paths = [out, *out.rglob("*"), tmp_path / "snap", *(tmp_path / "snap").rglob("*")]
    paths.append(tmp_path / "apis" / "manifest.json")
    wrong = {
        str(p): oct(stat.S_IMODE(p.stat().st_mode))
        for p in paths
        if stat.S_IMODE(p.stat().st_mode) != (dmode if p.is_dir() else fmode)
    }
    assert wrong == {}
    assert (out / "README.md").is_file() and (out / "manifest.json").is_file()


def test_atomic_file_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]
    with pytest.raises(RuntimeError), atomic.atomic_dir(tmp_path / "d") as d:
        (d / "x").write_text("x")
        raise RuntimeError("boom")
    assert sorted(tmp_path.iterdir()) == [target]
