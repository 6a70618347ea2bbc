"""Tool runtime: correctness against an independent dict-of-sets, name resolution, errors, replay."""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from typing import Any

import numpy as np
import orjson
import polars as pl
import pytest
from test_apis import KGS, StandInGraph, load_catalog, load_kg

from kg2tool.kg.tables import KGTables
from kg2tool.tools.catalog import ApiCatalog
from kg2tool.tools.runtime import CallResult, ToolRuntime


@cache
def runtime(name: str) -> ToolRuntime:
    """Cached runtime over a test KG."""
    return ToolRuntime(load_kg(name), load_catalog(name))


@cache
def reference(name: str) -> tuple[dict, dict]:
    """Independent answer sets from the raw id triples: (forward, inverse) dict of sets."""
    fwd: dict[tuple[int, int], set[int]] = defaultdict(set)
    inv: dict[tuple[int, int], set[int]] = defaultdict(set)
    t = load_kg(name).triples
    for h, r, tl in zip(
        t["head"].to_list(), t["relation"].to_list(), t["tail"].to_list(), strict=True
    ):
        fwd[(h, r)].add(tl)
        inv[(tl, r)].add(h)
    return fwd, inv


@pytest.mark.parametrize("name", KGS)
def test_forward_and_inverse_on_10000_random_triples(name: str) -> None:
    kg, rt, cat = load_kg(name), runtime(name), load_catalog(name)
    fwd_ref, inv_ref = reference(name)
    t = kg.triples
    rows = np.random.default_rng(4).choice(t.height, size=min(10_000, t.height), replace=False)
    sample = t[rows]
    rel_keys = kg.relations["key"].to_list()
    calls_f, calls_i, expect_f, expect_i = [], [], [], []
    for h, r, tl in sample.iter_rows():
        if cat.lexicon[rel_keys[r]].exclude:  # excluded relations are not offered as APIs
            continue
        f, i = cat.api_for(rel_keys[r], "forward"), cat.api_for(rel_keys[r], "inverse")
        calls_f.append((f.name, {f.param_names[0]: rt.names[h]}))
        calls_i.append((i.name, orjson.dumps({i.param_names[0]: rt.names[tl]}).decode()))
        expect_f.append((tl, fwd_ref[(h, r)]))
        expect_i.append((h, inv_ref[(tl, r)]))
    for calls, expect in ((calls_f, expect_f), (calls_i, expect_i)):
        batched = rt.call_many(calls)
        for k, (res, (member, ref)) in enumerate(zip(batched, expect, strict=True)):
            assert res.ok, res.error
            assert member in res.entity_ids
            assert set(res.entity_ids.tolist()) == ref
            assert res.result == [rt.names[i] for i in res.entity_ids]
            if k < 500:  # single calls agree with the batch byte for byte
                assert rt.call(*calls[k]).to_json() == res.to_json()


@pytest.mark.parametrize("name", KGS)
def test_results_equal_polars_group_by(name: str) -> None:
    kg, rt, cat = load_kg(name), runtime(name), load_catalog(name)
    key = kg.relations["key"][0]
    grouped = kg.triples.filter(pl.col("relation") == 0).group_by("head").agg(pl.col("tail").sort())
    api = cat.api_for(key)
    for head, tails in grouped.head(200).iter_rows():
        assert rt.call(
            api.name, {api.param_names[0]: rt.names[head]}
        ).entity_ids.tolist() == sorted(tails, key=lambda i: rt.rank[i])


@pytest.mark.parametrize("name", KGS)
def test_call_ids_fast_path(name: str) -> None:
    kg, rt, cat = load_kg(name), runtime(name), load_catalog(name)
    fwd_ref, _ = reference(name)
    key = kg.relations["key"][1]
    ids = np.arange(min(kg.num_entities, 3000), dtype=np.int32)
    offsets, out = rt.call_ids(cat.api_for(key).name, ids)
    for j, e in enumerate(ids.tolist()):
        assert out[offsets[j] : offsets[j + 1]].tolist() == sorted(fwd_ref.get((e, 1), ()))
    with pytest.raises(ValueError):
        rt.call_ids("get_union_of", ids)


def test_results_sorted_by_label_then_key_and_replay_bytes() -> None:
    rt, cat = runtime("codex-s"), load_catalog("codex-s")
    # the lexicon's type word of P27's tail side names the argument
    res = rt.call(cat.api_for("P27", "inverse").name, {"country": "United States of America"})
    assert res.ok and len(res.result) > 10
    labels = [rt.labels[i] for i in res.entity_ids]
    assert labels == sorted(labels)
    again = ToolRuntime(load_kg("codex-s"), ApiCatalog.from_graph(load_kg("codex-s")))
    assert again.call(res.api, '{"country": "United States of America"}').to_json() == res.to_json()
    assert orjson.loads(res.to_json()) == res.result
    assert res.entity_ids.dtype == np.int32


def test_name_resolution_exact_key_and_case_insensitive() -> None:
    rt, cat = runtime("codex-s"), load_catalog("codex-s")
    api = cat.api_for("P19")
    by_label = rt.call(api.name, {"person": "Harry Chapin"})
    assert by_label.ok and by_label.result
    assert rt.call(api.name, {"person": "Q1586454"}).result == by_label.result  # by key
    assert rt.call(api.name, {"person": "harry CHAPIN"}).result == by_label.result


def test_fb_shared_labels_get_unique_display_names_that_round_trip() -> None:
    kg, rt, cat = load_kg("fb15k-237"), runtime("fb15k-237"), load_catalog("fb15k-237")
    assert len(set(rt.names)) == kg.num_entities
    shared = kg.entities.filter(pl.col("label").is_duplicated()).sort("label", "key")
    assert shared.height > 0
    label = shared["label"][0]
    ids = shared.filter(pl.col("label") == label)["id"].to_list()
    # A bare shared label is ambiguous: candidates with keys and descriptions, no guess.
    api = next(a for a in cat if a.kind == "relation" and a.direction == "forward")
    res = rt.call(api.name, {api.param_names[0]: label})
    assert not res.ok and res.error["error"] == "ambiguous_entity"
    cands = res.error["candidates"]
    assert sorted(c["key"] for c in cands) == sorted(kg.entities["key"][i] for i in ids)
    assert all({"name", "key", "description"} <= set(c) for c in cands)
    assert res.error["suggestions"] == [c["name"] for c in cands]
    # Each candidate's display name resolves uniquely, as does any result name fed back.
    for c, i in zip(cands, sorted(ids, key=lambda i: rt.rank[i]), strict=True):
        assert c["name"] == rt.names[i] and c["name"].startswith(f"{label} (")
        assert kg.entities["key"][i] not in c["name"]  # told apart in words, not by the key
        assert rt.resolve(c["name"]) == i
    for i in range(0, kg.num_entities, 97):
        assert rt.resolve(rt.names[i]) == i


def test_structured_errors() -> None:
    rt, cat = runtime("codex-s"), load_catalog("codex-s")
    api = cat.api_for("P19").name

    def err(*args: Any) -> dict:
        res = rt.call(*args)
        assert isinstance(res, CallResult) and not res.ok and res.result == []
        assert list(res.error)[:3] == ["error", "message", "suggestions"]
        orjson.loads(res.to_json())
        return res.error

    e = err("get_birthplace_of_persn", {"person": "Harry Chapin"})
    assert e["error"] == "unknown_api" and api in e["suggestions"]
    e = err(api, {"person": "Hary Chapin"})
    assert e["error"] == "unknown_entity" and "Harry Chapin" in e["suggestions"]
    e = err(api, '{"person": "Harry Chapin"')
    assert e["error"] == "malformed_arguments"
    assert err(api, "[1, 2]")["error"] == "malformed_arguments"
    e = err(api, {})
    assert e["error"] == "missing_argument" and e["suggestions"] == ["person"]
    e = err(api, {"person": "Harry Chapin", "city": "x"})
    assert e["error"] == "unexpected_argument" and "city" in e["message"]
    assert err(api, {"human": "Harry Chapin"})["error"] == "missing_argument"
    assert err(api, {"person": ["Harry Chapin"]})["error"] == "invalid_argument"
    assert err("get_union_of", {"first": "x", "second": []})["error"] == "invalid_argument"
    # call_many keeps errors in place and never raises.
    out = rt.call_many([("nope", {}), {"name": api, "arguments": {"person": "Harry Chapin"}}])
    assert [r.ok for r in out] == [False, True]


def test_ambiguous_label_on_small_graph() -> None:
    tables = KGTables(
        pl.DataFrame(
            {"head": ["a", "b", "c"], "relation": ["r", "r", "r"], "tail": ["p1", "p2", "p1"]}
        ),
        entities=pl.DataFrame(
            {
                "key": ["a", "b", "c", "p1", "p2"],
                "label": ["Ann", "Bob", "Cy", "Paris", "Paris"],
                "description": [None, None, None, "capital of France", "city in Texas"],
            }
        ),
    )
    kg = StandInGraph(tables)
    cat = ApiCatalog.from_graph(kg)
    rt = ToolRuntime(kg, cat)
    inv = cat.api_for("r", "inverse").name
    res = rt.call(inv, {"entity": "paris"})
    assert res.error["error"] == "ambiguous_entity"
    assert [c["description"] for c in res.error["candidates"]] == [
        "capital of France",
        "city in Texas",
    ]
    assert rt.call(cat.api_for("r").name, {"entity": "Ann"}).result == ["Paris (capital of France)"]
    assert rt.call(inv, {"entity": "Paris (capital of France)"}).result == ["Ann", "Cy"]
    assert rt.call(inv, {"entity": "p2"}).result == ["Bob"]


def test_set_operations() -> None:
    rt, cat = runtime("codex-s"), load_catalog("codex-s")
    p19, p20 = cat.api_for("P19", "inverse"), cat.api_for("P20", "inverse")
    born = rt.call(p19.name, {p19.param_names[0]: "New York City"}).result
    died = rt.call(p20.name, {p20.param_names[0]: "New York City"}).result
    assert born and died
    both = rt.call("get_intersection_of", {"first": born, "second": died})
    either = rt.call("get_union_of", {"first": born, "second": died})
    only = rt.call("get_negation_of", {"first": born, "second": died})
    assert set(both.result) == set(born) & set(died)
    assert set(either.result) == set(born) | set(died)
    assert set(only.result) == set(born) - set(died)
    assert either.result == [rt.names[i] for i in rt.sort_ids(either.entity_ids)]
    e = rt.call("get_union_of", {"first": ["Nobody Atall"], "second": []})
    assert e.error["error"] == "unknown_entity"
