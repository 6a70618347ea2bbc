"""verl's multi-turn tool recipes on a kg2tool dataset: rows, tool config, tool class, reward.

``kg2tool generate --format verl --out DIR`` writes, besides the ``openai`` records (an SFT
warm-up set), ``DIR/verl/{split}.parquet`` with the columns verl's RL datasets read:

- ``data_source``: ``"kg2tool/<kg>"``; ``ability``: ``"kg_tool_use"``;
- ``prompt``: the chat messages (a system message saying how to answer, then the question);
- ``reward_model``: ``{"style": "rule", "ground_truth": [answer display names]}``;
- ``extra_info``: ``index``, ``id``, ``split``, ``pattern``, ``kg`` (the KG spec) and ``tools``
  (the sample's OpenAI tool list as JSON),

and ``DIR/verl/tool_config.yaml``: every API the samples offer, as a tool of class
:class:`KgTool` (which runs calls on the runtime of ``config.kg``). The reward is
:func:`compute_score` (``custom_reward_function.path`` = this file), the exact scorer of
:mod:`kg2tool.samples.scoring` applied to the rollout text: tool responses are read from Hermes-style
``<tool_response>`` blocks and calls from ``<tool_call>`` blocks (the Qwen2.5/Qwen3 chat
templates verl's multi-turn examples use), the final reply is the text after the last tool
response. A rollout that ends on a call has no final reply and scores 0.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from kg2tool.dataset.verl import ABILITY, SYSTEM_PROMPT, TOOL_CLASS, write_verl
from kg2tool.rl import runtime_for
from kg2tool.samples.scoring import score_episode

__all__ = [
    "ABILITY",
    "SYSTEM_PROMPT",
    "TOOL_CLASS",
    "KgTool",
    "compute_score",
    "parse_solution",
    "write_verl",
]


_RESPONSE = re.compile(r"<tool_response>\s*(.*?)\s*</tool_response>", re.DOTALL)
_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_ROLE = re.compile(r"(<\|im_start\|>|<\|im_end\|>|<\|endoftext\|>|^\s*(assistant|user)\s*$)", re.M)


def parse_solution(solution_str: str) -> list[dict[str, Any]]:
    """The OpenAI-style messages of a rollout text: assistant turns with their ``<tool_call>``
    blocks as calls, ``<tool_response>`` blocks as tool messages (matched to calls in order),
    and the final reply (text after the last tool response, unless it makes a call)."""
    messages: list[dict[str, Any]] = []
    pos, n = 0, 0
    pending: list[str] = []
    for m in _RESPONSE.finditer(solution_str):
        segment = solution_str[pos : m.start()]
        calls = []
        for c in _CALL.finditer(segment):
            try:
                call = json.loads(c.group(1))
                name, args = str(call.get("name", "")), call.get("arguments", {})
            except (ValueError, AttributeError):
                name, args = "", c.group(1)
            cid = f"call_{n}"
            n += 1
            calls.append(
                {"id": cid, "type": "function", "function": {"name": name, "arguments":
                 args if isinstance(args, str) else json.dumps(args)}}
            )  # fmt: skip
            pending.append(cid)
        if calls:
            messages.append({"role": "assistant", "content": "", "tool_calls": calls})
        cid = pending.pop(0) if pending else f"call_{n}"
        messages.append({"role": "tool", "tool_call_id": cid, "content": m.group(1)})
        pos = m.end()
    tail = solution_str[pos:]
    if _CALL.search(tail):
        messages.append({"role": "assistant", "content": "", "tool_calls": [{"id": "end",
                         "type": "function", "function": {"name": "", "arguments": ""}}]})  # fmt: skip
    else:
        messages.append({"role": "assistant", "content": _ROLE.sub(" ", tail).strip()})
    return messages


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None
) -> dict[str, float]:
    """verl reward: ``score`` = F1 of the rollout's answer set (:mod:`kg2tool.samples.scoring`), plus
    exact match, precision and recall. Labels count as names when ``extra_info["kg"]`` is a
    KG this process can load (else display names only)."""
    if isinstance(ground_truth, str):
        try:
            ground_truth = json.loads(ground_truth)
        except ValueError:
            ground_truth = [ground_truth]
    gold = [str(g) for g in list(ground_truth)]
    label_of = None
    kg = (extra_info or {}).get("kg")
    if kg:
        try:
            rt = runtime_for(str(kg))
            label_of = dict(zip(rt.names, rt.labels, strict=True)).get
        except Exception:  # a KG this worker cannot open: display names only
            label_of = None
    s = score_episode(parse_solution(solution_str), gold, label_of=label_of).answer
    return {
        "score": s.f1,
        "exact_match": s.exact_match,
        "precision": s.precision,
        "recall": s.recall,
    }


try:  # subclass verl's tool base when verl is installed; the same interface otherwise
    from verl.tools.base_tool import BaseTool as _ToolBase  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _ToolBase = object
try:
    from verl.tools.schemas import ToolResponse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    ToolResponse = None


class KgTool(_ToolBase):  # type: ignore[misc,valid-type]
    """One kg2tool API as a verl tool: ``execute`` runs the call on the runtime of
    ``config["kg"]`` and returns its observation (a result or a structured error), reward 0
    (the episode's reward is :func:`compute_score`)."""

    def __init__(self, config: dict, tool_schema: Any) -> None:
        if _ToolBase is not object:
            super().__init__(config, tool_schema)
        self.config = config
        self.tool_schema = tool_schema
        fn = tool_schema["function"] if isinstance(tool_schema, dict) else tool_schema.function
        self.name = fn["name"] if isinstance(fn, dict) else fn.name
        self.runtime = runtime_for(str(config["kg"]))

    async def create(self, instance_id: str | None = None, **kwargs: Any) -> Any:
        """A new instance id (verl's base decides the return shape when installed)."""
        if _ToolBase is not object:
            return await super().create(instance_id, **kwargs)
        return instance_id or str(uuid.uuid4())

    async def execute(
        self, instance_id: str, parameters: dict[str, Any], **kwargs: Any
    ) -> tuple[Any, float, dict[str, Any]]:
        """(observation, step reward 0.0, metrics)."""
        result = self.runtime.call(self.name, parameters)
        text = result.to_json()
        response = ToolResponse(text=text) if ToolResponse is not None else text
        return response, 0.0, {"tool_error": 0.0 if result.ok else 1.0}

    async def calc_reward(self, instance_id: str, **kwargs: Any) -> float:
        """No per-tool reward."""
        return 0.0

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        """Nothing to free."""
        return None
