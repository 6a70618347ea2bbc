"""Wikidata JSON dumps: small dumps written in the documented format, one case per rule."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from kg2tool.cli import main
from kg2tool.errors import InputError
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.wikidata import read_wikidata_dump


def snak(pid: str, value: Any = None, *, kind: str = "item", snaktype: str = "value") -> dict:
    """A main snak or qualifier snak as the dump writes it."""
    out: dict[str, Any] = {"snaktype": snaktype, "property": pid}
    if snaktype != "value":
        return out
    if kind in ("item", "property", "lexeme"):
        num = int(value[1:])
        out["datavalue"] = {
            "value": {"entity-type": kind, "numeric-id": num, "id": value},
            "type": "wikibase-entityid",
        }
    elif kind == "string":
        out["datavalue"] = {"value": value, "type": "string"}
    elif kind == "time":
        out["datavalue"] = {"value": {"time": value, "precision": 11}, "type": "time"}
    return out


def statement(pid: str, value: Any = None, *, rank: str = "normal", qualifiers=None, **kw) -> dict:
    st = {"mainsnak": snak(pid, value, **kw), "type": "statement", "rank": rank}
    if qualifiers:
        st["qualifiers"] = {q.get("property"): [q] for q in qualifiers}
    return st


def entity(eid: str, labels=None, descriptions=None, claims=(), kind: str = "item") -> dict:
    by_pid: dict[str, list] = {}
    for st in claims:
        by_pid.setdefault(st["mainsnak"]["property"], []).append(st)
    return {
        "type": kind,
        "id": eid,
        "labels": {k: {"language": k, "value": v} for k, v in (labels or {}).items()},
        "descriptions": {k: {"language": k, "value": v} for k, v in (descriptions or {}).items()},
        "claims": by_pid,
    }


def dump_text(entities: list[dict]) -> str:
    """The dump layout: '[' line, one entity per line with ',' after all but the last, ']'."""
    return "[\n" + ",\n".join(json.dumps(e) for e in entities) + "\n]\n"


ENTITIES = [
    entity(
        "Q42",
        {"en": "Douglas Adams", "de": "Douglas Adams (de)"},
        {"en": "English writer"},
        [
            statement("P31", "Q5"),
            statement(
                "P19", "Q350", qualifiers=[snak("P580", "+1952-03-11T00:00:00Z", kind="time")]
            ),
            statement("P27", "Q145", rank="preferred"),
            statement("P27", "Q174193", rank="deprecated"),
            statement("P1412", "Q1860"),
            statement("P40", snaktype="somevalue"),
            statement("P26", snaktype="novalue"),
            statement("P569", "+1952-03-11T00:00:00Z", kind="time"),
            statement("P1477", "Douglas Noel Adams", kind="string"),
            statement("P1687", "P50", kind="property"),
            statement("P5137", "L1", kind="lexeme"),
        ],
    ),
    entity("Q350", {"en": "Cambridge"}, {"de": "Stadt"}, [statement("P17", "Q145")]),
    entity("Q145", {"mul": "United Kingdom"}, None, [statement("P31", "Q6256")]),
    entity("Q5", {"en": "human"}),
    entity("Q6256", {"en": "country"}),
    entity("Q1860", {"fr": "anglais"}),
    entity(
        "P19",
        {"en": "place of birth"},
        {"en": "most specific known birth location"},
        kind="property",
    ),
    entity("P27", {"en": "country of citizenship"}, kind="property"),
    {"type": "lexeme", "id": "L1", "lemmas": {"en": {"language": "en", "value": "first"}}},
]


def expected_triples(entities: list[dict], keep: set[str] | None = None) -> set[tuple]:
    """The documented rule in plain Python: item-valued, non-deprecated, not P31."""
    out = set()
    for e in entities:
        if e.get("type") != "item":
            continue
        for pid, sts in e["claims"].items():
            for st in sts:
                ms = st["mainsnak"]
                dv = ms.get("datavalue", {})
                if (
                    pid != "P31"
                    and (keep is None or pid in keep)
                    and st["rank"] != "deprecated"
                    and ms["snaktype"] == "value"
                    and dv.get("type") == "wikibase-entityid"
                    and dv["value"]["entity-type"] == "item"
                ):
                    out.add((e["id"], pid, dv["value"]["id"]))
    return out


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    p = tmp_path / "dump.json"
    p.write_text(dump_text(ENTITIES))
    return p


def test_claims_types_labels_and_counts(dump: Path) -> None:
    t = read_wikidata_dump(dump)
    assert set(t.triples.rows()) == expected_triples(ENTITIES)
    assert set(t.triples.rows()) == {
        ("Q42", "P19", "Q350"),
        ("Q42", "P27", "Q145"),
        ("Q42", "P1412", "Q1860"),
        ("Q350", "P17", "Q145"),
    }
    assert t.entity_types.rows() == [("Q42", "Q5"), ("Q145", "Q6256")]
    assert t.type_labels.rows() == [("Q5", "human", None), ("Q6256", "country", None)]
    ents = {k: (lab, d) for k, lab, d in t.entities.rows()}
    assert ents["Q42"] == ("Douglas Adams", "English writer")
    assert ents["Q145"] == ("United Kingdom", None)  # from the 'mul' fallback
    assert ents["Q350"] == ("Cambridge", None)  # no English description
    assert "Q1860" not in ents  # only a French label: named by its key
    rels = {k: (lab, d) for k, lab, d in t.relations.rows()}
    assert rels["P19"] == ("place of birth", "most specific known birth location")
    assert "P1412" not in rels  # its property entity is not in this dump
    r = t.report
    assert (r["items"], r["property_entities"], r["lexemes"]) == (6, 2, 1)
    assert r["deprecated_claims"] == 1
    assert (r["somevalue_snaks"], r["novalue_snaks"]) == (1, 1)
    assert r["literal_claims"] == 2
    assert r["non_item_claims"] == 2  # a property value and a lexeme value
    assert r["qualifiers"] == 1
    assert r["type_claims"] == 2
    assert r["labels_from_fallback_language"] == 1
    assert r["entities_without_label"] == 1


def test_language_and_fallback(dump: Path) -> None:
    t = read_wikidata_dump(dump, lang="de")
    ents = {k: (lab, d) for k, lab, d in t.entities.rows()}
    assert ents["Q42"] == ("Douglas Adams (de)", "English writer")  # description from 'en'
    assert ents["Q350"] == ("Cambridge", "Stadt")
    assert ents["Q145"][0] == "United Kingdom"
    fr = read_wikidata_dump(dump, lang="fr")
    assert dict((k, lab) for k, lab, _ in fr.entities.rows())["Q1860"] == "anglais"


def test_property_selection(dump: Path) -> None:
    t = read_wikidata_dump(dump, properties=["P19", "p17"])
    assert set(t.triples.rows()) == expected_triples(ENTITIES, {"P19", "P17"})
    assert t.entity_types.height == 2  # P31 always gives types
    assert t.report["other_property_claims"] > 0
    with pytest.raises(InputError, match="no item-to-item claims found for properties P999"):
        read_wikidata_dump(dump, properties=["P999"])
    with pytest.raises(InputError, match="not Wikidata property ids: X1"):
        read_wikidata_dump(dump, properties=["X1"])


def test_compressed_dumps_and_slices_read_the_same(tmp_path: Path, dump: Path) -> None:
    base = read_wikidata_dump(dump)
    gz = tmp_path / "d.json.gz"
    gz.write_bytes(gzip.compress(dump.read_bytes()))
    bz = tmp_path / "d.json.bz2"
    bz.write_bytes(bz2.compress(dump.read_bytes()))
    # a slice: some entity lines as cut from a dump, no brackets
    piece = tmp_path / "slice.json"
    piece.write_text("".join(json.dumps(e) + ",\n" for e in ENTITIES))
    for p in (gz, bz, piece):
        t = read_wikidata_dump(p)
        assert t.triples.equals(base.triples)
        assert t.entities.equals(base.entities)


def test_truncated_dump_names_the_byte_offset_and_writes_nothing(
    tmp_path: Path, dump: Path, capsys: pytest.CaptureFixture
) -> None:
    data = dump.read_bytes()
    cut_at = data.index(b'"Cambridge"') + 4
    cut = tmp_path / "cut.json"
    cut.write_bytes(data[:cut_at])
    line_start = data.rfind(b"\n", 0, cut_at) + 1
    with pytest.raises(InputError, match=f"cut off mid-line.*byte offset {line_start}") as info:
        read_wikidata_dump(cut)
    assert info.value.line == 3
    out = tmp_path / "snap"
    assert main(["import", str(cut), "--out", str(out)]) == 2
    assert f"byte offset {line_start}" in capsys.readouterr().err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.json", "dump.json"]
    gz = tmp_path / "cut.json.gz"
    gz.write_bytes(gzip.compress(data)[:-30])
    with pytest.raises(InputError, match=r"truncated|cut off"):
        read_wikidata_dump(gz)


def test_not_bzip2_and_not_json(tmp_path: Path) -> None:
    fake = tmp_path / "d.json.bz2"
    fake.write_bytes(b"[\n{}\n]\n")
    with pytest.raises(InputError, match="not a valid bzip2 file"):
        read_wikidata_dump(fake)
    bad = tmp_path / "bad.json"
    bad.write_text('[\n{"id": "Q1", "type": "item"},\nnot json,\n]\n')
    with pytest.raises(InputError, match=r"not a JSON entity.*byte offset 32") as info:
        read_wikidata_dump(bad)
    assert info.value.line == 3


def test_cli_import_to_snapshot_and_canonical(
    tmp_path: Path, dump: Path, capsys: pytest.CaptureFixture
) -> None:
    snap = tmp_path / "snap"
    assert main(["import", str(dump), "--properties", "P19,P27,P17", "--out", str(snap)]) == 0
    out = capsys.readouterr().out
    assert "6 items" in out and "deprecated_claims 1" in out and "qualifiers 1" in out
    kg = KnowledgeGraph.load(snap)
    ent = kg.entities["key"].to_list()
    rel = kg.relations["key"].to_list()
    got = {(ent[h], rel[r], ent[t]) for h, r, t in kg.triples.iter_rows()}
    assert got == expected_triples(ENTITIES, {"P19", "P27", "P17"})
    labels = dict(kg.entities.select("key", "label").iter_rows())
    assert labels["Q42"] == "Douglas Adams"
    assert kg.native.num_types == 2
    canon = tmp_path / "canon"
    assert main(["import", str(dump), "--canonical", "--lang", "de", "--out", str(canon)]) == 0
    assert "Douglas Adams (de)" in (canon / "entities.tsv").read_text()
    assert (canon / "types.tsv").is_file()
    assert (
        main(
            ["import", str(tmp_path / "x.tsv"), "--properties", "P1", "--out", str(tmp_path / "o")]
        )
        == 2
    )


def test_progress_bar_reads_the_same(dump: Path, tmp_path: Path) -> None:
    gz = tmp_path / "d.json.gz"
    gz.write_bytes(gzip.compress(dump.read_bytes()))
    for p in (dump, gz):
        shown = read_wikidata_dump(p, progress=True)  # bytes/s bar over the compressed file
        assert shown.triples.equals(read_wikidata_dump(p).triples)
