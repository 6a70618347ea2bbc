"""Read written training records back into calls, observations and final answers.

``kg2tool verify`` checks what trainers read, so it parses the records of every format
(``../shared/FORMATS.md``) back into one shape, :class:`ReadSample`: the calls in order (name,
arguments, recorded observation) and the final assistant text. The format is detected from
the records themselves, so a lone ``.jsonl`` / ``.json`` / ``.parquet`` file of any format
can be read:

- ``openai``: ``{"messages": [...], "tools": ...}``; observations are the ``tool`` messages
  answering each ``tool_calls`` id.
- ``toolbench``: ``{"id": "Step i: ...", "conversations": [...]}`` step records, one per
  assistant step, each the conversation so far; a sample is the records up to its ``Finish``
  step, and the calls of *every* record are read (each is trained on).
- ``sharegpt``: ``{"conversations": [...]}`` with ``function_call`` / ``observation`` turns.
- ``xlam``: ``{"id", "query", "tools", "answers"}``: calls without observations or answer.

Parquet shards hold the same per sample in the ``messages`` column (openai: the messages;
sharegpt: the conversation; toolbench: the sample's step records; xlam: the ``answers``
calls), and the whole line in ``record`` when a run wrote no JSON(L) files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kg2tool.errors import InputError

__all__ = [
    "ReadCall",
    "ReadSample",
    "detect_format",
    "read_file",
    "sample_of_record",
    "samples_of_messages",
]


@dataclass
class ReadCall:
    """One call as a record shows it: ``arguments`` parsed (or the raw text if it is not JSON),
    ``observation`` the recorded result text (None where the format has none, as in xLAM),
    ``error`` ToolBench's ``error`` field of the observation (None elsewhere)."""

    name: str
    arguments: Any
    observation: str | None = None
    error: str | None = None
    _key: tuple[str, str] | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        """The call's identity: its name and canonical arguments text (computed once)."""
        if self._key is None:
            args = self.arguments
            if isinstance(args, str):
                self._key = (self.name, "s" + args)
            else:
                try:
                    text = orjson.dumps(args, option=orjson.OPT_SORT_KEYS).decode()
                    self._key = (self.name, "j" + text)
                except TypeError:
                    self._key = (self.name, "r" + repr(args))
        return self._key


@dataclass
class ReadSample:
    """One sample read back: where it is, its calls in order, the final assistant text."""

    where: str
    format: str
    calls: list[ReadCall] = field(default_factory=list)
    final_text: str | None = None
    id: str | None = None
    question: str | None = None
    # ToolBench: (start, end) in ``calls`` of each step record's calls (each a replay of the
    # conversation so far); empty for the other formats (one conversation)
    parts: list[tuple[int, int]] = field(default_factory=list)


class _Bad(Exception):
    """A record that is not of the format it claims (turned into an InputError with its place)."""


def detect_format(record: Any) -> str:
    """The trainer format of one parsed record (a JSON object of a JSON(L) file)."""
    if isinstance(record, dict):
        if "messages" in record:
            return "openai"
        if "conversations" in record:
            rid = record.get("id")
            return "toolbench" if isinstance(rid, str) and rid.startswith("Step ") else "sharegpt"
        if "query" in record and "answers" in record:
            return "xlam"
    raise _Bad(
        "not a record of a kg2tool format (openai messages, ToolBench, ShareGPT or xLAM): "
        f"keys {sorted(record)[:6] if isinstance(record, dict) else type(record).__name__}"
    )


def _messages_format(messages: list[Any]) -> str:
    """The format of a Parquet ``messages`` value (a JSON array) from its first element."""
    if not messages:
        return "xlam"  # only xLAM's call list can be empty of structure; checked as such
    first = messages[0]
    if isinstance(first, dict):
        if "role" in first:
            return "openai"
        if "conversations" in first:
            return "toolbench"
        if "from" in first:
            return "sharegpt"
        if "name" in first and "arguments" in first:
            return "xlam"
    raise _Bad("the messages column holds no kg2tool format")


def _args(raw: Any) -> Any:
    """Arguments as the runtime takes them: an object, or the raw text when it is not JSON."""
    if isinstance(raw, str):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
    return raw


def _openai(messages: list[Any], where: str) -> ReadSample:
    sample = ReadSample(where, "openai")
    pending: dict[str, ReadCall] = {}
    for m in messages:
        if not isinstance(m, dict):
            raise _Bad("a message is not an object")
        role = m.get("role")
        if role == "user" and sample.question is None:
            sample.question = m.get("content")
        elif role == "assistant":
            calls = m.get("tool_calls") or []
            for c in calls:
                fn = c.get("function", {}) if isinstance(c, dict) else {}
                call = ReadCall(str(fn.get("name", "")), _args(fn.get("arguments", "")))
                sample.calls.append(call)
                pending[str(c.get("id"))] = call
            if not calls:
                sample.final_text = m.get("content")
        elif role == "tool":
            call = pending.pop(str(m.get("tool_call_id")), None)
            if call is None:
                raise _Bad(f"a tool message answers no call (id {m.get('tool_call_id')!r})")
            call.observation = str(m.get("content"))
    return sample


def _sharegpt(conversation: list[Any], where: str) -> ReadSample:
    sample = ReadSample(where, "sharegpt")
    last: list[ReadCall] = []  # calls waiting for their observation turn
    for m in conversation:
        if not isinstance(m, dict):
            raise _Bad("a turn is not an object")
        role, value = m.get("from"), m.get("value")
        if role == "human" and sample.question is None:
            sample.question = value
        elif role == "function_call":
            parsed = _args(value)
            items = parsed if isinstance(parsed, list) else [parsed]
            for item in items:
                if isinstance(item, dict):
                    call = ReadCall(str(item.get("name", "")), item.get("arguments"))
                else:
                    call = ReadCall("", value)  # not a call object: replays as an error
                sample.calls.append(call)
                last.append(call)
        elif role == "observation":
            if not last:
                raise _Bad("an observation turn follows no function_call")
            last.pop(0).observation = value  # parallel calls: one observation turn each
        elif role == "gpt":
            sample.final_text = value
    return sample


_TB_STEP = re.compile(r"^\nThought: (.*)\nAction: (.*?)\nAction Input: (.*)$", re.S)


def _toolbench_record(rec: Any, sample: ReadSample) -> bool:
    """Add the calls of one ToolBench step record to ``sample``; True when it ends in Finish."""
    if not isinstance(rec, dict) or not isinstance(rec.get("conversations"), list):
        raise _Bad("a ToolBench step record has no conversations")
    conv = rec["conversations"]
    call: ReadCall | None = None
    finished = False
    start = len(sample.calls)
    for m in conv:
        if not isinstance(m, dict):
            raise _Bad("a turn is not an object")
        role, value = m.get("from"), m.get("value")
        if role == "user" and sample.question is None and isinstance(value, str):
            sample.question = value.removeprefix("\n").removesuffix("\nBegin!\n")
        elif role == "assistant":
            match = _TB_STEP.match(value or "")
            if match is None:
                raise _Bad("an assistant step is not 'Thought: / Action: / Action Input:'")
            name, raw = match.group(2), match.group(3)
            if name == "Finish":
                fin = _args(raw)
                sample.final_text = fin.get("final_answer") if isinstance(fin, dict) else raw
                finished = True
                call = None
            else:
                call = ReadCall(name, _args(raw))
                sample.calls.append(call)
        elif role == "function":
            if call is None:
                raise _Bad("a function turn follows no call")
            obs = _args(value)
            if isinstance(obs, dict) and "response" in obs:
                call.observation = str(obs["response"])
                call.error = str(obs.get("error", ""))
            else:
                call.observation = str(value)
            call = None
    sample.parts.append((start, len(sample.calls)))
    return finished


def _xlam(calls: Any, where: str, question: str | None = None, rid: Any = None) -> ReadSample:
    sample = ReadSample(where, "xlam", question=question)
    if rid is not None:
        sample.id = str(rid)
    calls = _args(calls)
    if not isinstance(calls, list):
        raise _Bad("xLAM 'answers' is not a list of calls")
    for c in calls:
        if not isinstance(c, dict):
            raise _Bad("an xLAM answer is not a call object")
        sample.calls.append(ReadCall(str(c.get("name", "")), c.get("arguments")))
    return sample


def samples_of_messages(value: str, where: str) -> ReadSample:
    """One sample from a Parquet ``messages`` value (any format)."""
    try:
        messages = orjson.loads(value)
        if not isinstance(messages, list):
            raise _Bad("the messages value is not a JSON array")
        fmt = _messages_format(messages)
        if fmt == "openai":
            return _openai(messages, where)
        if fmt == "sharegpt":
            return _sharegpt(messages, where)
        if fmt == "xlam":
            return _xlam(messages, where)
        sample = ReadSample(where, "toolbench")
        for rec in messages:
            _toolbench_record(rec, sample)
        return sample
    except (orjson.JSONDecodeError, _Bad, AttributeError, TypeError) as exc:
        raise InputError(f"{where}: cannot read the messages: {exc}") from None


def sample_of_record(value: str, where: str) -> ReadSample:
    """One sample from a Parquet ``record`` value: a format line, or ToolBench's array of the
    sample's step records."""
    try:
        rec = orjson.loads(value)
        if isinstance(rec, list):
            sample = ReadSample(where, "toolbench")
            for step in rec:
                _toolbench_record(step, sample)
            return sample
        return _of_record(rec, where)
    except (orjson.JSONDecodeError, _Bad, AttributeError, TypeError) as exc:
        raise InputError(f"{where}: cannot read the record: {exc}") from None


def _of_record(rec: Any, where: str) -> ReadSample:
    fmt = detect_format(rec)
    if fmt == "openai":
        if not isinstance(rec["messages"], list):
            raise _Bad("'messages' is not a list")
        return _openai(rec["messages"], where)
    if fmt == "sharegpt":
        if not isinstance(rec["conversations"], list):
            raise _Bad("'conversations' is not a list")
        return _sharegpt(rec["conversations"], where)
    return _xlam(rec["answers"], where, rec.get("query"), rec.get("id"))


def _records(path: Path) -> Iterator[tuple[Any, str]]:
    """(parsed record, place) of a JSON array file, or of a JSONL file read line by line."""
    name = path.name
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()[:1]
        fh.seek(0)
        if head == b"[":
            try:
                array = orjson.loads(fh.read())
            except orjson.JSONDecodeError as exc:
                raise InputError(f"not valid JSON: {exc}", path=str(path)) from None
            for i, rec in enumerate(array):
                yield rec, f"{name}[{i}]"
            return
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"not a JSON record: {exc}", path=str(path), line=lineno) from None
            yield rec, f"{name}:{lineno}"


def read_file(path: str | os.PathLike[str]) -> list[ReadSample]:
    """Every sample of one JSON / JSONL file, any format.

    ToolBench step records are grouped into samples (each sample's records end with its
    ``Finish`` step). Raises :class:`InputError` naming the file (and line) when a record is
    not of a kg2tool format."""
    p = Path(path)
    out: list[ReadSample] = []
    open_tb: ReadSample | None = None
    fmt: str | None = None
    try:
        for rec, where in _records(p):
            try:
                this = detect_format(rec)
                if fmt is not None and this != fmt:
                    raise _Bad(f"a {this} record in a file of {fmt} records")
                fmt = this
                if this == "toolbench":
                    if open_tb is None:
                        open_tb = ReadSample(where, "toolbench")
                    if _toolbench_record(rec, open_tb):
                        out.append(open_tb)
                        open_tb = None
                else:
                    out.append(_of_record(rec, where))
            except (_Bad, AttributeError, TypeError) as exc:
                raise InputError(f"{p.parent / where}: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not a JSON / JSONL file ({exc})", path=str(p)) from None
    if open_tb is not None:
        raise InputError(f"{p.parent / open_tb.where}: ToolBench steps without a Finish step")
    return out
