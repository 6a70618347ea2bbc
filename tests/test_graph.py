"""The native KG core against an independent computation: Polars group-bys over the triples.

Ids are recomputed here from the sorted distinct keys (the contract), neighbour slices from
a (head, relation) -> sorted distinct tails group-by, then compared with the CSR for every
(entity, relation) of CoDEx-S and a seeded sample of FB15k-237, both directions. Then the
boundary: bad ids, bad dtypes, corrupted arrays, empty input, unknown names.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kg2tool import _core
from kg2tool.errors import InputError, UnknownNameError
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.io import read_kg_dir, read_triples
from kg2tool.kg.tables import KGTables

SHARED = Path(
    os.environ.get("KG2TOOL_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "kg"
)
FB15K_TRAIN = SHARED / "fb15k-237" / "train.txt"
BUNDLED = Path(__file__).resolve().parents[1] / "python" / "kg2tool" / "data" / "codex-s"
ADJ_NAMES = ("ent_dir", "dir_rel", "dir_off", "nbr", "rel_dir_off", "rel_dir", "rel_cum")


# ----- the independent reference ------------------------------------------------------


def reference_ids(triples: pl.DataFrame) -> tuple[pl.DataFrame, list[str], list[str]]:
    """Distinct id triples (sorted), with ids = rank of the key among the sorted distinct keys."""
    ent_keys = sorted(set(triples["head"].to_list()) | set(triples["tail"].to_list()))
    rel_keys = sorted(set(triples["relation"].to_list()))
    ent = {k: i for i, k in enumerate(ent_keys)}
    rel = {k: i for i, k in enumerate(rel_keys)}
    ids = pl.DataFrame(
        {
            "head": [ent[k] for k in triples["head"].to_list()],
            "relation": [rel[k] for k in triples["relation"].to_list()],
            "tail": [ent[k] for k in triples["tail"].to_list()],
        },
        schema={"head": pl.Int32, "relation": pl.Int32, "tail": pl.Int32},
    )
    return ids.unique().sort("head", "relation", "tail"), ent_keys, rel_keys


def reference_slices(ids: pl.DataFrame, inverse: bool) -> pl.DataFrame:
    """(src, relation) -> sorted distinct neighbour list, by a Polars group-by."""
    src, dst = ("tail", "head") if inverse else ("head", "tail")
    return (
        ids.group_by(pl.col(src).alias("src"), "relation")
        .agg(pl.col(dst).unique().sort().alias("nbrs"))
        .sort("src", "relation")
    )


def check_neighbours(kg: KnowledgeGraph, ref: pl.DataFrame, entities: np.ndarray) -> int:
    """Every (entity in `entities`, relation) slice, both directions, batched and as views."""
    n_rel = kg.num_relations
    ents = np.repeat(entities.astype(np.int32), n_rel)
    rels = np.tile(np.arange(n_rel, dtype=np.int32), len(entities))
    checked = 0
    for inverse in (False, True):
        exp = reference_slices(ref, inverse).filter(pl.col("src").is_in(entities.tolist()))
        sizes = np.zeros((kg.num_entities, n_rel), dtype=np.int64)
        sizes[exp["src"].to_numpy(), exp["relation"].to_numpy()] = exp["nbrs"].list.len()
        offsets, nbrs = kg.neighbors(ents, rels, inverse=inverse)
        assert offsets.dtype == np.int64 and nbrs.dtype == np.int32
        assert offsets[0] == 0 and len(offsets) == len(ents) + 1
        np.testing.assert_array_equal(np.diff(offsets), sizes[ents, rels])
        # pairs come out entity-major, relation-minor: the order of the sorted reference
        np.testing.assert_array_equal(nbrs, exp["nbrs"].explode().to_numpy().astype(np.int32))
        for u, r, want in exp.iter_rows():
            view = kg.native.neighbor_view(u, r, inverse)
            assert view.dtype == np.int32 and not view.flags.writeable
            assert view.tolist() == want, (u, r, inverse)
            checked += 1
        # a few empty slices through the view too
        empty = np.argwhere(sizes[entities] == 0)[:50]
        for i, r in empty:
            assert len(kg.native.neighbor_view(int(entities[i]), int(r), inverse)) == 0
    return checked


# ----- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def codex() -> KnowledgeGraph:
    return KnowledgeGraph.load("codex-s")


@pytest.fixture(scope="module")
def codex_tables() -> KGTables:
    return read_kg_dir(BUNDLED)


@pytest.fixture(scope="module")
def codex_ref(codex_tables: KGTables) -> tuple[pl.DataFrame, list[str], list[str]]:
    return reference_ids(codex_tables.triples)


@pytest.fixture
def tiny() -> KnowledgeGraph:
    """Four entities, two relations, one triple given three times."""
    triples = pl.DataFrame(
        [
            ("b", "likes", "c"),
            ("a", "likes", "b"),
            ("a", "likes", "b"),
            ("a", "knows", "c"),
            ("a", "likes", "b"),
            ("d", "knows", "a"),
            ("a", "likes", "c"),
        ],
        schema=["head", "relation", "tail"],
        orient="row",
    )
    return KnowledgeGraph.from_tables(KGTables(triples=triples))


def copy_arrays(kg: KnowledgeGraph) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in kg.native.arrays.items()}


def graph_of(kg: KnowledgeGraph, arrays: dict[str, np.ndarray]) -> _core.Graph:
    return _core.Graph(
        kg.num_entities, kg.num_relations, int(kg.native.num_types), arrays, validate=True
    )


# ----- neighbour slices vs the reference ----------------------------------------------


def test_codex_every_entity_relation_both_directions(codex, codex_ref) -> None:
    ref, ent_keys, rel_keys = codex_ref
    assert codex.entities["key"].to_list() == ent_keys
    assert codex.relations["key"].to_list() == rel_keys
    checked = check_neighbours(codex, ref, np.arange(codex.num_entities))
    assert (
        checked
        == ref.select("head", "relation").n_unique() + ref.select("tail", "relation").n_unique()
    )


@pytest.mark.skipif(not FB15K_TRAIN.is_file(), reason="shared FB15k-237 data missing")
def test_fb15k237_sample_both_directions() -> None:
    tables = read_triples(FB15K_TRAIN)
    kg = KnowledgeGraph.from_tables(tables)
    ref, ent_keys, rel_keys = reference_ids(tables.triples)
    assert kg.entities["key"].to_list() == ent_keys
    assert kg.relations["key"].to_list() == rel_keys
    assert kg.num_triples == ref.height
    sample = np.sort(np.random.default_rng(20240).choice(kg.num_entities, 3000, replace=False))
    assert check_neighbours(kg, ref, sample) > 3000


def test_relation_per_entity_and_inverse(codex, codex_ref) -> None:
    ref = codex_ref[0]
    rows = ref.sample(200, seed=3)
    heads, rels, tails = (rows[c].to_numpy() for c in ("head", "relation", "tail"))
    off, nbrs = codex.neighbors(heads, rels)
    off_inv, nbrs_inv = codex.neighbors(tails, rels, inverse=True)
    for i in range(rows.height):
        assert tails[i] in nbrs[off[i] : off[i + 1]]
        assert heads[i] in nbrs_inv[off_inv[i] : off_inv[i + 1]]
    off, nbrs = codex.neighbors(np.array([], dtype=np.int32), 0)
    assert off.tolist() == [0] and len(nbrs) == 0


# ----- duplicates, determinism, triples -----------------------------------------------


def test_duplicates_dropped_and_counted(tiny: KnowledgeGraph) -> None:
    assert tiny.report["triples_read"] == 7 and tiny.report["duplicates"] == 2
    assert tiny.num_triples == 5
    assert tiny.entities["key"].to_list() == ["a", "b", "c", "d"]
    assert tiny.relations["key"].to_list() == ["knows", "likes"]
    a, b, c, d = range(4)
    knows, likes = range(2)
    assert tiny.native.neighbor_view(a, likes).tolist() == [b, c]
    assert tiny.native.neighbor_view(b, likes, True).tolist() == [a]
    assert tiny.native.neighbor_view(a, knows, True).tolist() == [d]
    assert tiny.native.neighbor_view(c, likes, True).tolist() == [a, b]
    assert tiny.triples.rows() == [
        (a, knows, c),
        (a, likes, b),
        (a, likes, c),
        (b, likes, c),
        (d, knows, a),
    ]
    assert tiny.native.relation_edge_counts().tolist() == [2, 3]
    assert tiny.native.degrees().tolist() == [3, 1, 0, 1]
    assert tiny.native.degrees(inverse=True).tolist() == [1, 1, 3, 0]


def test_ids_and_arrays_independent_of_triple_order(codex, codex_tables) -> None:
    shuffled = codex_tables.triples.sample(fraction=1.0, shuffle=True, seed=11)
    doubled = pl.concat([shuffled, shuffled.head(500)])  # duplicates in another order too
    other = KnowledgeGraph.from_tables(KGTables(triples=doubled))
    assert other.report["duplicates"] == 500
    assert other.entities.select("id", "key").equals(codex.entities.select("id", "key"))
    assert other.relations.select("id", "key").equals(codex.relations.select("id", "key"))
    for name in (f"{d}.{a}" for d in ("out", "in") for a in ADJ_NAMES):
        np.testing.assert_array_equal(
            np.asarray(other.native.arrays[name]), np.asarray(codex.native.arrays[name]), name
        )


def test_arrays_independent_of_thread_count(codex) -> None:
    t = codex.triples
    h, r, tl = (t[c].to_numpy() for c in ("head", "relation", "tail"))
    one, _ = _core.build_arrays(h, r, tl, codex.num_entities, codex.num_relations, 1)
    two, _ = _core.build_arrays(h[::-1].copy(), r[::-1].copy(), tl[::-1].copy(),
                                codex.num_entities, codex.num_relations, 2)  # fmt: skip
    assert one.keys() == two.keys()
    for k in one:
        np.testing.assert_array_equal(one[k], two[k], k)


def test_triples_equal_distinct_input(codex, codex_ref) -> None:
    got = codex.triples
    assert got.schema == pl.Schema({"head": pl.Int32, "relation": pl.Int32, "tail": pl.Int32})
    assert got.equals(codex_ref[0])  # same rows, same (sorted) order
    assert codex.num_triples == got.height


# ----- tables -------------------------------------------------------------------------


def read_tsv(name: str) -> pl.DataFrame:
    return pl.read_csv(BUNDLED / name, separator="\t", quote_char=None, infer_schema=False)


def test_entity_and_relation_tables(codex) -> None:
    for table, file in ((codex.entities, "entities.tsv"), (codex.relations, "relations.tsv")):
        assert table.columns == ["id", "key", "label", "description"]
        assert table["id"].dtype == pl.Int32
        assert table["id"].to_list() == list(range(table.height))
        src = read_tsv(file)
        joined = table.join(src, on="key", how="left", suffix="_src")
        want = joined.select(
            pl.when(pl.col("label_src").is_null() | (pl.col("label_src").str.strip_chars() == ""))
            .then(pl.col("key"))
            .otherwise(pl.col("label_src"))
        ).to_series()
        assert joined["label"].to_list() == want.to_list()
        assert joined["description"].to_list() == joined["description_src"].to_list()
    assert (
        codex.relations.filter(pl.col("key") == "P27")["label"].item() == "country of citizenship"
    )


def test_label_falls_back_to_key() -> None:
    triples = pl.DataFrame({"head": ["x", "y"], "relation": ["r", "s"], "tail": ["y", "z"]})
    entities = pl.DataFrame(
        {"key": ["x", "y"], "label": ["Ex", "  "], "description": ["the x", None]}
    )
    kg = KnowledgeGraph.from_tables(KGTables(triples=triples, entities=entities))
    assert kg.entities.rows() == [(0, "x", "Ex", "the x"), (1, "y", "y", None), (2, "z", "z", None)]
    assert kg.relations["label"].to_list() == ["r", "s"]  # no relation table at all
    assert kg.entity_types.height == 0 and kg.type_labels.height == 0
    assert kg.native.num_types == 0


def test_entity_types_from_bundled_kg(codex) -> None:
    src = read_tsv("entity_types.tsv").unique()
    ids = dict(zip(codex.entities["key"], codex.entities["id"], strict=True))
    want = (
        src.filter(pl.col("key").is_in(list(ids)))
        .select(pl.col("key").replace_strict(ids, return_dtype=pl.Int32).alias("id"), "type")
        .sort("id", "type")
    )
    assert codex.entity_types.equals(want)
    type_keys = sorted(set(want["type"].to_list()))
    assert codex.type_labels["key"].to_list() == type_keys
    assert codex.native.num_types == len(type_keys)
    labels = dict(zip(read_tsv("types.tsv")["key"], read_tsv("types.tsv")["label"], strict=True))
    assert codex.type_labels["label"].to_list() == [labels.get(k) or k for k in type_keys]
    # native CSR of types: entity -> sorted type ids, type -> sorted entity ids
    a = {k: np.asarray(v) for k, v in codex.native.arrays.items()}
    tid = {k: i for i, k in enumerate(type_keys)}
    pairs = want.with_columns(pl.col("type").replace_strict(tid, return_dtype=pl.Int32))
    per_ent = np.bincount(pairs["id"].to_numpy(), minlength=codex.num_entities)
    np.testing.assert_array_equal(np.diff(a["type_off"]), per_ent)
    np.testing.assert_array_equal(a["types"], pairs["type"].to_numpy())
    by_type = pairs.sort("type", "id")
    np.testing.assert_array_equal(a["type_ent"], by_type["id"].to_numpy())
    np.testing.assert_array_equal(
        np.diff(a["type_ent_off"]), np.bincount(by_type["type"].to_numpy(), minlength=len(tid))
    )


def test_edge_counts_and_degrees(codex, codex_ref) -> None:
    ref = codex_ref[0]

    def counts(col: str, n: int) -> np.ndarray:
        c = ref.group_by(col).len()
        out = np.zeros(n, dtype=np.int64)
        out[c[col].to_numpy()] = c["len"].to_numpy()
        return out

    native = codex.native
    np.testing.assert_array_equal(
        native.relation_edge_counts(), counts("relation", codex.num_relations)
    )
    np.testing.assert_array_equal(native.degrees(), counts("head", codex.num_entities))
    np.testing.assert_array_equal(native.degrees(inverse=True), counts("tail", codex.num_entities))
    assert native.num_edges == ref.height == codex.num_triples


def test_entity_and_relation_ids(codex) -> None:
    keys = codex.entities["key"].to_list()
    assert codex.entity_ids([keys[5], keys[0]]).tolist() == [5, 0]
    assert codex.relation_ids(["P27"]).dtype == np.int32
    with pytest.raises(UnknownNameError, match="P27"):
        codex.relation_ids(["P2700"])


# ----- bad arguments at the boundary --------------------------------------------------


@pytest.mark.parametrize("entity", [-1, "N", "N+1000"])
def test_entity_out_of_range_raises_index_error(codex, entity) -> None:
    n = codex.num_entities
    u = {"N": n, "N+1000": n + 1000}.get(entity, entity)
    with pytest.raises(IndexError, match="entity id"):
        codex.neighbors([0, u], 0)
    with pytest.raises(IndexError, match="entity id"):
        codex.native.neighbor_view(u, 0)
    with pytest.raises(IndexError, match="entity id"):
        codex.native.neighbor_view(u, 0, True)


@pytest.mark.parametrize("relation", [-1, "R", "R+5"])
def test_relation_out_of_range_raises_index_error(codex, relation) -> None:
    r_ = codex.num_relations
    r = {"R": r_, "R+5": r_ + 5}.get(relation, relation)
    with pytest.raises(IndexError, match="relation id"):
        codex.neighbors([0, 1], r)
    with pytest.raises(IndexError, match="relation id"):
        codex.neighbors([0, 1], np.array([0, r]), inverse=True)
    with pytest.raises(IndexError, match="relation id"):
        codex.native.neighbor_view(0, r)


def test_relation_array_of_wrong_length(codex) -> None:
    with pytest.raises(ValueError, match="one id or one per entity"):
        codex.neighbors([0, 1, 2], np.array([0, 1]))


def test_int64_ids_beyond_int32_are_rejected(codex) -> None:
    with pytest.raises(IndexError):
        codex.neighbors(np.array([2**32 + 1], dtype=np.int64), 0)
    with pytest.raises(IndexError):
        codex.neighbors(np.array([0], dtype=np.int64), 2**32)
    with pytest.raises(TypeError, match="integers"):
        codex.neighbors(np.array([0.7]), 0)


def test_build_arrays_rejects_out_of_range_ids() -> None:
    h = np.array([0, 1], dtype=np.int32)
    with pytest.raises(ValueError, match=r"tail id 2 at row 1 is out of range \[0, 2\)"):
        _core.build_arrays(h, np.zeros(2, np.int32), np.array([1, 2], np.int32), 2, 1, 1)
    with pytest.raises(ValueError, match="relation id -1"):
        _core.build_arrays(h, np.array([0, -1], np.int32), h, 2, 1, 1)
    with pytest.raises(ValueError, match="equal length"):
        _core.build_arrays(h, np.zeros(3, np.int32), h, 2, 1, 1)


@pytest.mark.parametrize(
    ("name", "bad", "match"),
    [
        ("out.nbr", lambda a: a.astype(np.int64), "out.nbr: expected dtype int32, got int64"),
        ("in.ent_dir", lambda a: a.astype(np.int32), "in.ent_dir: expected dtype int64"),
        ("out.dir_off", lambda a: a.astype(np.int32), "out.dir_off: expected dtype uint32"),
        ("out.rel_cum", lambda a: a.tolist(), "out.rel_cum: expected a numpy array"),
        ("in.nbr", lambda a: a.reshape(1, -1), "in.nbr: expected a 1-D array"),
        ("out.dir_rel", lambda a: np.repeat(a, 2)[::2], "out.dir_rel: expected a contiguous"),
        ("types", lambda a: a.astype(np.float32), "types: expected dtype int32"),
    ],
)
def test_graph_rejects_wrong_dtype_or_shape(codex, name, bad, match) -> None:
    arrays = copy_arrays(codex)
    arrays[name] = bad(arrays[name])
    with pytest.raises(ValueError, match=match):
        graph_of(codex, arrays)


def test_graph_takes_equivalent_dtypes(codex) -> None:
    """Arrays of an equal but distinct dtype object (unpickled, or longlong for int64) are
    taken; a byte-swapped one is not (its bytes are not the engine's)."""
    arrays = pickle.loads(pickle.dumps(copy_arrays(codex)))
    arrays["out.ent_dir"] = arrays["out.ent_dir"].astype(np.longlong)
    g = graph_of(codex, arrays)
    assert g.num_entities == codex.num_entities
    assert np.array_equal(
        np.asarray(g.arrays["out.nbr"]), np.asarray(codex.native.arrays["out.nbr"])
    )
    arrays["in.nbr"] = arrays["in.nbr"].astype(">i4")
    with pytest.raises(ValueError, match=r"in\.nbr: expected dtype int32, got >i4"):
        graph_of(codex, arrays)


def test_graph_rejects_missing_array(codex) -> None:
    arrays = copy_arrays(codex)
    del arrays["in.rel_dir"]
    with pytest.raises(ValueError, match=r"missing 'in\.rel_dir'"):
        graph_of(codex, arrays)


def _set(name: str, index: int, value: int):
    def corrupt(arrays: dict[str, np.ndarray]) -> None:
        arrays[name][index] = value

    return corrupt


def _swap_first_two_increasing(name: str):
    """Swap the first adjacent pair a[i] < a[i+1] that lies inside one (entity, relation)."""

    def corrupt(arrays: dict[str, np.ndarray]) -> None:
        a = arrays[name]
        i = int(np.flatnonzero(a[:-1] < a[1:])[0])
        a[i], a[i + 1] = a[i + 1], a[i]

    return corrupt


CORRUPTIONS = {
    "neighbour >= N": (_set("out.nbr", 7, 10**6), "out-adjacency: neighbour id out of range"),
    "negative neighbour": (_set("in.nbr", 3, -1), "in-adjacency: neighbour id out of range"),
    "unsorted neighbours": (
        lambda a: a["out.nbr"].__setitem__(slice(None), np.sort(a["out.nbr"])[::-1]),
        "out-adjacency: neighbours not strictly increasing",
    ),
    "non-monotonic entity directory": (
        _set("out.ent_dir", 5, 10**9),
        "out-adjacency: entity directory not monotonic",
    ),
    "ent_dir not at 0": (_set("in.ent_dir", 0, 1), "in-adjacency: entity directory does not start"),
    "non-monotonic entry offsets": (
        _set("out.dir_off", 4, 0),
        "out-adjacency: empty or decreasing entry",
    ),
    "relation out of range": (_set("in.dir_rel", 0, 999), "in-adjacency: relation id out of range"),
    "wrong rel_cum": (_set("out.rel_cum", 10, 0), "out-adjacency: relation edge counts wrong"),
    "wrong rel_dir": (
        _set("in.rel_dir", 0, 10**8),
        "in-adjacency: relation index entry 0 is wrong",
    ),
    "rel_dir_off past the entries": (
        _set("out.rel_dir_off", 1, 10**12),
        "out-adjacency: relation index not monotonic",
    ),
    "type offsets past the values": (
        _set("type_off", 1, 10**12),
        "entity types: offsets not monotonic",
    ),
    "type member >= N": (_set("type_ent", 0, 10**6), "type members: value out of range"),
    "truncated neighbours": (
        lambda a: a.__setitem__("out.nbr", a["out.nbr"][:-1].copy()),
        "out-adjacency: entry offsets do not span the neighbour array",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_validate_names_the_broken_invariant(codex, case) -> None:
    corrupt, match = CORRUPTIONS[case]
    arrays = copy_arrays(codex)
    graph_of(codex, arrays)  # the untouched copy is valid
    corrupt(arrays)
    with pytest.raises(ValueError, match=f"invalid graph arrays: {match}"):
        graph_of(codex, arrays)


def test_counts_that_do_not_match_the_arrays(codex) -> None:
    with pytest.raises(ValueError, match="invalid graph arrays"):
        _core.Graph(codex.num_entities + 1, codex.num_relations, 0, copy_arrays(codex), True)
    with pytest.raises(ValueError, match="invalid graph arrays"):
        _core.Graph(codex.num_entities - 1, codex.num_relations, 0, copy_arrays(codex), False)


GUARD_PAGE_SCRIPT = textwrap.dedent(
    """
    import ctypes, mmap, numpy as np
    from kg2tool import _core

    def at_page_end(a):
        # the copy ends exactly where a PROT_NONE page starts: one read past it faults
        page = mmap.PAGESIZE
        n = -(-a.nbytes // page) * page
        buf = mmap.mmap(-1, n + page)
        base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        libc = ctypes.CDLL(None)
        assert libc.mprotect(ctypes.c_void_p(base + n), page, 0) == 0
        out = np.frombuffer(buf, dtype=a.dtype, count=a.size, offset=n - a.nbytes)
        out[:] = a
        return out

    N = 4096
    h = np.arange(N, dtype=np.int32)
    arrays, _ = _core.build_arrays(h, np.zeros(N, np.int32), (h + 1) % N, N, 2, 1)
    arrays = {k: np.array(v) for k, v in arrays.items()}
    D = len(arrays["out.dir_rel"])
    arrays["out.rel_dir"] = at_page_end(arrays["out.rel_dir"])
    arrays["out.rel_dir_off"] = np.array([0, D + 10**7, D], dtype=np.int64)
    try:
        _core.Graph(N, 2, 0, arrays, validate=True)
    except ValueError as e:
        print("rel_dir_off:", e)
    t_arrays = _core.build_type_arrays(h, np.zeros(N, np.int32), N, 1)
    arrays.update({k: np.array(v) for k, v in t_arrays.items()})
    arrays["out.rel_dir_off"] = np.array([0, D, D], dtype=np.int64)
    arrays["types"] = at_page_end(arrays["types"])
    arrays["type_off"][1] = N + 10**7
    try:
        _core.Graph(N, 2, 1, arrays, validate=True)
    except ValueError as e:
        print("type_off:", e)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="guard page via mprotect (Linux)")
def test_validate_never_reads_past_an_array() -> None:
    """Offsets pointing past the end are rejected before any read there (no segfault)."""
    proc = subprocess.run(
        [sys.executable, "-c", GUARD_PAGE_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"crashed with {proc.returncode}: {proc.stderr[-2000:]}"
    assert "rel_dir_off: invalid graph arrays: out-adjacency: relation index not monotonic" in (
        proc.stdout
    )
    assert "type_off: invalid graph arrays: entity types: offsets not monotonic" in proc.stdout


# ----- bad input at the KG level ------------------------------------------------------


def test_empty_triples_is_an_input_error(tmp_path: Path) -> None:
    empty = pl.DataFrame(schema={"head": pl.String, "relation": pl.String, "tail": pl.String})
    with pytest.raises(InputError, match="no triples"):
        KnowledgeGraph.from_tables(KGTables(triples=empty))
    f = tmp_path / "empty.tsv"
    f.write_text("")
    with pytest.raises(InputError, match=str(f)):
        KnowledgeGraph.load(f)


def test_unknown_bundled_name_suggests_close_match() -> None:
    with pytest.raises(UnknownNameError, match="did you mean codex-s") as info:
        KnowledgeGraph.load("codex-x")
    assert "codex-x" in str(info.value)


# ----- the native reader of plain TSV files (the fast path of load) ----------------------


def python_ids(lines: list[str]) -> tuple[list[str], list[str], list[tuple[int, int, int]]]:
    """Keys sorted bytewise and triples as ids, in plain Python (the contract)."""
    rows = [line.split("\t") for line in lines]
    ents = sorted({r[0] for r in rows} | {r[2] for r in rows}, key=lambda k: k.encode())
    rels = sorted({r[1] for r in rows}, key=lambda k: k.encode())
    e = {k: i for i, k in enumerate(ents)}
    r = {k: i for i, k in enumerate(rels)}
    return ents, rels, [(e[h], r[p], e[t]) for h, p, t in rows]


def native_ids(
    path: Path, start: int = 0, split_bytes: int = 1 << 26
) -> tuple[list[str], list[str], list[tuple]]:
    got = _core.read_tsv_ids(str(path), start, 2, split_bytes)
    assert got["ok"], got["reason"]

    def keys(offsets: np.ndarray, data: np.ndarray) -> list[str]:
        raw = bytes(data)
        return [raw[offsets[i] : offsets[i + 1]].decode() for i in range(len(offsets) - 1)]

    triples = list(
        zip(got["heads"].tolist(), got["relations"].tolist(), got["tails"].tolist(), strict=True)
    )
    return (
        keys(got["entity_offsets"], got["entity_bytes"]),
        keys(got["relation_offsets"], got["relation_bytes"]),
        triples,
    )


def test_native_tsv_reader_matches_python(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    # keys of 1..20 bytes (inline and arena slots), non-ASCII, enough to grow the table
    words = [f"Q{i}" for i in range(30_000)] + ["é", "e\u0301", "日本", "x" * 8, "y" * 9, "Z" * 20]
    lines = [
        f"{words[rng.integers(len(words))]}\tP{rng.integers(40)}\t{words[rng.integers(len(words))]}"
        for _ in range(60_000)
    ]
    p = tmp_path / "t.tsv"
    p.write_text("\n".join(lines))  # no final newline
    assert native_ids(p) == python_ids(lines)
    # cut into two halves parsed in parallel (split at a line start), keys merged: the same
    for split in (1, 100, p.stat().st_size // 3, p.stat().st_size - 5):
        assert native_ids(p, split_bytes=split) == python_ids(lines), split
    headed = tmp_path / "h.tsv"
    headed.write_text("head\trelation\ttail\n" + "\n".join(lines[:300]) + "\n")
    assert native_ids(headed, start=len("head\trelation\ttail\n"), split_bytes=64) == python_ids(
        lines[:300]
    )
    crlf = tmp_path / "crlf.tsv"
    crlf.write_bytes(("\r\n".join(lines[:500]) + "\r\n").encode())
    assert native_ids(crlf) == python_ids(lines[:500])
    # the same triples in another order give the same keys and the same set of id triples
    shuffled = tmp_path / "s.tsv"
    shuffled.write_text("\n".join(rng.permutation(lines).tolist()) + "\n")
    a, b = native_ids(p), native_ids(shuffled)
    assert a[:2] == b[:2] and sorted(a[2]) == sorted(b[2])


def test_native_tsv_reader_gives_up_where_the_general_reader_must_speak(tmp_path: Path) -> None:
    cases = {
        b"a\tr\tb\nc\tr\n": ("field count", 2),
        b"a\tr\tb\nc\tr\td\te\n": ("field count", 2),
        b"a\tr\tb\n\nc\tr\td\n": ("blank line", 2),
        b"a\tr\tb\nc\t\td\n": ("empty field", 2),
        b"a\tr\tb\nok\t\xc3\x28x\tb\n": ("not UTF-8", 2),
        b"a\tr\tb\rc\n": ("carriage return inside a line", 1),
        b"": ("no triples", 0),
    }
    # a problem in the second half names its line in the whole file
    half = b"".join(b"e%d\tr\te%d\n" % (i, i + 1) for i in range(200))
    cases[half + b"x\ty\n" + half] = ("field count", 201)
    for data, (reason, line) in cases.items():
        p = tmp_path / "bad.tsv"
        p.write_bytes(data)
        for split_bytes in (0, 64):  # one thread's pass, and two halves
            got = _core.read_tsv_ids(str(p), 0, 2, split_bytes)
            assert (got["ok"], got["reason"], got["line"]) == (False, reason, line), data
    with pytest.raises(RuntimeError, match="cannot open"):
        _core.read_tsv_ids(str(tmp_path / "none.tsv"), 0, 1)
    # through load, the general reader names the place as before
    p = tmp_path / "bad.tsv"
    p.write_bytes(b"a\tr\tb\nc\t\td\n")
    with pytest.raises(InputError, match="empty relation field") as info:
        KnowledgeGraph.load(p)
    assert (info.value.line, info.value.column) == (2, 2)


@pytest.mark.skipif(not FB15K_TRAIN.is_file(), reason="shared data missing")
def test_load_of_a_tsv_takes_the_native_path_with_the_same_graph(tmp_path: Path) -> None:
    fast = KnowledgeGraph.load(FB15K_TRAIN)
    general = KnowledgeGraph.from_tables(read_triples(FB15K_TRAIN))
    assert fast.entities.equals(general.entities)
    assert fast.relations.equals(general.relations)
    assert fast.triples.equals(general.triples)
    assert fast.report["duplicates"] == general.report["duplicates"]
    headed = tmp_path / "h.tsv"
    headed.write_text("head\trelation\ttail\na\tr\tb\n")
    kg = KnowledgeGraph.load(headed)
    assert kg.entities["key"].to_list() == ["a", "b"] and kg.report["header_line"] == 1
    reordered = tmp_path / "o.tsv"
    reordered.write_text("tail\thead\trelation\nb\ta\tr\n")
    assert KnowledgeGraph.load(reordered).relations["key"].to_list() == ["r"]
