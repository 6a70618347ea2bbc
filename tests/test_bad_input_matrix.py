"""The bad-input matrix of the README ("What goes wrong, and what you see"): one case per
row, each asserting the exact error class and that the message names the problem and
where it is (file:line:column, the column of a pattern, the key, the setting)."""

from __future__ import annotations

import errno
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from kg2tool import cli
from kg2tool.engine import SamplingError, sample_queries
from kg2tool.errors import InputError, PatternError, SnapshotError, UnknownNameError
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.io import read_kg_dir, read_triples
from kg2tool.kg.tables import KGTables
from kg2tool.patterns import UnknownPatternError, parse_patterns, parse_spec
from kg2tool.pipeline import driver as pipeline
from kg2tool.tools.catalog import ApiCatalog
from kg2tool.tools.runtime import ToolRuntime


@pytest.fixture(scope="module")
def tiny() -> KnowledgeGraph:
    t = pl.DataFrame(
        {"head": ["a", "b", "c"], "relation": ["r", "r", "s"], "tail": ["b", "c", "a"]}
    )
    return KnowledgeGraph.from_tables(KGTables(triples=t))


@pytest.fixture(scope="module")
def runtime(codex_s: KnowledgeGraph) -> ToolRuntime:
    return ToolRuntime(codex_s, ApiCatalog.from_graph(codex_s))


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# ----- input files --------------------------------------------------------------------


def test_malformed_triples_line(tmp_path: Path) -> None:
    p = write(tmp_path / "kg.tsv", "a\tr\tb\nc\tr\n")
    with pytest.raises(InputError, match=r"expected 3 fields") as info:
        read_triples(p)
    assert str(info.value).startswith(f"{p}:2: ")


def test_empty_field_names_line_and_column(tmp_path: Path) -> None:
    p = write(tmp_path / "kg.tsv", "a\tr\tb\nc\t\td\n")
    with pytest.raises(InputError, match="empty relation field") as info:
        read_triples(p)
    assert str(info.value).startswith(f"{p}:2:2: ")  # line 2, field 2


def test_empty_triples_file(tmp_path: Path) -> None:
    p = write(tmp_path / "kg.tsv", "")
    with pytest.raises(InputError, match="empty file") as info:
        KnowledgeGraph.load(p)
    assert str(p) in str(info.value)


def test_unknown_key_in_label_file(tmp_path: Path) -> None:
    root = tmp_path / "kg"
    write(root / "triples.tsv", "a\tr\tb\n")
    write(root / "entities.tsv", "key\tlabel\tdescription\na\tA\t\nzz\tZ\t\n")
    with pytest.raises(InputError, match="'zz' is not an entity") as info:
        read_kg_dir(root, strict=True)
    assert (info.value.path, info.value.line) == (str(root / "entities.tsv"), 3)
    assert str(info.value).startswith(f"{root / 'entities.tsv'}:3")
    # without strict the row is skipped and counted, the rest is read
    kg = read_kg_dir(root)
    assert kg.entities.rows() == [("a", "A", None)]
    assert kg.report["skipped_unknown_keys.entities.tsv"] == 1


def test_unknown_kg_name() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown KG 'codex-z'.*did you mean codex-s"):
        KnowledgeGraph.load("codex-z")


# ----- patterns -----------------------------------------------------------------------


def test_pattern_syntax_error_points_at_the_column() -> None:
    with pytest.raises(PatternError, match=r"unexpected '&'.*\(at column 11\)") as info:
        parse_spec("r1(s1,e1)&&r2(e1,f)")
    assert "r1(s1,e1)&&r2(e1,f)" in str(info.value)


def test_unknown_pattern_name_suggests() -> None:
    with pytest.raises(UnknownPatternError, match=r"unknown pattern '2pp'.*did you mean"):
        parse_patterns("1p,2pp")


def test_unknown_entity_in_pattern_constraints(codex_s: KnowledgeGraph) -> None:
    with pytest.raises(UnknownNameError, match="unknown entity key 'Q999999999'"):
        sample_queries(codex_s, "2p[s1=Q999999999]", 5)


def test_unknown_relation_in_pattern_constraints(codex_s: KnowledgeGraph) -> None:
    with pytest.raises(UnknownNameError, match="unknown relation key 'P1999'"):
        sample_queries(codex_s, "2p[r1=P1999]", 5)


def test_constraint_on_a_slot_the_pattern_lacks() -> None:
    with pytest.raises(
        PatternError, match=r"s7 does not occur in r1\(s1,e1\)&r2\(e1,f\) \(at column 4\)"
    ):
        parse_spec("2p[s7=Q42]")


# ----- sampling limits ----------------------------------------------------------------


def test_impossible_constraints_stop_with_rejection_counts(codex_s: KnowledgeGraph) -> None:
    t0 = time.perf_counter()
    with pytest.raises(
        SamplingError, match=r"only 0 of 20 .*rejections: .*too_few_answers: [\d,]+"
    ):
        sample_queries(codex_s, "pi", 20, min_answers=50_000, max_answers=None, threads=2)
    assert time.perf_counter() - t0 < 30


def test_contradictory_answer_bounds(codex_s: KnowledgeGraph) -> None:
    with pytest.raises(PatternError, match="impossible constraints: max_answers 2 < min_answers 5"):
        sample_queries(codex_s, "1p", 5, min_answers=5, max_answers=2)


def test_huge_n_on_a_tiny_kg_stops(tiny: KnowledgeGraph) -> None:
    t0 = time.perf_counter()
    with pytest.raises(SamplingError, match=r"only \d+ of 1,000,000,000,000 .*duplicate"):
        sample_queries(tiny, "1p", 10**12, max_answers=None)
    assert time.perf_counter() - t0 < 30
    batch = sample_queries(tiny, "1p", 10**12, max_candidates=1000, strict=False)
    assert batch.candidates == 1000 and batch.exhausted


# ----- snapshots ----------------------------------------------------------------------


def test_corrupt_snapshot(tiny: KnowledgeGraph, tmp_path: Path) -> None:
    snap = tiny.save_snapshot(tmp_path / "snap")
    f = snap / "arrays" / "out.nbr.npy"
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(SnapshotError, match="checksum mismatch") as info:
        KnowledgeGraph.load(snap)
    assert str(f) in str(info.value)


def test_snapshot_of_another_version(tiny: KnowledgeGraph, tmp_path: Path) -> None:
    snap = tiny.save_snapshot(tmp_path / "snap")
    m = json.loads((snap / "manifest.json").read_text())
    m["version"] = 99
    (snap / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(SnapshotError, match=r"version 99.*kg2tool import"):
        KnowledgeGraph.load(snap)


# ----- the runtime ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "arguments", "kind", "words"),
    [
        ("get_birthplace_of_persson", {"person": "Douglas Adams"}, "unknown_api", "no API"),
        ("get_birthplace_of_person", "{not json", "malformed_arguments", "not valid JSON"),
        ("get_birthplace_of_person", "[1, 2]", "malformed_arguments", "JSON object"),
        ("get_birthplace_of_person", {}, "missing_argument", "needs argument"),
        (
            "get_birthplace_of_person",
            {"person": "Douglas Adams", "x": 1},
            "unexpected_argument",
            "takes only",
        ),
        ("get_birthplace_of_person", {"person": 42}, "invalid_argument", "must be a string"),
        ("get_birthplace_of_person", {"person": "Douglas Adamz"}, "unknown_entity", "no entity"),
        ("get_intersection_of", {"first": "x", "second": []}, "invalid_argument", "list of"),
    ],
)
def test_invalid_runtime_calls_are_structured_errors(runtime, api, arguments, kind, words) -> None:
    result = runtime.call(api, arguments)
    assert not result.ok and result.result == []
    assert result.error["error"] == kind
    assert words in result.error["message"]
    assert json.loads(result.to_json())["error"] == kind


# ----- output: unwritable, full disk, interrupted ----------------------------------------


GEN = {"kg": "codex-s", "patterns": "1p,2p", "num_samples": 12, "shard_size": 4, "seed": 5}


def digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.suffix in (".parquet", ".jsonl") and ".progress" not in p.parts
    }


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("ref") / "out"
    pipeline.generate(out=str(out), progress=False, threads=1, **GEN)
    return digests(out)


def test_unwritable_output(tmp_path: Path) -> None:
    blocker = write(tmp_path / "file", "x")
    with pytest.raises(InputError, match="cannot write to the output directory") as info:
        pipeline.generate(out=str(blocker / "out"), progress=False, **GEN)
    assert str(blocker / "out") in str(info.value)


def _fail_on_shard(monkeypatch: pytest.MonkeyPatch, shard: int, exc: Callable[[], BaseException]):
    """Make the Parquet write of one shard fail after writing half of its bytes."""
    real = pl.DataFrame.write_parquet

    def write_parquet(self: pl.DataFrame, file: Any, *args: Any, **kwargs: Any) -> Any:
        if f"-{shard:05d}-of-" in str(file):
            real(self, file, *args, **kwargs)
            data = Path(file).read_bytes()
            Path(file).write_bytes(data[: len(data) // 2])
            raise exc()
        return real(self, file, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", write_parquet)


def test_full_disk_leaves_no_complete_looking_shard_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference_run: dict[str, str]
) -> None:
    out = tmp_path / "out"
    _fail_on_shard(monkeypatch, 1, lambda: OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match="No space left on device"):
        pipeline.generate(out=str(out), progress=False, threads=1, **GEN)
    assert (out / ".progress" / "shard-00000.json").exists()
    assert not (out / ".progress" / "shard-00001.json").exists()
    assert not list((out / "data").glob("*-00001-of-*.parquet"))  # no final-named half file
    assert not (out / "manifest.json").exists()
    monkeypatch.undo()
    report = pipeline.generate(out=str(out), progress=False, threads=2, **GEN)
    assert report.shards_skipped == 1 and report.written == GEN["num_samples"]
    assert not list(out.rglob(".*.tmp"))
    assert digests(out) == reference_run


def test_full_disk_through_the_cli_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_on_shard(monkeypatch, 0, lambda: OSError(errno.ENOSPC, "No space left on device"))
    argv = ["generate", "--out", str(tmp_path / "o"), "-n", "4", "--patterns", "1p", "-q"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err
    assert err.startswith("kg2tool: error: ") and "No space left on device" in err


def test_interrupted_run_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference_run: dict[str, str]
) -> None:
    out = tmp_path / "out"
    _fail_on_shard(monkeypatch, 2, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        pipeline.generate(out=str(out), progress=False, threads=1, **GEN)
    monkeypatch.undo()
    report = pipeline.generate(out=str(out), progress=False, threads=1, **GEN)
    assert report.shards_skipped == 2
    assert digests(out) == reference_run


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline.generate(out=str(out), progress=False, **{**GEN, "num_samples": 4})
    with pytest.raises(InputError, match="holds a run with different settings") as info:
        pipeline.generate(out=str(out), progress=False, **{**GEN, "num_samples": 4, "seed": 6})
    assert str(out) in str(info.value)


# ----- CLI --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["generate", "--out", "{tmp}/o", "--patterns", "1p,r1(s1,f", "-q"], "column"),
        (["generate", "--out", "{tmp}/o", "--format", "csv", "-q"], "unknown format 'csv'"),
        (["generate", "--config", "{tmp}/c.toml", "--out", "{tmp}/o"], "unknown setting(s) colour"),
        (["stats", "--kg", "{tmp}/c.toml"], "c.toml"),
    ],
)
def test_bad_cli_arguments_one_line_exit_2(tmp_path, capsys, argv, words) -> None:
    write(tmp_path / "c.toml", 'colour = "blue"\n')
    code = cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("kg2tool: error: ") and words in lines[0]
    # one line, or for a pattern the line plus the formula and a caret under the column
    assert len(lines) == 1 or (len(lines) == 3 and lines[2].strip() == "^")
    assert "Traceback" not in err


def test_cli_usage_error_exit_2(capsys) -> None:
    assert cli.main(["generate", "-n", "lots"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "-n" in err


def test_ids_out_of_range_at_the_graph(tiny: KnowledgeGraph) -> None:
    with pytest.raises(IndexError, match=r"entity id 3 out of range \[0, 3\)"):
        tiny.neighbors(np.array([0, 3], np.int32), 0)
