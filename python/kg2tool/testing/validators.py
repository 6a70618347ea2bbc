"""Validators of the trainer formats' rules (``../shared/FORMATS.md``), for the tests.

Each one reads a written record back as JSON and asserts the rules the trainer's loader relies
on, independently of the Polars string code in :mod:`kg2tool.samples.formats` that wrote it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from kg2tool.samples.formats import toolbench_system_prompt

__all__ = [
    "validate_openai",
    "validate_record",
    "validate_sharegpt",
    "validate_toolbench",
    "validate_xlam",
]

_OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def validate_openai(rec: dict[str, Any]) -> None:
    """OpenAI fine-tuning line rules: roles, tool_calls shape, string arguments, matching ids."""
    assert set(rec) <= {"messages", "tools", "parallel_tool_calls"}, set(rec)
    assert rec.get("parallel_tool_calls") is False
    names = set()
    for t in rec["tools"]:
        assert t["type"] == "function" and _OPENAI_NAME.match(t["function"]["name"])
        assert t["function"]["parameters"]["type"] == "object"
        names.add(t["function"]["name"])
    msgs = rec["messages"]
    assert msgs[0]["role"] == "user" and isinstance(msgs[0]["content"], str)
    pending: list[str] = []
    for m in msgs[1:]:
        if m["role"] == "assistant":
            assert not pending, "assistant message before every tool call was answered"
            for c in m.get("tool_calls", []):
                assert c["type"] == "function" and c["function"]["name"] in names
                assert isinstance(c["function"]["arguments"], str)
                assert isinstance(json.loads(c["function"]["arguments"]), dict)
                pending.append(c["id"])
            assert m.get("tool_calls") or isinstance(m.get("content"), str)
        elif m["role"] == "tool":
            assert pending and m["tool_call_id"] == pending.pop(0)
            assert isinstance(m["content"], str)
        else:
            raise AssertionError(f"unexpected role {m['role']}")
    assert not pending
    assert msgs[-1]["role"] == "assistant" and "tool_calls" not in msgs[-1]


def validate_toolbench(records: list[dict[str, Any]], query: str) -> None:
    """ToolBench rules: ids ``Step i``, roles, alternation, system text, Finish last."""
    prefix = toolbench_system_prompt()
    for rec in records:
        assert set(rec) == {"id", "conversations"}
        conv = rec["conversations"]
        i = len(conv) - 1
        assert rec["id"] == f"Step {i}: {query}"
        assert conv[0]["from"] == "system" and conv[0]["value"].startswith(prefix)
        assert "with a function call to actually excute your step." in conv[0]["value"]
        assert "'name': 'Finish'" in conv[0]["value"]
        assert conv[1] == {"from": "user", "value": f"\n{query}\nBegin!\n"}
        for k, m in enumerate(conv[2:], start=2):
            assert m["from"] == ("assistant" if k % 2 == 0 else "function")
            if m["from"] == "assistant":
                assert re.match(
                    r"^\nThought: .*\nAction: \S+\nAction Input: \{.*\}$", m["value"], re.S
                )
                json.loads(m["value"].split("\nAction Input: ", 1)[1])
            else:
                obs = json.loads(m["value"])
                assert set(obs) == {"error", "response"} and isinstance(obs["response"], str)
        assert conv[-1]["from"] == "assistant"
    last = records[-1]["conversations"][-1]["value"]
    assert "\nAction: Finish\n" in last
    fin = json.loads(last.split("\nAction Input: ", 1)[1])
    assert fin["return_type"] == "give_answer" and isinstance(fin["final_answer"], str)
    assert all("Action: Finish" not in r["conversations"][-1]["value"] for r in records[:-1])


def validate_sharegpt(rec: dict[str, Any]) -> None:
    """LLaMA-Factory converter rules: odd human/observation, even gpt/function_call, even count."""
    assert isinstance(rec["tools"], str)
    tools = json.loads(rec["tools"])
    names = {t["name"] for t in tools}
    conv = rec["conversations"]
    if conv and conv[0]["from"] == "system":
        conv = conv[1:]
    assert len(conv) % 2 == 0 and conv
    for k, m in enumerate(conv):
        allowed = ("human", "observation") if k % 2 == 0 else ("gpt", "function_call")
        assert m["from"] in allowed, (k, m["from"])
        assert isinstance(m["value"], str)
        if m["from"] == "function_call":
            call = json.loads(m["value"])
            assert set(call) == {"name", "arguments"} and isinstance(call["arguments"], dict)
            assert call["name"] in names
    assert conv[-1]["from"] == "gpt"


def validate_xlam(rec: dict[str, Any]) -> None:
    """xLAM rules: id int, query str, tools/answers JSON strings, non-JSON-Schema parameters."""
    assert isinstance(rec["id"], int) and isinstance(rec["query"], str)
    tools = json.loads(rec["tools"])
    answers = json.loads(rec["answers"])
    names = {t["name"] for t in tools}
    for t in tools:
        for p in t["parameters"].values():
            assert p["type"] in ("str", "list[str]") and "description" in p
    assert answers
    for a in answers:
        assert set(a) == {"name", "arguments"} and a["name"] in names
        assert isinstance(a["arguments"], dict)


# The verl SFT lines are openai lines; toolbench also needs the question (its step ids quote it).
_RECORD_RULES: dict[str, Callable[[dict[str, Any]], None]] = {
    "openai": validate_openai,
    "verl": validate_openai,
    "sharegpt": validate_sharegpt,
    "xlam": validate_xlam,
}


def validate_record(fmt: str, record: str, question: str) -> None:
    """Validate one written record of a format."""
    data = json.loads(record)
    if fmt == "toolbench":
        validate_toolbench(data, question)
    else:
        _RECORD_RULES[fmt](data)
