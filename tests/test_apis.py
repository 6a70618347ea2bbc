"""API catalogue: names, descriptions, domain/range, overrides and exports on CoDEx-S and FB15k-237.

The KGs are built from the raw shared files (``../shared/data/kg``) into ``KGTables`` here, so
the tests do not depend on an importer; the real ``KnowledgeGraph`` is used when the native
extension is built, else a small pure-numpy stand-in with the same attributes.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pytest

from kg2tool.errors import InputError, UnknownNameError
from kg2tool.kg.tables import KGTables
from kg2tool.tools.catalog import NAME_RE, RAW_ID_RE, ApiCatalog, freebase_parts, load_overrides

DATA = Path(os.environ.get("KG2TOOL_DATA", Path(__file__).resolve().parents[2] / "shared/data/kg"))
if not DATA.is_dir():
    DATA = Path("/work/shared/data/kg")


def _tsv(path: Path, names: list[str]) -> pl.DataFrame:
    """Read a headerless TSV with no quoting (labels contain quotes)."""
    return pl.read_csv(
        path,
        separator="\t",
        has_header=False,
        new_columns=names,
        quote_char=None,
        schema_overrides={n: pl.String for n in names},
    )


def codex_tables() -> KGTables:
    """CoDEx-S train split with names, descriptions, relation texts and entity types."""
    root = DATA / "codex"
    triples = _tsv(root / "codex-s/train.txt", ["head", "relation", "tail"])
    names = _tsv(root / "names/codex-s.entity2name.tsv", ["key", "label"])
    des = _tsv(root / "names/codex-s.entity2des.tsv", ["key", "description"])
    entities = names.join(des, on="key", how="left")
    rel = json.loads((root / "relations.en.json").read_text())
    relations = pl.DataFrame(
        {
            "key": list(rel),
            "label": [v["label"] for v in rel.values()],
            "description": [v.get("description") for v in rel.values()],
        }
    )
    e2t = json.loads((root / "entity2types.json").read_text())
    entity_types = pl.DataFrame(
        {
            "key": [k for k, ts in e2t.items() for _ in ts],
            "type": [t for ts in e2t.values() for t in ts],
        }
    )
    tl = json.loads((root / "types.en.json").read_text())
    type_labels = pl.DataFrame(
        {
            "key": list(tl),
            "label": [v.get("label") for v in tl.values()],
            "description": [v.get("description") for v in tl.values()],
        }
    )
    return KGTables(triples, entities, relations, entity_types, type_labels, source="codex-s")


def fb_tables() -> KGTables:
    """FB15k-237 train split with entity labels/descriptions; relations are raw Freebase paths."""
    root = DATA / "fb15k-237"
    triples = _tsv(root / "train.txt", ["head", "relation", "tail"])
    names = pl.read_csv(
        root / "entity_names.tsv", separator="\t", quote_char=None, infer_schema=False
    ).select(pl.col("mid").alias("key"), "label", "description")
    return KGTables(triples, names, source="fb15k-237")


class StandInGraph:
    """Pure-numpy KnowledgeGraph stand-in (same attributes and neighbors contract) for tests."""

    def __init__(self, tables: KGTables) -> None:
        t = tables.triples
        ent_keys = pl.concat([t["head"], t["tail"]]).unique().sort().rename("key")
        rel_keys = t["relation"].unique().sort().rename("key")
        self.entities = self._text(ent_keys, tables.entities)
        self.relations = self._text(rel_keys, tables.relations)
        codes = {k: i for i, k in enumerate(ent_keys.to_list())}
        rcodes = {k: i for i, k in enumerate(rel_keys.to_list())}
        self.triples = (
            t.select(
                pl.col("head").replace_strict(codes, return_dtype=pl.Int32),
                pl.col("relation").replace_strict(rcodes, return_dtype=pl.Int32),
                pl.col("tail").replace_strict(codes, return_dtype=pl.Int32),
            )
            .unique()
            .sort("head", "relation", "tail")
        )
        if tables.entity_types is not None:
            et = tables.entity_types.filter(pl.col("key").is_in(ent_keys.implode()))
            self.entity_types = (
                et.select(
                    pl.col("key").replace_strict(codes, return_dtype=pl.Int32).alias("id"), "type"
                )
                .unique()
                .sort("id", "type")
            )
            self.type_labels = self._text(
                et["type"].unique().sort().rename("key"), tables.type_labels
            )
        else:
            self.entity_types = pl.DataFrame(schema={"id": pl.Int32, "type": pl.String})
            self.type_labels = pl.DataFrame(
                schema={
                    "id": pl.Int32,
                    "key": pl.String,
                    "label": pl.String,
                    "description": pl.String,
                }
            )
        self.num_entities, self.num_relations = len(ent_keys), len(rel_keys)
        self.num_triples = self.triples.height
        self._codes = codes
        h, r, tl = (self.triples[c].to_numpy() for c in ("head", "relation", "tail"))
        self._csr = [self._build(h, r, tl), self._build(tl, r, h)]

    @staticmethod
    def _text(keys: pl.Series, src: pl.DataFrame | None) -> pl.DataFrame:
        """id/key/label/description with label falling back to key (as graph.py does)."""
        base = pl.DataFrame(
            {"id": pl.int_range(0, len(keys), dtype=pl.Int32, eager=True), "key": keys}
        )
        if src is None:
            return base.with_columns(label=pl.col("key"), description=pl.lit(None, pl.String))
        src = src.select("key", "label", "description").unique(
            "key", keep="first", maintain_order=True
        )
        return (
            base.join(src, on="key", how="left", maintain_order="left")
            .with_columns(pl.coalesce("label", "key").alias("label"))
            .select("id", "key", "label", "description")
        )

    def _build(
        self, src: np.ndarray, rel: np.ndarray, dst: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """CSR keyed by rel * n + src, slices sorted ascending."""
        n = self.num_entities
        key = rel.astype(np.int64) * n + src
        order = np.lexsort((dst, key))
        offsets = np.zeros(self.num_relations * n + 1, dtype=np.int64)
        np.add.at(offsets, key + 1, 1)
        return np.cumsum(offsets), dst[order].astype(np.int32)

    def entity_ids(self, keys: list[str]) -> np.ndarray:
        """int32 ids of keys."""
        try:
            return np.array([self._codes[k] for k in keys], dtype=np.int32)
        except KeyError as exc:
            raise UnknownNameError(f"unknown entity key {exc.args[0]!r}") from None

    def neighbors(
        self, entity_ids: Any, relation: Any, inverse: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batched sorted neighbour slices (the KnowledgeGraph contract)."""
        ids = np.asarray(entity_ids, dtype=np.int64)
        rels = np.broadcast_to(np.asarray(relation, dtype=np.int64), ids.shape)
        off, nbr = self._csr[int(bool(inverse))]
        key = rels * self.num_entities + ids
        starts, ends = off[key], off[key + 1]
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=offsets[1:])
        out = (
            np.concatenate([nbr[s:e] for s, e in zip(starts, ends, strict=True)])
            if len(ids)
            else nbr[:0]
        )
        return offsets, out.astype(np.int32)


def _native_graph_cls() -> Any:
    """The real KnowledgeGraph when the extension is built, else None."""
    try:
        import kg2tool._core  # noqa: F401
        from kg2tool.kg.graph import KnowledgeGraph
    except ImportError:
        return None
    return KnowledgeGraph


@cache
def load_kg(name: str) -> Any:
    """CoDEx-S or FB15k-237 as a KnowledgeGraph (or the stand-in before the extension exists)."""
    tables = codex_tables() if name == "codex-s" else fb_tables()
    cls = _native_graph_cls()
    return cls.from_tables(tables) if cls is not None else StandInGraph(tables)


@cache
def load_catalog(name: str, style: str = "kg2tool") -> ApiCatalog:
    """Cached default catalogue of a test KG."""
    return ApiCatalog.from_graph(load_kg(name), style=style)


KGS = ["codex-s", "fb15k-237"]


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", KGS)
@pytest.mark.parametrize("style", ["kg2tool", "plain", "camel"])
def test_names_valid_unique_and_complete(name: str, style: str) -> None:
    kg = load_kg(name)
    cat = load_catalog(name, style)
    names = cat.names
    assert all(NAME_RE.match(n) for n in names), [n for n in names if not NAME_RE.match(n)]
    assert len(set(names)) == len(names)
    # every relation but those a lexicon excludes (named, not offered) has its two APIs
    off = {k for k, e in cat.lexicon.items() if e.exclude}
    assert {a.relation for a in cat.hidden} == off
    assert len(cat) == 2 * (kg.num_relations - len(off)) + 3
    rel = cat.frame.filter(pl.col("kind") == "relation")
    assert sorted(rel.filter(pl.col("direction") == "forward")["relation"]) == sorted(
        set(kg.relations["key"]) - off
    )
    assert sorted(rel.filter(pl.col("direction") == "inverse")["relation"]) == sorted(
        set(kg.relations["key"]) - off
    )
    assert not any("/" in n or RAW_ID_RE.search(n) for n in names)


@pytest.mark.parametrize("name", KGS)
def test_names_stable_for_same_kg(name: str) -> None:
    again = ApiCatalog.from_graph(load_kg(name))
    assert again.names == load_catalog(name).names
    assert again.frame.equals(load_catalog(name).frame)


def test_codex_names_follow_paper_style() -> None:
    cat = load_catalog("codex-s")
    # the shipped Wikidata lexicon's names: get_<relation>_of_<head type>, inverses find_...
    assert cat.api_for("P19").name == "get_birthplace_of_person"
    assert cat.api_for("P19", "inverse").name == "find_people_born_in"
    assert cat.api_for("P27").name == "get_citizenship_of_person"
    assert cat.api_for("P40", "inverse").name == "get_parents_of_person"
    assert cat.api_for("P19").input_type == "person"
    assert cat.api_for("P19").param_names == ("person",)
    assert cat.api_for("P19", "inverse").param_names == ("place",)
    assert {"get_intersection_of", "get_union_of", "get_negation_of"} <= set(cat.names)
    plain = load_catalog("codex-s", "plain")
    assert plain.api_for("P19").name == "place_of_birth"
    assert plain.api_for("P19", "inverse").name == "place_of_birth_inverse"
    assert load_catalog("codex-s", "camel").api_for("P19").name == "getPlaceOfBirthOfPerson"


def test_freebase_paths_become_words() -> None:
    assert freebase_parts("/film/film/directed_by")[:2] == ("film", [["directed", "by"]])
    head, words, cvt = freebase_parts(
        "/film/film/release_date_s./film/film_regional_release_date/film_release_region"
    )
    assert (head, words, cvt) == (
        "film",
        [["release", "date"], ["region"]],
        ["film regional release date"],
    )
    cat = load_catalog("fb15k-237")
    # names from the shipped FB15k-237 lexicon (written per relation, never path words)
    assert cat.api_for("/people/person/place_of_birth").name == "get_birthplace_of_person"
    assert cat.api_for("/people/person/place_of_birth", "inverse").name == "find_people_born_in"
    assert cat.api_for("/film/film/genre").name == "get_genres_of_film"
    # Three roster paths share words and head type: each gets its own name.
    keys = [
        "/soccer/football_team/current_roster./soccer/football_roster_position/position",
        "/soccer/football_team/current_roster./sports/sports_team_roster/position",
        "/american_football/football_team/current_roster./sports/sports_team_roster/position",
    ]
    names = [cat.api_for(k).name for k in keys]
    assert len(set(names)) == 3 and all("position" in n for n in names)
    assert not any(re.search(r"_\d+$", n) for n in names)


def test_fb_range_inferred_from_path_types() -> None:
    cat = load_catalog("fb15k-237")
    assert cat.api_for("/film/film/genre").input_type == "film"
    assert cat.api_for("/people/person/place_of_birth").output_type != "entity"


# ---------------------------------------------------------------- descriptions


@pytest.mark.parametrize("name", KGS)
def test_descriptions_non_empty_and_free_of_raw_ids(name: str) -> None:
    cat = load_catalog(name)
    for api in cat:
        texts = [
            api.description,
            *(p["description"] for p in api.parameters["properties"].values()),
        ]
        texts.append(api.returns["description"])
        for text in texts:
            assert text.strip(), api.name
            assert not RAW_ID_RE.search(text), (api.name, text)
            assert not re.search(r"\bQ\d+|\bP\d+|/m/", text), (api.name, text)


def test_codex_description_mentions_label_and_types() -> None:
    api = load_catalog("codex-s").api_for("P19")
    assert "place of birth" in api.description and "person" in api.description
    assert "place" in api.description
    # The Wikidata description of P749 mentions "(P355)": it must be gone.
    assert "P355" not in load_catalog("codex-s").api_for("P749").description


def test_kg_without_types_falls_back_to_entity() -> None:
    tables = KGTables(
        pl.DataFrame({"head": ["a", "b"], "relation": ["likes", "likes"], "tail": ["b", "c"]})
    )
    cat = ApiCatalog.from_graph(StandInGraph(tables))
    # a verb label gets a verb frame (lexicon fallback), not "get_likes_of_entity"
    assert cat.api_for("likes").name == "find_entities_liked_by"
    assert cat.api_for("likes", "inverse").name == "find_entities_that_like"
    assert cat.api_for("likes").param_names == ("entity",)


def test_collisions_resolved_deterministically() -> None:
    # Two relations whose labels give the same words: both get qualified, never by raw ids.
    tables = KGTables(
        pl.DataFrame(
            {"head": ["a", "a", "b"], "relation": ["R1", "R2", "R3"], "tail": ["b", "c", "c"]}
        ),
        relations=pl.DataFrame(
            {
                "key": ["R1", "R2", "R3"],
                "label": ["located in", "Located-in", "located in"],
                "description": [None] * 3,
            }
        ),
    )
    cat = ApiCatalog.from_graph(StandInGraph(tables))
    names = cat.names
    assert len(set(names)) == len(names)
    assert [cat.api_for(k).name for k in ("R1", "R2", "R3")] == [
        "get_what_entity_is_located_in_to_entity",
        "get_what_entity_is_located_in_to_entity_2",
        "get_what_entity_is_located_in_to_entity_3",
    ]
    assert ApiCatalog.from_graph(StandInGraph(tables)).names == names


def test_unknown_style_rejected() -> None:
    with pytest.raises(InputError, match="style"):
        ApiCatalog.from_graph(load_kg("codex-s"), style="pascal")


# ---------------------------------------------------------------- overrides


def test_overrides_toml_applied(tmp_path: Path) -> None:
    f = tmp_path / "apis.toml"
    f.write_text(
        '[P19]\nname = "get_birthplace"\ninverse_name = "who_was_born_in"\n'
        'description = "Where a person was born."\n'
        '[P19.phrasing]\nforward = "the birthplace of {x}"\ninverse = "the people born in {x}"\n'
    )
    cat = ApiCatalog.from_graph(load_kg("codex-s"), overrides=f)
    fwd, inv = cat.api_for("P19"), cat.api_for("P19", "inverse")
    assert (fwd.name, inv.name) == ("get_birthplace", "who_was_born_in")
    assert fwd.description == "Where a person was born."
    assert "place of birth" in inv.description  # not overridden: generated
    assert fwd.phrase == "the birthplace of {x}" and inv.phrase == "the people born in {x}"
    assert cat.manifest()["apis"]["get_birthplace"] == {
        "kind": "relation",
        "parameters": ["person"],
        "relation": "P19",
        "direction": "forward",
        "input_type": "person",
        "output_type": "place",
    }


def test_overrides_yaml_applied(tmp_path: Path) -> None:
    f = tmp_path / "apis.yaml"
    f.write_text(
        '"/film/film/written_by":\n  name: get_writers_of_film\n  inverse_name: find_films_by_writer\n'
    )
    cat = ApiCatalog.from_graph(load_kg("fb15k-237"), overrides=f)
    assert cat.api_for("/film/film/written_by").name == "get_writers_of_film"
    assert "find_films_by_writer" in cat


def test_overrides_unknown_relation_names_file_and_key(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('[P1999]\nname = "x"\n')
    with pytest.raises(InputError) as err:
        ApiCatalog.from_graph(load_kg("codex-s"), overrides=f)
    assert str(f) in str(err.value) and "P1999" in str(err.value) and "P19" in str(err.value)


@pytest.mark.parametrize(
    "body, match",
    [
        ('[P19]\nname = "1bad name"\n', "not a valid identifier"),
        ('[P19]\ninverse_name = "' + "a" * 65 + '"\n', "not a valid identifier"),
        ('[P19]\nnickname = "x"\n', "unknown field"),
        ("[P19]\nphrasing = {sideways = 'x'}\n", "phrasing"),
        ("[P19\n", "invalid TOML"),
        ('[P19]\nname = "get_union_of"\n', "used twice"),
    ],
)
def test_overrides_validated(tmp_path: Path, body: str, match: str) -> None:
    f = tmp_path / "o.toml"
    f.write_text(body)
    with pytest.raises(InputError, match=match) as err:
        ApiCatalog.from_graph(load_kg("codex-s"), overrides=f)
    assert str(f) in str(err.value)


def test_overrides_mapping_and_wrapper() -> None:
    o = load_overrides({"relations": {"P19": {"name": "birthplace"}}})
    assert o["P19"] == {"name": "birthplace"}


# ---------------------------------------------------------------- exports


@pytest.mark.parametrize("name", KGS)
def test_openai_tools_shape(name: str) -> None:
    cat = load_catalog(name)
    tools = cat.to_openai_tools()
    assert len(tools) == len(cat)
    for t in tools:
        assert set(t) == {"type", "function"} and t["type"] == "function"
        fn = t["function"]
        assert set(fn) == {"name", "description", "parameters"}
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", fn["name"])
        p = fn["parameters"]
        assert p["type"] == "object" and set(p["required"]) == set(p["properties"])
        for prop in p["properties"].values():
            assert prop["type"] in ("string", "array") and prop["description"]
            if prop["type"] == "array":
                assert prop["items"] == {"type": "string"}
    orjson.dumps(tools)  # JSON-serialisable
    sub = cat.to_openai_tools(["get_union_of"])
    assert [t["function"]["name"] for t in sub] == ["get_union_of"]
    with pytest.raises(UnknownNameError, match="get_union_of"):
        cat.to_openai_tools(["get_unoin_of"])


def test_openai_parameters_are_valid_json_schema() -> None:
    import jsonschema

    for t in load_catalog("codex-s").to_openai_tools():
        jsonschema.Draft202012Validator.check_schema(t["function"]["parameters"])


def test_toolbench_and_xlam_exports() -> None:
    cat = load_catalog("codex-s")
    tb = cat.to_toolbench()
    assert {"tool_name", "tool_description", "api_list"} <= set(tb)
    api = next(a for a in tb["api_list"] if a["name"] == "get_birthplace_of_person")
    assert api["method"] == "GET" and api["optional_parameters"] == []
    assert api["required_parameters"] == [
        {
            "name": "person",
            "type": "STRING",
            "description": api["required_parameters"][0]["description"],
            "default": "",
        }
    ]
    union = next(a for a in tb["api_list"] if a["name"] == "get_union_of")
    assert [p["type"] for p in union["required_parameters"]] == ["ARRAY", "ARRAY"]
    x = {t["name"]: t for t in cat.to_xlam_tools()}
    assert x["get_birthplace_of_person"]["parameters"]["person"]["type"] == "str"
    assert x["get_negation_of"]["parameters"]["first"]["type"] == "list[str]"


@pytest.mark.parametrize("name", KGS)
def test_manifest_maps_every_api_and_writes_atomically(name: str, tmp_path: Path) -> None:
    cat = load_catalog(name)
    m = cat.manifest()
    assert set(m["apis"]) == set(cat.names)
    for api in cat:
        entry = m["apis"][api.name]
        if api.kind == "relation":
            assert (entry["relation"], entry["direction"]) == (api.relation, api.direction)
        else:
            assert entry["operation"] in ("intersection", "union", "difference")
    path = cat.write_manifest(tmp_path / "sub" / "manifest.json")
    assert orjson.loads(path.read_bytes()) == m
    assert [p.name for p in path.parent.iterdir()] == ["manifest.json"]  # no temp file left


def test_frame_one_row_per_api() -> None:
    cat = load_catalog("codex-s")
    f = cat.frame
    assert f.height == len(cat) and f["name"].to_list() == cat.names
    assert f.filter(pl.col("kind") == "set_operation")["operation"].to_list() == [
        "intersection",
        "union",
        "difference",
    ]
    assert json.loads(f["parameters"][0])["type"] == "object"
