"""Importers of the shared KGs (counts from ../shared/data/kg/README.md) and the bundled KG."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from kg2tool.errors import InputError, UnknownNameError
from kg2tool.kg.bundled import (
    bundled_names,
    bundled_path,
    humanise,
    import_dataset,
    load_dataset,
    shared_data_dir,
)
from kg2tool.kg.io import read_kg_dir, read_split, read_triples

SHARED = Path(
    os.environ.get("KG2TOOL_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "kg"
)
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared KG data missing")

# name: (entities over all splits, relations, train, valid, test), from the shared README.
# WN18RR: keys are the synset names of text/, which keep apart the 161 offset ids shared by
# two synsets, hence 41,105 rather than the offset files' 40,943.
COUNTS = {
    "codex-s": (2_034, 42, 32_888, 1_827, 1_828),
    "codex-m": (17_050, 51, 185_584, 10_310, 10_311),
    "fb15k-237": (14_541, 237, 272_115, 17_535, 20_466),
    "wn18rr": (41_105, 11, 86_835, 3_034, 3_134),
    "nations": (14, 55, 1_592, 199, 201),
    "countries_s1": (271, 2, 1_111, 24, 24),
    "countries_s2": (271, 2, 1_063, 24, 24),
    "countries_s3": (271, 2, 985, 24, 24),
}


@needs_shared
@pytest.mark.parametrize("name", list(COUNTS))
def test_importer_counts_and_consistent_labels(name: str) -> None:
    kg, held_out = load_dataset(name, SHARED)
    every = pl.concat([kg.triples, *held_out.values()])
    entities = pl.concat([every["head"], every["tail"]]).unique()
    got = (
        entities.len(),
        every["relation"].n_unique(),
        kg.triples.height,
        held_out["valid"].height,
        held_out["test"].height,
    )
    assert got == COUNTS[name]
    assert kg.triples.height == kg.report["triples_train"]
    assert set(kg.entities["key"]) <= set(entities)
    assert kg.entities["key"].is_unique().all()
    assert kg.entities["label"].null_count() == 0
    assert set(kg.relations["key"]) == set(every["relation"])
    assert kg.relations["label"].null_count() == 0


@needs_shared
def test_codex_names_types_and_descriptions() -> None:
    kg, _ = load_dataset("codex-s", SHARED)
    labels = dict(kg.entities.select("key", "label").iter_rows())
    assert labels["Q168756"] == "University of California, Berkeley"  # CSV quotes undone
    assert len(labels) == 2_034
    rel = dict(kg.relations.select("key", "label").iter_rows())
    assert rel["P509"] == "cause of death"
    assert kg.relations["description"].null_count() == 0
    assert set(kg.entity_types["type"]) == set(kg.type_labels["key"])
    assert kg.entity_types.filter(pl.col("key") == "Q100")["type"].to_list() == ["Q21518270"]
    m, _ = load_dataset("codex-m", SHARED)
    assert 0.25 < m.entities.height / 17_050 < 0.40  # partial labels (~31%)
    with pytest.raises(InputError, match="CoDEx-L"):
        load_dataset("codex-l", SHARED)


@needs_shared
def test_readable_relation_and_entity_labels() -> None:
    fb, _ = load_dataset("fb15k-237", SHARED)
    rel = dict(fb.relations.select("key", "label").iter_rows())
    assert fb.relations["label"].is_unique().all()
    assert rel["/people/person/gender"] == "gender"
    assert rel["/film/film/other_crew./film/film_crew_gig/crewmember"] == "crewmember"
    assert dict(fb.entities.select("key", "label").iter_rows())["/m/010016"] == "Denton"
    wn, _ = load_dataset("wn18rr", SHARED)
    row = wn.entities.filter(pl.col("key") == "shamanism.n.01").row(0)
    assert row[1] == "shamanism" and row[2].startswith("any animistic religion")
    assert dict(wn.relations.select("key", "label").iter_rows())["_hypernym"] == "hypernym"
    nations, _ = load_dataset("nations", SHARED)
    assert "USA" in set(nations.entities["label"])
    assert dict(nations.relations.select("key", "label").iter_rows())["aidenemy"] == "aid to enemy"
    countries, _ = load_dataset("countries_s1", SHARED)
    assert "San Marino" in set(countries.entities["label"])


def test_humanise() -> None:
    assert humanise("san_marino") == "San Marino"
    assert humanise("bosnia_and_herzegovina") == "Bosnia and Herzegovina"
    assert humanise("of_course") == "Of Course"


@needs_shared
def test_import_writes_canonical_dir(tmp_path: Path) -> None:
    out = import_dataset("nations", SHARED, tmp_path / "nations")
    kg = read_kg_dir(out)
    assert kg.triples.equals(read_triples(SHARED / "nations" / "train.txt").triples)
    assert read_split(out, "test").height == 201
    every = read_kg_dir(out, splits=("train", "valid", "test"))
    assert every.triples.height == 1_592 + 199 + 201


def test_unknown_dataset_suggests() -> None:
    with pytest.raises(UnknownNameError, match="did you mean fb15k-237"):
        load_dataset("fb15k237", SHARED)


def test_shared_data_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KG2TOOL_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path


# ---------------------------------------------------------------- bundled KG


def test_bundled_registry() -> None:
    assert "codex-s" in bundled_names()
    assert (bundled_path("codex-s") / "triples.tsv").is_file()
    with pytest.raises(UnknownNameError, match="did you mean codex-s"):
        bundled_path("codex_s")


def test_bundled_codex_s_is_complete_and_small() -> None:
    root = bundled_path("codex-s")
    kg = read_kg_dir(root)
    assert kg.triples.height == 32_888
    assert kg.entities.height == 2_034 and kg.entities["label"].null_count() == 0
    assert kg.relations.height == 42 and kg.relations["description"].null_count() == 0
    assert kg.entity_types.height > 0 and kg.type_labels.height > 0
    assert "CoDEx data is released under the MIT licence" in (root / "README.md").read_text()
    assert sum(f.stat().st_size for f in root.iterdir()) < 2_000_000


@needs_shared
def test_bundled_matches_shared_and_has_no_wikipedia_text() -> None:
    root = bundled_path("codex-s")
    shared = SHARED / "codex" / "codex-s"
    assert read_kg_dir(root).triples.equals(read_triples(shared / "train.txt").triples)
    assert read_split(root, "valid").equals(read_triples(shared / "valid.txt").triples)
    assert read_split(root, "test").equals(read_triples(shared / "test.txt").triples)
    extracts = pl.read_csv(
        SHARED / "codex" / "names" / "codex-s.entity2des.tsv",
        separator="\t",
        has_header=False,
        quote_char=None,
        infer_schema=False,
    )
    texts = set(extracts[:, -1].drop_nulls().str.slice(0, 60))
    bundled_desc = read_kg_dir(root).entities["description"].drop_nulls().str.slice(0, 60)
    assert not texts & set(bundled_desc)
