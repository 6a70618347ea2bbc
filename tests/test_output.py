"""The dataset on disk (kg2tool.dataset.output): the one copy loop with and without a kernel
copy, appends at recorded offsets, ToolBench's one-array files, and sections other parts add
to the card."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import polars as pl
import pytest

from kg2tool import dataset
from kg2tool.atomic import file_mode
from kg2tool.dataset import output
from kg2tool.dataset.assemble import SampleContext
from kg2tool.dataset.card import CardSection, write_card


def _parts(tmp_path: Path, n: int = 5) -> list[Path]:
    parts = []
    for i in range(n):
        p = tmp_path / f"part-{i}.jsonl"
        p.write_bytes(b"".join(b'{"i":%d,"k":%d}\n' % (i, k) for k in range(i * 3)))
        parts.append(p)
    return parts


@pytest.fixture(params=["kernel", "plain"])
def copy_mode(request, monkeypatch) -> str:
    """Both paths of the copy loop: os.copy_file_range, and reads + positioned writes where
    the call is missing or refused."""
    if request.param == "plain":

        def refused(*_args, **_kw):
            raise OSError("copy_file_range refused")

        monkeypatch.setattr(os, "copy_file_range", refused, raising=False)
    return request.param


@pytest.mark.parametrize("workers", [1, 3])
def test_concat_files_is_the_parts_in_order(tmp_path, copy_mode, workers) -> None:
    parts = _parts(tmp_path)
    dst = tmp_path / "all.jsonl"
    dst.write_bytes(b"left over")
    output._concat_files(parts, dst, workers=workers)
    assert dst.read_bytes() == b"".join(p.read_bytes() for p in parts)


def test_append_file_cuts_then_appends(tmp_path, copy_mode) -> None:
    a, b = _parts(tmp_path, 3)[1:]
    dst = tmp_path / "split.jsonl"
    size = output.append_file(a, dst, 0)
    assert size == a.stat().st_size
    dst.write_bytes(dst.read_bytes() + b"half a shard that died")  # a killed append
    assert output.append_file(b, dst, size) == size + b.stat().st_size
    assert dst.read_bytes() == a.read_bytes() + b.read_bytes()
    assert stat.S_IMODE(dst.stat().st_mode) == file_mode()


def test_write_lines_at_cuts_at_the_offset(tmp_path) -> None:
    path = tmp_path / "records" / "train.jsonl"
    first = output.Lines.of(pl.Series(["a", "bb"]))
    at = output.write_lines_at(path, 0, first, atomic=True)
    assert path.read_bytes() == b"a\nbb\n" and at == 5
    assert output.write_lines_at(path, 2, output.Lines.of(pl.Series(["c"]))) == 4
    assert path.read_bytes() == b"a\nc\n"


def test_toolbench_split_file_is_one_json_array(tmp_path) -> None:
    shards = [tmp_path / "records" / f"train-{i:05d}-of-00002.jsonl" for i in range(2)]
    shards[0].parent.mkdir()
    shards[0].write_bytes(b'[{"a":1},{"a":2}]\n[{"a":3}]\n')
    shards[1].write_bytes(b"[]\n\n" + b'[{"a":4}]\n')
    files = [str(p.relative_to(tmp_path)) for p in shards]
    output.finalize_outputs(tmp_path, files, "toolbench", {"seed": 0})
    assert json.loads((tmp_path / "train.json").read_text()) == [{"a": k} for k in (1, 2, 3, 4)]
    assert (tmp_path / "README.md").is_file()


def test_sections_end_the_card(tmp_path) -> None:
    frame = pl.DataFrame(
        {
            "pattern": ["1p"],
            "split": ["train"],
            "n_answers": [1],
            "num_calls": [1],
            "qlen": [20],
            "empty": [False],
            "recovery": [False],
        }
    )
    extra = CardSection("Extra", ["first line", "", "- a point"])
    write_card(frame, tmp_path, "openai", {"seed": 0}, sections=[extra])
    text = (tmp_path / "README.md").read_text()
    assert text.endswith("\n## Extra\n\nfirst line\n\n- a point\n")
    assert text.index("## Distributions") < text.index("## Extra")


def test_old_context_name_still_imports() -> None:
    assert dataset.Context is SampleContext is dataset.SampleContext
