"""A PrimeIntellect ``verifiers`` (v1 stack, ``verifiers>=0.4``) environment over a kg2tool
dataset: the KG's APIs as an MCP toolset run by the :class:`~kg2tool.tools.runtime.ToolRuntime`, and
the exact reward of :mod:`kg2tool.samples.scoring` (F1 as the reward; exact match, precision and
recall as metrics).

``load_environment(kg="codex-s", dataset="out/codex-s", split="train")`` returns the
environment (a ``SingleAgentEnv`` over :class:`KgTaskset`, taskset id ``kg2tool_verifiers``). ``pip install verifiers`` (not a kg2tool
dependency).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any, cast

from pydantic import Field
from verifiers.v1 import (
    SharedToolsetConfig,
    SingleAgentEnv,
    SingleAgentEnvConfig,
    Task,
    TaskConfig,
    TaskData,
    Taskset,
    TasksetConfig,
    Toolset,
)
from verifiers.v1.state import State
from verifiers.v1.utils.decorators import metric, reward

from kg2tool.rl import runtime_for
from kg2tool.samples.scoring import score_episode

__all__ = [
    "KgData",
    "KgTask",
    "KgTaskset",
    "KgTasksetConfig",
    "KgToolset",
    "KgToolsetConfig",
    "load_environment",
    "to_openai_messages",
]

# verifiers resolves a taskset id as a top-level module name: this module registers itself
# under that name on import (in every process that imports kg2tool.rl.verifiers_env).
TASKSET_ID = "kg2tool_verifiers"
sys.modules.setdefault(TASKSET_ID, sys.modules[__name__])


class KgToolsetConfig(SharedToolsetConfig):
    kg: str = "codex-s"
    """The KG the tools run on (bundled name, canonical directory or snapshot)."""


class KgToolset(Toolset[KgToolsetConfig, State]):
    """Every catalogue API (with list APIs) as an MCP tool; a runtime error is a tool result
    with ``is_error`` and the error object."""

    TOOL_PREFIX = None

    def register(self, mcp: Any) -> None:
        server = cast(Any, mcp)
        server.list_tools = self.list_tools
        server.call_tool = self.call_tool

    async def list_tools(self) -> list[Any]:
        from mcp.types import Tool

        rt = runtime_for(self.config.kg)
        return [
            Tool(
                name=t["function"]["name"],
                description=t["function"]["description"],
                input_schema=t["function"]["parameters"],
            )
            for t in rt.catalog.to_openai_tools()
        ]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        from mcp.types import CallToolResult, TextContent

        result = runtime_for(self.config.kg).call(name, arguments or {})
        return CallToolResult(
            content=[TextContent(type="text", text=result.to_json())], is_error=not result.ok
        )


class KgData(TaskData):
    answers: list[str] = Field(default_factory=list)
    """The verified answer set, as entity display names."""
    pattern: str = ""
    kg: str = "codex-s"


class KgTask(Task[KgData, State, TaskConfig]):
    """One sample: its question as the prompt; scored by :func:`kg2tool.samples.scoring.score_episode`."""

    def _score(self, trace: Any) -> Any:
        rt = runtime_for(self.data.kg)
        label = dict(zip(rt.names, rt.labels, strict=True))
        return score_episode(
            to_openai_messages(trace.messages), self.data.answers, label_of=label.get
        ).answer

    @reward(weight=1.0)
    async def f1(self, trace: Any) -> float:
        return self._score(trace).f1

    @metric
    async def answer_metrics(self, trace: Any) -> dict[str, float]:
        s = self._score(trace)
        return {"exact_match": s.exact_match, "precision": s.precision, "recall": s.recall}


class KgTasksetConfig(TasksetConfig):
    id: str = TASKSET_ID
    kg: str = "codex-s"
    """The KG the dataset was made on."""
    dataset: str = ""
    """A dataset directory written by ``kg2tool generate``."""
    split: str | None = "train"
    limit: int | None = None
    tools: KgToolsetConfig = KgToolsetConfig()


class KgTaskset(Taskset[KgTask, KgTasksetConfig]):
    """The samples of one split of a kg2tool dataset, with the KG's tools."""

    @classmethod
    def toolsets(cls, config: KgTasksetConfig) -> list[Toolset]:
        return [KgToolset(config.tools.model_copy(update={"kg": config.kg}))]

    def load(self) -> Iterator[KgTask]:
        from kg2tool.evaluate import load_samples

        rt = runtime_for(self.config.kg)
        name_of = dict(zip(rt.keys, rt.names, strict=True))
        frame = load_samples(self.config.dataset, self.config.split, self.config.limit)
        for r in frame.iter_rows(named=True):
            yield KgTask(
                KgData(
                    id=r["id"],
                    name=f"{r['pattern']}:{r['id']}",
                    prompt=r["question"],
                    answers=[name_of[k] for k in r["answers"]],
                    pattern=r["pattern"],
                    kg=self.config.kg,
                ),
                self.config.task,
            )


def to_openai_messages(messages: Any) -> list[dict[str, Any]]:
    """verifiers messages (pydantic models or dicts) as OpenAI chat dicts for the scorer."""
    out = []
    for m in messages or ():
        d = m.model_dump(mode="json", exclude_none=True) if hasattr(m, "model_dump") else dict(m)
        calls = d.get("tool_calls")
        if calls:
            d["tool_calls"] = [
                c if "function" in c else {"id": c.get("id"), "type": "function", "function": {
                    "name": c.get("name", ""), "arguments": c.get("arguments", "")}}
                for c in calls
            ]  # fmt: skip
        content = d.get("content")
        if isinstance(content, list):
            d["content"] = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        elif content is not None and not isinstance(content, str):
            d["content"] = json.dumps(content)
        out.append(d)
    return out


def load_environment(
    kg: str = "codex-s", dataset: str = "", split: str | None = "train", limit: int | None = None
) -> SingleAgentEnv:
    """The verifiers environment of a kg2tool dataset (see the module doc)."""
    config = SingleAgentEnvConfig(
        taskset=KgTasksetConfig(kg=kg, dataset=str(dataset), split=split, limit=limit)
    )
    return SingleAgentEnv(config)
