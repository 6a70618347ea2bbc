"""``call_style="batched"``: one list-API call per projection op, replayed and verified.

Every format x every BetaE pattern on the bundled CoDEx-S, in both set-operation modes; the
runtime's list call against a plain dict-of-sets union; errors inside lists; JOIN fallback;
tampering; the option through config, TOML and CLI; and the default left unchanged.
"""

from __future__ import annotations

import itertools
import json
from functools import cache
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest

from kg2tool.cli import main
from kg2tool.dataset.assemble import SampleContext, build_dataset, build_shard
from kg2tool.dataset.verify import verify_dataset
from kg2tool.engine import sample_queries
from kg2tool.errors import Kg2ToolError
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.patterns import BETAE_TYPES, DIFFERENCE, INTERSECT, PROJECT, UNION
from kg2tool.pipeline.config import GenerateConfig
from kg2tool.samples.formats import FORMATS
from kg2tool.samples.questions import build_lexicon
from kg2tool.samples.replay import verify
from kg2tool.samples.trajectories import build_trajectories
from kg2tool.testing.validators import validate_record
from kg2tool.tools.catalog import LIST_KIND, NAME_RE, ApiCatalog
from kg2tool.tools.runtime import ToolRuntime

XLAM_INDEPENDENT = {"1p", "2i", "3i", "2in", "3in", "2u"}
FAILURES = ("observation_mismatch", "plan_mismatch", "error_call_succeeded")


@cache
def ctx() -> SampleContext:
    """Shared context over CoDEx-S (its batched form is derived once)."""
    return SampleContext(KnowledgeGraph.load("codex-s"))


@cache
def env() -> tuple[KnowledgeGraph, ToolRuntime, ToolRuntime, object]:
    """(kg, runtime with list APIs, runtime without, lexicon)."""
    kg = KnowledgeGraph.load("codex-s")
    cat = ApiCatalog.from_graph(kg, list_apis=True)
    rt = ToolRuntime(kg, cat)
    return kg, rt, ToolRuntime(kg, ApiCatalog.from_graph(kg)), build_lexicon(kg, cat)


@cache
def shard(fmt: str, set_ops: str, seed: int = 0) -> tuple[pl.DataFrame, dict]:
    """Every BetaE pattern, batched calls, one format and set-operation mode."""
    c = ctx()
    return build_shard(
        c.kg, list(BETAE_TYPES), 0, 1, 14 * 8, seed, fmt, context=c,
        call_style="batched", set_ops=set_ops,
    )  # fmt: skip


def _queries(pattern: str, n: int = 30, seed: int = 0) -> tuple:
    kg = env()[0]
    b = sample_queries(kg, pattern, n, seed=seed, max_intermediate=10)
    q = b.frame().with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("sid"),
        pl.int_range(pl.len(), dtype=pl.UInt64).alias("qid"),
    )
    return b.plan, q


def _expected_calls(pattern: str, set_ops: str) -> int:
    """Projection ops, plus r-1 calls per r-input set operation in tools mode."""
    from kg2tool.engine import resolve_pattern

    plan = resolve_pattern(pattern)
    kinds = [int(k) for k in plan.op_kind]
    n = sum(k == PROJECT for k in kinds)
    if set_ops == "tools":
        n += sum(
            len(plan.inputs(i)) - 1
            for i, k in enumerate(kinds)
            if k in (INTERSECT, UNION, DIFFERENCE)
        )
    return n


# ---------------------------------------------------------------- every format x pattern


@pytest.mark.parametrize("set_ops", ["thought", "tools"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_and_pattern_batched(fmt: str, set_ops: str, tmp_path: Path) -> None:
    f, report = shard(fmt, set_ops)
    assert not set(report["dropped"]) & set(FAILURES), report["dropped"]
    assert set(f["pattern"].to_list()) == (XLAM_INDEPENDENT if fmt == "xlam" else set(BETAE_TYPES))
    cat = ctx().batched().catalog
    kinds = {a.name: a.kind for a in cat.apis}
    for rec, q in zip(f["record"].to_list(), f["question"].to_list(), strict=True):
        validate_record(fmt, rec, q)
    for pattern, n_calls, trace, tools in f.select(
        "pattern", "num_calls", "trace", "tools"
    ).iter_rows():
        assert n_calls == _expected_calls(pattern, set_ops), pattern
        steps = orjson.loads(trace)
        assert len(steps) == n_calls
        # relation calls are list calls; the listed tools carry the list signature
        assert {kinds[s["name"]] for s in steps} <= {LIST_KIND, "set_operation"}
        for t in orjson.loads(tools):
            fn = t["function"]
            assert kinds[fn["name"]] in (LIST_KIND, "set_operation"), fn["name"]
            for p in fn["parameters"]["properties"].values():
                assert p["type"] == "array" and p["items"] == {"type": "string"}
    # the written rows replay through `kg2tool verify` (runtime.call_many, answers re-executed)
    path = tmp_path / "shard.parquet"
    f.drop("record").write_parquet(path)
    rep = verify_dataset(path, ctx().kg)
    assert rep.checked == f.height and not rep.failures
    assert rep.calls_checked == int(f["num_calls"].sum())


@pytest.mark.parametrize("fmt", ["sharegpt", "toolbench"])
def test_list_arguments_in_text_formats(fmt: str) -> None:
    """ShareGPT / ToolBench write list arguments as JSON arrays (json.dumps spacing)."""
    f, _ = shard(fmt, "thought")
    rec = f.filter(pl.col("pattern") == "3p")["record"][0]
    if fmt == "sharegpt":
        conv = json.loads(rec)["conversations"]
        calls = [json.loads(m["value"]) for m in conv if m["from"] == "function_call"]
        raw = [m["value"] for m in conv if m["from"] == "function_call"]
    else:
        last = json.loads(rec)[-1]["conversations"]
        raw = [
            m["value"].split("\nAction Input: ", 1)[1]
            for m in last
            if m["from"] == "assistant" and "Action: Finish" not in m["value"]
        ]
        calls = [{"arguments": json.loads(r)} for r in raw]
    assert len(calls) == 3
    for c in calls:
        ((_, names),) = c["arguments"].items()
        assert isinstance(names, list) and names and all(isinstance(n, str) for n in names)
    assert all('": [' in r for r in raw)  # python json.dumps spacing, not compact JSON


def test_xlam_batched_first_hop_does_not_leak() -> None:
    """xLAM keeps only calls over anchors: each list names entities of the question."""
    f, _ = shard("xlam", "tools")
    for rec in f["record"].to_list():
        data = json.loads(rec)
        for a in json.loads(data["answers"]):
            ((_, names),) = a["arguments"].items()
            assert len(names) == 1 and names[0] in data["query"]
    c = ctx()
    hop = build_dataset(
        c.kg, ["3p", "pi"], 20, seed=0, format="xlam", context=c,
        call_style="batched", xlam_mode="first_hop",
    )  # fmt: skip
    assert hop.height > 0
    for rec in hop["record"].to_list():
        data = json.loads(rec)
        for a in json.loads(data["answers"]):
            ((_, names),) = a["arguments"].items()
            assert len(names) == 1 and names[0] in data["query"]


def test_next_call_lists_the_previous_observation() -> None:
    """Faithful chains: a list call's argument is exactly the union the last call returned."""
    f, _ = shard("openai", "thought")
    chains = f.filter(pl.col("pattern").is_in(["2p", "3p"]))
    assert chains.height > 0
    for trace in chains["trace"].to_list():
        steps = orjson.loads(trace)
        for prev, step in itertools.pairwise(steps):
            ((_, names),) = step["arguments"].items()
            assert names == orjson.loads(prev["observation"])


def test_deterministic_by_seed() -> None:
    c = ctx()
    one = build_dataset(c.kg, ["2p", "pi", "2in"], 30, seed=5, format="openai", context=c,
                        call_style="batched")  # fmt: skip
    two = build_dataset(c.kg, ["2p", "pi", "2in"], 30, seed=5, format="openai",
                        context=SampleContext(c.kg), call_style="batched")  # fmt: skip
    other = build_dataset(c.kg, ["2p", "pi", "2in"], 30, seed=6, format="openai", context=c,
                          call_style="batched")  # fmt: skip
    assert one.equals(two)
    assert not one["record"].equals(other["record"])


# ---------------------------------------------------------------- the runtime


def test_list_call_equals_dict_of_sets_union() -> None:
    """On CoDEx-S, every list API (both directions) returns the union of a plain dict-of-sets
    lookup of each listed entity, in the runtime's (label, key) order, without duplicates."""
    kg, rt, _, _ = env()
    t = kg.triples
    adj: dict[tuple[int, int, int], set[int]] = {}
    for h, r, tl in zip(t["head"].to_list(), t["relation"].to_list(), t["tail"].to_list(),
                        strict=True):  # fmt: skip
        adj.setdefault((r, 0, h), set()).add(tl)
        adj.setdefault((r, 1, tl), set()).add(h)
    rng = np.random.default_rng(0)
    lists = [a for a in rt.catalog.apis if a.kind == LIST_KIND]
    assert len(lists) == 2 * kg.num_relations
    for api in lists:
        d = int(api.direction == "inverse")
        rid = int(api.relation_id)
        having = sorted({k[2] for k in adj if k[0] == rid and k[1] == d})
        for size in (1, 2, 5):
            ents = rng.choice(having, size=min(size, len(having)), replace=False).tolist()
            ents += rng.integers(0, kg.num_entities, 2).tolist()  # some without the relation
            ents.append(ents[0])  # a duplicate
            want = set().union(*(adj.get((rid, d, e), set()) for e in ents))
            res = rt.call(api.name, {api.param_names[0]: [rt.names[e] for e in ents]})
            assert res.ok and len(res.result) == len(set(res.result))
            assert {rt.names[i] for i in want} == set(res.result)
            assert res.result == [rt.names[i] for i in sorted(want, key=lambda i: rt.rank[i])]


def test_list_call_errors_name_entity_and_position() -> None:
    _, rt, _, _ = env()
    api = rt.catalog.list_api_for("P19", "forward")
    p = api.param_names[0]
    assert p == "people"
    e = rt.call(api.name, {p: ["Douglas Adams", "Harry Chapin", "Hary Chapin"]}).error
    assert e["error"] == "unknown_entity" and e["argument"] == p and e["position"] == 2
    assert e["message"].startswith("people[2]: ") and "'Hary Chapin'" in e["message"]
    assert "Harry Chapin" in e["suggestions"]
    e = rt.call(api.name, {p: ["Douglas Adams", 7]}).error
    assert e["error"] == "invalid_argument" and e["position"] == 1 and "people[1]" in e["message"]
    assert rt.call(api.name, {p: "Douglas Adams"}).error["error"] == "invalid_argument"
    assert rt.call(api.name, {"person": ["Douglas Adams"]}).error["error"] == "missing_argument"
    assert rt.call(api.name, "{not json").error["error"] == "malformed_arguments"
    assert rt.call(api.name, {p: []}).result == []
    # same result through call_many, and in JSON argument form
    many = rt.call_many([(api.name, json.dumps({p: ["Douglas Adams"]})), (api.name, {p: [1]})])
    assert many[0].result == rt.call(api.name, {p: ["Douglas Adams"]}).result
    assert many[1].error["position"] == 0
    # set operations share the positional errors
    e = rt.call("get_union_of", {"first": ["Douglas Adams"], "second": ["Nobody Atall"]}).error
    assert e["error"] == "unknown_entity" and e["argument"] == "second" and e["position"] == 0


def test_catalog_list_apis() -> None:
    kg = env()[0]
    for style in ("kg2tool", "plain", "camel"):
        base = ApiCatalog.from_graph(kg, style=style)
        full = ApiCatalog.from_graph(kg, style=style, list_apis=True)
        assert full.names[: len(base)] == base.names  # appended: nothing else moves
        assert base.with_list_apis().names == full.names and not base.has_list_apis
        lists = full.apis[len(base) :]
        assert {a.kind for a in lists} == {LIST_KIND} and len(lists) == 2 * kg.num_relations
        assert all(NAME_RE.match(a.name) for a in lists) and len(set(full.names)) == len(full)
        single = full.api_for("P19", "forward")
        batch = full.list_api_for("P19", "forward")
        assert batch.name == single.name + ("Batch" if style == "camel" else "_batch")
    cat = ApiCatalog.from_graph(kg, list_apis=True)
    a = cat.list_api_for("P19", "inverse")
    assert a.name == "find_people_born_in_batch" and a.param_names == ("places",)
    assert "union" in a.description and "list of place names" in a.description
    (oa,) = cat.to_openai_tools([a.name])
    assert oa["function"]["parameters"]["properties"]["places"]["type"] == "array"
    (xl,) = cat.to_xlam_tools([a.name])
    assert xl["parameters"]["places"]["type"] == "list[str]"
    tb = cat.to_toolbench([a.name])["api_list"][0]["required_parameters"][0]
    assert tb["type"] == "ARRAY"
    entry = cat.manifest()["apis"][a.name]
    assert entry["kind"] == LIST_KIND and entry["relation"] == "P19"
    with pytest.raises(Exception, match="no list API"):
        ApiCatalog.from_graph(kg).list_api_for("P19")


# ---------------------------------------------------------------- trajectories and replay


def test_tampered_list_observation_and_argument_are_caught() -> None:
    _, rt, _, lex = env()
    plan, q = _queries("3p")
    tr = build_trajectories(plan, q, rt, lex, call_style="batched")
    ok, failures = verify(plan, q, tr, rt)
    assert ok.all() and not failures
    assert (tr.samples["num_calls"] == 3).all()
    # drop the last name of a returned list: the observation no longer replays
    victim = tr.steps.filter(pl.col("observation").str.contains(",")).row(0, named=True)
    bad_obs = json.dumps(json.loads(victim["observation"])[:-1], separators=(",", ":"))
    hit = (pl.col("sid") == victim["sid"]) & (pl.col("step") == victim["step"])
    tampered = tr.steps.with_columns(
        pl.when(hit).then(pl.lit(bad_obs)).otherwise("observation").alias("observation")
    )
    ok, failures = verify(plan, q, type(tr)(tampered, tr.samples), rt)
    assert not ok[victim["sid"]] and ok.sum() == len(ok) - 1
    assert failures["observation_mismatch"] == 1
    # a call listing one entity too few: its replay is fine, but not the op's input set
    wide = tr.steps.filter(pl.col("arguments").str.contains('","')).row(0, named=True)
    ((param, names),) = json.loads(wide["arguments"]).items()
    short = json.dumps({param: names[:-1]}, separators=(",", ":"), ensure_ascii=False)
    short_obs = rt.call(wide["api"], short).to_json()
    hit = (pl.col("sid") == wide["sid"]) & (pl.col("step") == wide["step"])
    tampered = tr.steps.with_columns(
        pl.when(hit).then(pl.lit(short)).otherwise("arguments").alias("arguments"),
        pl.when(hit).then(pl.lit(short_obs)).otherwise("observation").alias("observation"),
    )
    ok, failures = verify(plan, q, type(tr)(tampered, tr.samples), rt)
    assert not ok[wide["sid"]] and "plan_mismatch" in failures


def test_tampered_trace_is_caught_by_verify_dataset(tmp_path: Path) -> None:
    f, _ = shard("sharegpt", "tools")
    row = f.filter(pl.col("pattern") == "pi").row(0, named=True)
    steps = orjson.loads(row["trace"])
    steps[1]["observation"] = "[]"
    f = f.with_columns(
        pl.when(pl.col("id") == row["id"])
        .then(pl.lit(orjson.dumps(steps).decode()))
        .otherwise("trace")
        .alias("trace")
    )
    path = tmp_path / "t.parquet"
    f.drop("record").write_parquet(path)
    rep = verify_dataset(path, ctx().kg)
    assert rep.failed == 1 and rep.failures[0]["id"] == row["id"]
    assert rep.failures[0]["reason"] == "observation_changed"


@pytest.mark.parametrize("pattern", ["triangle", "3mp", "im", "pni_fit"])
def test_join_ops_keep_per_entity_calls(pattern: str) -> None:
    """JOIN sub-steps stay single-entity calls (their checks need per-candidate links);
    projections in the same plan are list calls; everything replays."""
    _, rt, _, lex = env()
    plan, q = _queries(pattern, 20)
    for set_ops in ("thought", "tools"):
        tr = build_trajectories(plan, q, rt, lex, seed=0, call_style="batched", set_ops=set_ops)
        ok, failures = verify(plan, q, tr, rt)
        assert ok.all() and not failures
        single = build_trajectories(plan, q, rt, lex, seed=0, set_ops=set_ops)
        kinds = tr.steps["api"].replace_strict({a.name: a.kind for a in rt.catalog.apis})
        in_join = (tr.steps["sub"] >= 0).to_numpy()
        assert (kinds.to_numpy()[in_join] == "relation").all()
        assert (kinds.to_numpy()[~in_join] != "relation").all()
        cols = ["sid", "op", "pos", "api", "arguments", "observation"]
        assert (
            tr.steps.filter(pl.col("sub") >= 0)
            .select(cols)
            .equals(single.steps.filter(pl.col("sub") >= 0).select(cols))
        )


def test_error_recovery_with_list_calls() -> None:
    _, rt, _, lex = env()
    plan, q = _queries("2i")
    tr = build_trajectories(plan, q, rt, lex, error_ratio=1.0, call_style="batched")
    ok, failures = verify(plan, q, tr, rt)
    assert ok.all() and not failures and tr.samples["recovery"].sum() > 0
    err = tr.steps.filter(pl.col("kind") == "error")
    assert err.height > 0 and err["argument"].null_count() == err.height
    for row in err.iter_rows(named=True):
        ((_, names),) = json.loads(row["arguments"]).items()
        obs = json.loads(row["observation"])
        assert len(names) == 1 and obs["error"] == "unknown_entity" and obs["position"] == 0
        assert rt.call(row["api"], row["arguments"]).to_json() == row["observation"]


def test_bad_call_style_and_missing_list_apis() -> None:
    _, rt, plain_rt, lex = env()
    plan, q = _queries("2p", 5)
    with pytest.raises(ValueError, match="call_style"):
        build_trajectories(plan, q, rt, lex, call_style="lists")
    with pytest.raises(Kg2ToolError, match="list APIs"):
        build_trajectories(plan, q, plain_rt, lex, call_style="batched")
    with pytest.raises(ValueError, match="call_style"):
        build_dataset(ctx().kg, ["1p"], 5, context=ctx(), call_style="lists")


# ---------------------------------------------------------------- the option and the default


def test_default_is_single_and_unchanged() -> None:
    """No call_style (or "single") gives the same frame; the config leaves the key out (same
    dumps and resume hash as before the option existed)."""
    c = ctx()
    pats = ["2p", "pi", "3in", "triangle"]
    default = build_dataset(c.kg, pats, 40, seed=1, format="sharegpt", context=c)
    single = build_dataset(c.kg, pats, 40, seed=1, format="sharegpt", context=c,
                           call_style="single")  # fmt: skip
    assert default.equals(single)
    assert not default["record"].str.contains("_batch").any()
    cfg = GenerateConfig(out="x")
    assert "call_style" not in cfg.to_dict()
    assert GenerateConfig(out="x", call_style="single").content_hash() == cfg.content_hash()
    batched = GenerateConfig(out="x", call_style="batched")
    assert batched.to_dict()["call_style"] == "batched"
    assert batched.content_hash() != cfg.content_hash()


def test_cli_flag_toml_key_and_call(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = ("generate", "-n", "30", "--patterns", "2p,2i", "--format", "sharegpt", "-q")
    assert main([*base, "--out", str(tmp_path / "a"), "--call-style", "batched"]) == 0
    text = (tmp_path / "a" / "train.jsonl").read_text()
    assert "_batch" in text
    conf = tmp_path / "run.toml"
    conf.write_text('call_style = "batched"\n')
    assert main([*base, "--out", str(tmp_path / "b"), "--config", str(conf)]) == 0
    assert (tmp_path / "b" / "train.jsonl").read_text() == text
    assert 'call_style = "batched"' in (tmp_path / "a" / "config.toml").read_text()
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "a"), "--strict"]) == 0
    assert " 0 no longer hold" in capsys.readouterr().out
    assert main([*base, "--out", str(tmp_path / "c"), "--call-style", "lists"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kg2tool: error: ") and "call_style" in err and "\n" not in err
    args = json.dumps({"people": ["Douglas Adams", "Harry Chapin"]})
    assert main(["call", "get_birthplace_of_person_batch", args]) == 0
    assert json.loads(capsys.readouterr().out) == ["Brooklyn", "Cambridge"]
    assert main(["apis", "--out", str(tmp_path / "apis"), "--list-apis"]) == 0
    manifest = json.loads((tmp_path / "apis" / "manifest.json").read_text())["apis"]
    assert manifest["find_people_born_in_batch"]["kind"] == LIST_KIND
