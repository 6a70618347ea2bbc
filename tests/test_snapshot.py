"""Snapshots: a save/open round trip is lossless and memory-mapped; damage is a SnapshotError.

Every corruption below is applied to a fresh snapshot of CoDEx-S and must come back as a
SnapshotError whose message says what is wrong, never as a crash or a silently wrong graph.
"Forged" cases also rewrite the manifest's size and CRC, as a careless tool or an attacker
would, so that only the native re-validation stands between the bytes and the engine.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kg2tool.errors import SnapshotError
from kg2tool.kg import snapshot as snapshot_module
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.tables import KGTables

TABLES = ("entities", "relations", "entity_types", "type_labels")


@pytest.fixture(scope="module")
def codex() -> KnowledgeGraph:
    return KnowledgeGraph.load("codex-s")


@pytest.fixture
def snap(codex: KnowledgeGraph, tmp_path: Path) -> Path:
    return codex.save_snapshot(tmp_path / "codex-s.snapshot")


def all_neighbours(kg: KnowledgeGraph, inverse: bool) -> tuple[np.ndarray, np.ndarray]:
    ents = np.repeat(np.arange(kg.num_entities, dtype=np.int32), kg.num_relations)
    rels = np.tile(np.arange(kg.num_relations, dtype=np.int32), kg.num_entities)
    return kg.neighbors(ents, rels, inverse=inverse)


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def write_manifest(path: Path, m: dict) -> None:
    (path / "manifest.json").write_text(json.dumps(m))


def forge(path: Path, rel: str, **info: object) -> None:
    """Make the manifest agree with the current bytes of `rel` (size, CRC, extra fields)."""
    m = manifest(path)
    data = (path / rel).read_bytes()
    m["files"].setdefault(rel, {}).update(bytes=len(data), crc32=zlib.crc32(data), **info)
    write_manifest(path, m)


def flip(file: Path, start: int, count: int = 8) -> None:
    b = bytearray(file.read_bytes())
    for i in range(start, start + count):
        b[i] ^= 0xFF
    file.write_bytes(bytes(b))


def npy_data_offset(file: Path) -> int:
    with open(file, "rb") as fh:
        np.lib.format.read_magic(fh)
        np.lib.format.read_array_header_1_0(fh)
        return fh.tell()


# ----- round trip ---------------------------------------------------------------------


def test_round_trip(codex: KnowledgeGraph, snap: Path) -> None:
    back = KnowledgeGraph.open_snapshot(snap)
    assert (back.num_entities, back.num_relations, back.num_triples) == (
        codex.num_entities,
        codex.num_relations,
        codex.num_triples,
    )
    assert back.native.num_types == codex.native.num_types > 0
    assert back.native.arrays.keys() == codex.native.arrays.keys()
    for name, arr in codex.native.arrays.items():
        got = back.native.arrays[name]
        assert got.dtype == arr.dtype, name
        np.testing.assert_array_equal(got, arr, name)
    for name in TABLES:
        assert getattr(back, name).equals(getattr(codex, name)), name
    for inverse in (False, True):
        for got, want in zip(
            all_neighbours(back, inverse), all_neighbours(codex, inverse), strict=True
        ):
            np.testing.assert_array_equal(got, want)
    assert back.triples.equals(codex.triples)
    assert back.report == codex.report
    np.testing.assert_array_equal(back.native.degrees(True), codex.native.degrees(True))


def test_load_dispatches_to_snapshot(codex: KnowledgeGraph, snap: Path) -> None:
    back = KnowledgeGraph.load(snap)
    assert back.source == str(snap)
    assert back.entities.equals(codex.entities)


def test_round_trip_without_types(tmp_path: Path) -> None:
    triples = pl.DataFrame({"head": ["a", "b"], "relation": ["r", "r"], "tail": ["b", "c"]})
    kg = KnowledgeGraph.from_tables(KGTables(triples=triples))
    back = KnowledgeGraph.open_snapshot(kg.save_snapshot(tmp_path / "s"))
    assert back.native.num_types == 0 and back.entity_types.height == 0
    assert back.native.neighbor_view(0, 0).tolist() == [1]
    assert back.entities.equals(kg.entities)


def test_open_is_memory_mapped(snap: Path) -> None:
    back = KnowledgeGraph.open_snapshot(snap)
    for name, arr in back.native.arrays.items():
        assert isinstance(arr, np.memmap) or isinstance(arr.base, np.memmap), name
        assert not arr.flags.writeable, name
    h, r = (int(x) for x in back.triples.row(0)[:2])
    view = back.native.neighbor_view(h, r)  # a view into the mapped file, not a copy
    assert len(view) > 0 and np.shares_memory(view, back.native.arrays["out.nbr"])


# ----- corrupt snapshots --------------------------------------------------------------


def _missing_manifest(p: Path) -> None:
    (p / "manifest.json").unlink()


def _manifest_not_json(p: Path) -> None:
    (p / "manifest.json").write_text('{"format": "kg2tool-snapshot", "vers')


def _manifest_not_utf8(p: Path) -> None:
    (p / "manifest.json").write_bytes(b"\xff\xfe{}")


def _manifest_a_list(p: Path) -> None:
    (p / "manifest.json").write_text("[1, 2]")


def _edit_manifest(**changes: object) -> Callable[[Path], None]:
    def edit(p: Path) -> None:
        m = manifest(p)
        m.update(changes)
        write_manifest(p, m)

    return edit


def _edit_meta(key: str, value: object) -> Callable[[Path], None]:
    def edit(p: Path) -> None:
        m = manifest(p)
        if value is None:
            del m["meta"][key]
        else:
            m["meta"][key] = value
        write_manifest(p, m)

    return edit


def _remove(rel: str) -> Callable[[Path], None]:
    return lambda p: (p / rel).unlink()


def _truncate(rel: str, keep: float = 0.5) -> Callable[[Path], None]:
    def cut(p: Path) -> None:
        data = (p / rel).read_bytes()
        (p / rel).write_bytes(data[: int(len(data) * keep)])

    return cut


def _flip_array(rel: str, at_end: bool = False) -> Callable[[Path], None]:
    def damage(p: Path) -> None:
        f = p / rel
        flip(f, f.stat().st_size - 8 if at_end else npy_data_offset(f))

    return damage


def _flip_middle(rel: str) -> Callable[[Path], None]:
    return lambda p: flip(p / rel, (p / rel).stat().st_size // 2, 64)


def _manifest_dtype(rel: str, dtype: str) -> Callable[[Path], None]:
    def edit(p: Path) -> None:
        m = manifest(p)
        m["files"][rel]["dtype"] = dtype
        write_manifest(p, m)

    return edit


def _forged_array(name: str, make: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    """Replace an array by `make(old)` and forge a consistent manifest entry for it."""

    def replace(p: Path) -> None:
        rel = f"arrays/{name}.npy"
        new = make(np.load(p / rel))
        np.save(p / rel, new, allow_pickle=False)
        forge(p, rel, dtype=str(new.dtype), shape=list(new.shape))

    return replace


def _forged_drop(rel: str) -> Callable[[Path], None]:
    def drop(p: Path) -> None:
        (p / rel).unlink()
        m = manifest(p)
        del m["files"][rel]
        write_manifest(p, m)

    return drop


def _forged_table(
    name: str, make: Callable[[pl.DataFrame], pl.DataFrame]
) -> Callable[[Path], None]:
    def replace(p: Path) -> None:
        rel = f"tables/{name}.parquet"
        make(pl.read_parquet(p / rel)).write_parquet(p / rel)
        forge(p, rel)

    return replace


def _big_neighbour(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[-1] = 2**31 - 1
    return a


# case: (damage, verify, message pattern)
CORRUPTIONS: dict[str, tuple[Callable[[Path], None], bool, str]] = {
    "missing manifest": (_missing_manifest, True, r"not a kg2tool snapshot \(no manifest.json\)"),
    "manifest not JSON": (_manifest_not_json, True, r"manifest.json: corrupt manifest"),
    "manifest not UTF-8": (_manifest_not_utf8, True, r"manifest.json: corrupt manifest"),
    "manifest a list": (_manifest_a_list, True, r"not a kg2tool snapshot manifest"),
    "wrong format name": (
        _edit_manifest(format="other-snapshot"),
        True,
        r"manifest.json: not a kg2tool snapshot manifest",
    ),
    "wrong version": (
        _edit_manifest(version=2),
        True,
        r"snapshot format version 2, this kg2tool reads version 1; rebuild it",
    ),
    "no version": (_edit_manifest(version=None), True, r"snapshot format version None"),
    "no file list": (_edit_manifest(files=None), True, r"manifest has no file list"),
    "missing array file": (_remove("arrays/out.nbr.npy"), True, r"out.nbr.npy: missing from"),
    "missing table file": (
        _remove("tables/relations.parquet"),
        True,
        r"relations.parquet: missing",
    ),
    "truncated array file": (
        _truncate("arrays/in.dir_off.npy"),
        False,
        r"in.dir_off.npy: \d+ bytes, the manifest says \d+ \(truncated\?\)",
    ),
    "truncated table file": (
        _truncate("tables/entities.parquet", 0.9),
        False,
        r"entities.parquet: \d+ bytes, the manifest says \d+ \(truncated\?\)",
    ),
    "flipped bytes in an array": (
        _flip_array("arrays/out.nbr.npy"),
        True,
        r"out.nbr.npy: checksum mismatch \(the file is corrupt\)",
    ),
    "flipped bytes, no checksum: invariant": (
        _flip_array("arrays/out.nbr.npy", at_end=True),
        False,
        r"inconsistent snapshot \(invalid graph arrays: out-adjacency: neighbour",
    ),
    "flipped rel_cum, no checksum: invariant": (
        _flip_array("arrays/in.rel_cum.npy"),
        False,
        r"invalid graph arrays: in-adjacency: relation edge counts wrong",
    ),
    "flipped npy header, no checksum": (
        lambda p: flip(p / "arrays/out.ent_dir.npy", 0, 6),
        False,
        r"out.ent_dir.npy: unreadable",
    ),
    "corrupt table": (
        _flip_middle("tables/entities.parquet"),
        True,
        r"entities.parquet: checksum mismatch",
    ),
    "corrupt table, no checksum": (
        _flip_middle("tables/entities.parquet"),
        False,
        r"entities.parquet: unreadable",
    ),
    "table not parquet, no checksum": (
        lambda p: (p / "tables/type_labels.parquet").write_bytes(
            b"x" * (p / "tables/type_labels.parquet").stat().st_size
        ),
        False,
        r"type_labels.parquet: unreadable",
    ),
    "manifest dtype differs": (
        _manifest_dtype("arrays/out.rel_dir.npy", "int64"),
        True,
        r"out.rel_dir.npy: dtype/shape differ from the manifest",
    ),
    "meta counts wrong": (
        _edit_meta("num_entities", 7),
        True,
        r"inconsistent snapshot \(invalid graph arrays",
    ),
    "meta count missing": (_edit_meta("num_types", None), True, r"inconsistent snapshot"),
    "forged: neighbour id out of range": (
        _forged_array("out.nbr", _big_neighbour),
        True,
        r"inconsistent snapshot \(invalid graph arrays: out-adjacency: neighbour id out of range",
    ),
    "forged: wrong dtype": (
        _forged_array("in.nbr", lambda a: a.astype(np.int64)),
        True,
        r"inconsistent snapshot \(in.nbr: expected dtype int32, got int64\)",
    ),
    "forged: shortened array": (
        _forged_array("out.dir_rel", lambda a: a[:-3]),
        True,
        r"inconsistent snapshot \(invalid graph arrays: out-adjacency: entity directory does not end",
    ),
    "forged: array dropped": (
        _forged_drop("arrays/in.rel_dir.npy"),
        True,
        r"inconsistent snapshot \(graph arrays: missing 'in.rel_dir'\)",
    ),
    "forged: type array dropped": (
        _forged_drop("arrays/types.npy"),
        True,
        r"inconsistent snapshot",
    ),
    "forged: entity table short": (
        _forged_table("entities", lambda df: df.head(10)),
        True,
        r"id tables do not match the graph's counts",
    ),
    "forged: table missing": (
        _forged_drop("tables/relations.parquet"),
        True,
        r"inconsistent snapshot",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupt_snapshot_is_a_snapshot_error(snap: Path, case: str) -> None:
    damage, verify, pattern = CORRUPTIONS[case]
    KnowledgeGraph.open_snapshot(snap, verify=verify)  # intact before the damage
    damage(snap)
    with pytest.raises(SnapshotError, match=pattern) as info:
        KnowledgeGraph.open_snapshot(snap, verify=verify)
    assert str(snap) in str(info.value)  # the message says where


def test_open_a_directory_that_is_not_a_snapshot(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match=r"no manifest\.json"):
        KnowledgeGraph.open_snapshot(tmp_path)
    with pytest.raises(SnapshotError, match=r"no manifest\.json"):
        KnowledgeGraph.open_snapshot(tmp_path / "nowhere")


# ----- atomic replacement -------------------------------------------------------------


def _tiny() -> KnowledgeGraph:
    triples = pl.DataFrame({"head": ["a", "b"], "relation": ["r", "s"], "tail": ["b", "a"]})
    return KnowledgeGraph.from_tables(KGTables(triples=triples))


def test_save_over_existing_snapshot_replaces_it(codex: KnowledgeGraph, snap: Path) -> None:
    opened = KnowledgeGraph.open_snapshot(snap)  # still mapped while it is replaced
    want = all_neighbours(codex, False)
    tiny = _tiny()
    assert tiny.save_snapshot(snap) == snap
    assert sorted(p.name for p in snap.parent.iterdir()) == [snap.name]  # no temp dirs left
    back = KnowledgeGraph.open_snapshot(snap)
    assert back.num_entities == 2 and back.entities.equals(tiny.entities)
    assert sorted(p.name for p in (snap / "arrays").iterdir()) == sorted(
        f"{k}.npy" for k in tiny.native.arrays
    )  # nothing of the old snapshot (its type arrays) survives
    for got, exp in zip(all_neighbours(opened, False), want, strict=True):
        np.testing.assert_array_equal(got, exp)  # the old mapping stays valid (POSIX)


def test_failed_save_keeps_the_old_snapshot(
    codex: KnowledgeGraph, snap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real_save = np.save

    def failing_save(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk full")
        real_save(*args, **kwargs)

    monkeypatch.setattr(snapshot_module.np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        _tiny().save_snapshot(snap)
    monkeypatch.undo()
    assert sorted(p.name for p in snap.parent.iterdir()) == [snap.name]
    back = KnowledgeGraph.open_snapshot(snap)
    assert back.entities.equals(codex.entities)


def test_save_creates_parent_directories(codex: KnowledgeGraph, tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "snap"
    assert codex.save_snapshot(target) == target
    assert KnowledgeGraph.open_snapshot(target).num_triples == codex.num_triples


# ----- the cheap open and the explicit full check ----------------------------------------


def test_cheap_open_reads_no_table_until_names_are_needed(
    codex: KnowledgeGraph, snap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = snapshot_module.pl.read_parquet

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(snapshot_module.pl, "read_parquet", counting)
    kg = KnowledgeGraph.load(snap)
    assert reads == []
    assert kg.num_triples == codex.num_triples
    assert kg.triples.equals(codex.triples)  # the graph works without any name
    assert kg.entities.equals(codex.entities)
    assert reads == ["entities.parquet"]
    assert kg.relations.equals(codex.relations) and kg.type_labels.equals(codex.type_labels)
    assert kg.entity_types.equals(codex.entity_types)
    assert sorted(reads) == sorted(f"{t}.parquet" for t in TABLES)
    kg.validate()  # an intact snapshot passes the full check
    codex.validate()  # so does an in-memory graph


def test_cheap_open_leaves_large_files_to_validate(
    snap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_module, "SMALL_FILE", 0)  # every file counts as large
    _flip_array("arrays/out.nbr.npy", at_end=True)(snap)
    kg = KnowledgeGraph.open_snapshot(snap)  # sizes and headers are fine: opens
    with pytest.raises(SnapshotError, match=r"out.nbr.npy: checksum mismatch"):
        kg.validate()
    with pytest.raises(SnapshotError, match=r"out.nbr.npy: checksum mismatch"):
        KnowledgeGraph.open_snapshot(snap, verify=True)
    # forged checksum: only the native invariants catch it, and validate() runs them
    forge(snap, "arrays/out.nbr.npy")
    kg = KnowledgeGraph.open_snapshot(snap)
    with pytest.raises(SnapshotError, match=r"inconsistent snapshot \(invalid graph arrays"):
        kg.validate()


def test_cheap_open_checksums_small_files(snap: Path) -> None:
    flip(snap / "arrays" / "out.ent_dir.npy", npy_data_offset(snap / "arrays" / "out.ent_dir.npy"))
    with pytest.raises(SnapshotError, match=r"out.ent_dir.npy: checksum mismatch"):
        KnowledgeGraph.open_snapshot(snap)


def test_cheap_open_checks_table_row_counts(snap: Path) -> None:
    _forged_table("entities", lambda df: df.head(10))(snap)
    with pytest.raises(SnapshotError, match=r"id tables do not match the graph's counts"):
        KnowledgeGraph.open_snapshot(snap)
