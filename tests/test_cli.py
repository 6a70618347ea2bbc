"""The ``kg2tool`` command end to end: every format on the bundled KG, config files, bad
arguments (one line, non-zero exit, no traceback) and the other commands.

Most runs call ``kg2tool.cli.main([...])`` in-process (no interpreter start-up); one test
runs the installed ``kg2tool`` executable in a subprocess.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import polars as pl
import pytest

from kg2tool.cli import main
from kg2tool.errors import InputError
from kg2tool.pipeline.config import GenerateConfig

FORMATS = ("openai", "toolbench", "sharegpt", "xlam")
N = 240
SHARD = 80  # 3 shards
BETAE = ("1p", "2p", "3p", "2i", "3i", "ip", "pi", "2in", "3in", "inp", "pin", "pni", "2u", "up")


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("kg2tool: error: "), lines[0]
    return lines[0]


def output_bytes(out: Path) -> dict[str, bytes]:
    """The files whose bytes depend only on the settings (not on the output path)."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if p.is_file() and (
            rel.parts[0] in ("data", "records")
            or (
                len(rel.parts) == 1
                and p.suffix in (".jsonl", ".json")
                and p.name != "manifest.json"
            )
        ):
            files[str(rel)] = p.read_bytes()
    return files


def check_dataset(out: Path, fmt: str) -> None:
    """Files present, counts consistent with the manifest, every record parses."""
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == fmt
    for name in ("README.md", "config.toml", "manifest.json"):
        assert (out / name).is_file(), name
    parquet = sorted((out / "data").glob("*.parquet"))
    assert parquet
    assert sorted(f for f in manifest["files"] if f.endswith(".parquet")) == [
        str(p.relative_to(out)) for p in parquet
    ]
    for f in manifest["files"]:
        assert (out / f).is_file(), f
    frame = pl.read_parquet(parquet)
    assert frame.height == manifest["num_samples"] > 0
    assert manifest["num_samples"] + sum(manifest["dropped"].values()) == N
    assert frame["id"].n_unique() == frame.height
    splits = frame["split"].value_counts()
    for split, count in splits.iter_rows():
        if fmt == "toolbench":
            data = json.loads((out / f"{split}.json").read_text())
            # one record per step; a sample's last step calls Finish
            finish = [r for r in data if "Action: Finish" in r["conversations"][-1]["value"]]
            assert len(finish) == count
        else:
            lines = (out / f"{split}.jsonl").read_bytes().splitlines()
            assert len(lines) == count
            for line in lines:
                assert isinstance(orjson.loads(line), dict)
    if fmt == "sharegpt":
        info = json.loads((out / "dataset_info.json").read_text())
        assert {v["file_name"] for v in info.values()} == {f"{s}.jsonl" for s in splits["split"]}
    assert f"Samples: {frame.height:,}" in (out / "README.md").read_text()
    cfg = GenerateConfig.from_file(out / "config.toml")
    assert (cfg.num_samples, cfg.format, cfg.shard_size) == (N, fmt, SHARD)
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("*.tmp.png"))


@pytest.fixture(scope="module")
def runs() -> dict[str, Path]:
    """One generate run per format (built lazily, shared by the tests of this module)."""
    return {}


def run_format(runs: dict[str, Path], fmt: str, tmp_path_factory, capsys) -> Path:
    if fmt not in runs:
        out = tmp_path_factory.mktemp(f"gen-{fmt}") / "out"
        code, stdout, err = cli(
            capsys,
            "generate",
            "--out", out,
            "-n", N,
            "--shard-size", SHARD,
            "--seed", 3,
            "--format", fmt,
            "--threads", 2,
            "-q",
        )  # fmt: skip
        assert code == 0, err
        assert f"wrote {N - _dropped(out):,} samples in 3 shard(s)" in stdout
        runs[fmt] = out
    return runs[fmt]


def _dropped(out: Path) -> int:
    return sum(json.loads((out / "manifest.json").read_text())["dropped"].values())


@pytest.mark.parametrize("fmt", FORMATS)
def test_generate_every_format(runs, fmt, tmp_path_factory, capsys) -> None:
    out = run_format(runs, fmt, tmp_path_factory, capsys)
    check_dataset(out, fmt)
    code, stdout, err = cli(capsys, "verify", out, "--strict")
    assert code == 0, stdout + err
    assert "0 no longer hold" in stdout


def test_generate_executable_subprocess(tmp_path: Path) -> None:
    """The installed console script: exit 0, summary on stdout, quiet when not a terminal."""
    # The script installed beside this interpreter (a venv's bin/, on PATH or not), else PATH.
    beside = Path(sys.executable).parent / "kg2tool"
    exe = str(beside) if beside.exists() else shutil.which("kg2tool")
    assert exe, f"no kg2tool console script beside {sys.executable} or on PATH"
    out = tmp_path / "out"
    args = ["generate", "--out", str(out), "-n", str(N), "--shard-size", str(SHARD)]
    proc = subprocess.run(
        [exe, *args, "--format", "openai", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal
    assert "samples/s" in proc.stdout and "peak RSS" in proc.stdout
    check_dataset(out, "openai")
    proc = subprocess.run([exe, "verify", str(out), "--strict"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_generate_formulas_and_weights(tmp_path, capsys) -> None:
    """--patterns mixes library names, formula strings and weights."""
    out = tmp_path / "out"
    formula = "r1(s1,f)&r2(s2,f)"
    code, _, err = cli(
        capsys, "generate", "--out", out, "-n", 90, "--patterns", f"1p,{formula}:2", "-q"
    )
    assert code == 0, err
    counts = dict(pl.read_parquet(out / "data").group_by("pattern").len().iter_rows())
    dropped = json.loads((out / "manifest.json").read_text())["dropped"]
    assert sum(counts.values()) + sum(dropped.values()) == 90
    assert set(counts) == {"1p", formula}
    assert counts[formula] > counts["1p"] >= 25


# ----- config files ------------------------------------------------------------------


def test_config_file_equals_flags_and_flags_win(runs, tmp_path, tmp_path_factory, capsys) -> None:
    """A TOML file with the settings of a flag run gives the same bytes; flags override it."""
    ref = run_format(runs, "sharegpt", tmp_path_factory, capsys)
    conf = tmp_path / "run.toml"
    conf.write_text(
        "[generate]\n"
        f"num-samples = {N}\n"  # flag spelling is accepted too
        f"shard_size = {SHARD}\n"
        'patterns = "1p,2p,3p,2i,3i,ip,pi,2in,3in,inp,pin,pni,2u,up"\n'
        "threads = 1\n"
        "seed = 999\n"  # overridden by --seed
        'format = "xlam"\n'  # overridden by --format
        f'out = "{tmp_path / "ignored"}"\n'  # overridden by --out
    )
    out = tmp_path / "out"
    code, _, err = cli(
        capsys,
        "generate",
        "--config",
        conf,
        "--out",
        out,
        "--seed",
        3,
        "--format",
        "sharegpt",
        "-q",
    )
    assert code == 0, err
    assert not (tmp_path / "ignored").exists()
    assert output_bytes(out) == output_bytes(ref)
    check_dataset(out, "sharegpt")
    # the written config.toml reproduces the run
    cfg = GenerateConfig.from_file(out / "config.toml")
    assert cfg.content_hash() == GenerateConfig.from_file(ref / "config.toml").content_hash()


def test_config_from_file_unit(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('num_samples = 7\nformat = "xlam"\nmax-answers = 5\n')
    cfg = GenerateConfig.from_file(conf, out="o", format="openai", seed=None)
    assert (cfg.num_samples, cfg.format, cfg.max_answers, cfg.seed, cfg.out) == (
        7,
        "openai",
        5,
        0,
        "o",
    )
    conf.write_text("num_samples = 7\ncolour = 1\n")
    with pytest.raises(InputError, match=r"unknown setting.*colour"):
        GenerateConfig.from_file(conf)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("num_samples = 10\nnum_sample = 3\n", "unknown setting(s) num_sample"),
        ("num_samples = = 10\n", "invalid TOML"),
        ('num_samples = "ten"\n', "num_samples must be int"),
        ("jsonl = 3\n", "jsonl must be bool"),
        ("patterns = 5\n", "patterns and kg must be strings"),
        (b"\xff\xfe = 1\n", "invalid TOML"),
        ("generate = 5\n", "[generate] must be a table"),
    ],
)
def test_bad_config(tmp_path, capsys, text: str | bytes, message: str) -> None:
    conf = tmp_path / "bad.toml"
    if isinstance(text, bytes):
        conf.write_bytes(text)
    else:
        conf.write_text(text)
    code, _, err = cli(capsys, "generate", "--config", conf, "--out", tmp_path / "o", "-q")
    assert code == 2
    line = one_line_error(err)
    assert message in line and str(conf) in line


def test_missing_config(tmp_path, capsys) -> None:
    code, _, err = cli(capsys, "generate", "--config", tmp_path / "nope.toml", "--out", tmp_path)
    assert code == 2
    assert "config file not found" in one_line_error(err)
    code, _, err = cli(capsys, "generate", "--config", tmp_path, "--out", tmp_path)  # a directory
    assert code == 2
    assert "cannot read the config file" in one_line_error(err)


# ----- bad arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--patterns", "1p,9z"], "unknown pattern '9z'"),
        (["--kg", "no-such-kg"], "unknown KG 'no-such-kg'"),
        (["-n", "0"], "num_samples must be positive, got 0"),
        (["-n", "-5"], "num_samples must be positive, got -5"),
        (["--shard-size", "0"], "shard_size must be positive"),
        (["--format", "alpaca"], "unknown format 'alpaca'"),
        (["--engine", "spark"], "unknown engine 'spark'"),
        (["--threads", "-1"], "threads and workers must be >= 0"),
        (["--min-answers", "5", "--max-answers", "2"], "impossible answer bounds"),
        (["--min-answers", "100000"], "impossible answer bounds"),
        (["--max-intermediate", "0"], "max_intermediate must be >= 1"),
    ],
)
def test_bad_arguments(tmp_path, capsys, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    code, _, err = cli(capsys, "generate", "--out", out, "-n", "50", *args, "-q")
    assert code == 2
    assert message in one_line_error(err)
    assert not (out / "manifest.json").exists()


@pytest.mark.ray
def test_unreachable_ray_cluster(tmp_path, capsys) -> None:
    """ray.init would retry for minutes: nobody listening there is one line at once."""
    t0 = time.perf_counter()
    code, _, err = cli(
        capsys, "generate", "--out", tmp_path, "-n", "10", "--engine", "ray",
        "--address", "127.0.0.1:1", "-q",
    )  # fmt: skip
    assert code == 2
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in one_line_error(err)
    assert time.perf_counter() - t0 < 30


def test_no_output_directory(capsys) -> None:
    code, _, err = cli(capsys, "generate", "-n", "10")
    assert code == 2
    assert "no output directory" in one_line_error(err)


def test_unwritable_output(tmp_path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = cli(capsys, "generate", "--out", blocker / "sub", "-n", "20", "-q")
    assert code == 2
    line = one_line_error(err)
    assert "cannot write to the output directory" in line and str(blocker / "sub") in line


def test_impossible_constraints_fail_fast(tmp_path, capsys) -> None:
    """No query has 100,000 answers: a SamplingError with rejection counts, in bounded time."""
    t0 = time.perf_counter()
    code, _, err = cli(
        capsys,
        "generate",
        "--out", tmp_path / "out",
        "-n", "100",
        "--patterns", "1p,2p",
        "--min-answers", "100000",
        "--max-answers", "100000",
        "-q",
    )  # fmt: skip
    assert time.perf_counter() - t0 < 60
    assert code == 2
    line = one_line_error(err)
    assert "rejections" in line and "too_few_answers" in line
    assert re.search(r"too_few_answers: [\d,]+", line)


def test_usage_error_is_short(capsys) -> None:
    """A typo in an option is a usage error (click): exit 2, no traceback."""
    code, _, err = cli(capsys, "generate", "--num-samples", "many")
    assert code == 2
    assert "Traceback" not in err and "--num-samples" in err
    code, _, err = cli(capsys, "generate", "--frobnicate")
    assert code == 2
    assert "Traceback" not in err and "No such option" in err


# ----- the other commands ------------------------------------------------------------


def test_stats_json(capsys, codex_s) -> None:
    code, out, _ = cli(capsys, "stats", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["entities"] == codex_s.num_entities == 2034
    assert info["relations"] == codex_s.num_relations == 42
    assert info["triples"] == codex_s.num_triples == 32888
    code, out, _ = cli(capsys, "stats")
    assert code == 0 and "32,888" in out


def test_import_snapshot_then_stats(tmp_path, capsys) -> None:
    snap = tmp_path / "snap"
    code, out, err = cli(capsys, "import", "codex-s", "--out", snap)
    assert code == 0, err
    assert "32,888 triples" in out
    code, out, _ = cli(capsys, "stats", "--kg", snap, "--json")
    assert code == 0
    assert json.loads(out)["triples"] == 32888
    code, _, err = cli(capsys, "import", "codex-s", "--out", snap)
    assert code == 2 and "--overwrite" in one_line_error(err)
    canon = tmp_path / "canon"
    code, _, err = cli(capsys, "import", "codex-s", "--canonical", "--out", canon)
    assert code == 0, err
    code, out, _ = cli(capsys, "stats", "--kg", canon, "--json")
    assert json.loads(out)["triples"] == 32888


def test_apis(tmp_path, capsys) -> None:
    code, out, err = cli(capsys, "apis", "--out", tmp_path)
    assert code == 0, err
    n = int(re.search(r"wrote (\d+) APIs", out).group(1))
    openai = json.loads((tmp_path / "openai_tools.json").read_text())
    xlam = json.loads((tmp_path / "xlam_tools.json").read_text())
    toolbench = json.loads((tmp_path / "toolbench_tool.json").read_text())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    names = [t["function"]["name"] for t in openai]
    assert len(names) == len(set(names)) == n == len(xlam) == len(toolbench["api_list"])
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name) for name in names)
    assert [t["name"] for t in xlam] == names
    assert {"get_intersection_of", "get_union_of", "get_negation_of"} <= set(names)
    assert "apis" in manifest
    assert not list(tmp_path.glob("*.tmp"))


def test_patterns(capsys) -> None:
    code, out, _ = cli(capsys, "patterns")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert listed[:14] == list(BETAE)
    code, out, _ = cli(capsys, "patterns", "2p:2,r1(s1,e1)&r2(e1,f)")
    assert code == 0 and out.count("# weight") == 2 and "# weight 2" in out
    code, _, err = cli(capsys, "patterns", "2p,nope")
    assert code == 2 and "unknown pattern 'nope'" in one_line_error(err)


def test_call(capsys) -> None:
    code, out, _ = cli(capsys, "call", "get_birthplace_of_person", '{"person": "Douglas Adams"}')
    assert code == 0
    assert json.loads(out) == ["Cambridge"]
    code, out, _ = cli(capsys, "call", "get_birthplace_of_person", '{"person": "Nobody Atall"}')
    assert code == 1 and json.loads(out)["error"] == "unknown_entity"
    code, out, _ = cli(capsys, "call", "no_such_api", "{}")
    assert code == 1 and json.loads(out)["error"] == "unknown_api"
    code, out, _ = cli(capsys, "call", "get_birthplace_of_person", "{bad")
    assert code == 1 and json.loads(out)["error"] == "malformed_arguments"


def test_verify_detects_tampering(runs, tmp_path, tmp_path_factory, capsys) -> None:
    """Edit one recorded observation in a Parquet shard: --strict exits 1 naming the sample."""
    out = tmp_path / "ds"
    shutil.copytree(run_format(runs, "openai", tmp_path_factory, capsys), out)
    shard = sorted((out / "data").glob("train-*.parquet"))[1]
    frame = pl.read_parquet(shard)
    traces = frame["trace"].to_list()
    row = next(i for i, t in enumerate(traces) if orjson.loads(t))
    steps = orjson.loads(traces[row])
    steps[0]["observation"] = json.dumps(["Atlantis"], separators=(",", ":"))
    traces[row] = orjson.dumps(steps).decode()
    frame.with_columns(pl.Series("trace", traces)).write_parquet(shard)
    victim = frame["id"][row]

    code, stdout, _ = cli(capsys, "verify", out, "--strict")
    assert code == 1
    assert f"{victim}: observation_changed" in stdout
    assert "Atlantis" in stdout
    assert re.search(r": 1 no longer hold", stdout)
    code, stdout, _ = cli(capsys, "verify", out)  # exit 1 without --strict too
    assert code == 1 and victim in stdout
    code, stdout, _ = cli(capsys, "verify", shard, "--strict")  # one shard
    assert code == 1 and victim in stdout
    code, _, err = cli(capsys, "verify", tmp_path / "empty-dir-x")
    assert code == 2
    one_line_error(err)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_set_ops_flag_and_toml_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--set-ops tools (or set_ops in TOML) writes set-operation calls; default leaves the
    config dump without the key; a bad value is one line."""
    base = ("generate", "-n", "40", "--patterns", "2i,3in,triangle", "-q")
    code, _, err = cli(capsys, *base, "--out", tmp_path / "a", "--set-ops", "tools")
    assert code == 0, err
    text = (tmp_path / "a" / "train.jsonl").read_text()
    assert "get_intersection_of" in text and "get_negation_of" in text
    conf = tmp_path / "run.toml"
    conf.write_text('set_ops = "tools"\n')
    code, _, err = cli(capsys, *base, "--out", tmp_path / "b", "--config", conf)
    assert code == 0, err
    assert (tmp_path / "b" / "train.jsonl").read_text() == text
    code, _, err = cli(capsys, *base, "--out", tmp_path / "c")
    assert code == 0, err
    c_text = (tmp_path / "c" / "train.jsonl").read_text()
    assert "get_intersection_of" not in c_text
    assert '"set_ops"' not in (tmp_path / "c" / "manifest.json").read_text()
    code, _, err = cli(capsys, *base, "--out", tmp_path / "d", "--set-ops", "calls")
    assert code == 2 and "set_ops" in one_line_error(err)
