"""RL environments: ``generate --format verl`` rows and tool config, verl's ``compute_score``
and tool class on reference and perturbed rollouts, the verifiers environment."""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from kg2tool.pipeline.driver import generate
from kg2tool.rl.verl import SYSTEM_PROMPT, KgTool, compute_score, parse_solution
from kg2tool.tools.catalog import ApiCatalog
from kg2tool.tools.runtime import ToolRuntime


@pytest.fixture(scope="module")
def verl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verl") / "ds"
    generate(
        out=str(out), kg="codex-s", patterns="1p,2p,2i,2in,pi,triangle", num_samples=40, seed=4,
        format="verl", engine="local",
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def runtime(codex_s: Any) -> ToolRuntime:
    return ToolRuntime(codex_s, ApiCatalog.from_graph(codex_s, list_apis=True))


@pytest.fixture(scope="module")
def shards(verl_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(verl_dir / "data" / "*.parquet").sort("id")


def test_verl_rows(verl_dir: Path, shards: pl.DataFrame, runtime: ToolRuntime) -> None:
    name_of = dict(zip(runtime.keys, runtime.names, strict=True))
    manifest = json.loads((verl_dir / "manifest.json").read_text())
    seen = 0
    for split in shards["split"].unique().to_list():
        rows = pl.read_parquet(verl_dir / "verl" / f"{split}.parquet")
        assert f"verl/{split}.parquet" in manifest["files"]
        assert rows.columns == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
        want = shards.filter(pl.col("split") == split)
        assert rows.height == want.height
        for row, sample in zip(rows.to_dicts(), want.to_dicts(), strict=True):
            assert row["data_source"] == "kg2tool/codex-s" and row["ability"] == "kg_tool_use"
            assert row["prompt"] == [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": sample["question"]},
            ]
            rm = row["reward_model"]
            assert rm["style"] == "rule"
            assert rm["ground_truth"] == [name_of[k] for k in sample["answers"]]
            info = row["extra_info"]
            assert (info["id"], info["split"], info["kg"]) == (sample["id"], split, "codex-s")
            assert json.loads(info["tools"]) == json.loads(sample["tools"])
            seen += 1
    assert seen == shards.height


def test_verl_tool_config(verl_dir: Path, shards: pl.DataFrame, runtime: ToolRuntime) -> None:
    config = yaml.safe_load((verl_dir / "verl" / "tool_config.yaml").read_text())
    offered = {t["function"]["name"] for ts in shards["tools"] for t in json.loads(ts)}
    names = [t["tool_schema"]["function"]["name"] for t in config["tools"]]
    assert set(names) == offered and len(names) == len(offered)
    catalog = {t["function"]["name"]: t for t in runtime.catalog.to_openai_tools()}
    for t in config["tools"]:
        module, cls = t["class_name"].rsplit(".", 1)
        assert getattr(importlib.import_module(module), cls) is KgTool
        assert t["config"] == {"type": "native", "kg": "codex-s"}
        assert t["tool_schema"] == catalog[t["tool_schema"]["function"]["name"]]


def hermes(messages: list[dict[str, Any]], final: str | None = None) -> str:
    """A rollout as a Qwen/Hermes chat template renders the response part."""
    out = []
    for m in messages[1:]:
        if m["role"] == "assistant":
            text = m.get("content") or ""
            if m is messages[-1] and final is not None:
                text = final
            for c in m.get("tool_calls") or ():
                call = {"name": c["function"]["name"],
                        "arguments": json.loads(c["function"]["arguments"])}  # fmt: skip
                text += f"\n<tool_call>\n{json.dumps(call)}\n</tool_call>"
            out.append(f"<|im_start|>assistant\n{text}<|im_end|>")
        elif m["role"] == "tool":
            out.append(
                f"<|im_start|>user\n<tool_response>\n{m['content']}\n</tool_response><|im_end|>"
            )
    return "\n".join(out)


def test_compute_score_reference_and_perturbed(shards: pl.DataFrame, runtime: ToolRuntime) -> None:
    name_of = dict(zip(runtime.keys, runtime.names, strict=True))
    info = {"kg": "codex-s"}
    checked = 0
    for msgs, answers in shards.select("messages", "answers").iter_rows():
        messages = json.loads(msgs)
        gold = [name_of[k] for k in answers]
        s = compute_score("kg2tool/codex-s", hermes(messages), gold, info)
        assert s == {"score": 1.0, "exact_match": 1.0, "precision": 1.0, "recall": 1.0}
        parsed = parse_solution(hermes(messages))
        assert sum(m["role"] == "tool" for m in parsed) == sum(
            m["role"] == "tool" for m in messages
        )
        n = len(gold)
        if n >= 2:  # one answer missing, plus an anchor-like name never observed
            final = "The answers are: " + json.dumps([*gold[1:], "Zanzibar Nowhere"])
            s = compute_score("x", hermes(messages, final), gold, info)
            assert s["precision"] == 1.0 and s["recall"] == pytest.approx((n - 1) / n)
            assert s["exact_match"] == 0.0
            checked += 1
        # ending on a call: no final reply, nothing predicted
        cut = hermes(messages[:2])
        assert compute_score("x", cut, gold, info)["score"] == 0.0
    assert checked >= 5
    # a JSON-string ground truth, as some pipelines store it
    assert compute_score("x", "The answer is nothing.", "[]", None)["score"] == 1.0


def test_verl_tool_executes_on_runtime(runtime: ToolRuntime) -> None:
    schema = next(
        t for t in runtime.catalog.to_openai_tools() if "birthplace" in t["function"]["name"]
    )
    tool = KgTool({"type": "native", "kg": "codex-s"}, schema)
    name = schema["function"]["name"]
    param = next(iter(schema["function"]["parameters"]["properties"]))

    async def go() -> list[Any]:
        iid = await tool.create()
        ok = await tool.execute(iid, {param: "Douglas Adams"})
        bad = await tool.execute(iid, {param: "Douglas Adamz"})
        await tool.release(iid)
        return [ok, bad]

    ok, bad = asyncio.run(go())
    assert ok[0] == runtime.call(name, {param: "Douglas Adams"}).to_json() and ok[1] == 0.0
    assert json.loads(bad[0])["error"] == "unknown_entity" and bad[2] == {"tool_error": 1.0}


def test_verifiers_environment(verl_dir: Path, shards: pl.DataFrame, runtime: ToolRuntime) -> None:
    """The verifiers (v1) environment built by the real package on CoDEx-S: tasks, tools on
    the runtime, and the reward on reference and perturbed conversations. A full rollout is
    not run: verifiers' harnesses run the agent as a uv script (see README)."""
    pytest.importorskip("verifiers.v1", reason="verifiers is not installed (optional)")
    from types import SimpleNamespace

    from kg2tool.rl.verifiers_env import load_environment

    env = load_environment(kg="codex-s", dataset=str(verl_dir), split=None)
    tasks = list(env.taskset)
    name_of = dict(zip(runtime.keys, runtime.names, strict=True))
    assert [t.data.id for t in tasks] == shards["id"].to_list()
    toolset = type(env.taskset).toolsets(env.taskset.config)[0]
    tools = asyncio.run(toolset.list_tools())
    assert [t.name for t in tools] == runtime.catalog.names
    for task, (msgs, answers, question) in zip(
        tasks, shards.select("messages", "answers", "question").iter_rows(), strict=True
    ):
        assert task.data.prompt == question
        assert task.data.answers == [name_of[k] for k in answers]
        messages = json.loads(msgs)
        for m in messages:  # every reference call through the toolset equals the runtime
            for c in m.get("tool_calls") or ():
                name, args = c["function"]["name"], json.loads(c["function"]["arguments"])
                got = asyncio.run(toolset.call_tool(name, args))
                assert got.content[0].text == runtime.call(name, args).to_json()
        assert asyncio.run(task.f1(SimpleNamespace(messages=messages))) == 1.0
        n = len(task.data.answers)
        if n >= 2:
            cut = [*messages[:-1], {"role": "assistant", "content": "The answers are: "
                                    + json.dumps(task.data.answers[1:])}]  # fmt: skip
            got = asyncio.run(task.answer_metrics(SimpleNamespace(messages=cut)))
            assert got["recall"] == pytest.approx((n - 1) / n) and got["precision"] == 1.0
    bad = asyncio.run(toolset.call_tool("get_nothing", {}))
    assert bad.is_error and json.loads(bad.content[0].text)["error"] == "unknown_api"
