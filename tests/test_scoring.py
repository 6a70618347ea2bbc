"""The exact scorer: answer extraction rules, set metrics, call statistics."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from kg2tool.dataset.assemble import build_dataset
from kg2tool.samples.scoring import (
    answer_score,
    call_stats,
    named_entities,
    observed_names,
    schema_valid,
    score_episode,
)
from kg2tool.tools.catalog import ApiCatalog
from kg2tool.tools.runtime import ToolRuntime


def brute_force_named(text: str, cands: list[str]) -> set[str]:
    """Independent reading of the text rule: every whole-word occurrence of every name, then
    drop occurrences that lie inside a longer name's occurrence."""
    low = text.casefold()
    spans = []
    for c in cands:
        for m in re.finditer(rf"(?<!\w){re.escape(c.casefold())}(?!\w)", low):
            spans.append((m.start(), m.end(), c))
    keep = set()
    for s, e, c in spans:
        inside = any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in spans)
        if not inside:
            keep.add(c)
    return keep


def test_text_rule_longest_first() -> None:
    cands = ["African Union", "African Union – UN Hybrid Operation", "singer", "singer-songwriter"]
    text = "They are African Union – UN Hybrid Operation and singer-songwriter."
    assert named_entities(text, cands) == [
        "African Union – UN Hybrid Operation",
        "singer-songwriter",
    ]
    assert named_entities("a singer and the African Union.", cands) == ["African Union", "singer"]
    # whole words only, case-insensitive
    assert named_entities("Singers of the african union", cands) == ["African Union"]


def test_answer_part_of_the_reply() -> None:
    cands = ["Albert Camus", "Søren Kierkegaard", "Thomas Aquinas"]
    join = "Checking every link rules out Albert Camus and Thomas Aquinas, which leaves Søren " \
        "Kierkegaard. So the answer is Søren Kierkegaard."  # fmt: skip
    assert named_entities(join, cands) == ["Søren Kierkegaard"]
    assert named_entities("Søren Kierkegaard is the answer.", cands) == ["Søren Kierkegaard"]
    listed = 'Albert Camus was considered. The answers are: ["Thomas Aquinas", "søren kierkegaard"]'
    assert named_entities(listed, cands) == ["Søren Kierkegaard", "Thomas Aquinas"]
    assert named_entities("The answers are: []", cands) == []
    # a name the observations never returned is not predicted
    assert named_entities("The answer is Plato.", cands) == []


def test_labels_and_shared_labels() -> None:
    labels = {"Paris (Q90)": "Paris", "Paris (Q830149)": "Paris", "Lyon (Q456)": "Lyon"}
    cands = list(labels)
    assert named_entities("The answer is Lyon.", cands, labels.get) == ["Lyon (Q456)"]
    # a label two observed entities share names neither; the display name does
    assert named_entities("The answer is Paris.", cands, labels.get) == []
    assert named_entities("The answer is Paris (Q90).", cands, labels.get) == ["Paris (Q90)"]


def test_set_metrics() -> None:
    s = answer_score(["a", "b", "x"], ["a", "b", "c", "d"])
    assert (s.precision, s.recall) == (2 / 3, 0.5)
    assert s.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert s.wrong == ["x"] and s.missing == ["c", "d"] and s.exact_match == 0.0
    assert answer_score([], []).exact_match == 1.0 and answer_score([], []).f1 == 1.0
    assert answer_score([], ["a"]).f1 == 0.0 and answer_score(["a"], []).precision == 0.0


def test_schema_valid() -> None:
    schema = {"type": "object", "properties": {"human": {"type": "string"}},
              "required": ["human"], "additionalProperties": False}  # fmt: skip
    assert schema_valid({"human": "Bob"}, schema)
    assert not schema_valid({"human": 3}, schema)
    assert not schema_valid({}, schema)
    assert not schema_valid({"human": "Bob", "x": 1}, schema)
    lst = {"type": "object", "properties": {"h": {"type": "array", "items": {"type": "string"}}},
           "required": ["h"]}  # fmt: skip
    assert schema_valid({"h": ["a"]}, lst) and not schema_valid({"h": ["a", 1]}, lst)


def test_call_stats_counts() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"],
        "additionalProperties": False}}}]  # fmt: skip

    def call(i: int, name: str, args: str) -> dict[str, Any]:
        return {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": args}}

    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": [call(0, "f", '{"x": "a"}'),
                                                            call(1, "f", "{bad")]},
        {"role": "tool", "tool_call_id": "c0", "content": '["A"]'},
        {"role": "tool", "tool_call_id": "c1", "content": '{"error": "malformed_arguments"}'},
        {"role": "assistant", "content": "", "tool_calls": [call(2, "g", '{"x": "a"}')]},
        {"role": "tool", "tool_call_id": "c2", "content": '{"error": "unknown_api"}'},
        {"role": "assistant", "content": "The answer is A."},
    ]  # fmt: skip
    assert call_stats(messages, tools) == {
        "calls": 3, "calls_parsed": 2, "calls_valid": 1, "calls_error": 2, "turns": 3,
    }  # fmt: skip
    assert observed_names(m["content"] for m in messages if m["role"] == "tool") == ["A"]
    score = score_episode(messages, ["A"], tools, reference_calls=1)
    assert score.answer.exact_match == 1.0 and score.reference_calls == 1
    # a reasoning block is not part of the reply
    thinking = [*messages[:-1], {"role": "assistant", "content": "<think>is it B? or A</think>"}]
    assert score_episode(thinking, ["A"], tools).answer.predicted == []


def test_reference_replies_match_brute_force(codex_s: Any) -> None:
    """On real CoDEx-S trajectories (every pattern family), the scorer's reading of the
    final reply equals the independent brute-force reading of its answer part, and the
    reference trajectories score exact match 1."""
    rt = ToolRuntime(codex_s, ApiCatalog.from_graph(codex_s))
    frame = build_dataset(codex_s, ["1p", "2p", "2i", "2in", "pin", "2u", "triangle"], 70, seed=11)
    names = dict(zip(rt.keys, rt.names, strict=True))
    for msgs, answers in frame.select("messages", "answers").iter_rows():
        messages = json.loads(msgs)
        obs = observed_names(m["content"] for m in messages if m["role"] == "tool")
        reply = messages[-1]["content"]
        tail = reply[list(re.finditer(r"\banswers?\b", reply, re.I))[-1].end() :]
        assert set(named_entities(reply, obs)) == brute_force_named(tail, obs)
        gold = [names[k] for k in answers]
        assert score_episode(messages, gold).answer.exact_match == 1.0
