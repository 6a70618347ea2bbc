"""What paraphrasing and ``kg2tool eval`` share in talking to a chat completions endpoint.

Both send requests to an OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM,
Ollama, llama.cpp server, ...) through httpx and need the same pieces, which live here:

- :class:`ReplyCache`: replies on disk, one JSON file per request key (each caller hashes its
  own request into the key), so a resumed or repeated run sends nothing it has sent before.
- :func:`post_with_retries`: one request, retried with exponential backoff on transient
  failures (no connection, timeout, HTTP 408/409/425/429/5xx), honouring ``Retry-After``;
  any failure is a :class:`RequestFailure` with a one-line problem.
- :func:`redact`, :func:`one_line`, :func:`server_message`, :func:`retry_after`,
  :func:`content_text`: the bits of the error messages and of reading a reply.

What stays with each caller: building the payload and its cache key, the HTTP client and
its headers, reading the reply, and the error a failure becomes (``ParaphraseError``,
``EndpointError``). httpx is imported only when a request is made.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kg2tool.atomic import write_text
from kg2tool.errors import InputError

__all__ = [
    "TRANSIENT_STATUS",
    "ReplyCache",
    "RequestFailure",
    "RequestStopped",
    "content_text",
    "one_line",
    "post_with_retries",
    "redact",
    "retry_after",
    "server_message",
]

# HTTP statuses below 500 that retrying can fix (every 5xx can too)
TRANSIENT_STATUS = (408, 409, 425, 429)


def redact(url: str) -> str:
    """The URL without user info or query (which could hold a key)."""
    p = urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urlunsplit((p.scheme, host, p.path, "", ""))


def one_line(text: Any, limit: int = 200) -> str:
    """``str(text)`` with its white space folded to single spaces, cut to ``limit`` characters
    (ending in ``...`` when cut)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def server_message(r: Any) -> str:
    """The error message of an HTTP reply, one line: the ``error.message`` of a JSON body
    (OpenAI's shape), else the JSON or the text of the body."""
    try:
        data = r.json()
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message") if isinstance(err, dict) else err
        return one_line(msg if isinstance(msg, str) else json.dumps(msg), 200)
    except ValueError:
        return one_line(r.text, 200)


def retry_after(r: Any) -> float:
    """The reply's ``Retry-After`` in seconds (at most 60; 0 when absent or not a number)."""
    try:
        return min(float(r.headers.get("retry-after", 0)), 60.0)
    except ValueError:
        return 0.0


def content_text(content: Any) -> str:
    """The text of a chat message's ``content``: a string, or the joined ``text`` of its
    content parts; ``""`` for anything else (e.g. ``None`` beside tool calls)."""
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


# ----- the on-disk cache ----------------------------------------------------------------------


class ReplyCache:
    """Replies by request key: one JSON object with a ``reply`` field per key, in the file
    ``root/ab/abcdef....json`` (``ab`` the key's first two characters), written atomically.

    ``root=None`` caches nothing. A file that cannot be read or parsed is a miss; a file that
    cannot be written is an :class:`~kg2tool.errors.InputError` naming its folder."""

    def __init__(self, root: Path | None, what: str = "reply") -> None:
        self.root, self.what = root, what

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached object of ``key``, or None."""
        if self.root is None:
            return None
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and "reply" in data else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` (an object with a ``reply`` field) under ``key``."""
        if self.root is None:
            return
        path = self.path(key)
        try:
            write_text(path, json.dumps(value, ensure_ascii=False))
        except OSError as exc:
            raise InputError(
                f"cannot write the {self.what} cache: {exc.strerror or exc}", path=str(path.parent)
            ) from None


# ----- one request, retried -------------------------------------------------------------------


class RequestFailure(Exception):
    """A request failed: the message is the problem (one line, without the endpoint);
    ``transient``: retrying later could help (no connection, timeout, HTTP 408/429/5xx)."""

    def __init__(self, problem: str, *, transient: bool) -> None:
        super().__init__(problem)
        self.transient = transient


class RequestStopped(RequestFailure):
    """The request was given up because ``stop`` was set (another request failed)."""

    def __init__(self) -> None:
        super().__init__("stopped after another request failed", transient=True)


def post_with_retries(
    send: Callable[[], Any],
    *,
    retries: int,
    backoff: float,
    timeout: float,
    stop: threading.Event,
    count: Callable[[], None] = lambda: None,
    check: Callable[[Any, str], None] | None = None,
) -> Any:
    """The HTTP 200 reply of ``send()`` (one POST with an httpx client), trying up to
    ``retries + 1`` times.

    Attempt ``a`` (from 0) waits ``min(backoff * 2**a, 30)`` seconds after a transient failure,
    or longer when the reply says ``Retry-After``; ``count()`` is called before each attempt.
    ``check(reply, status)`` sees every non-200 reply first (``status`` is ``"HTTP 404: the
    server's message"``) and may raise a more helpful :class:`RequestFailure`. Then HTTP
    statuses retrying cannot fix raise ``RequestFailure(status, transient=False)``; the last
    transient failure raises ``RequestFailure("... after N attempts", transient=True)``. Once
    ``stop`` is set, the waits end and the next attempt raises :class:`RequestStopped`.
    """
    import httpx

    attempts = retries + 1
    problem = ""
    for attempt in range(attempts):
        if stop.is_set():
            raise RequestStopped()
        delay = min(backoff * (2**attempt), 30.0)
        count()
        try:
            r = send()
        except httpx.TimeoutException:
            problem = f"no reply within {timeout:g} s"
        except httpx.ConnectError as exc:
            problem = f"cannot connect ({one_line(exc) or 'connection failed'})"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {one_line(exc)}"
        else:
            if r.status_code == 200:
                return r
            detail = server_message(r)
            status = f"HTTP {r.status_code}" + (f": {detail}" if detail else "")
            if check is not None:
                check(r, status)
            if r.status_code not in TRANSIENT_STATUS and r.status_code < 500:
                raise RequestFailure(status, transient=False)
            problem = status
            delay = max(delay, retry_after(r))
        if attempt + 1 < attempts:
            stop.wait(delay)
    raise RequestFailure(
        f"{problem} after {attempts} attempt{'s' if attempts > 1 else ''}", transient=True
    )


def auth_headers(key_env: str) -> dict[str, str]:
    """JSON content type, and a bearer token from ``$key_env`` when it is set; a key an HTTP
    header cannot carry (non-ASCII, a line break) is a :class:`RequestFailure`, not a crash."""
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(key_env)
    if key:
        if not key.isascii() or any(c in key for c in "\r\n"):
            raise RequestFailure(
                f"the API key in ${key_env} has characters an HTTP header cannot carry",
                transient=False,
            )
        headers["Authorization"] = f"Bearer {key.strip()}"
    return headers
