"""A small OpenAI-compatible chat completions server on 127.0.0.1 for the tests and benches.

:func:`serve_chat` answers ``POST /v1/chat/completions`` with whatever a reply function returns
(the paraphrase tests' fake rewriter); :class:`ScriptedPolicies` is such a function that plays
scripted agent policies over a dataset's reference trajectories (the eval, RL and bench tests).

The policy is the request's ``model``:

- ``reference``: the sample's own assistant turns, in order;
- ``wrong_missing``: the reference, but the final reply drops one answer and names one
  entity the observations returned that is not an answer (when the sample has one);
- ``malformed`` / ``unknown_tool`` / ``misspelt``: first a call whose arguments are not JSON /
  of a tool that does not exist / with a misspelt entity, then the reference;
- ``never_stop``: the reference's first call, forever;
- ``flaky``: HTTP 500 on a question's first request, then the reference;
- ``not_chat``: HTTP 200 with a body that is not a chat completion.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import polars as pl


class ScriptedPolicies:
    """The state of the scripted server: reference trajectories by question, and counters."""

    def __init__(self, samples: pl.DataFrame, names: dict[str, str]) -> None:
        """``samples``: dataset rows (question, messages, answers); ``names``: key -> display
        name of the KG's runtime (for the gold answers)."""
        self.reference: dict[str, list[dict[str, Any]]] = {}
        self.gold: dict[str, list[str]] = {}
        for q, msgs, answers in samples.select("question", "messages", "answers").iter_rows():
            self.reference[q] = [m for m in json.loads(msgs) if m["role"] == "assistant"]
            self.gold[q] = [names[k] for k in answers]
        self.requests = 0
        self.seen: set[str] = set()
        self.changed: dict[str, tuple[str, str]] = {}  # question -> (wrong, missing) named
        self.lock = threading.Lock()

    def turn(self, question: str, t: int) -> dict[str, Any]:
        ref = self.reference[question]
        if t < len(ref):
            return {k: v for k, v in ref[t].items() if k in ("role", "content", "tool_calls")}
        return {"role": "assistant", "content": "I am done."}

    def first_call(self, question: str) -> dict[str, Any]:
        return self.reference[question][0]["tool_calls"][0]

    def reply(
        self, body: dict[str, Any], headers: Message | None = None
    ) -> tuple[int, dict[str, Any] | str]:
        """The HTTP status and body for one chat request (the policy is ``body["model"]``)."""
        with self.lock:
            self.requests += 1
        policy = body.get("model")
        messages = body["messages"]
        question = next(m["content"] for m in messages if m["role"] == "user")
        t = sum(1 for m in messages if m["role"] == "assistant")
        if policy == "not_chat":
            return 200, {"object": "list", "data": []}
        if policy == "flaky":
            with self.lock:
                first = question not in self.seen
                self.seen.add(question)
            if first:
                return 500, {"error": {"message": "overloaded"}}
            msg = self.turn(question, t)
        elif policy == "never_stop":
            msg = {"role": "assistant", "content": "", "tool_calls": [self.first_call(question)]}
        elif policy in ("malformed", "unknown_tool", "misspelt"):
            if t == 0:
                call = json.loads(json.dumps(self.first_call(question)))
                call["id"] = "bad_0"
                fn = call["function"]
                if policy == "malformed":
                    fn["arguments"] = fn["arguments"][:-2]  # cut: not JSON any more
                elif policy == "unknown_tool":
                    fn["name"] = "get_everything_about"
                else:
                    args = json.loads(fn["arguments"])
                    key = next(iter(args))
                    args[key] = args[key][:-1] + "qx"  # a misspelt name
                    fn["arguments"] = json.dumps(args)
                msg = {"role": "assistant", "content": "Let me look.", "tool_calls": [call]}
            else:
                msg = self.turn(question, t - 1)
        elif policy == "wrong_missing":
            msg = self.turn(question, t)
            if not msg.get("tool_calls"):
                msg = self._wrong_missing(question, messages) or msg
        else:
            msg = self.turn(question, t)
        usage = {"prompt_tokens": 10 * len(messages), "completion_tokens": 7}
        return 200, {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": policy,
            "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
            "usage": usage,
        }

    def _wrong_missing(self, question: str, messages: list[dict[str, Any]]) -> dict | None:
        gold = self.gold[question]
        observed: list[str] = []
        for m in messages:
            if m["role"] == "tool":
                value = json.loads(m["content"])
                if isinstance(value, list):
                    observed += [v for v in value if v not in observed]
        wrong = [n for n in observed if n not in gold]
        if len(gold) < 2 or not wrong:
            return None
        missing = gold[0]
        named = [*gold[1:], wrong[0]]
        with self.lock:
            self.changed[question] = (wrong[0], missing)
        return {"role": "assistant", "content": "The answers are: " + json.dumps(named)}


# (status, JSON body or raw text) for a request body and its headers
Reply = Callable[[dict[str, Any], Message], tuple[int, Any]]


@contextmanager
def serve_chat(reply: Reply) -> Iterator[str]:
    """Run a chat completions server on a free port of 127.0.0.1 that answers with ``reply``;
    yields its base URL (``.../v1``). Other paths get 404."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length))
            if self.path != "/v1/chat/completions":
                status, data = 404, {"error": {"message": f"no route {self.path}"}}
            else:
                status, data = reply(body, self.headers)
            raw = (data if isinstance(data, str) else json.dumps(data)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def serve_policies(policies: ScriptedPolicies) -> AbstractContextManager[str]:
    """The scripted policies' server (a context manager yielding its base URL)."""
    return serve_chat(policies.reply)


def free_url() -> str:
    """A local URL nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/v1"
