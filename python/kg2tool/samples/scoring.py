"""Exact scoring of a tool-use episode, with no LLM judge: one scorer for ``kg2tool eval``,
the RL rewards (:mod:`kg2tool.rl`) and anything else that grades a model on a KG dataset.

The answer. The predicted answer set is the set of KG entities that the final reply *names*,
restricted to the entities that the model's own tool observations returned (so naming an
anchor of the question, or guessing an entity never looked up, earns nothing). Where the
answer is read in the reply:

1. when the reply holds a JSON list of strings (``The answers are: ["Paris", "Lyon"]``), the
   last such list: each item names the entity whose display name or label it is;
2. else, when the text after the reply's last word "answer"/"answers" names entities, that
   text ("Checking the links rules out X, which leaves Y. So the answer is Y." names Y);
3. else the whole reply.

Reasoning blocks (``<think>...</think>``) in the final reply are left out first.

In text an entity is named when its display name or its label occurs as a whole word (not
inside a longer word), case-insensitively; longer names are matched first and a matched span is
not matched again, so "African Union – United Nations Hybrid Operation in Darfur" does not also
count as "African Union". A label shared by several observed entities names none of them (the
display name, "Label (short description)", does). Against the verified answer set: exact match (the sets are
equal), precision, recall and F1 (an empty prediction for an empty answer set scores 1).

The calls. Calls made; calls whose arguments parse as a JSON object; calls of a tool the
sample offers with arguments valid under its JSON Schema; calls whose observation was an
error; calls made relative to the reference trajectory's count; assistant turns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

__all__ = [
    "AnswerScore",
    "EpisodeScore",
    "answer_score",
    "call_stats",
    "final_reply",
    "named_entities",
    "observed_names",
    "schema_valid",
    "score_episode",
]


@dataclass(frozen=True)
class AnswerScore:
    """Predicted vs verified answer sets (entity display names) and the set metrics."""

    predicted: list[str]
    exact_match: float
    precision: float
    recall: float
    f1: float
    wrong: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EpisodeScore:
    """Everything measured about one episode: the answer metrics and the call statistics."""

    answer: AnswerScore
    calls: int
    calls_parsed: int
    calls_valid: int
    calls_error: int
    reference_calls: int | None
    turns: int

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-able form (answer metrics at the top level)."""
        d = asdict(self)
        d.update(d.pop("answer"))
        return d


def observed_names(observations: Iterable[str]) -> list[str]:
    """Entity names returned by tool observations: every JSON list of strings among them
    (errors and other text return none), in first-seen order without repeats."""
    seen: dict[str, None] = {}
    for text in observations:
        try:
            value = orjson.loads(text)
        except (orjson.JSONDecodeError, TypeError):
            continue
        if isinstance(value, list):
            for v in value:
                if isinstance(v, str):
                    seen.setdefault(v, None)
    return list(seen)


_ANSWER_WORD = re.compile(r"\banswers?\b", re.IGNORECASE)


def _last_json_list(reply: str) -> list[str] | None:
    """The last JSON list of strings in ``reply``, if any."""
    decoder = json.JSONDecoder()
    pos = reply.rfind("[")
    while pos >= 0:
        try:
            value, _ = decoder.raw_decode(reply, pos)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        pos = reply.rfind("[", 0, pos)
    return None


def named_entities(
    reply: str,
    candidates: Iterable[str],
    label_of: Callable[[str], str | None] | None = None,
) -> list[str]:
    """The candidates (display names) that the answer part of ``reply`` names (module doc:
    a JSON list, else the text after the last "answer", else the whole reply). Sorted."""
    cands = list(dict.fromkeys(candidates))
    if not reply or not cands:
        return []
    usable = _aliases(cands, label_of)
    listed = _last_json_list(reply)
    if listed is not None:
        return sorted({usable[a] for a in (v.strip().casefold() for v in listed) if a in usable})
    words = list(_ANSWER_WORD.finditer(reply))
    if words:
        found = _named_in_text(reply[words[-1].end() :], usable)
        if found:
            return found
    return _named_in_text(reply, usable)


def _aliases(cands: list[str], label_of: Callable[[str], str | None] | None) -> dict[str, str]:
    """Casefolded display names and labels -> display name, without labels shared by two."""
    alias: dict[str, set[str]] = {}
    for name in cands:
        alias.setdefault(name.casefold(), set()).add(name)
        label = label_of(name) if label_of is not None else None
        if label and label != name:
            alias.setdefault(label.casefold(), set()).add(name)
    return {a: next(iter(ns)) for a, ns in alias.items() if len(ns) == 1 and a.strip()}


def _named_in_text(reply: str, usable: dict[str, str]) -> list[str]:
    """Display names whose aliases occur in ``reply``: whole words, longest first, each
    span used once."""
    if not usable:
        return []
    text = reply.casefold()
    # quick filter: only aliases that occur at all go into the pattern
    present = sorted((a for a in usable if a in text), key=lambda a: (-len(a), a))
    if not present:
        return []
    pattern = re.compile(r"(?<!\w)(?=(" + "|".join(re.escape(a) for a in present) + r")(?!\w))")
    spans = [(m.start(), m.start() + len(m.group(1)), m.group(1)) for m in pattern.finditer(text)]
    spans.sort(key=lambda s: (s[0] - s[1], s[0]))  # longest first, then leftmost
    taken = bytearray(len(text) + 1)
    found: set[str] = set()
    for start, end, a in spans:
        if any(taken[start:end]):
            continue
        taken[start:end] = b"\x01" * (end - start)
        found.add(usable[a])
    return sorted(found)


def answer_score(predicted: Iterable[str], gold: Iterable[str]) -> AnswerScore:
    """Exact match, precision, recall and F1 of a predicted set against the verified one."""
    p, g = set(predicted), set(gold)
    hit = len(p & g)
    precision = hit / len(p) if p else (1.0 if not g else 0.0)
    recall = hit / len(g) if g else (1.0 if not p else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return AnswerScore(
        predicted=sorted(p),
        exact_match=float(p == g),
        precision=precision,
        recall=recall,
        f1=f1,
        wrong=sorted(p - g),
        missing=sorted(g - p),
    )


def schema_valid(arguments: Any, schema: Mapping[str, Any] | None) -> bool:
    """Whether parsed arguments satisfy a tool's parameter schema as kg2tool writes them
    (an object of string / array-of-string / object properties, ``required``,
    ``additionalProperties: false``)."""
    if not isinstance(arguments, dict) or schema is None:
        return False
    props = schema.get("properties", {})
    if any(r not in arguments for r in schema.get("required", ())):
        return False
    if schema.get("additionalProperties") is False and any(k not in props for k in arguments):
        return False
    return all(_type_ok(v, props.get(k, {})) for k, v in arguments.items())


def _type_ok(value: Any, spec: Mapping[str, Any]) -> bool:
    kind = spec.get("type")
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        items = spec.get("items", {})
        return isinstance(value, list) and all(_type_ok(v, items) for v in value)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return True


def _is_error(observation: str) -> bool:
    try:
        value = orjson.loads(observation)
    except (orjson.JSONDecodeError, TypeError):
        return True
    return isinstance(value, dict) and "error" in value


def call_stats(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """Call and turn counts of an OpenAI-style conversation against the offered ``tools``."""
    schemas = {
        t["function"]["name"]: t["function"].get("parameters")
        for t in tools
        if isinstance(t, Mapping) and "function" in t
    }
    observations = {
        m.get("tool_call_id"): str(m.get("content", ""))
        for m in messages
        if m.get("role") == "tool"
    }
    calls = parsed = valid = errors = turns = 0
    for m in messages:
        if m.get("role") != "assistant":
            continue
        turns += 1
        for c in m.get("tool_calls") or ():
            calls += 1
            fn = c.get("function") or {}
            raw = fn.get("arguments")
            try:
                args = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
            except orjson.JSONDecodeError:
                args = None
            if isinstance(args, dict):
                parsed += 1
                if fn.get("name") in schemas and schema_valid(args, schemas[fn.get("name")]):
                    valid += 1
            obs = observations.get(c.get("id"))
            if obs is None or _is_error(obs):
                errors += 1
    return {
        "calls": calls,
        "calls_parsed": parsed,
        "calls_valid": valid,
        "calls_error": errors,
        "turns": turns,
    }


_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)


def final_reply(messages: Sequence[Mapping[str, Any]]) -> str:
    """The content of the last assistant message when it makes no calls, else ``""``;
    reasoning blocks (``<think>...</think>``) are not part of the reply."""
    for m in reversed(messages):
        if m.get("role") == "assistant":
            if m.get("tool_calls"):
                return ""
            content = m.get("content") or ""
            if isinstance(content, list):  # content parts
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return _THINK.sub(" ", str(content))
    return ""


def score_episode(
    messages: Sequence[Mapping[str, Any]],
    gold: Iterable[str],
    tools: Sequence[Mapping[str, Any]] = (),
    *,
    label_of: Callable[[str], str | None] | None = None,
    reference_calls: int | None = None,
) -> EpisodeScore:
    """Score one episode (OpenAI chat messages with tool calls and tool messages).

    ``gold``: the verified answers as display names; ``label_of``: an entity's label from its
    display name (from the runtime's ``names`` and ``labels``), so a reply may use labels.
    An episode that ends on calls (the turn limit) has no final reply and predicts nothing."""
    observed = observed_names(
        str(m.get("content", "")) for m in messages if m.get("role") == "tool"
    )
    predicted = named_entities(final_reply(messages), observed, label_of)
    stats = call_stats(messages, tools)
    return EpisodeScore(
        answer=answer_score(predicted, gold), reference_calls=reference_calls, **stats
    )
