"""Optional paraphrasing of template questions through an OpenAI-compatible endpoint.

Off unless an endpoint is configured (``paraphrase_url`` + ``paraphrase_model``). Then a
seeded share (``ratio``) of the questions of each shard is sent to
``{base_url}/chat/completions`` (OpenAI, vLLM, Ollama, llama.cpp server, LM Studio, ...)
and a reply replaces the template question only when it passes :func:`check_paraphrase`:
non-empty, one line, ending with ``?`` or ``.``, not absurdly long, every anchor entity name
(the names the trajectory's calls use) still there verbatim, and no raw KG id, key or answer
name the template did not show. Otherwise the template question stays and the reason is
counted. The template is kept in the ``question_template`` column either way.

Determinism and resume: which questions are sent depends only on (seed, query id); every
reply is cached under ``OUT/.paraphrase-cache/`` (one small JSON file per question, keyed
by the SHA-256 of model, temperature, prompt and question, written atomically), so a
resumed or repeated run sends no request for a question it has seen and writes the same
bytes. The API key is read from an environment variable (``OPENAI_API_KEY`` unless
configured otherwise) when requests are made; it is never written anywhere.

Failures (endpoint down, timeouts, HTTP errors) are retried with exponential backoff
(honouring ``Retry-After``) and then raise :class:`ParaphraseError`, one line naming the
endpoint. With ``lenient`` a transient failure (no connection, timeout, HTTP 408/429/5xx)
keeps the template question and is counted instead; errors that retrying cannot fix
(HTTP 401/403/404/400, a reply that is not a chat completion) always stop the run.

HTTP client: ``httpx`` (the ``paraphrase`` extra) rather than the ``openai`` package: the
one call needed is a plain POST, httpx gives explicit timeouts, connection limits and a
thread-safe client, and we keep control of retries, error messages and of which servers
work (the ``openai`` SDK adds its own retry layer and pulls in pydantic, for no gain here).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_args, get_type_hints
from urllib.parse import urlsplit

import numpy as np
import polars as pl

from kg2tool.dataset.card import CardSection
from kg2tool.endpoint import (
    ReplyCache,
    RequestFailure,
    auth_headers,
    content_text,
    one_line,
    post_with_retries,
    redact,
)
from kg2tool.errors import InputError, Kg2ToolError
from kg2tool.samples.questions import RAW_ID_PATTERN, mix_hash

__all__ = [
    "CACHE_DIR",
    "DEFAULT_KEY_ENV",
    "ParaphraseConfig",
    "ParaphraseError",
    "Paraphraser",
    "check_paraphrase",
]

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
CACHE_DIR = ".paraphrase-cache"
_SELECT_TAG = 0x9A7A  # mixes the seed for the choice of questions to paraphrase

SYSTEM_PROMPT = (
    "You rewrite questions for a question-answering dataset. Rewrite the user's question so "
    "that it asks exactly the same thing in different, natural wording. Keep every name listed "
    "under 'Names to keep' exactly as written (same spelling, capitalisation and accents). Do "
    "not answer the question, do not add or drop conditions, do not mention identifiers. Reply "
    "with the rewritten question only, on one line, ending with a question mark or a period."
)
BATCH_SYSTEM_PROMPT = (
    "You rewrite questions for a question-answering dataset. The user sends a JSON array of "
    'items {"question": ..., "keep": [names]}. Rewrite each question so that it asks exactly '
    "the same thing in different, natural wording, keeping every name of its 'keep' list "
    "exactly as written (same spelling, capitalisation and accents). Do not answer, do not add "
    "or drop conditions, do not mention identifiers. Reply with only a JSON array of the "
    "rewritten questions (strings, one line each, ending with a question mark or a period), "
    "one per item, in the same order."
)

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_LABEL = re.compile(
    r"^(?:paraphrased?|rewritten|rephrased|reworded)(?:\s+question)?\s*:\s*", re.IGNORECASE
)
_QUOTES = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019", "\u00ab": "\u00bb"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ParaphraseError(Kg2ToolError):
    """The paraphrasing endpoint failed; the message is one line naming the endpoint."""


def _setting(name: str, help: str, *, output: bool = False, flag: str | None = None) -> dict:
    """Field metadata of a paraphrase setting: its name in GenerateConfig (and config files),
    its help, whether it changes output bytes (then it is in the resume hash) and its flag."""
    return {"setting": name, "help": help, "output": output, "flag": flag}


@dataclass(frozen=True)
class ParaphraseConfig:
    """Where and how to paraphrase; off while ``base_url`` is unset. ``base_url`` is the API
    root (``http://host:8000/v1``); a URL already ending in ``/chat/completions`` is used as it
    is. As :class:`kg2tool.pipeline.config.GenerateConfig` settings (config files, flags) the
    fields are named by their metadata (``paraphrase_url``, ...): the one list of them."""

    base_url: str | None = field(
        default=None,
        metadata=_setting(
            "paraphrase_url",
            "OpenAI-compatible API root (e.g. https://api.openai.com/v1, "
            "http://localhost:8000/v1): paraphrase questions there. Off by default.",
        ),
    )
    model: str | None = field(
        default=None, metadata=_setting("paraphrase_model", "Model name to ask.", output=True)
    )
    ratio: float = field(
        default=1.0,
        metadata=_setting(
            "paraphrase_ratio",
            "Share of questions to paraphrase, 0..1 (chosen by seed).",
            output=True,
        ),
    )
    key_env: str = field(
        default=DEFAULT_KEY_ENV,
        metadata=_setting(
            "paraphrase_key_env",
            "Environment variable holding the API key (never written to disk).",
        ),
    )
    temperature: float = field(
        default=0.7,
        metadata=_setting("paraphrase_temperature", "Sampling temperature.", output=True),
    )
    batch_size: int = field(
        default=1,
        metadata=_setting(
            "paraphrase_batch", "Questions per request (>1 asks for a JSON array).", output=True
        ),
    )
    max_concurrency: int = field(
        default=4,
        metadata=_setting("paraphrase_concurrency", "Requests in flight at once, per worker."),
    )
    timeout: float = field(
        default=60.0, metadata=_setting("paraphrase_timeout", "Seconds to wait for one reply.")
    )
    retries: int = field(
        default=3,
        metadata=_setting(
            "paraphrase_retries", "Retries of a failed request, with exponential backoff."
        ),
    )
    lenient: bool = field(
        default=False,
        metadata=_setting(
            "paraphrase_lenient",
            "When the endpoint fails (down, timeouts, HTTP 429/5xx) keep the template "
            "questions and count it, instead of stopping (strict, the default).",
            flag="--paraphrase-lenient/--paraphrase-strict",
        ),
    )
    cache: str | None = field(
        default=None,
        metadata=_setting(
            "paraphrase_cache", "Reply cache directory (default OUT/.paraphrase-cache)."
        ),
    )
    backoff: float = 1.0  # first retry delay in seconds, doubled at each retry (max 30 s)
    seed: int = 0  # sent as the request's ``seed`` (servers that support it sample reproducibly)

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)

    def validate(self) -> None:
        """Raise InputError naming the first bad setting (names as in GenerateConfig)."""
        problem = validation_problem(self)
        if problem:
            raise InputError(problem)

    @property
    def endpoint(self) -> str:
        url = self.base_url.rstrip("/")
        return url if url.endswith("/chat/completions") else url + "/chat/completions"


def _wanted(hint: Any) -> type | tuple[type, ...]:
    """What a setting's value must be: any number for a float, the type of an optional one."""
    if hint is float:
        return (int, float)
    args = [a for a in get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def validation_problem(c: ParaphraseConfig) -> str | None:
    """The first thing wrong with a config, phrased with the GenerateConfig field names."""
    hints = get_type_hints(ParaphraseConfig)
    checks = [
        (name, getattr(c, attr), _wanted(hints[attr]))
        for name, attr in FIELDS.items()
        if attr != "cache"  # None (OUT/.paraphrase-cache) or a str, checked with the run's
    ]
    for name, value, want in checks:
        if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
            kind = want.__name__ if isinstance(want, type) else "a number"
            return f"{name} must be {kind}, got {value!r}"
    parts = urlsplit(c.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"paraphrase_url must be an http(s) URL such as http://localhost:8000/v1, got {c.base_url!r}"
    if parts.username or parts.password:
        return (
            "paraphrase_url must not hold credentials (they would be written to config.toml); "
            f"put the API key in ${c.key_env} instead"
        )
    if not c.model.strip():
        return "paraphrase_model is empty; name the model the endpoint serves (e.g. gpt-4o-mini)"
    if not 0.0 <= c.ratio <= 1.0:
        return f"paraphrase_ratio must be between 0 and 1, got {c.ratio}"
    if not _ENV_NAME.match(c.key_env):
        return f"paraphrase_key_env must be an environment variable name, got {c.key_env!r}"
    if not 0.0 <= c.temperature <= 2.0:
        return f"paraphrase_temperature must be between 0 and 2, got {c.temperature}"
    if c.batch_size < 1 or c.max_concurrency < 1:
        return "paraphrase_batch and paraphrase_concurrency must be >= 1"
    if not c.timeout > 0:
        return f"paraphrase_timeout must be positive (seconds), got {c.timeout}"
    if c.retries < 0:
        return f"paraphrase_retries must be >= 0, got {c.retries}"
    return None


# ----- checking a reply ---------------------------------------------------------------------


def clean_reply(text: str) -> str:
    """A reply without reasoning blocks, a 'Paraphrase:' label or wrapping quotes."""
    text = _THINK.sub("", text).strip()
    text = _LABEL.sub("", text).strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text


def _mentions(text: str, name: str) -> bool:
    """``name`` occurs in ``text`` verbatim and not inside a longer word."""
    if name not in text:  # the common case, without a regex
        return False
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None


def check_paraphrase(
    template: str,
    reply: str | None,
    names: Sequence[str],
    forbidden: Sequence[str] = (),
) -> tuple[str | None, str]:
    """``(accepted text, "ok")`` or ``(None, reason)``.

    ``names``: the anchor entity names that must stay verbatim; ``forbidden``: KG keys and
    answer names, refused when the reply shows one the template does not."""
    if reply is None:
        return None, "bad_reply"
    text = clean_reply(reply)
    if not text:
        return None, "empty"
    if "\n" in text or "\r" in text:
        return None, "multi_line"
    if text[-1] not in "?.":
        return None, "no_final_punctuation"
    if len(text) > min(2 * len(template) + 100, 2000):
        return None, "too_long"
    if any(not _mentions(text, n) for n in names if n):
        return None, "dropped_name"
    if re.search(RAW_ID_PATTERN, text) and not re.search(RAW_ID_PATTERN, template):
        return None, "raw_id"
    for f in forbidden:
        if f and _mentions(text, f) and not _mentions(template, f):
            return None, "leaked_id_or_answer"
    if text == template:
        return None, "unchanged"
    return text, "ok"


# ----- the client -----------------------------------------------------------------------------


class Paraphraser:
    """Paraphrases questions through an OpenAI-compatible chat completions endpoint.

    ``with Paraphraser(config, cache_dir=out / CACHE_DIR) as p: p.paraphrase(questions, names)``.
    Pass one to :func:`kg2tool.dataset.assemble.build_from_batches` (``paraphraser=``) to paraphrase
    the questions of a shard; counters go to ``report["paraphrase"]``.
    """

    def __init__(
        self,
        config: ParaphraseConfig,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        transport: Any = None,
    ) -> None:
        config.validate()
        try:
            import httpx
        except ImportError:
            raise InputError(
                "paraphrasing needs httpx: pip install 'kg2tool[paraphrase]'"
            ) from None
        self.config = config
        self.endpoint = config.endpoint
        self.cache = ReplyCache(Path(cache_dir) if cache_dir is not None else None, "paraphrase")
        self._httpx = httpx
        self._client: Any = None
        self._transport = transport
        self._stop = threading.Event()
        self.requests = 0  # HTTP requests sent (including retries)
        self._lock = threading.Lock()

    # ----- lifecycle
    def __enter__(self) -> Paraphraser:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _http(self) -> Any:
        with self._lock:
            return self._client or self._open()

    def _open(self) -> Any:
        if self._client is None:
            httpx = self._httpx
            headers = auth_headers(self.config.key_env)
            n = self.config.max_concurrency
            self._client = httpx.Client(
                timeout=httpx.Timeout(self.config.timeout),
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
                headers=headers,
                transport=self._transport,
                follow_redirects=False,
            )
        return self._client

    # ----- which questions
    def selected(self, qid: np.ndarray, seed: int) -> np.ndarray:
        """Boolean mask of the queries to paraphrase: a seeded share ``ratio`` by query id."""
        ratio = float(self.config.ratio)
        qid = np.asarray(qid)
        if ratio >= 1.0:
            return np.ones(len(qid), bool)
        if ratio <= 0.0 or len(qid) == 0:
            return np.zeros(len(qid), bool)
        h = mix_hash(seed, _SELECT_TAG, qid.astype(np.uint64))
        u = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        return u < ratio

    # ----- prompts and cache keys
    def _prompt(self, question: str, names: Sequence[str]) -> str:
        keep = "; ".join(names) if names else "(none)"
        return f"Question: {question}\nNames to keep: {keep}"

    def _key(self, question: str, names: Sequence[str]) -> str:
        c = self.config
        system = BATCH_SYSTEM_PROMPT if c.batch_size > 1 else SYSTEM_PROMPT
        blob = json.dumps(
            [c.model, float(c.temperature), system, question, list(names)], ensure_ascii=False
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    # ----- requests
    def _error(self, problem: str, *, transient: bool) -> ParaphraseError:
        hint = (
            "; pass --paraphrase-lenient (paraphrase_lenient = true) to keep the template "
            "questions when the endpoint fails"
            if transient and not self.config.lenient
            else ""
        )
        return ParaphraseError(
            f"paraphrase endpoint {redact(self.endpoint)}: {one_line(problem, 300)}{hint}"
        )

    def _post(self, messages: list[dict[str, str]]) -> str:
        """The reply text of one chat completion, retried on transient failures."""
        c = self.config
        payload = {
            "model": c.model,
            "messages": messages,
            "temperature": float(c.temperature),
            "seed": int(c.seed),
            "stream": False,
        }
        r = post_with_retries(
            lambda: self._http().post(self.endpoint, json=payload),
            retries=c.retries,
            backoff=c.backoff,
            timeout=c.timeout,
            stop=self._stop,
            count=self._count,
            check=self._check_status,
        )
        return _reply_text(r)

    def _count(self) -> None:
        with self._lock:
            self.requests += 1

    def _check_status(self, r: Any, status: str) -> None:
        """Failures with a hint at what to fix: a redirect, a refused key, a wrong URL."""
        c = self.config
        if 300 <= r.status_code < 400:
            where = r.headers.get("location", "?")
            raise RequestFailure(
                f"HTTP {r.status_code}: redirects to {redact(where)}; give that URL "
                "as the paraphrase URL",
                transient=False,
            )
        if r.status_code in (401, 403):
            have = "set" if os.environ.get(c.key_env) else "not set"
            raise RequestFailure(
                f"{status} (the API key is read from ${c.key_env}, which is {have})",
                transient=False,
            )
        if r.status_code == 404:
            raise RequestFailure(
                f"{status} (is the base URL right, e.g. http://HOST:PORT/v1, and is "
                f"model {c.model!r} served there?)",
                transient=False,
            )

    def _request(self, items: list[tuple[str, list[str]]]) -> list[str | None]:
        """Replies for a group of (question, names): one request, or one per question."""
        if self.config.batch_size <= 1:
            q, names = items[0]
            text = self._post(
                [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": self._prompt(q, names)},
                ]
            )
            return [text]
        user = json.dumps([{"question": q, "keep": n} for q, n in items], ensure_ascii=False)
        text = self._post(
            [
                {"role": "system", "content": BATCH_SYSTEM_PROMPT},
                {"role": "user", "content": user},
            ]
        )
        return _parse_batch(text, len(items))

    def paraphrase(
        self, questions: Sequence[str], names: Sequence[Sequence[str]]
    ) -> tuple[list[str | None], list[str]]:
        """Raw replies (``None``: unusable) and per question its source: ``"cache"``,
        ``"request"`` or ``"failed"`` (a transient failure under ``lenient``).

        Raises :class:`ParaphraseError` on a failure (any failure unless ``lenient``)."""
        n = len(questions)
        keys = [self._key(q, list(ns)) for q, ns in zip(questions, names, strict=True)]
        replies: list[str | None] = [None] * n
        source = ["request"] * n
        todo = []
        first: dict[str, int] = {}  # a question asked twice in a shard is sent once
        for i, key in enumerate(keys):
            hit = self.cache.get(key)
            if hit is not None:
                replies[i] = hit["reply"] if isinstance(hit["reply"], str) else None
                source[i] = "cache"
            elif key not in first:
                first[key] = i
                todo.append(i)
        if not todo:
            return replies, source
        b = self.config.batch_size
        groups = [todo[k : k + b] for k in range(0, len(todo), b)]
        self._stop.clear()
        error: RequestFailure | None = None
        pool = ThreadPoolExecutor(max_workers=min(self.config.max_concurrency, len(groups)))
        try:
            futures = {
                pool.submit(self._request, [(questions[i], list(names[i])) for i in g]): g
                for g in groups
            }
            for fut in as_completed(futures):
                if fut.cancelled():
                    continue
                group = futures[fut]
                try:
                    got = fut.result()
                except RequestFailure as exc:
                    if exc.transient and self.config.lenient:
                        for i in group:
                            source[i] = "failed"
                    elif error is None:  # stop: cancel what has not started
                        error = exc
                        self._stop.set()
                        for f in futures:
                            f.cancel()
                    continue
                for i, text in zip(group, got, strict=True):  # cached even after a failure
                    replies[i] = text
                    self.cache.put(keys[i], {"reply": text})
        finally:
            self._stop.set()  # wakes retry sleeps of requests still running after a failure
            pool.shutdown(wait=True, cancel_futures=True)
        if error is not None:
            raise self._error(str(error), transient=error.transient)
        for i, key in enumerate(keys):
            j = first.get(key, i)
            if j != i:
                replies[i], source[i] = replies[j], source[j]
        return replies, source

    # ----- a shard's questions
    def apply(
        self, kg: Any, items: list[tuple[Any, pl.DataFrame]], seed: int, report: dict[str, Any]
    ) -> list[tuple[Any, pl.DataFrame]]:
        """Each pattern's query frame with ``question`` paraphrased where accepted and the
        template in ``question_template``; counters in ``report["paraphrase"]``."""
        stats: dict[str, int] = report.setdefault("paraphrase", {})

        def bump(k: str, v: int = 1) -> None:
            stats[k] = stats.get(k, 0) + v

        labels = kg.entities["label"]
        # KG keys that are not also the label are raw ids: a reply must not show one
        ekeys = _id_like_keys(kg.entities)
        rkeys = _id_like_keys(kg.relations)
        jobs: list[tuple[int, int]] = []  # (item, row)
        questions: list[str] = []
        names: list[list[str]] = []
        forbidden: list[list[str]] = []
        for i, (_, q) in enumerate(items):
            rows = np.flatnonzero(self.selected(q["qid"].to_numpy(), seed))
            if not len(rows):
                continue
            sub = q[rows]
            anc = _gather_lists(sub["anchor_ids"], labels)
            akeys = _gather_lists(sub["anchor_ids"], ekeys)
            rks = _gather_lists(sub["relation_ids"], rkeys)
            ans = _gather_lists(sub["answer_ids"], labels)
            qs = sub["question"].to_list()
            for r, a, ak, rk, aa, text in zip(rows.tolist(), anc, akeys, rks, ans, qs, strict=True):
                anchor_names = [n for n in dict.fromkeys(a) if n]
                jobs.append((i, r))
                questions.append(text)
                names.append(anchor_names)
                forbidden.append([x for x in [*ak, *rk, *aa] if x and x not in anchor_names])
        bump("selected", len(jobs))
        before = self.requests
        replies, source = self.paraphrase(questions, names) if jobs else ([], [])
        bump("requests", self.requests - before)
        bump("from_cache", sum(s == "cache" for s in source))
        new = [q["question"].to_list() for _, q in items]
        for (i, r), tmpl, reply, src, ns, fb in zip(
            jobs, questions, replies, source, names, forbidden, strict=True
        ):
            if src == "failed":
                bump("fallback:endpoint_failed")
                continue
            text, reason = check_paraphrase(tmpl, reply, ns, fb)
            if text is None:
                bump(f"rejected:{reason}")
            else:
                new[i][r] = text
                bump("accepted")
        return [
            (
                plan,
                q.with_columns(
                    pl.Series("question", new[i], dtype=pl.String),
                    q["question"].alias("question_template"),
                ),
            )
            for i, (plan, q) in enumerate(items)
        ]


def attach_templates(frame: pl.DataFrame, items: list[tuple[Any, pl.DataFrame]]) -> pl.DataFrame:
    """``frame`` (built from ``items``) with ``question_template`` right after ``question``."""
    if frame.height == 0 or not items:
        out = frame.with_columns(pl.lit(None, pl.String).alias("question_template"))
    else:
        keys = ["pattern", "bindings", "question"]
        mapping = pl.concat(
            [q.select(*keys, "question_template") for _, q in items], how="vertical_relaxed"
        ).unique(subset=keys, keep="first", maintain_order=True)
        out = frame.join(mapping, on=keys, how="left", maintain_order="left")
        out = out.with_columns(pl.col("question_template").fill_null(pl.col("question")))
    cols = [c for c in out.columns if c != "question_template"]
    at = cols.index("question") + 1 if "question" in cols else len(cols)
    return out.select([*cols[:at], "question_template", *cols[at:]])


def _id_like_keys(table: pl.DataFrame) -> pl.Series:
    """The ``key`` column, null where the key equals the label (then it is not a raw id)."""
    if "label" not in table.columns:
        return table["key"]
    differs = (pl.col("key") != pl.col("label")).fill_null(True)
    return table.select(pl.when(differs).then(pl.col("key")).alias("key")).to_series()


def _gather_lists(ids: pl.Series, table: pl.Series) -> list[list[Any]]:
    """Per row of a List(Int) column, the table's values at its ids (one gather for all)."""
    lens = ids.list.len().fill_null(0).to_numpy()
    flat = table.gather(ids.explode().drop_nulls()).to_list()
    ends = np.cumsum(lens).tolist()
    return [flat[s:e] for s, e in zip([0, *ends[:-1]], ends, strict=True)]


# ----- reply parsing ------------------------------------------------------------------------


def _reply_text(r: Any) -> str:
    """The text of a chat completion reply; RequestFailure when it is not one."""
    try:
        data = r.json()
        content = data["choices"][0]["message"].get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise RequestFailure(
            f"the reply is not an OpenAI chat completion: {one_line(r.text, 120)!r}",
            transient=False,
        ) from None
    return content_text(content)


def _parse_batch(text: str, n: int) -> list[str | None]:
    """The strings of a batch reply (a JSON array, maybe in a code fence); ``None`` where unusable."""
    text = _THINK.sub("", text)
    start, end = text.find("["), text.rfind("]")
    try:
        data = json.loads(text[start : end + 1]) if 0 <= start < end else None
    except ValueError:
        data = None
    if not isinstance(data, list) or len(data) != n:
        return [None] * n
    return [x if isinstance(x, str) else None for x in data]


# ----- wiring with GenerateConfig -------------------------------------------------------------

# GenerateConfig field -> (ParaphraseConfig field, default)
# GenerateConfig setting name -> ParaphraseConfig field, in declaration order.
FIELDS: dict[str, str] = {
    f.metadata["setting"]: f.name for f in fields(ParaphraseConfig) if "setting" in f.metadata
}
# Settings that change no byte of the output (left out of the resume hash): moving the
# endpoint or relaxing failure handling must not block a resume.
RUNTIME_ONLY = tuple(
    f.metadata["setting"]
    for f in fields(ParaphraseConfig)
    if "setting" in f.metadata and not f.metadata["output"]
)
_FLOATS = ("ratio", "temperature", "timeout")


def settings(c: ParaphraseConfig) -> dict[str, Any]:
    """The settings of ``c`` under their GenerateConfig names (config files, dumps)."""
    return {name: getattr(c, attr) for name, attr in FIELDS.items()}


def from_settings(c: ParaphraseConfig, values: dict[str, Any]) -> ParaphraseConfig:
    """``c`` with the settings named in ``values`` (GenerateConfig names) changed."""
    return replace(c, **{FIELDS[k]: v for k, v in values.items()})


def checked(c: ParaphraseConfig) -> ParaphraseConfig:
    """Validate the paraphrase settings of a run; the same settings with ints made floats
    (1 and 1.0 are the same setting, and the same resume hash)."""
    if not c.enabled:
        default = ParaphraseConfig()
        changed = [k for k, a in FIELDS.items() if getattr(c, a) != getattr(default, a)]
        if changed:
            raise InputError(
                f"{', '.join(changed)} set without paraphrase_url; give the endpoint "
                "(--paraphrase-url, e.g. http://localhost:8000/v1) or drop these settings"
            )
        return c
    if not isinstance(c.base_url, str):
        raise InputError(f"paraphrase_url must be str, got {c.base_url!r}")
    if c.model is None:
        raise InputError("paraphrase_url needs paraphrase_model (--paraphrase-model)")
    if c.cache is not None and not isinstance(c.cache, str):
        raise InputError(f"paraphrase_cache must be str, got {c.cache!r}")
    c = replace(
        c,
        **{
            k: float(getattr(c, k))
            for k in _FLOATS
            if isinstance(getattr(c, k), int) and not isinstance(getattr(c, k), bool)
        },
    )
    c.validate()
    try:
        import httpx  # noqa: F401
    except ImportError:
        raise InputError("paraphrasing needs httpx: pip install 'kg2tool[paraphrase]'") from None
    if c.key_env != DEFAULT_KEY_ENV and not os.environ.get(c.key_env):
        raise InputError(f"paraphrase_key_env names ${c.key_env}, which is not set")
    return c


def paraphraser_of_run(c: ParaphraseConfig, out: str, seed: int) -> Paraphraser | None:
    """The Paraphraser of a run (cache in ``OUT/.paraphrase-cache`` unless configured), or None."""
    if not c.enabled:
        return None
    return Paraphraser(replace(c, seed=seed), cache_dir=c.cache or str(Path(out) / CACHE_DIR))


def summary_line(stats: dict[str, int]) -> str:
    rej = ", ".join(
        f"{k.split(':', 1)[1]} {v:,}"
        for k, v in sorted(stats.items(), key=lambda kv: -kv[1])
        if k.startswith("rejected:") and v
    )
    fb = stats.get("fallback:endpoint_failed", 0)
    return (
        f"paraphrased {stats.get('accepted', 0):,} of {stats.get('selected', 0):,} questions "
        f"({stats.get('requests', 0):,} requests, {stats.get('from_cache', 0):,} from the cache); "
        f"kept the template: {rej or 'none rejected'}"
        + (f"; endpoint failures kept the template {fb:,} times" if fb else "")
    )


def card_section(parquet: Sequence[Path], stats: dict[str, int], model: str) -> CardSection:
    """The dataset card's 'Paraphrasing' section (for ``write_card(..., sections=[...])``): how
    many questions of the written dataset are paraphrases, and what was rejected."""
    final = total = 0
    if parquet:
        lf = pl.scan_parquet(list(parquet))
        row = lf.select(
            pl.len().alias("n"),
            (pl.col("question") != pl.col("question_template")).sum().alias("p"),
        ).collect()
        total, final = int(row["n"][0]), int(row["p"][0] or 0)
    rejected = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("rejected:")}
    lines = [
        f"{final:,} of {total:,} questions in the dataset are paraphrases by `{model}`; the "
        "template question of every sample is in the `question_template` column.",
        "",
        f"- questions sent for paraphrasing: {stats.get('selected', 0):,} "
        f"(accepted {stats.get('accepted', 0):,}, before verification and de-duplication)",
        "- replies rejected (template kept): "
        + (", ".join(f"{k} {v:,}" for k, v in sorted(rejected.items())) or "none"),
        f"- endpoint failures (template kept): {stats.get('fallback:endpoint_failed', 0):,}",
        "",
    ]
    return CardSection("Paraphrasing", lines)
