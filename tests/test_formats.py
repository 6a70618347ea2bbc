"""Every format x every BetaE pattern: records valid per FORMATS.md rules."""

from __future__ import annotations

import json
from functools import cache

import pytest

from kg2tool.dataset.assemble import SampleContext, build_dataset
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.patterns import BETAE_TYPES
from kg2tool.samples.formats import FORMATS, toolbench_system_prompt
from kg2tool.testing.validators import validate_record


@cache
def ctx() -> SampleContext:
    """Shared context over CoDEx-S."""
    return SampleContext(KnowledgeGraph.load("codex-s"))


@cache
def frame(fmt: str):
    """A small dataset with every BetaE pattern in a format."""
    c = ctx()
    return build_dataset(c.kg, list(BETAE_TYPES), 14 * 12, seed=0, format=fmt, context=c)


@pytest.mark.parametrize("fmt", FORMATS)
def test_records_follow_format_rules(fmt: str) -> None:
    f = frame(fmt)
    assert f.height > 0
    expected = set(BETAE_TYPES) if fmt != "xlam" else {"1p", "2i", "3i", "2in", "3in", "2u"}
    assert set(f["pattern"].to_list()) == expected
    for rec, q in zip(f["record"].to_list(), f["question"].to_list(), strict=True):
        validate_record(fmt, rec, q)


def test_openai_arguments_are_strings_and_ids_match() -> None:
    rec = json.loads(frame("openai")["record"][0])
    call = rec["messages"][1]["tool_calls"][0]
    assert isinstance(call["function"]["arguments"], str)
    assert rec["messages"][2]["tool_call_id"] == call["id"]


def test_toolbench_system_text_is_verbatim() -> None:
    text = toolbench_system_prompt()
    assert text.startswith(
        "You are AutoGPT, you can use many tools(functions) to do the following task."
    )
    assert (
        "actually excute your step. Your output should follow this format:\nThought:\nAction\nAction Input:\n"
        in text
    )
    assert text.endswith("\nSpecifically, you have access to the following APIs: ")


def test_xlam_never_leaks_intermediate_results() -> None:
    f = frame("xlam")
    for rec in f["record"].to_list():
        answers = json.loads(json.loads(rec)["answers"])
        query = json.loads(rec)["query"]
        for a in answers:
            assert all(v in query for v in a["arguments"].values())


@cache
def frame_tools(fmt: str):
    """Every BetaE pattern with set operations as tool calls, plus cyclic patterns."""
    c = ctx()
    pats = [*BETAE_TYPES, "triangle", "3c", "2nm"]
    return build_dataset(c.kg, pats, 17 * 8, seed=0, format=fmt, context=c, set_ops="tools")


@pytest.mark.parametrize("fmt", FORMATS)
def test_set_op_calls_and_joins_in_every_format(fmt: str) -> None:
    f = frame_tools(fmt)
    pats = set(f["pattern"].to_list())
    if fmt == "xlam":  # set-operation calls are left out; JOIN samples are never independent
        assert pats == {"1p", "2i", "3i", "2in", "3in", "2u"}
        for rec in f["record"].to_list():
            assert "get_intersection_of" not in json.loads(rec)["answers"]
    else:
        assert pats >= {*BETAE_TYPES, "triangle", "3c"}
        assert f["record"].str.contains("get_intersection_of").any()
    for rec, q in zip(f["record"].to_list(), f["question"].to_list(), strict=True):
        validate_record(fmt, rec, q)
    if fmt == "sharegpt":
        rec = json.loads(f.filter(f["pattern"] == "2i")["record"][0])
        calls = [
            json.loads(m["value"]) for m in rec["conversations"] if m["from"] == "function_call"
        ]
        inter = [c for c in calls if c["name"] == "get_intersection_of"]
        assert inter and set(inter[0]["arguments"]) == {"first", "second"}
