"""The BetaE / KGReasoning export: files a KGReasoning loader reads, answers equal to the
plain-Python reference on the matching graph, easy/hard rules, counts and reproducibility."""

from __future__ import annotations

import json
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kg2tool import cli
from kg2tool.betae import (
    BETAE_NAMES,
    DEFAULT_COUNTS,
    NEGATION_TYPES,
    export_betae,
    grounded_tuple,
    parse_counts,
)
from kg2tool.betae.pickles import encode_keys, write_answers, write_queries
from kg2tool.errors import InputError, UnknownNameError
from kg2tool.kg.bundled import shared_data_dir
from kg2tool.testing.reference import ReferenceKG, evaluate

# KGReasoning's query_name_dict (its main.py), written out here as its README documents it.
e, r, n, u = "e", "r", "n", "u"
QUERY_NAME_DICT = {
    (e, (r,)): "1p",
    (e, (r, r)): "2p",
    (e, (r, r, r)): "3p",
    ((e, (r,)), (e, (r,))): "2i",
    ((e, (r,)), (e, (r,)), (e, (r,))): "3i",
    (((e, (r,)), (e, (r,))), (r,)): "ip",
    ((e, (r, r)), (e, (r,))): "pi",
    ((e, (r,)), (e, (r, n))): "2in",
    ((e, (r,)), (e, (r,)), (e, (r, n))): "3in",
    (((e, (r,)), (e, (r, n))), (r,)): "inp",
    ((e, (r, r)), (e, (r, n))): "pin",
    ((e, (r, r, n)), (e, (r,))): "pni",
    ((e, (r,)), (e, (r,)), (u,)): "2u-DNF",
    (((e, (r,)), (e, (r,)), (u,)), (r,)): "up-DNF",
}

SMALL = {
    "train": {"1p": None, **dict.fromkeys(["2p", "3p", "2i", "3i"], 60)}
    | dict.fromkeys(["2in", "3in", "inp", "pin", "pni"], 20),
    "valid": {"1p": None, **dict.fromkeys(BETAE_NAMES[1:], 20)},
    "test": {"1p": None, **dict.fromkeys(BETAE_NAMES[1:], 20)},
}


def load_kgreasoning(folder: Path) -> dict:
    """KGReasoning's load_data: pickles flattened per type name (query -> answers)."""

    def load(name: str):
        with open(folder / name, "rb") as f:
            return pickle.load(f)

    data = {
        "train": (load("train-queries.pkl"), {"answers": load("train-answers.pkl")}),
        **{
            split: (
                load(f"{split}-queries.pkl"),
                {
                    "easy": load(f"{split}-easy-answers.pkl"),
                    "hard": load(f"{split}-hard-answers.pkl"),
                },
            )
            for split in ("valid", "test")
        },
    }
    flat: dict[str, dict[str, list]] = {}
    for split, (queries, answers) in data.items():
        flat[split] = {}
        for structure, qs in queries.items():
            name = QUERY_NAME_DICT[structure].split("-")[0]
            flat[split][name] = [(q, {k: v[q] for k, v in answers.items()}) for q in qs]
    stats = dict(
        line.split(": ") for line in (folder / "stats.txt").read_text().splitlines() if line
    )
    flat["nentity"], flat["nrelation"] = int(stats["numentity"]), int(stats["numrelations"])
    return flat


def read_edges(folder: Path, splits: tuple[str, ...]) -> list[tuple[int, int, int]]:
    rows = []
    for split in splits:
        for line in (folder / f"{split}.txt").read_text().splitlines():
            h, rel, t = map(int, line.split("\t"))
            rows.append((h, rel, t))
    return rows


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    out = tmp_path_factory.mktemp("betae") / "codex-s"
    report = export_betae("codex-s", out, counts=SMALL, seed=3, threads=2, jsonl=True)
    return out, report


def test_files_load_with_a_kgreasoning_loader(export):
    out, report = export
    data = load_kgreasoning(out)
    id2ent = pickle.loads((out / "id2ent.pkl").read_bytes())
    rel2id = pickle.loads((out / "rel2id.pkl").read_bytes())
    assert data["nentity"] == len(id2ent) == report.num_entities == 2034
    assert data["nrelation"] == len(rel2id) == 2 * 42
    for key, rid in rel2id.items():  # +r forward at 2r, -r inverse at 2r+1
        assert key[0] == ("-" if rid % 2 else "+")
        assert rel2id["+" + key[1:]] // 2 == rid // 2
    for split, per in SMALL.items():
        for name, asked in per.items():
            got = len(data[split][name])
            assert got == (asked if asked is not None else report.counts[split][name]["written"])
    assert set(data["train"]) >= {"1p", "2p", "pni"} and "ip" not in data["train"]
    # every query tuple has the structure it is filed under, with ids in range
    queries = {s: pickle.loads((out / f"{s}-queries.pkl").read_bytes()) for s in SMALL}
    for per in queries.values():
        for structure, qs in per.items():
            assert all(_matches(q, structure, data) for q in qs), structure


def _matches(q, structure, data) -> bool:
    if isinstance(structure, tuple):
        return (
            isinstance(q, tuple)
            and len(q) == len(structure)
            and all(_matches(a, b, data) for a, b in zip(q, structure, strict=True))
        )
    bound = {"e": data["nentity"], "r": data["nrelation"]}
    if structure in bound:
        return type(q) is int and 0 <= q < bound[structure]
    return q == {"n": -2, "u": -1}[structure]


def test_answers_equal_the_reference_on_the_matching_graph(export):
    out, _ = export
    frame = pl.read_parquet(out / "queries.parquet")
    edges = {
        s: read_edges(out, s) for s in (("train",), ("train", "valid"), ("train", "valid", "test"))
    }
    kgs = {k[-1]: ReferenceKG.from_triples(v) for k, v in edges.items()}
    rel2id = pickle.loads((out / "rel2id.pkl").read_bytes())
    ent2id = pickle.loads((out / "ent2id.pkl").read_bytes())
    data = load_kgreasoning(out)
    pickled = {
        (s, json.dumps(q)): a
        for s in ("train", "valid", "test")
        for items in data[s].values()
        for q, a in items
    }
    assert len(pickled) == frame.height
    checked_negation = 0
    one_hop = frame.filter(pl.col("type") == "1p")
    sample = pl.concat([frame.filter(pl.col("type") != "1p"), one_hop.sample(300, seed=0)])
    for row in sample.iter_rows(named=True):
        split = row["split"]
        b = json.loads(row["bindings"])
        grounding = {k: (rel2id[v] if k.startswith("r") else ent2id[v]) for k, v in b.items()}
        answers = pickled[(split, row["query"])]
        if split == "train":
            ref = evaluate(row["formula"], kgs["train"], grounding)
            assert answers["answers"] == ref == set(row["hard_answers"])
            assert ref
            continue
        small = "train" if split == "valid" else "valid"
        big_ref = evaluate(row["formula"], kgs[split], grounding)
        small_ref = evaluate(row["formula"], kgs[small], grounding)
        assert answers["easy"] == small_ref == set(row["easy_answers"])
        assert answers["hard"] == big_ref - small_ref == set(row["hard_answers"])
        assert answers["hard"] and not answers["hard"] & answers["easy"]
        if row["type"] in NEGATION_TYPES:  # the negation removes an answer on the bigger graph
            assert small_ref - big_ref
            checked_negation += 1
    assert checked_negation == 2 * 5 * 20


def test_tuples_evaluate_like_kgreasoning(export):
    """The nested tuples, evaluated as KGReasoning's achieve_answer does, give the answers."""
    out, _ = export
    data = load_kgreasoning(out)
    nent = data["nentity"]

    def graph(splits):
        g: dict = {}
        for h, rel, t in read_edges(out, splits):
            g.setdefault(h, {}).setdefault(rel, set()).add(t)
        return g

    def achieve(q, g):
        if all(isinstance(x, int) and x != -1 for x in q[-1]):
            s = {q[0]} if isinstance(q[0], int) else achieve(q[0], g)
            for rel in q[-1]:
                if rel == -2:
                    s = set(range(nent)) - s
                else:
                    s = set().union(*(g.get(x, {}).get(rel, set()) for x in s))
            return s
        union = len(q[-1]) == 1 and q[-1][0] == -1
        s = achieve(q[0], g)
        for part in q[1:]:
            if union:
                if part is not q[-1]:
                    s = s | achieve(part, g)
            else:
                s = s & achieve(part, g)
        return s

    graphs = {
        "train": graph(("train",)),
        "valid": graph(("train", "valid")),
        "test": graph(("train", "valid", "test")),
    }
    for name, items in data["train"].items():
        for q, a in items[:40]:
            assert achieve(q, graphs["train"]) == a["answers"], name
    for split, small in (("valid", "train"), ("test", "valid")):
        for name, items in data[split].items():
            for q, a in items[:40]:
                big = achieve(q, graphs[split])
                assert achieve(q, graphs[small]) == a["easy"], (split, name)
                assert big - a["easy"] == a["hard"], (split, name)


def test_no_query_repeats_across_splits(export):
    out, _ = export
    frame = pl.read_parquet(out / "queries.parquet")
    multi = frame.filter(pl.col("type") != "1p")
    assert multi.select("type", "query").is_unique().all()
    assert frame.select("split", "type", "query").is_unique().all()


def test_one_hop_counts_match_kgreasoning_on_fb15k_237(tmp_path):
    """Every 1p query, as KGReasoning's write_links: the released FB15k-237 counts."""
    counts = {s: {"1p": None} for s in ("train", "valid", "test")}
    report = export_betae("fb15k-237", tmp_path / "fb", counts=counts, tables=False, threads=2)
    got = {s: report.counts[s]["1p"]["written"] for s in ("train", "valid", "test")}
    assert got == {"train": 149_689, "valid": 20_101, "test": 22_812}
    assert report.dropped == {"train": 0, "valid": 9, "test": 28}
    assert report.num_entities == 14_505 and report.num_relations == 474


def test_defaults_are_the_released_fb15k_237_counts():
    assert DEFAULT_COUNTS["train"]["2p"] == 149_689 and DEFAULT_COUNTS["train"]["pni"] == 14_968
    assert "ip" not in DEFAULT_COUNTS["train"] and "2u" not in DEFAULT_COUNTS["train"]
    assert all(DEFAULT_COUNTS[s][t] == 5_000 for s in ("valid", "test") for t in BETAE_NAMES[1:])
    assert DEFAULT_COUNTS["valid"]["1p"] is None


def test_same_seed_same_files_at_any_thread_count(tmp_path):
    counts = {"train": {"2p": 60, "pin": 20}, "valid": {"2u": 20, "pni": 20}, "test": {"ip": 20}}
    a = export_betae("nations", tmp_path / "a", counts=counts, seed=7, threads=1)
    b = export_betae("nations", tmp_path / "b", counts=counts, seed=7, threads=2)
    c = export_betae("nations", tmp_path / "c", counts=counts, seed=8, threads=2)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        if name != "manifest.json":
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), (
                name
            )
    assert (tmp_path / "a" / "valid-queries.pkl").read_bytes() != (
        tmp_path / "c" / "valid-queries.pkl"
    ).read_bytes()
    assert a.counts == b.counts and c.counts["train"]["2p"]["written"] == 60


def test_answer_cap_bounds_train_answers_and_hard_answers(tmp_path):
    counts = {"train": {"1p": None, "2p": 50}, "valid": {"1p": None, "2p": 20, "2in": 10}}
    export_betae(
        "codex-s", tmp_path / "cap", counts=counts, max_answers=3, max_answers_1p=3, threads=2
    )
    frame = pl.read_parquet(tmp_path / "cap" / "queries.parquet")
    assert frame.height > 0
    assert frame["hard_answers"].list.len().max() <= 3
    assert set(frame["split"]) == {"train", "valid"}


def test_parquet_rows_carry_names_and_formula(export):
    out, _ = export
    frame = pl.read_parquet(out / "queries.parquet")
    row = frame.filter(pl.col("type") == "pi").row(0, named=True)
    assert row["formula"] == "r1(s1,e1)&r2(e1,f)&r3(s2,f)"
    q = json.loads(row["query"])
    as_lists = json.loads(json.dumps(grounded_tuple("pi", row["relation_ids"], row["anchor_ids"])))
    assert q == as_lists
    assert q[0][0] == row["anchor_ids"][0] and q[1][0] == row["anchor_ids"][1]
    assert q[0][1] == row["relation_ids"][:2] and q[1][1] == row["relation_ids"][2:]
    assert all(k[0] in "+-" for k in row["relations"])
    assert len(row["anchor_labels"]) == 2 and row["hard_answer_keys"]
    jsonl = pl.read_ndjson(out / "queries.jsonl")
    assert jsonl.height == frame.height


def test_pickle_writer_gives_what_pickle_dump_would(tmp_path):
    rng = np.random.default_rng(0)
    rel = rng.integers(0, 500, (50, 3), dtype=np.int32)
    anc = rng.integers(0, 70_000, (50, 2), dtype=np.int32)
    template = (("s1", ("r1", "r2", -2)), ("s2", ("r3",)))
    cols = {"r1": rel[:, 0], "r2": rel[:, 1], "r3": rel[:, 2], "s1": anc[:, 0], "s2": anc[:, 1]}
    keys = encode_keys(template, cols, 50)
    lengths = rng.integers(0, 5, 50)
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    ids = rng.integers(0, 2**31 - 1, int(offsets[-1]), dtype=np.int32)
    tuples = [
        ((int(a[0]), (int(r[0]), int(r[1]), -2)), (int(a[1]), (int(r[2]),)))
        for r, a in zip(rel, anc, strict=True)
    ]
    structure = (("e", ("r", "r", "n")), ("e", ("r",)))
    tmp = tmp_path
    write_queries(tmp / "q.pkl", [(structure, keys)])
    write_answers(tmp / "a.pkl", [(keys, offsets, ids)])
    q = pickle.loads((tmp / "q.pkl").read_bytes())
    a = pickle.loads((tmp / "a.pkl").read_bytes())
    assert isinstance(q, defaultdict) and q.default_factory is set
    assert q == {structure: set(tuples)}
    want = {t: set(ids[offsets[i] : offsets[i + 1]].tolist()) for i, t in enumerate(tuples)}
    assert a == want and isinstance(a, defaultdict)
    assert pickle.loads(pickle.dumps(want)) == a


def test_parse_counts_over_defaults():
    c = parse_counts("train.2p=10,valid.*=7,test.1p=all,test.up=0")
    assert c["train"]["2p"] == 10 and c["train"]["3p"] == 149_689
    assert c["valid"]["1p"] == 7 and c["valid"]["up"] == 7 and c["test"]["1p"] is None
    assert "up" not in c["test"] and "ip" not in c["train"]
    with pytest.raises(InputError, match="not a BetaE query type"):
        parse_counts("train.pip=3")
    with pytest.raises(InputError, match=r"expected split\.type=N"):
        parse_counts("train2p=3")


def test_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "exists").mkdir()
    with pytest.raises(InputError, match="already exists"):
        export_betae("nations", tmp_path / "exists", counts={"train": {"2p": 1}})
    only_train = tmp_path / "kg"
    only_train.mkdir()
    (only_train / "triples.tsv").write_text("a\tr\tb\nb\tr\tc\n")
    with pytest.raises(InputError, match="no valid split"):
        export_betae(only_train, tmp_path / "x", counts={"train": {"2p": 1}})
    with pytest.raises(UnknownNameError, match="did you mean nations"):
        export_betae("nation", tmp_path / "y")
    code = cli.main(
        ["betae", "--kg", "nations", "--out", str(tmp_path / "c"), "--counts", "x.2p=1"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("kg2tool: error: ") and err.count("\n") == 1


def test_cli_writes_the_dataset(tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli.main(
        [
            "betae",
            "--kg",
            "nations",
            "--out",
            str(out),
            "--counts",
            "*.*=0,train.2p=20,valid.2i=5,test.2in=5",
            "--seed",
            "1",
            "--max-answers",
            "50",
        ]
    )
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["train"]["2p"]["written"] == 20
    assert manifest["max_answers"] == 50 and "1p" not in manifest["counts"]["train"]
    assert (out / "test-hard-answers.pkl").is_file()
    assert (out / "stats.txt").read_text() == "numentity: 14\nnumrelations: 110"


def test_benchmark_folder_and_canonical_dir_give_the_same_export(tmp_path):
    shared = shared_data_dir() / "nations"
    folder = tmp_path / "bench"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        (folder / f"{split}.txt").write_bytes((shared / f"{split}.txt").read_bytes())
    counts = {"train": {"1p": None, "2p": 30}, "valid": {"1p": None, "pi": 10}}
    export_betae(folder, tmp_path / "a", counts=counts, seed=2, threads=1, tables=False)
    export_betae("nations", tmp_path / "b", counts=counts, seed=2, threads=1, tables=False)
    for name in ("train-queries.pkl", "valid-hard-answers.pkl", "id2rel.pkl", "valid.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not (tmp_path / "a" / "queries.parquet").exists()
