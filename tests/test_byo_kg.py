"""Bring your own KG: benchmark folders, label files wider than the triples, files read as
their users wrote them (named columns, header lines, CSV quoting, RDF names, labels with
tabs), checked against plain-Python readings of the same files."""

from __future__ import annotations

import csv
import os
import unicodedata
from pathlib import Path

import polars as pl
import pytest

from kg2tool.cli import main
from kg2tool.errors import InputError
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.io import read_kg_dir, read_triples, write_kg_dir
from kg2tool.tools.catalog import ApiCatalog

SHARED = Path(
    os.environ.get("KG2TOOL_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "kg"
)
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared data missing")


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def python_triples(path: Path) -> list[tuple[str, str, str]]:
    """The triples of a tab-separated file, read with nothing but str.split."""
    out = []
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            h, r, t = line.split("\t")
            out.append((h, r, t))
    return out


def labels_of(kg: KnowledgeGraph) -> dict[str, str]:
    return dict(kg.entities.select("key", "label").iter_rows())


# ------------------------------------------------------------------ benchmark folders


@needs_shared
@pytest.mark.parametrize("name", ["fb15k-237", "wn18rr", "nations"])
def test_benchmark_folders_load_by_path(name: str) -> None:
    folder = SHARED / name
    kg = KnowledgeGraph.load(folder)
    train = set(python_triples(folder / "train.txt"))
    assert kg.num_triples == len(train)
    assert kg.num_entities == len({h for h, _, _ in train} | {t for _, _, t in train})
    assert kg.num_relations == len({r for _, r, _ in train})
    # the graph's id triples map back to exactly the file's triples
    ent = kg.entities["key"].to_list()
    rel = kg.relations["key"].to_list()
    back = {(ent[h], rel[r], ent[t]) for h, r, t in kg.triples.iter_rows()}
    assert back == train
    # valid/test are held out: read, never part of the graph
    tables = read_kg_dir(folder)
    for split in ("valid", "test"):
        assert tables.held_out[split].rows() == python_triples(folder / f"{split}.txt")
    every = read_kg_dir(folder, splits=("train", "valid", "test"))
    assert every.triples.height == sum(
        len(python_triples(folder / f"{s}.txt")) for s in ("train", "valid", "test")
    )


@needs_shared
def test_fb15k237_names_from_entity_names_tsv() -> None:
    folder = SHARED / "fb15k-237"
    kg = KnowledgeGraph.load(folder)
    with open(folder / "entity_names.tsv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    expected = {r["mid"]: r["label"] for r in rows if r["label"].strip()}
    got = labels_of(kg)
    shared = [k for k in got if k in expected]
    assert len(shared) == kg.num_entities  # every FB15k-237 entity has a name there
    assert all(got[k] == expected[k] for k in shared)
    desc = dict(kg.entities.select("key", "description").iter_rows())
    assert desc["/m/010016"] == "city in Texas, United States"
    rel2text = dict(
        line.split("\t") for line in (folder / "rel2text.txt").read_text("utf-8").splitlines()
    )
    rels = dict(kg.relations.select("key", "label").iter_rows())
    assert all(rels[k] == rel2text[k] for k in rels if k in rel2text)


@needs_shared
def test_wn18rr_lemmas_glosses_and_relation_words() -> None:
    folder = SHARED / "wn18rr"
    kg = KnowledgeGraph.load(folder)
    rels = dict(kg.relations.select("key", "label").iter_rows())
    assert rels["_hypernym"] == "hypernym"
    gloss = {}
    for line in (folder / "wn-entity2text-new.txt").read_text("utf-8").splitlines():
        key, text = line.split("\t")
        gloss.setdefault(key, text.split(" -- ", 1)[1])
    desc = dict(kg.entities.select("key", "description").iter_rows())
    assert desc["00002137"] == gloss["00002137"]
    assert labels_of(kg)["00002137"] == "abstraction"
    assert kg.entities["label"].str.contains(r"^\d+$").sum() == 0  # no offset shown as a name


def test_label_files_wider_than_triples_are_skipped_and_counted(tmp_path: Path) -> None:
    root = tmp_path / "bench"
    write(root / "train.txt", "a\tr\tb\nb\ts\tc\n")
    write(root / "valid.txt", "c\tr\td\n")
    write(root / "entity2text.txt", "a\tAlpha\nb\tBeta\nd\tDelta\nzz\tnot in any triple\n")
    write(root / "relation2text.txt", "r\tarr\ns\tess\nq\tunused\n")
    kg = KnowledgeGraph.load(root)
    assert labels_of(kg) == {"a": "Alpha", "b": "Beta", "c": "c"}
    assert kg.report["skipped_unknown_keys"] == 2
    assert kg.report["skipped_unknown_keys.entity2text.txt"] == 1
    assert kg.load_report()["skipped_unknown_keys.relation2text.txt"] == 1
    # 'd' is only in valid.txt: a known key, its label kept for the full graph
    full = KnowledgeGraph.load(root, splits=("train", "valid"))
    assert labels_of(full)["d"] == "Delta"
    with pytest.raises(InputError, match="'zz' is not an entity") as info:
        KnowledgeGraph.load(root, strict=True)
    assert (info.value.path, info.value.line) == (str(root / "entity2text.txt"), 4)


def test_dict_files_give_names_only_when_triples_use_ids(tmp_path: Path) -> None:
    ids = tmp_path / "ids"
    write(ids / "train.tsv", "0\t1\t2\n2\t0\t1\n")
    write(ids / "entities.dict", "0\tParis\n1\tFrance\n2\tEurope\n")
    write(ids / "relations.dict", "0\tlocated in\n1\tcapital of\n")
    kg = KnowledgeGraph.load(ids)
    assert labels_of(kg) == {"0": "Paris", "1": "France", "2": "Europe"}
    assert dict(kg.relations.select("key", "label").iter_rows()) == {
        "0": "located in",
        "1": "capital of",
    }
    named = tmp_path / "named"
    write(named / "train.txt", "paris\tcapital_of\tfrance\n")
    write(named / "entities.dict", "0\tparis\n1\tfrance\n")
    kg = KnowledgeGraph.load(named)
    assert labels_of(kg) == {"france": "france", "paris": "paris"}  # ids are never names


def test_headed_label_file_key_column_found_by_coverage(tmp_path: Path) -> None:
    root = tmp_path / "b"
    write(root / "train.txt", "08641944\thas\t08039312\n")
    write(
        root / "entity2name.tsv",
        "synset\tid\tlemma\tpos\n'hood.n.01\t08641944\thood\tn\nx.n.01\t08039312\tex\tn\n",
    )
    write(root / "entity2textlong.txt", "08641944\ta neighbourhood\n")
    kg = KnowledgeGraph.load(root)
    assert kg.entities.select("key", "label", "description").rows() == [
        ("08039312", "ex", None),
        ("08641944", "hood", "a neighbourhood"),
    ]


def test_malformed_label_line_stays_an_error(tmp_path: Path) -> None:
    root = tmp_path / "b"
    write(root / "train.txt", "a\tr\tb\n")
    write(root / "entity2text.txt", "a\tAlpha\nb\n")
    with pytest.raises(InputError, match="expected 2 fields") as info:
        KnowledgeGraph.load(root)
    assert (info.value.path, info.value.line) == (str(root / "entity2text.txt"), 2)


def test_folder_with_no_known_layout_lists_what_was_looked_for(tmp_path: Path) -> None:
    write(tmp_path / "kg" / "edges.txt", "a\tr\tb\n")
    with pytest.raises(InputError) as info:
        KnowledgeGraph.load(tmp_path / "kg")
    msg = str(info.value)
    for name in ("triples.tsv", "train.txt", "train.tsv", "manifest.json"):
        assert name in msg
    assert main(["stats", "--kg", str(tmp_path / "kg")]) == 2


def test_deleting_the_last_triple_of_a_relation_keeps_the_directory_loadable(
    tmp_path: Path,
) -> None:
    root = tmp_path / "kg"
    write(root / "triples.tsv", "a\tr\tb\nb\ts\tc\n")
    write(root / "relations.tsv", "key\tlabel\tdescription\nr\tarr\t\ns\tess\t\n")
    write(root / "entities.tsv", "key\tlabel\tdescription\na\tA\t\nb\tB\t\nc\tC\t\n")
    write(root / "triples.tsv", "a\tr\tb\n")  # the only 's' triple (and 'c') deleted
    kg = KnowledgeGraph.load(root)
    assert kg.num_relations == 1
    assert kg.report["skipped_unknown_keys.relations.tsv"] == 1
    assert kg.report["skipped_unknown_keys.entities.tsv"] == 1


# ------------------------------------------------------------------ files as written


def test_parquet_columns_read_by_name(tmp_path: Path) -> None:
    df = pl.DataFrame({"head": ["a", "b"], "tail": ["b", "c"], "relation": ["r", "s"]})
    df.write_parquet(tmp_path / "t.parquet")
    assert read_triples(tmp_path / "t.parquet").triples.rows() == [
        ("a", "r", "b"),
        ("b", "s", "c"),
    ]
    pl.DataFrame({"Object": ["b"], "Subject": ["a"], "Predicate": ["r"]}).write_parquet(
        tmp_path / "spo.parquet"
    )
    assert read_triples(tmp_path / "spo.parquet").triples.rows() == [("a", "r", "b")]
    # no name matches: by position
    pl.DataFrame({"x": ["a"], "y": ["r"], "z": ["b"]}).write_parquet(tmp_path / "xyz.parquet")
    assert read_triples(tmp_path / "xyz.parquet").triples.rows() == [("a", "r", "b")]
    # some names match but not all: ambiguous, the user must say
    pl.DataFrame({"head": ["a"], "tail": ["b"], "kind": ["r"]}).write_parquet(
        tmp_path / "half.parquet"
    )
    with pytest.raises(InputError, match="no relation column"):
        read_triples(tmp_path / "half.parquet")


def test_header_line_detected_and_reported(tmp_path: Path) -> None:
    p = write(tmp_path / "t.tsv", "head\trelation\ttail\na\tr\tb\n")
    t = read_triples(p)
    assert t.triples.rows() == [("a", "r", "b")]
    assert t.report["header_line"] == 1
    kg = KnowledgeGraph.load(p)
    assert kg.relations["key"].to_list() == ["r"]
    assert kg.load_report() == {"header_line": 1}
    names = ApiCatalog.from_graph(kg).names
    assert not any("relation_of" in n for n in names)
    # --no-header keeps it as a triple
    assert read_triples(p, has_header=False).triples.height == 2
    # a headed file with the columns in another order is read by name
    q = write(tmp_path / "q.tsv", "object\tsubject\tpredicate\nb\ta\tr\n")
    assert read_triples(q).triples.rows() == [("a", "r", "b")]
    # a plain data file has no header
    assert "header_line" not in read_triples(write(tmp_path / "d.tsv", "a\tr\tb\n")).report


def test_csv_is_read_as_csv_tsv_stays_unquoted(tmp_path: Path) -> None:
    text = '"Paris, France",capital_of,France\n"Lyon, ""the"" city",in,"Paris, France"\n'
    p = write(tmp_path / "t.csv", text)
    expected = list(csv.reader(text.splitlines()))
    assert [list(r) for r in read_triples(p).triples.rows()] == expected
    # a late malformed line goes through the slow path with the CSV reader: line named
    bad = write(tmp_path / "bad.csv", text + "x,y\n")
    with pytest.raises(InputError, match="expected 3 fields") as info:
        read_triples(bad)
    assert info.value.line == 3
    empty = write(tmp_path / "e.csv", 'a,r,b\n"",r,b\n')
    with pytest.raises(InputError, match="empty head field") as info:
        read_triples(empty)
    assert info.value.line == 2
    t = write(tmp_path / "t.tsv", '"a\tr\tb"\n')
    assert read_triples(t).triples.rows() == [('"a', "r", 'b"')]


def test_mixed_separators_name_the_line(tmp_path: Path) -> None:
    p = write(tmp_path / "m.tsv", "a\tr\tb\nc,r,d\n")
    with pytest.raises(InputError, match="mixes separators") as info:
        read_triples(p)
    assert info.value.line == 2


def test_rdf_names_from_local_names_and_no_blank_answers(tmp_path: Path) -> None:
    nt = (
        "<http://ex.org/alice> <http://ex.org/knows> <http://ex.org/bob> .\n"
        "<http://ex.org/bob> <http://ex.org/knows> _:b1 .\n"
        "_:b1 <http://ex.org/knows> <http://ex.org/alice> .\n"
        '<http://ex.org/bob> <http://www.w3.org/2000/01/rdf-schema#label> "Bob" .\n'
        "<http://ex.org/alice> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
        "<http://ex.org/Person> .\n"
    )
    kg = KnowledgeGraph.load(write(tmp_path / "g.nt", nt))
    assert dict(kg.relations.select("key", "label").iter_rows()) == {"http://ex.org/knows": "knows"}
    assert labels_of(kg) == {"http://ex.org/alice": "alice", "http://ex.org/bob": "Bob"}
    assert not kg.entities["key"].str.starts_with("_:").any()
    assert kg.report["blank_node_triples"] == 2
    names = ApiCatalog.from_graph(kg).names
    assert any("know" in n for n in names)  # a verb frame: find_entities_that_know
    assert not any("http" in n for n in names)
    assert dict(kg.type_labels.select("key", "label").iter_rows()) == {
        "http://ex.org/Person": "Person"
    }


def test_labels_with_tabs_and_newlines_read_the_same_on_every_path(tmp_path: Path) -> None:
    nt = (
        "<http://x/a> <http://x/r> <http://x/b> .\n"
        '<http://x/a> <http://www.w3.org/2000/01/rdf-schema#label> "Alpha\\tOne\\nTwo" .\n'
        '<http://x/b> <http://www.w3.org/2000/01/rdf-schema#label> "Be\\r\\nta" .\n'
    )
    src = write(tmp_path / "g.nt", nt)
    direct = KnowledgeGraph.load(src)
    assert main(["import", str(src), "--canonical", "--out", str(tmp_path / "kg")]) == 0
    imported = KnowledgeGraph.load(tmp_path / "kg")
    assert (
        labels_of(direct)
        == labels_of(imported)
        == {
            "http://x/a": "Alpha One Two",
            "http://x/b": "Be  ta",
        }
    )


def test_generated_samples_verify_against_the_files_own_import(tmp_path: Path) -> None:
    from kg2tool.dataset.verify import verify_dataset
    from kg2tool.pipeline.driver import generate

    lines = []
    for i in range(40):
        lines.append(f"<http://x/e{i}> <http://x/next> <http://x/e{(i + 1) % 40}> .")
        lines.append(f"<http://x/e{i}> <http://x/pair> <http://x/e{(i * 7) % 40}> .")
        lines.append(
            f'<http://x/e{i}> <http://www.w3.org/2000/01/rdf-schema#label> "Ent\\t{i}\\nx" .'
        )
    src = write(tmp_path / "g.nt", "\n".join(lines) + "\n")
    generate(out=str(tmp_path / "ds"), kg=str(src), num_samples=10, patterns="1p,2p", seed=1)
    assert main(["import", str(src), "--canonical", "--out", str(tmp_path / "kg")]) == 0
    report = verify_dataset(tmp_path / "ds", KnowledgeGraph.load(tmp_path / "kg"))
    assert report.failed == 0
    assert report.checked == 10


def test_keys_differing_only_by_unicode_normalisation_stay_distinct(tmp_path: Path) -> None:
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    p = write(tmp_path / "u.tsv", f"{nfc}\tr\tx\n{nfd}\tr\tx\n")
    kg = KnowledgeGraph.load(p)
    assert kg.num_entities == 3  # keys are taken byte for byte, as written
    assert sorted(kg.entities["key"].to_list()) == sorted([nfc, nfd, "x"])


# ------------------------------------------------------------------ the CLI


def test_cli_separator_header_and_columns(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = write(tmp_path / "t.txt", "score;o;s;p\n1;b;a;r\n2;c;b;r\n")
    assert main(["stats", "--kg", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kg2tool: error: ") and "--separator ';'" in err
    code = main(["stats", "--kg", str(p), "--separator", ";", "--columns", "s,p,o", "--json"])
    assert code == 0
    out = capsys.readouterr().out
    assert '"triples": 2' in out and '"entities": 3' in out
    code = main(
        [
            "import",
            str(p),
            "--separator",
            ";",
            "--header",
            "--columns",
            "2,3,1",
            "--canonical",
            "--out",
            str(tmp_path / "kg"),
        ]
    )
    assert code == 0
    assert read_kg_dir(tmp_path / "kg").triples.rows() == [("a", "r", "b"), ("b", "r", "c")]


def test_cli_reports_what_loading_skipped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "bench"
    write(root / "train.txt", "head\trelation\ttail\na\tr\tb\n")
    write(root / "entity2text.txt", "a\tAlpha\nzz\tZed\n")
    assert main(["stats", "--kg", str(root)]) == 0
    out = capsys.readouterr().out
    assert "skipped_unknown_keys" in out and "header_line" in out
    assert main(["import", str(root), "--out", str(tmp_path / "snap")]) == 0
    out = capsys.readouterr().out
    assert "label/type rows skipped" in out and "entity2text.txt: 1" in out
    assert "header" in out
    assert main(["stats", "--kg", str(root), "--strict"]) == 2
    assert "'zz' is not an entity" in capsys.readouterr().err
    # a benchmark folder imported to the canonical layout keeps its held-out splits
    write(root / "test.txt", "b\tr\ta\n")
    assert main(["import", str(root), "--canonical", "--out", str(tmp_path / "canon")]) == 0
    assert (tmp_path / "canon" / "test.tsv").read_text() == "b\tr\ta\n"


def test_write_then_read_round_trip_of_a_benchmark_folder(tmp_path: Path) -> None:
    root = tmp_path / "bench"
    write(root / "train.tsv", "a\tr\tb\n")
    write(root / "test.tsv", "b\tr\tc\n")
    write(root / "entity_names.tsv", "key\tname\tdescription\na\tA\tfirst\nc\tC\t\n")
    tables = read_kg_dir(root)
    out = write_kg_dir(tables, tmp_path / "canon", splits=tables.held_out)
    back = read_kg_dir(out, splits=("train", "test"))
    assert back.triples.rows() == [("a", "r", "b"), ("b", "r", "c")]
    assert back.entities.rows() == [("a", "A", "first"), ("c", "C", None)]


def test_long_loads_show_phase_rows_and_rate_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kg2tool.cli as cli

    p = write(tmp_path / "t.tsv", "".join(f"e{i}\tr\te{i + 1}\n" for i in range(1000)))
    assert main(["import", str(p), "--out", str(tmp_path / "quiet")]) == 0
    assert "rows/s" not in capsys.readouterr().err  # not a terminal: no progress
    monkeypatch.setattr(cli, "_is_tty", lambda: True)
    assert main(["import", str(p), "--out", str(tmp_path / "snap")]) == 0
    err = capsys.readouterr().err
    assert f"loading {p}: 1,000 rows" in err and "rows/s" in err
    assert "writing snapshot:" in err
