"""Loaders: triple files, RDF, canonical directories, and the bad-input matrix."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kg2tool.errors import InputError
from kg2tool.kg.io import read_kg, read_kg_dir, read_rdf, read_split, read_triples, write_kg_dir
from kg2tool.kg.tables import KGTables

SHARED = Path(
    os.environ.get("KG2TOOL_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "kg"
)
RDFS_LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


# ---------------------------------------------------------------- triple files


def test_tsv_keeps_duplicates_and_quotes(tmp_path: Path) -> None:
    p = write(tmp_path, "t.tsv", 'a\tr\t"b\na\tr\t"b\r\n\nc\ts\td\n')
    kg = read_triples(p)
    assert kg.triples.rows() == [("a", "r", '"b'), ("a", "r", '"b'), ("c", "s", "d")]
    assert kg.triples.schema == pl.Schema(
        {"head": pl.String, "relation": pl.String, "tail": pl.String}
    )


def test_csv_header_column_names_and_extra_columns(tmp_path: Path) -> None:
    p = write(tmp_path, "t.csv", "score,s,p,o\n1,a,r,b\n2,c,r,d\n")
    kg = read_triples(p, has_header=True, columns=("s", "p", "o"))
    assert kg.triples.rows() == [("a", "r", "b"), ("c", "r", "d")]
    kg = read_triples(p, has_header=True, columns=(3, 2, 1))
    assert kg.triples.rows() == [("b", "r", "a"), ("d", "r", "c")]


def test_separator_alias_gzip_and_explicit_format(tmp_path: Path) -> None:
    p = write(tmp_path, "t.data.gz", gzip.compress(b"a|r|b\n"))
    assert read_triples(p, format="txt", separator="|").triples.rows() == [("a", "r", "b")]
    q = write(tmp_path, "t.tsv.gz", gzip.compress(b"a\tr\tb\n"))
    assert read_triples(q, separator="\\t").triples.rows() == [("a", "r", "b")]


def test_parquet(tmp_path: Path) -> None:
    df = pl.DataFrame({"s": ["a", "c"], "p": ["r", "r"], "o": [1, 2]})
    df.write_parquet(tmp_path / "t.parquet")
    kg = read_triples(tmp_path / "t.parquet")
    assert kg.triples.rows() == [("a", "r", "1"), ("c", "r", "2")]
    pl.DataFrame({"s": ["a", None], "p": ["r", "r"], "o": ["b", "c"]}).write_parquet(
        tmp_path / "n.parquet"
    )
    with pytest.raises(InputError, match=r"n.parquet:2:1: .*empty head value in row 2"):
        read_triples(tmp_path / "n.parquet")
    with pytest.raises(InputError, match="not a readable Parquet"):
        read_triples(write(tmp_path, "x.parquet", b"PAR1 garbage"))


@pytest.mark.parametrize(
    ("content", "kwargs", "where", "message"),
    [
        (b"a\tr\tb\nc\tr\n", {}, ":2: ", "expected 3 fields"),
        (b"a\tr\tb\nc\tr\td\te\n", {}, ":2: ", "expected 3 fields.*found 4"),
        (b"a\tr\tb\n\n\nc\t\td\n", {}, ":4:2: ", "empty relation field"),
        (b"\tr\tb\n", {}, ":1:1: ", "empty head field"),
        (b"a\tr\tb\r\nc\tr\t\r\n", {}, ":2:3: ", "empty tail field"),
        (b"a,r,b\nc,r,d\n", {}, ":1: ", "looks ','-separated"),
        (b"a\tr\tb\n", {"separator": ","}, ":1: ", "looks '\\\\t'-separated"),
        (b"a\tr\tb\n", {"separator": "ab"}, ": ", "unknown separator 'ab'"),
        (b"a\tr\tb\n", {"separator": ""}, ": ", "unknown separator"),
        (b"", {}, ": ", "empty file"),
        (b"\n \n\r\n", {}, ": ", "empty file"),
        (b"s\tp\to\n", {"has_header": True}, ": ", "empty file"),
        (b"a\tr\tb\nok\t\xc3\x28x\tb\n", {}, ":2:4: ", "not valid UTF-8"),
        (b"\xff", {}, ":1:1: ", "not valid UTF-8"),
        (b"a\tr\tb\n", {"columns": (0, 1)}, ": ", "3 columns"),
        (b"a\tr\tb\n", {"columns": ("s", "p", "o")}, ": ", "has_header=True"),
        (
            b"s\tp\to\na\tr\tb\n",
            {"columns": ("s", "p", "x"), "has_header": True},
            ":1: ",
            "no column 'x'",
        ),
    ],
)
def test_bad_triple_files(
    tmp_path: Path, content: bytes, kwargs: dict, where: str, message: str
) -> None:
    p = write(tmp_path, "bad.tsv", content)
    with pytest.raises(InputError, match=message) as info:
        read_triples(p, **kwargs)
    assert str(info.value).startswith(str(p) + where)


def test_error_attributes_and_late_bad_line(tmp_path: Path) -> None:
    lines = [f"e{i}\tr\te{i + 1}" for i in range(50_000)]
    lines[41_234] = "e\tr"
    p = write(tmp_path, "big.tsv", "\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_triples(p)
    assert (info.value.path, info.value.line) == (str(p), 41_235)


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown triple file format"):
        read_triples(write(tmp_path, "t.xlsx", b"a\tr\tb\n"))
    with pytest.raises(InputError, match="no such file"):
        read_triples(tmp_path / "nope.tsv")
    with pytest.raises(InputError, match="not a valid gzip"):
        read_triples(write(tmp_path, "t.tsv.gz", b"not gzip"))


@pytest.mark.skipif(not (SHARED / "fb15k-237").is_dir(), reason="shared data missing")
def test_fb15k237_loads_fast() -> None:
    path = SHARED / "fb15k-237" / "train.txt"
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        kg = read_triples(path)
        best = min(best, time.perf_counter() - start)
    assert kg.triples.height == 272_115
    assert kg.triples.row(0) == ("/m/027rn", "/location/country/form_of_government", "/m/06cx9")
    assert best < 0.3, f"FB15k-237 train took {best:.3f} s"


# ---------------------------------------------------------------- RDF

NT = f"""\
<http://x/a> <http://x/knows> <http://x/b> .
<http://x/a> <http://x/knows> _:n1 .
<http://x/a> {RDFS_LABEL} "A (de)"@de .
<http://x/a> {RDFS_LABEL} "A"@en .
<http://x/b> {RDFS_LABEL} "B plain" .
<http://x/b> {RDFS_LABEL} "B (fr)"@fr .
<http://x/b> <http://schema.org/description> "the b" .
<http://x/a> <http://x/age> "42"^^<http://www.w3.org/2001/XMLSchema#integer> .
<http://x/b> <http://x/note> "n" .
<http://x/a> {RDF_TYPE} <http://x/Person> .
<http://x/Person> {RDFS_LABEL} "person" .
<http://x/knows> <http://www.w3.org/2004/02/skos/core#prefLabel> "knows" .
<http://x/lonely> {RDFS_LABEL} "not in any edge" .
"""


def test_ntriples_labels_types_literals(tmp_path: Path) -> None:
    kg = read_triples(write(tmp_path, "g.nt", NT))
    # the edge to the blank node _:n1 is left out (no question could name it) and counted
    assert kg.triples.rows() == [("http://x/a", "http://x/knows", "http://x/b")]
    assert kg.report["blank_node_triples"] == 1
    ents = {k: (lab, d) for k, lab, d in kg.entities.rows()}
    assert ents == {"http://x/a": ("A", None), "http://x/b": ("B plain", "the b")}
    assert kg.relations.rows() == [("http://x/knows", "knows", None)]
    assert kg.entity_types.rows() == [("http://x/a", "http://x/Person")]
    assert kg.type_labels.rows() == [("http://x/Person", "person", None)]
    assert kg.report["literal_triples"] == 2
    assert kg.report["isolated_subjects"] == 1


def test_turtle_gz(tmp_path: Path) -> None:
    ttl = b"""@prefix ex: <http://x/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:a ex:knows ex:b , ex:c ; rdfs:label "A" ; ex:age 3 .
"""
    kg = read_triples(write(tmp_path, "g.ttl.gz", gzip.compress(ttl)))
    assert sorted(kg.triples["tail"]) == ["http://x/b", "http://x/c"]
    assert kg.report["literal_triples"] == 1
    # entities without an rdfs:label are named by the IRI's local name
    assert kg.entities.rows() == [
        ("http://x/a", "A", None),
        ("http://x/b", "b", None),
        ("http://x/c", "c", None),
    ]


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("bad.nt", "<http://a> <http://p> <http://b> .\n<http://a> <http://p> oops .\n", 2),
        ("bad.ttl", "@prefix ex: <http://x/> .\nex:a ex:p ex:b .\n\nex:a ex:p .\n", 4),
        # a missing final dot is noticed where the input ends
        ("bad2.nt", "<http://a> <http://p> <http://b> .\n<http://a> <http://p> <http://c>\n", 3),
    ],
)
def test_malformed_rdf_names_line(tmp_path: Path, name: str, content: str, line: int) -> None:
    with pytest.raises(InputError, match="malformed RDF") as info:
        read_rdf(write(tmp_path, name, content))
    assert info.value.line == line


def test_rdf_without_edges_and_bad_bytes(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no entity-to-entity triples"):
        read_triples(write(tmp_path, "lit.nt", f'<http://a> {RDFS_LABEL} "x" .\n'))
    with pytest.raises(InputError, match="no entity-to-entity triples"):
        read_triples(write(tmp_path, "empty.nt", b""))
    with pytest.raises(InputError, match="UTF-8") as info:
        read_triples(write(tmp_path, "b.nt", b'<http://a> <http://p> "\xff" .\n'))
    assert info.value.line == 1


# ---------------------------------------------------------------- canonical directory


def small_tables() -> KGTables:
    return KGTables(
        triples=pl.DataFrame(
            {"head": ["a", "b", "a"], "relation": ["r", "s", "r"], "tail": ["b", "c", "b"]}
        ),
        entities=pl.DataFrame(
            {
                "key": ["a", "b", "d"],
                "label": ['The "A"\tthing', None, "D"],
                "description": ["line1\nline2", "bee", None],
            }
        ),
        relations=pl.DataFrame(
            {"key": ["r"], "label": ["rel r"], "description": [None]},
            schema={"key": pl.String, "label": pl.String, "description": pl.String},
        ),
        entity_types=pl.DataFrame({"key": ["a", "a", "b"], "type": ["T", "U", "T"]}),
        type_labels=pl.DataFrame({"key": ["T"], "label": ["tee"], "description": ["a type"]}),
    )


def test_round_trip(tmp_path: Path) -> None:
    tables = small_tables()
    held_out = {
        "valid": pl.DataFrame({"head": ["d"], "relation": ["r"], "tail": ["a"]}),
        "test": pl.DataFrame({"head": ["c"], "relation": ["s"], "tail": ["a"]}),
    }
    out = write_kg_dir(tables, tmp_path / "kg", splits=held_out)
    assert sorted(f.name for f in out.iterdir()) == [
        "entities.tsv",
        "entity_types.tsv",
        "relations.tsv",
        "test.tsv",
        "triples.tsv",
        "types.tsv",
        "valid.tsv",
    ]
    back = read_kg_dir(out)
    assert back.triples.equals(tables.triples)  # duplicates kept
    assert back.entities.rows() == [
        ("a", 'The "A" thing', "line1 line2"),
        ("b", None, "bee"),
        ("d", "D", None),
    ]
    assert back.relations.rows() == [("r", "rel r", None)]
    assert back.entity_types.rows() == [("a", "T"), ("a", "U"), ("b", "T")]
    assert back.type_labels.rows() == [("T", "tee", "a type")]
    assert back.report["triples_train"] == 3
    assert read_split(out, "valid").rows() == [("d", "r", "a")]
    every = read_kg_dir(out, splits=("train", "valid", "test"))
    assert every.triples.height == 5
    assert read_kg(out).triples.equals(back.triples)


def test_round_trip_parquet_and_overwrite(tmp_path: Path) -> None:
    tables = small_tables()
    tables.entities = tables.entities.head(2)  # 'd' only occurs in held-out triples
    out = write_kg_dir(tables, tmp_path / "kg", triples_format="parquet")
    assert (out / "triples.parquet").is_file()
    assert read_kg_dir(out).triples.equals(tables.triples)
    with pytest.raises(InputError, match="already exists"):
        write_kg_dir(tables, out)
    t = small_tables()
    t.triples = t.triples.head(1)
    t.entities = t.entities.head(2)
    t.entity_types = t.entity_types.filter(pl.col("key") != "c")
    write_kg_dir(t, out, overwrite=True)
    assert read_kg_dir(out).triples.height == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kg"]  # no temp dirs left


def test_write_rejects_unknown_keys_without_leaving_files(tmp_path: Path) -> None:
    t = small_tables()
    t.entities = pl.DataFrame({"key": ["zzz"], "label": ["?"], "description": [None]})
    with pytest.raises(InputError, match="'zzz' is not in the triples"):
        write_kg_dir(t, tmp_path / "kg")
    t = small_tables()
    t.triples = pl.DataFrame({"head": ["a\tb"], "relation": ["r"], "tail": ["b"]})
    with pytest.raises(InputError, match="tab/newline"):
        write_kg_dir(t, tmp_path / "kg")
    assert list(tmp_path.iterdir()) == []


def make_dir(tmp_path: Path, **files: str) -> Path:
    root = tmp_path / "kg"
    root.mkdir()
    (root / "triples.tsv").write_text("a\tr\tb\nb\ts\tc\n")
    (root / "test.tsv").write_text("c\tr\tz\n")
    for name, text in files.items():
        (root / name.replace("__", ".")).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "bad_file", "line", "message"),
    [
        (
            {"entities__tsv": "key\tlabel\tdescription\na\tA\t\nq\tQ\t\n"},
            "entities.tsv",
            3,
            "'q' is not an entity",
        ),
        (
            {"entities__tsv": "key\tlabel\tdescription\na\tA\t\nb\tB\t\na\tA2\t\n"},
            "entities.tsv",
            4,
            "duplicate key 'a'",
        ),
        (
            {"entities__tsv": "key\tlabel\tdescription\na\tA\n"},
            "entities.tsv",
            2,
            "expected 3 fields",
        ),
        (
            {"entities__tsv": "key\tlabel\tdescription\n\tA\tx\n"},
            "entities.tsv",
            2,
            "empty key field",
        ),
        ({"entities__tsv": "id\tname\n"}, "entities.tsv", 1, "bad header"),
        ({"entities__tsv": ""}, "entities.tsv", None, "empty file"),
        (
            {"relations__tsv": "key\tlabel\tdescription\nr\tR\t\nx\tX\t\n"},
            "relations.tsv",
            3,
            "'x' is not a relation",
        ),
        (
            {"entity_types__tsv": "key\ttype\na\tT\nnope\tT\n"},
            "entity_types.tsv",
            3,
            "'nope' is not an entity",
        ),
        ({"entity_types__tsv": "key\ttype\na\t\n"}, "entity_types.tsv", 2, "empty type field"),
        (
            {"entity_types__tsv": "key\ttype\na\tT\n", "types__tsv": "key\tlabel\nT\tt\nU\tu\n"},
            "types.tsv",
            3,
            "'U' is not a type",
        ),
        ({"entities__tsv": "key\tlabel\tdescription\na\t\xe9\t\n"}, None, None, None),
    ],
)
def test_bad_label_files(
    tmp_path: Path, files: dict, bad_file: str | None, line: int | None, message: str | None
) -> None:
    root = make_dir(tmp_path, **files)
    if message is None:  # control: a well-formed file reads
        assert read_kg_dir(root).entities.rows() == [("a", "é", None)]
        return
    with pytest.raises(InputError, match=message) as info:
        read_kg_dir(root, strict=True)  # unknown keys are an error only with strict
    assert info.value.path == str(root / bad_file)
    assert info.value.line == line
    if "is not" in message:  # by default the row is skipped and counted instead
        kg = read_kg_dir(root)
        assert kg.report["skipped_unknown_keys"] == 1
        assert kg.report[f"skipped_unknown_keys.{bad_file}"] == 1


def test_label_file_non_utf8_and_held_out_keys(tmp_path: Path) -> None:
    root = make_dir(tmp_path)
    (root / "entities.tsv").write_bytes(b"key\tlabel\tdescription\nz\tzed\t\na\t\xff\t\n")
    with pytest.raises(InputError, match="UTF-8") as info:
        read_kg_dir(root)
    assert (info.value.line, info.value.column) == (3, 3)
    # 'z' only occurs in test.tsv: a known key, its label is kept.
    (root / "entities.tsv").write_text("key\tlabel\nz\tzed\n")
    kg = read_kg_dir(root)
    assert kg.entities.rows() == [("z", "zed", None)]
    assert kg.triples.height == 2


def test_missing_pieces(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a directory"):
        read_kg_dir(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        InputError, match=r"no known KG layout: looked for triples\.tsv.*train\.txt"
    ):
        read_kg_dir(tmp_path / "empty")
    root = make_dir(tmp_path)
    with pytest.raises(InputError, match=r"missing valid\.tsv"):
        read_kg_dir(root, splits=("train", "valid"))
    with pytest.raises(InputError, match="unknown split"):
        read_kg_dir(root, splits=("train", "dev"))


# ---------------------------------------------------------------- fuzzing

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
structured = st.lists(
    st.sampled_from(
        [
            b"a",
            b"b",
            b"\t",
            b",",
            b"\n",
            b"\r\n",
            b"",
            b" ",
            b"\xff",
            b"\xc3",
            b'"',
            b"<http://a>",
            b" .",
            b"_:b",
            b"@prefix",
            b"\x00",
        ]
    ),
    max_size=40,
).map(b"".join)


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=300), structured),
    suffix=st.sampled_from([".tsv", ".csv", ".txt", ".nt", ".ttl", ".parquet", ".tsv.gz"]),
)
def test_random_bytes_only_raise_input_error(tmp_path: Path, data: bytes, suffix: str) -> None:
    p = tmp_path / f"f{suffix}"
    p.write_bytes(data)
    try:
        kg = read_triples(p)
    except InputError:
        return
    assert kg.triples.height > 0
    assert kg.triples.null_count().row(0) == (0, 0, 0)


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), structured))
def test_random_label_file_only_raises_input_error(tmp_path: Path, data: bytes) -> None:
    root = tmp_path / "kg"
    root.mkdir(exist_ok=True)
    (root / "triples.tsv").write_bytes(b"a\tr\tb\n")
    (root / "entities.tsv").write_bytes(b"key\tlabel\tdescription\n" + data)
    try:
        kg = read_kg_dir(root)
    except InputError:
        return
    assert kg.entities is not None
    assert set(kg.entities["key"]) <= {"a", "b"}
