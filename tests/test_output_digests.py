"""Output is byte-identical to the recorded digests (see ``tests/output_digests.py``): a change
of layout or code that is not meant to change what users get must leave every digest as it was.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import output_digests as od


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(od.RECORDED.read_text())


def test_recorded_digests_cover_every_setting(recorded: dict) -> None:
    """The record holds all 20 format x set-op x call-style combinations on both KGs."""
    want = {f"{f}/{s}/{c}" for f, s, c in od.combos()}
    assert len(want) == 20
    for name in od.FRAME_SAMPLES:
        assert set(recorded["frames"][name]) == want
    assert set(recorded["files"]) == {label for label, _ in od.generate_runs()}


@pytest.mark.parametrize("name", sorted(od.FRAME_SAMPLES))
def test_frames_match_recorded_digests(name: str, recorded: dict) -> None:
    got = od.frame_digests(name, od.load_kg(name))
    changed = sorted(k for k, v in got.items() if recorded["frames"][name].get(k) != v)
    assert not changed, (
        f"build_dataset output on {name} changed for {changed}; if intended, re-record with "
        "`python tests/output_digests.py` and say so in the commit"
    )


@pytest.mark.parametrize("label", [label for label, _ in od.generate_runs()])
def test_generated_files_match_recorded_digests(label: str, recorded: dict, tmp_path: Path) -> None:
    settings = dict(od.generate_runs())[label]
    got = od.run_files(tmp_path, label, settings)
    want = recorded["files"][label]
    assert set(got) == set(want), f"{label}: files differ: {sorted(set(got) ^ set(want))}"
    changed = sorted(k for k in got if got[k] != want[k])
    assert not changed, f"{label}: these files changed: {changed}"


def test_digest_sees_a_one_character_change(tmp_path: Path) -> None:
    """The digest is not blind: one changed character in one record changes it."""
    import polars as pl

    frame = pl.DataFrame({"a": ["x", "y"], "b": [[1], [2, 3]]})
    assert od.frame_digest(frame) != od.frame_digest(frame.with_columns(pl.lit("x").alias("a")))
    (tmp_path / "t.jsonl").write_text('{"a": 1}\n')
    before = od.file_digests(tmp_path)
    (tmp_path / "t.jsonl").write_text('{"a": 2}\n')
    assert od.file_digests(tmp_path) != before
