"""``kg2tool eval``: run a model as an agent on a dataset's samples, with the KG as its tools.

Any OpenAI-compatible chat completions endpoint (vLLM, Ollama, llama.cpp, OpenAI) plays the
agent. Each sample's question and tools go to the model; every tool call it makes is executed
by the :class:`~kg2tool.tools.runtime.ToolRuntime` and its observation (a result or a structured
error) goes back; the model may call any of the sample's tools, in any order, fail and retry.
An episode ends at a reply without calls, or after ``max_turns`` assistant turns. Episodes are
scored by :func:`kg2tool.samples.scoring.score_episode` and aggregated per pattern, per split and
overall.

Replies are cached on disk by the SHA-256 of the request (model, temperature, messages,
tools), so an interrupted run resumes and a repeated one sends nothing; failed requests are
retried with exponential backoff. ``agent="reference"`` replays each sample's own trajectory
through the same loop instead of asking a model: exact match 1.0 everywhere is the harness's
self-test.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from kg2tool.atomic import atomic_file, write_bytes
from kg2tool.endpoint import (
    ReplyCache,
    RequestFailure,
    RequestStopped,
    auth_headers,
    content_text,
    one_line,
    post_with_retries,
    redact,
)
from kg2tool.errors import READ_ERRORS, InputError, Kg2ToolError
from kg2tool.progress import ProgressBar
from kg2tool.samples.scoring import score_episode

__all__ = [
    "AGENTS",
    "EndpointError",
    "EvalReport",
    "ModelAgent",
    "ReferenceAgent",
    "check_dataset_kg",
    "evaluate",
    "load_samples",
    "run_episode",
]

AGENTS = ("model", "reference")
CACHE_DIR = ".eval-cache"
_METRICS = ("exact_match", "precision", "recall", "f1")


class EndpointError(Kg2ToolError):
    """The chat completions endpoint failed (unreachable, HTTP error, not a chat completion)."""


# ----- the dataset ----------------------------------------------------------------------------


def load_samples(
    dataset: str | os.PathLike[str], split: str | None = "test", limit: int | None = None
) -> pl.DataFrame:
    """The samples of one split (``None``: all) of a dataset directory, in id order."""
    from kg2tool.dataset.verify import dataset_files

    cols = ["id", "pattern", "split", "question", "answers", "tools", "messages", "num_calls"]
    frames = []
    for f in dataset_files(dataset):
        try:
            frames.append(pl.read_parquet(f, columns=cols))
        except READ_ERRORS as exc:
            raise InputError(f"not a kg2tool dataset shard ({exc})", path=str(f)) from None
    frame = pl.concat(frames)
    if split is not None:
        got = frame.filter(pl.col("split") == split)
        if got.is_empty():
            counts = frame["split"].value_counts(sort=True).rows()
            have = ", ".join(f"{s} {n:,}" for s, n in counts) or "none"
            raise InputError(f"no samples in split {split!r} (splits: {have})", path=str(dataset))
        frame = got
    frame = frame.sort("id")
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be >= 1, got {limit}")
        frame = frame.head(limit)
    return frame


def check_dataset_kg(
    frame: pl.DataFrame, runtime: Any, dataset: str | os.PathLike[str], kg_name: str
) -> None:
    """Raise InputError when the samples were not made on this KG: their answer entities or
    APIs are missing from it, or their recorded observations do not replay."""
    made_on = ""
    try:
        manifest = json.loads((Path(dataset) / "manifest.json").read_text(encoding="utf-8"))
        made_on = f" (its manifest names KG {manifest['config']['kg']!r})"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    where = f"{dataset}: made on another KG than {kg_name!r}{made_on}: "
    keys = set(runtime.keys)
    missing = sorted({k for ks in frame["answers"].to_list() for k in ks} - keys)
    if missing:
        raise InputError(
            where + f"{len(missing):,} answer entities (e.g. {missing[0]!r}) are not in it"
        )
    names = {
        t["function"]["name"] for ts in frame["tools"].head(50).to_list() for t in json.loads(ts)
    }
    unknown = sorted(n for n in names if n not in runtime.catalog)
    if unknown:
        raise InputError(where + f"its tools (e.g. {unknown[0]!r}) are not APIs of it")
    for msgs in frame["messages"].head(20).to_list():
        ref = _reference_calls(json.loads(msgs))
        results = runtime.call_many([(n, a) for n, a, _ in ref])
        for (name, _, want), got in zip(ref, results, strict=True):
            if got.to_json() != want:
                raise InputError(where + f"a recorded call of {name} gives another result on it")


def _reference_calls(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(name, arguments, recorded observation) of every call of a reference conversation."""
    obs = {m.get("tool_call_id"): m.get("content", "") for m in messages if m["role"] == "tool"}
    out = []
    for m in messages:
        for c in m.get("tool_calls") or ():
            out.append((c["function"]["name"], c["function"]["arguments"], obs.get(c["id"], "")))
    return out


# ----- agents ---------------------------------------------------------------------------------


class ReferenceAgent:
    """Plays a sample's own trajectory: turn t returns the reference's t-th assistant message."""

    name = "reference"

    def __init__(self, reference: Sequence[Mapping[str, Any]]) -> None:
        self.turns = [
            {k: m[k] for k in ("role", "content", "tool_calls") if k in m}
            for m in reference
            if m.get("role") == "assistant"
        ]

    def __call__(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, int]]:
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        if turn < len(self.turns):
            return dict(self.turns[turn]), {}
        return {"role": "assistant", "content": ""}, {}


@dataclass
class ModelAgent:
    """An OpenAI-compatible chat completions endpoint as the agent (thread-safe, cached)."""

    model: str
    base_url: str
    temperature: float = 0.0
    timeout: float = 120.0
    retries: int = 3
    backoff: float = 1.0
    key_env: str = "OPENAI_API_KEY"
    cache_dir: str | os.PathLike[str] | None = None
    transport: Any = None
    requests: int = 0
    cached: int = 0
    error: EndpointError | None = None
    _client: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        try:
            import httpx
        except ImportError:
            raise InputError("kg2tool eval needs httpx: pip install 'kg2tool[eval]'") from None

        self.endpoint = self.base_url.rstrip("/") + "/chat/completions"
        self.cache = ReplyCache(
            Path(self.cache_dir) if self.cache_dir is not None else None, "eval"
        )
        try:
            headers = auth_headers(self.key_env)
        except RequestFailure as exc:
            raise InputError(str(exc)) from None
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.timeout), headers=headers, transport=self.transport
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def _fail(self, problem: str) -> EndpointError:
        """The error that stops the run (the first one is kept in ``self.error``)."""
        err = EndpointError(f"endpoint {redact(self.endpoint)}: {one_line(problem, 300)}")
        with self._lock:
            if self.error is None:
                self.error = err
        self._stop.set()
        return err

    def __call__(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, int]]:
        """The next assistant message (role, content, tool_calls) and the token usage."""
        payload = {
            "model": self.model,
            "messages": messages,
            "tools": tools,
            "temperature": float(self.temperature),
            "stream": False,
        }
        key = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
        hit = self.cache.get(key)
        if hit is not None:
            with self._lock:
                self.cached += 1
            return hit["reply"], hit.get("usage") or {}
        data = self._post(payload)
        reply, usage = _chat_message(data, self)
        self.cache.put(key, {"reply": reply, "usage": usage})
        return reply, usage

    def _post(self, payload: dict[str, Any]) -> Any:
        """The JSON of one chat completion reply, retried on transient failures."""
        try:
            r = post_with_retries(
                lambda: self._client.post(self.endpoint, content=orjson.dumps(payload)),
                retries=self.retries,
                backoff=self.backoff,
                timeout=self.timeout,
                stop=self._stop,
                count=self._count,
            )
        except RequestStopped:
            raise EndpointError("stopped after another request failed") from None
        except RequestFailure as exc:
            raise self._fail(str(exc)) from None
        try:
            return r.json()
        except ValueError:
            raise self._fail(
                f"the reply is not an OpenAI chat completion: {one_line(r.text, 120)!r}"
            ) from None

    def _count(self) -> None:
        with self._lock:
            self.requests += 1


def _chat_message(data: Any, agent: ModelAgent) -> tuple[dict[str, Any], dict[str, int]]:
    """The assistant message of a chat completion, normalised; its token usage."""
    try:
        msg = data["choices"][0]["message"]
        if not isinstance(msg, dict):
            raise TypeError
    except (KeyError, IndexError, TypeError):
        raise agent._fail(
            f"the reply is not an OpenAI chat completion: {one_line(json.dumps(data), 120)!r}"
        ) from None
    out: dict[str, Any] = {"role": "assistant", "content": content_text(msg.get("content"))}
    calls = []
    for i, c in enumerate(msg.get("tool_calls") or ()):
        fn = c.get("function") if isinstance(c, dict) else None
        fn = fn if isinstance(fn, dict) else {}
        args = fn.get("arguments", "")
        calls.append(
            {
                "id": str(c.get("id") or f"call_{i}") if isinstance(c, dict) else f"call_{i}",
                "type": "function",
                "function": {
                    "name": str(fn.get("name", "")),
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    if calls:
        out["tool_calls"] = calls
    usage = data.get("usage") if isinstance(data, dict) else None
    tokens = {}
    if isinstance(usage, dict):
        for k in ("prompt_tokens", "completion_tokens"):
            if isinstance(usage.get(k), int):
                tokens[k] = usage[k]
    return out, tokens


# ----- one episode ----------------------------------------------------------------------------

Agent = Callable[
    [list[dict[str, Any]], list[dict[str, Any]]], tuple[dict[str, Any], dict[str, int]]
]


def _unknown_tool(name: str, offered: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(offered), n=3, cutoff=0.5)
    return orjson.dumps(
        {"error": "unknown_api", "message": f"no API is named {name!r}", "suggestions": close}
    ).decode()


def run_episode(
    question: str,
    tools: list[dict[str, Any]],
    agent: Agent,
    runtime: Any,
    max_turns: int = 10,
    system: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int], bool]:
    """Play one episode: (messages, token usage, ended by a reply without calls). ``system``:
    an optional system message before the question."""
    offered = {t["function"]["name"] for t in tools}
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    for _ in range(max_turns):
        reply, used = agent(messages, tools)
        for k, v in used.items():
            usage[k] = usage.get(k, 0) + v
        messages.append(reply)
        calls = reply.get("tool_calls") or ()
        if not calls:
            return messages, usage, True
        for c in calls:
            name = c["function"]["name"]
            if name in offered:
                obs = runtime.call(name, c["function"]["arguments"]).to_json()
            else:
                obs = _unknown_tool(name, sorted(offered))
            messages.append({"role": "tool", "tool_call_id": c["id"], "content": obs})
    return messages, usage, False


# ----- the run --------------------------------------------------------------------------------


@dataclass
class EvalReport:
    """Aggregates (overall, per split, per pattern), the episodes, and where they were written."""

    summary: dict[str, Any]
    episodes: list[dict[str, Any]]
    files: list[str] = field(default_factory=list)

    def table(self) -> str:
        """A Markdown table of the metrics per pattern, then overall."""
        head = (
            "| pattern | n | EM | P | R | F1 | calls | parsed | valid | errors | calls/ref "
            "| turns | turn limit |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        )
        rows = []
        groups = [*self.summary["per_pattern"].items(), ("all", self.summary["overall"])]
        for name, g in groups:
            rows.append(
                f"| {name} | {g['n']} | {g['exact_match']:.3f} | {g['precision']:.3f} | "
                f"{g['recall']:.3f} | {g['f1']:.3f} | {g['calls']:.2f} | {g['parse_rate']:.3f} | "
                f"{g['valid_rate']:.3f} | {g['error_rate']:.3f} | {g['calls_vs_reference']:.2f} | "
                f"{g['turns']:.2f} | {g['turn_limit']} |"
            )
        return head + "\n".join(rows) + "\n"


def _aggregate(frame: pl.DataFrame) -> dict[str, Any]:
    s = frame.select(
        pl.len().alias("n"),
        *[pl.col(m).mean().alias(m) for m in _METRICS],
        pl.col("calls").mean(),
        (pl.col("calls_parsed").sum() / pl.col("calls").sum()).fill_nan(1.0).alias("parse_rate"),
        (pl.col("calls_valid").sum() / pl.col("calls").sum()).fill_nan(1.0).alias("valid_rate"),
        (pl.col("calls_error").sum() / pl.col("calls").sum()).fill_nan(0.0).alias("error_rate"),
        (pl.col("calls").sum() / pl.col("reference_calls").sum())
        .fill_nan(1.0)
        .alias("calls_vs_reference"),
        pl.col("turns").mean(),
        (~pl.col("finished")).sum().alias("turn_limit"),
        pl.col("prompt_tokens").sum(),
        pl.col("completion_tokens").sum(),
    ).row(0, named=True)
    return {k: (float(v) if isinstance(v, float) else int(v or 0)) for k, v in s.items()}


def summarise(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Overall, per-split and per-pattern aggregates of scored episodes."""
    cols = [
        "pattern", "split", *_METRICS, "calls", "calls_parsed", "calls_valid", "calls_error",
        "reference_calls", "turns", "finished", "prompt_tokens", "completion_tokens",
    ]  # fmt: skip
    frame = pl.DataFrame([{k: e[k] for k in cols} for e in episodes], schema_overrides={
        "reference_calls": pl.Int64, "prompt_tokens": pl.Int64, "completion_tokens": pl.Int64,
        **{m: pl.Float64 for m in _METRICS},
    })  # fmt: skip
    per = {}
    for key in ("pattern", "split"):
        per[key] = {
            str(k[0]): _aggregate(g)
            for k, g in sorted(frame.group_by(key), key=lambda x: str(x[0][0]))
        }
    return {"overall": _aggregate(frame), "per_split": per["split"], "per_pattern": per["pattern"]}


def evaluate(
    dataset: str | os.PathLike[str],
    kg: Any,
    *,
    agent: str = "model",
    model: str | None = None,
    base_url: str | None = None,
    split: str | None = "test",
    limit: int | None = None,
    max_turns: int = 30,
    concurrency: int = 4,
    out: str | os.PathLike[str] | None = None,
    kg_name: str = "the KG",
    cache_dir: str | os.PathLike[str] | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 120.0,
    temperature: float = 0.0,
    progress: bool = False,
    system: str | None = None,
    key_env: str = "OPENAI_API_KEY",
) -> EvalReport:
    """Run ``agent`` ("model": the endpoint; "reference": the dataset's own trajectories) on
    the samples of ``split`` and score every episode; write the report files to ``out``.

    The reply cache defaults to ``out/.eval-cache``. ``system``: a system message sent before
    each question (none by default: the datasets' conversations have none). ``key_env``: the
    environment variable holding the API key (never written anywhere)."""
    from kg2tool.tools.catalog import ApiCatalog
    from kg2tool.tools.runtime import ToolRuntime

    if agent not in AGENTS:
        raise InputError(f"unknown agent {agent!r}; choose one of {', '.join(AGENTS)}")
    if max_turns < 1 or concurrency < 1:
        raise InputError(
            f"--max-turns and --concurrency must be >= 1, got {max_turns}, {concurrency}"
        )
    if agent == "model" and (not model or not base_url):
        raise InputError("a model agent needs --model and --base-url")
    samples = load_samples(dataset, split, limit)
    runtime = ToolRuntime(kg, ApiCatalog.from_graph(kg, list_apis=True))
    check_dataset_kg(samples, runtime, dataset, kg_name)
    key_id = dict(zip(runtime.keys, range(len(runtime.keys)), strict=True))
    label = dict(zip(runtime.names, runtime.labels, strict=True))
    if out is not None:
        _check_writable(Path(out))
    client = None
    if agent == "model":
        assert model is not None and base_url is not None
        if cache_dir is None and out is not None:
            cache_dir = Path(out) / CACHE_DIR
        client = ModelAgent(
            model, base_url, temperature=temperature, timeout=timeout, retries=retries,
            backoff=backoff, cache_dir=cache_dir, key_env=key_env,
        )  # fmt: skip

    rows = samples.to_dicts()

    def one(row: dict[str, Any]) -> dict[str, Any]:
        tools = json.loads(row["tools"])
        reference = json.loads(row["messages"])
        turns = max_turns
        if client is None:  # the self-test: the reference's own length is never cut short
            player: Agent = ReferenceAgent(reference)
            turns = max(max_turns, len(player.turns))  # type: ignore[attr-defined]
        else:
            player = client
        messages, usage, finished = run_episode(
            row["question"], tools, player, runtime, turns, system
        )
        gold = [runtime.names[key_id[k]] for k in row["answers"]]
        score = score_episode(
            messages,
            gold,
            tools,
            label_of=label.get,
            reference_calls=len(_reference_calls(reference)),
        )
        return {
            "id": row["id"], "pattern": row["pattern"], "split": row["split"],
            "question": row["question"], "answers": gold, **score.to_dict(),
            "finished": finished, **usage, "messages": messages,
        }  # fmt: skip

    bar = ProgressBar("eval", len(rows), enabled=progress, stderr=True)
    try:
        if concurrency == 1 or len(rows) <= 1:
            episodes = []
            for r in rows:
                episodes.append(one(r))
                bar.advance()
        else:
            with ThreadPoolExecutor(concurrency) as pool:
                episodes = []
                for e in pool.map(one, rows):
                    episodes.append(e)
                    bar.advance()
    except EndpointError as exc:
        raise (client.error if client is not None and client.error else exc) from None
    finally:
        bar.close()
        if client is not None:
            client.close()
    summary = summarise(episodes)
    summary["agent"] = agent if agent == "reference" else model
    summary["split"] = split
    if client is not None:
        summary["requests"] = {"sent": client.requests, "cached": client.cached}
    report = EvalReport(summary, episodes)
    if out is not None:
        report.files = write_report(report, Path(out))
    return report


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            f"cannot write to the output directory: {exc.strerror or exc}", path=str(out)
        ) from None


def write_report(report: EvalReport, out: Path) -> list[str]:
    """Write report.json, report.md, report.png and episodes.jsonl (each atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / "report.json", orjson.dumps(report.summary, option=orjson.OPT_INDENT_2))
    write_bytes(out / "report.md", report.table().encode())
    write_bytes(out / "episodes.jsonl", b"".join(orjson.dumps(e) + b"\n" for e in report.episodes))
    _plot(report.summary, out / "report.png")
    return ["report.json", "report.md", "report.png", "episodes.jsonl"]


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(summary["per_pattern"])
    f1 = [summary["per_pattern"][n]["f1"] for n in names]
    em = [summary["per_pattern"][n]["exact_match"] for n in names]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(names) + 2), 3.2))
    ax.bar(x - 0.2, f1, 0.4, label="F1")
    ax.bar(x + 0.2, em, 0.4, label="exact match")
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{summary.get('agent')} on split {summary.get('split')}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    try:
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
