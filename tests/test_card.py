"""The dataset card: Hub metadata that matches the files, every column documented, an example
per pattern, one record, source and licence, settings that reproduce the run, shortfalls, and
no absolute path."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import polars as pl
import pytest
import yaml

from kg2tool.dataset.card import COLUMN_DOCS, kg_info, kg_name
from kg2tool.pipeline.config import GenerateConfig
from kg2tool.pipeline.driver import generate


def _front_matter(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def _section(body: str, title: str) -> str:
    start = body.index(f"## {title}\n")
    end = body.find("\n## ", start + 1)
    return body[start : end if end >= 0 else None]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("card") / "run"
    generate(out=str(out), num_samples=120, seed=3, shard_size=50, progress=False)
    return out


def test_front_matter_points_at_the_parquet_files(run: Path) -> None:
    meta, _ = _front_matter((run / "README.md").read_text())
    assert meta["license"] == "mit"
    assert meta["language"] == ["en"]
    assert meta["size_categories"] == ["n<1K"]
    assert "tool-use" in meta["tags"]
    (config,) = meta["configs"]
    splits = {f["split"]: f["path"] for f in config["data_files"]}
    frame = pl.read_parquet(run / "data")
    assert set(splits) == set(frame["split"].unique())
    for split, glob in splits.items():
        files = sorted(run.glob(glob))
        assert files, glob
        assert (
            sum(pl.read_parquet(f).height for f in files)
            == frame.filter(pl.col("split") == split).height
        )


def test_every_column_documented_and_every_pattern_shown(run: Path) -> None:
    _, body = _front_matter((run / "README.md").read_text())
    frame = pl.read_parquet(run / "data")
    columns = _section(body, "Columns")
    for col in frame.columns:
        assert f"| `{col}` | {COLUMN_DOCS[col]} |" in columns
    patterns = _section(body, "Pattern codes")
    for p, n in frame.group_by("pattern").len().iter_rows():
        row = next(line for line in patterns.splitlines() if line.startswith(f"| {p} |"))
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[1] == f"{n:,}"
        example = frame.filter(pl.col("pattern") == p)
        assert cells[3] in set(example["question"].str.replace_all("|", "\\|", literal=True))
        assert cells[2].strip("`") == example["formula"][0].replace("|", "\\|")


def test_example_record_is_the_first_train_line(run: Path) -> None:
    _, body = _front_matter((run / "README.md").read_text())
    block = _section(body, "An example record").split("```json\n", 1)[1].split("\n```", 1)[0]
    first = (run / "train.jsonl").read_text().splitlines()[0]
    assert json.loads(block) == json.loads(first)


def test_no_absolute_path_and_source_given(run: Path) -> None:
    text = (run / "README.md").read_text()
    assert str(run) not in text and str(run.parent) not in text
    assert "CoDEx-S" in text and "safavi2020codex" in text
    assert "2506.21071" in text


def test_reproduce_settings_give_the_same_bytes(run: Path, tmp_path: Path) -> None:
    _, body = _front_matter((run / "README.md").read_text())
    toml_text = _section(body, "Reproduce").split("```toml\n", 1)[1].split("\n```", 1)[0]
    settings = tomllib.loads(toml_text)
    assert "out" not in settings
    (tmp_path / "run.toml").write_text(toml_text)
    cfg = GenerateConfig.from_file(tmp_path / "run.toml", out=str(tmp_path / "again"))
    generate(cfg, progress=False)
    for name in ("train.jsonl", "validation.jsonl", "test.jsonl"):
        if (run / name).exists():
            assert (tmp_path / "again" / name).read_bytes() == (run / name).read_bytes()


def test_shortfall_is_reported(tmp_path: Path) -> None:
    # P26 (spouse) with the answer's own relation fixed: few distinct 1p queries exist, so a
    # large request runs the pattern out and the other pattern takes its share.
    out = tmp_path / "short"
    report = generate(
        out=str(out), num_samples=400, patterns="1p[r1=P26],2p", seed=1, progress=False
    )
    text = (out / "README.md").read_text()
    shortfalls = _section(_front_matter(text)[1], "Known shortfalls")
    if report.exhausted:
        for p in report.exhausted:
            assert f"pattern `{p}` ran out of distinct queries" in shortfalls
    else:
        assert "none: every sample asked for was written" in shortfalls
    assert report.exhausted, "the constrained pattern was expected to run out"


def test_user_kg_gets_an_unknown_licence(tmp_path: Path) -> None:
    kg = tmp_path / "my-kg.tsv"
    # keys that are words (opaque ids such as "e12" would be left out as raw keys)
    words = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
             "november oscar papa quebec romeo sierra tango").split()  # fmt: skip
    n = len(words)
    rows = [f"{w}\tlinks_to\t{words[(i * 7 + 3) % n]}" for i, w in enumerate(words)]
    rows += [f"{w}\tpart_of\t{words[(i * 3 + 1) % n]}" for i, w in enumerate(words)]
    kg.write_text("\n".join(rows) + "\n")
    out = tmp_path / "user"
    generate(out=str(out), kg=str(kg), num_samples=20, patterns="1p", progress=False)
    text = (out / "README.md").read_text()
    meta, body = _front_matter(text)
    assert meta["license"] == "unknown"
    assert "`my-kg`, supplied by the user" in body
    assert str(tmp_path) not in text


@pytest.mark.parametrize(
    ("kg", "name", "licence"),
    [
        ("codex-s", "codex-s", "mit"),
        ("/data/kgs/fb15k-237/train.txt", "fb15k-237", "cc-by-2.5"),
        ("wn18rr", "wn18rr", "other"),
        ("some/dir/my_graph.tsv", "my_graph", None),
    ],
)
def test_kg_name_and_info(kg: str, name: str, licence: str | None) -> None:
    assert kg_name(kg) == name
    info = kg_info(kg)
    assert (info.license if info else None) == licence
