"""Relations and entities a user excludes (by key or label pattern), and lexicon ``exclude =
true`` relations, never appear in the samples; the generate driver draws others instead."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from kg2tool.dataset.assemble import SampleContext, build_shard
from kg2tool.dataset.exclusions import excluded
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.pipeline.driver import generate


@pytest.fixture(scope="module")
def codex() -> KnowledgeGraph:
    return KnowledgeGraph.load("codex-s")


def _relations_used(frame) -> set[str]:  # type: ignore[no-untyped-def]
    keys = []
    for bindings in frame["bindings"].to_list():
        keys += [v for k, v in orjson.loads(bindings).items() if k.startswith("r")]
    return set(keys)


def test_patterns_match_keys_and_labels(codex: KnowledgeGraph) -> None:
    rel = excluded(codex.relations, ["p106", "*INFLUENCED*"])
    hit = set(codex.relations.filter(rel)["key"].to_list())
    labels = dict(zip(codex.relations["key"], codex.relations["label"], strict=True))
    assert "P106" in hit and "P737" in hit and labels["P737"] == "influenced by"
    assert len(hit) == 2
    assert not excluded(codex.relations, []).any()
    ent = excluded(codex.entities, ["Mark Twain"])
    assert codex.entities.filter(ent)["label"].to_list() == ["Mark Twain"]


def test_excluded_relations_and_entities_never_appear(codex: KnowledgeGraph) -> None:
    base, _ = build_shard(codex, ["1p", "2p", "2i"], 0, 1, 150, seed=2)
    used = _relations_used(base)
    assert "P106" in used  # the exclusion below has something to remove
    frame, report = build_shard(
        codex,
        ["1p", "2p", "2i"],
        0,
        1,
        150,
        seed=2,
        exclude_relations=["P106"],
        exclude_entities=["United States of America"],
    )
    assert report["dropped"]["excluded"] > 0
    assert "P106" not in _relations_used(frame)
    cat = SampleContext(codex).catalog
    banned = {cat.api_for("P106", d).name for d in ("forward", "inverse")}
    assert any(n in t for t in base["tools"].to_list() for n in banned)  # offered before
    for tools in frame["tools"].to_list():  # never offered, not even as a distractor
        assert not any(f'"{n}"' in tools for n in banned)
    for messages in frame["messages"].to_list():
        for m in orjson.loads(messages):
            assert "United States of America" not in (m.get("content") or "")


def test_lexicon_exclude_flag_excludes_by_default(codex: KnowledgeGraph) -> None:
    ctx = SampleContext(codex, overrides={"P106": {"exclude": True}})
    frame, report = build_shard(codex, ["1p", "2p"], 0, 1, 120, seed=2, context=ctx)
    assert report["dropped"]["excluded"] > 0 and "P106" not in _relations_used(frame)


def test_generate_reads_a_user_lexicon(tmp_path: Path) -> None:
    lexicon = tmp_path / "lex.toml"
    lexicon.write_text(
        '[P19.inverse]\none = "the person born in {x}"\nmany = "the people born in {x}"\n'
        'verb = "was born in {x}"\nquestion = "Who was born in {x}?"\n[P106]\nexclude = true\n'
    )
    out = tmp_path / "run"
    report = generate(
        out=str(out), kg="codex-s", patterns="1p", num_samples=80, seed=4,
        overrides=str(lexicon), progress=False,
    )  # fmt: skip
    assert report.written == 80 and report.rejected.get("excluded", 0) > 0
    text = (out / "train.jsonl").read_text()
    assert "get_occupations_of_person" not in text


def test_generate_draws_others_in_place_of_excluded(codex: KnowledgeGraph, tmp_path: Path) -> None:
    out = tmp_path / "run"
    report = generate(
        out=str(out),
        kg="codex-s",
        patterns="1p,2p",
        num_samples=120,
        seed=1,
        exclude_relations="P106,*influenced*",
        progress=False,
    )
    assert report.written == 120 and report.rejected.get("excluded", 0) > 0
    keys = set()
    for line in (out / "train.jsonl").read_text().splitlines():
        for m in json.loads(line)["messages"]:
            for call in m.get("tool_calls") or []:
                keys.add(call["function"]["name"])
    assert keys and not any("occupation" in k or "influenced" in k for k in keys)


def test_cli_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kg2tool.cli import main

    out = tmp_path / "run"
    capsys.readouterr()
    code = main(
        ["generate", "--kg", "codex-s", "--patterns", "1p", "-n", "60", "--out", str(out),
         "--exclude-relations", "P106", "--allow-raw-keys"]
    )  # fmt: skip
    assert code == 0
    config = (out / "config.toml").read_text()
    assert 'exclude_relations = "P106"' in config and "allow_raw_keys = true" in config
    bad = tmp_path / "bad.toml"
    bad.write_text('[P19.inverse]\none = "the people born in"\n')
    capsys.readouterr()
    code = main(["generate", "--kg", "codex-s", "-n", "10", "--out", str(tmp_path / "x"),
                 "--overrides", str(bad)])  # fmt: skip
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert str(bad) in lines[0] and "'P19'" in lines[0] and "inverse.one" in lines[0]


def _display_name_is_label(kg: KnowledgeGraph) -> list[bool]:
    """The runtime's view: the display name is the label itself (not qualified), and the
    label is no raw id."""
    import re

    from kg2tool.tools.catalog import ApiCatalog
    from kg2tool.tools.raw_ids import RAW_ID_PATTERN
    from kg2tool.tools.runtime import ToolRuntime

    runtime = ToolRuntime(kg, ApiCatalog.from_graph(kg))
    labels = kg.entities.sort("id")["label"].to_list()
    raw = re.compile(RAW_ID_PATTERN)
    return [
        lab is not None and name == lab and raw.search(lab) is None
        for name, lab in zip(runtime.names, labels, strict=True)
    ]


def _namable_by_set(kg: KnowledgeGraph) -> list[bool]:
    """Plain Python: a label that is set, that no other entity shows (its label, or its key
    where it has none), and that is no raw id."""
    import re

    from kg2tool.tools.raw_ids import RAW_ID_PATTERN

    keys = kg.entities.sort("id")["key"].to_list()
    labels = kg.entities.sort("id")["label"].to_list()
    shown = [lab if lab is not None else key for lab, key in zip(labels, keys, strict=True)]
    count: dict[str, int] = {}
    for s in shown:
        count[s] = count.get(s, 0) + 1
    raw = re.compile(RAW_ID_PATTERN)
    return [lab is not None and count[lab] == 1 and raw.search(lab) is None for lab in labels]


@pytest.mark.parametrize("name", ["codex-s", "fb15k-237", "wn18rr"])
def test_namable_entities_are_those_the_runtime_shows_by_their_label(name: str) -> None:

    from kg2tool.dataset.exclusions import namable_entities
    from kg2tool.kg.bundled import load_dataset, shared_data_dir

    if name == "codex-s":
        kg = KnowledgeGraph.load(name)
    elif (shared_data_dir() / name).exists():
        kg = KnowledgeGraph.from_tables(load_dataset(name)[0])
    else:
        pytest.skip(f"{name} not in the shared data")
    got = namable_entities(kg)
    assert got.tolist() == _namable_by_set(kg)
    assert got.tolist() == _display_name_is_label(kg)
    assert 0 < got.sum() <= len(got)


def test_namable_entities_on_missing_shared_and_raw_labels() -> None:
    import polars as pl

    from kg2tool.dataset.exclusions import namable_entities
    from kg2tool.kg.tables import KGTables

    triples = pl.DataFrame(
        {
            "head": ["a", "b", "c", "d", "e"],
            "relation": ["r"] * 5,
            "tail": ["b", "c", "d", "e", "f"],
        }
    )
    entities = pl.DataFrame(
        {
            "key": ["a", "b", "c", "d", "e", "f"],
            # shared label; a label that is another entity's key (f has none); a raw id
            "label": ["Paris", "Paris", "f", "Lyon", "Q42", None],
            "description": [None] * 6,
        }
    )
    kg = KnowledgeGraph.from_tables(KGTables(triples, entities))
    got = namable_entities(kg)
    ids = dict(zip(kg.entities["key"].to_list(), kg.entities["id"].to_list(), strict=True))
    assert [k for k in "abcdef" if got[ids[k]]] == ["d"]  # only Lyon
    assert got.tolist() == _namable_by_set(kg)
    assert got.tolist() == _display_name_is_label(kg)
