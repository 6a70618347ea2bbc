"""``kg2tool.dataset.paraphrase``: paraphrasing through an OpenAI-compatible endpoint.

A fake endpoint (``tests/chat_server.py``, ``POST /v1/chat/completions``) answers with a
rewrite chosen per test, so accepted and rejected replies, the ratio, the cache,
failures (down, HTTP errors) and ``kg2tool generate`` end to end run without a model.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from chat_server import free_url, serve_chat

from kg2tool.cli import main
from kg2tool.dataset.assemble import SampleContext, build_dataset
from kg2tool.dataset.paraphrase import (
    CACHE_DIR,
    ParaphraseConfig,
    ParaphraseError,
    Paraphraser,
    check_paraphrase,
    clean_reply,
)
from kg2tool.errors import InputError
from kg2tool.pipeline.config import GenerateConfig
from kg2tool.pipeline.driver import generate

PATTERNS = ["1p", "2p", "2i", "pni", "2u"]
N = 40
PREFIX = "Here is my question: "
SECRET = "sk-test-do-not-write-0123456789"


def rewrite(question: str, names: list[str]) -> str:
    """The fake model's default rewrite: keeps every name and the final punctuation."""
    return PREFIX + question


class FakeLLM:
    """State of the fake endpoint; tests set ``behaviour`` and ``statuses``."""

    def __init__(self) -> None:
        self.behaviour: Callable[[str, list[str]], str] = rewrite
        self.statuses: list[int] = []  # HTTP statuses to answer first, one per request
        self.batch_reply: Callable[[list[dict[str, Any]]], str] | None = None
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.lock = threading.Lock()
        self.url = ""

    def __call__(self, body: dict[str, Any], headers: Message) -> tuple[int, dict[str, Any]]:
        """The server's reply function: notes the key sent, then :meth:`reply` (which tests
        may replace)."""
        with self.lock:
            self.auth.append(headers.get("Authorization"))
        return self.reply(body)

    def reply(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(body)
            if self.statuses:
                status = self.statuses.pop(0)
                return status, {"error": {"message": f"fake failure {status}"}}
        messages = body["messages"]
        user = messages[-1]["content"]
        if messages[0]["content"].startswith("You rewrite questions") and user.startswith("["):
            items = json.loads(user)
            if self.batch_reply is not None:
                content = self.batch_reply(items)
            else:
                content = json.dumps([self.behaviour(it["question"], it["keep"]) for it in items])
        else:
            m = re.fullmatch(r"Question: (.*)\nNames to keep: (.*)", user, re.DOTALL)
            assert m, user
            names = [] if m[2] == "(none)" else m[2].split("; ")
            content = self.behaviour(m[1], names)
        return 200, {
            "id": "x",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }


@pytest.fixture()
def llm() -> Iterator[FakeLLM]:
    state = FakeLLM()
    with serve_chat(state) as url:
        state.url = url
        yield state


@pytest.fixture()
def dead_url() -> str:
    return free_url()


@pytest.fixture(scope="module")
def ctx(codex_s: Any) -> SampleContext:
    return SampleContext(codex_s)


@pytest.fixture(scope="module")
def plain(codex_s: Any, ctx: SampleContext) -> pl.DataFrame:
    return build_dataset(codex_s, PATTERNS, N, seed=5, context=ctx)


def para(url: str, cache: Path | None = None, **kw: Any) -> Paraphraser:
    kw.setdefault("backoff", 0.01)
    return Paraphraser(ParaphraseConfig(base_url=url, model="fake-1", **kw), cache_dir=cache)


def build(kg: Any, ctx: SampleContext, p: Paraphraser | None, seed: int = 5) -> pl.DataFrame:
    return build_dataset(kg, PATTERNS, N, seed=seed, context=ctx, paraphraser=p)


def shard_report(
    kg: Any, ctx: SampleContext, p: Paraphraser
) -> tuple[pl.DataFrame, dict[str, int]]:
    from kg2tool.dataset.assemble import build_shard

    frame, report = build_shard(kg, PATTERNS, 0, 1, N, 5, context=ctx, paraphraser=p)
    return frame, report["paraphrase"]


# ----- the reply check (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("Who did Ada Lovelace influence?", "ok"),
        ('"Who did Ada Lovelace influence?"', "ok"),
        ("Paraphrase: Who did Ada Lovelace influence?", "ok"),
        ("<think>hmm</think>Who did Ada Lovelace influence?", "ok"),
        ("", "empty"),
        ("   ", "empty"),
        ("Who did\nAda Lovelace influence?", "multi_line"),
        ("Who did Ada Lovelace influence", "no_final_punctuation"),
        ("Who did Ada Lovelace influence? " + "Really " * 60 + "?", "too_long"),
        ("Who did she influence?", "dropped_name"),
        ("Who did ada lovelace influence?", "dropped_name"),
        ("Who did Ada Lovelaces influence?", "dropped_name"),
        ("Who did Ada Lovelace (Q7259) influence?", "raw_id"),
        ("Which entities in /m/02mjmr did Ada Lovelace influence?", "raw_id"),
        ("Who did Ada Lovelace influence, Charles Babbage?", "leaked_id_or_answer"),
        ("Who did Ada Lovelace influence via P737?", "raw_id"),
        ("Who were the people influenced by Ada Lovelace.", "ok"),
        ("Which people did Ada Lovelace (the mathematician) influence?", "ok"),
        (None, "bad_reply"),
    ],
)
def test_check_paraphrase(reply: str | None, reason: str) -> None:
    template = "Who are the people who were influenced by Ada Lovelace?"
    text, got = check_paraphrase(template, reply, ["Ada Lovelace"], ["Charles Babbage", "Q7259"])
    assert got == reason
    assert (text is not None) == (reason == "ok")
    if text is not None:
        assert text == clean_reply(reply or "") and "Ada Lovelace" in text


def test_check_paraphrase_unchanged_and_shown_names() -> None:
    t = "Which country is Q-free land Uruguay in?"
    assert check_paraphrase(t, t, ["Uruguay"]) == (None, "unchanged")
    # a forbidden name the template itself shows is fine in the reply
    t2 = "Is Charles Babbage among the people influenced by Ada Lovelace?"
    r2 = "Among the people Ada Lovelace influenced, is there Charles Babbage?"
    assert check_paraphrase(t2, r2, ["Ada Lovelace"], ["Charles Babbage"]) == (r2, "ok")


# ----- paraphrasing a dataset ---------------------------------------------------------------


def test_accepted_paraphrases(codex_s, ctx, plain, llm, tmp_path) -> None:
    """Every question rewritten (ratio 1); the template kept; nothing else changes."""
    with para(llm.url, tmp_path / "c") as p:
        frame, stats = shard_report(codex_s, ctx, p)
    assert frame.height == plain.height > 0
    assert frame["question_template"].to_list() == plain["question"].to_list()
    assert frame["question"].to_list() == [PREFIX + q for q in plain["question"]]
    assert frame.columns == [*plain.columns[:4], "question_template", *plain.columns[4:]]
    same = [c for c in plain.columns if c not in ("question", "messages", "record")]
    assert frame.select(same).equals(plain.select(same))
    # the records the trainer reads carry the paraphrase
    for rec, q in zip(frame["record"].to_list(), frame["question"].to_list(), strict=True):
        assert json.dumps(q, ensure_ascii=False)[1:-1] in rec
    assert stats["selected"] >= frame.height and stats["accepted"] == stats["selected"]
    assert stats["requests"] == len(llm.requests) == stats["selected"]
    assert llm.requests[0]["model"] == "fake-1" and llm.requests[0]["temperature"] == 0.7
    # the prompt lists the names the calls use
    user = llm.requests[0]["messages"][-1]["content"]
    assert user.startswith("Question: ") and "Names to keep: " in user


def dropped_name(q: str, names: list[str]) -> str:
    out = q
    for n in names:
        out = out.replace(n, "someone")
    return out


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        (dropped_name, "dropped_name"),
        (lambda q, names: q[:-1] + " (Q42)" + q[-1], "raw_id"),
        (lambda q, names: "", "empty"),
        (lambda q, names: PREFIX + "\n" + q, "multi_line"),
        (lambda q, names: q.rstrip("?.") + " please", "no_final_punctuation"),
        (lambda q, names: q, "unchanged"),
    ],
    ids=["dropped_name", "raw_id", "empty", "multi_line", "no_punctuation", "unchanged"],
)
def test_rejected_replies_keep_the_template(codex_s, ctx, plain, llm, behaviour, reason) -> None:
    llm.behaviour = behaviour
    with para(llm.url) as p:
        frame, stats = shard_report(codex_s, ctx, p)
    assert frame["question"].to_list() == plain["question"].to_list()
    assert frame["question_template"].to_list() == plain["question"].to_list()
    assert frame["record"].to_list() == plain["record"].to_list()
    assert stats.get("accepted", 0) == 0
    assert stats[f"rejected:{reason}"] == stats["selected"] > 0


def test_answer_leak_is_rejected(codex_s, ctx, plain, llm) -> None:
    """A reply naming an answer (or a key) the template did not show is refused."""
    by_question = dict(
        zip(plain["question"].to_list(), plain["answer_labels"].to_list(), strict=True)
    )

    def leak(q: str, names: list[str]) -> str:
        ans = [a for a in by_question.get(q, []) if a not in q and a not in names]
        return q[:-1] + (f", such as {ans[0]}" if ans else "") + q[-1]

    llm.behaviour = leak
    with para(llm.url) as p:
        frame, stats = shard_report(codex_s, ctx, p)
    assert stats.get("rejected:leaked_id_or_answer", 0) > 0
    for q, t in zip(frame["question"].to_list(), frame["question_template"].to_list(), strict=True):
        assert "such as" not in q or q == t


def test_ratio_is_seeded_and_deterministic(codex_s, ctx, plain, llm, tmp_path) -> None:
    with para(llm.url, ratio=0.5) as p:
        a = build(codex_s, ctx, p)
    with para(llm.url, ratio=0.5) as p:
        b = build(codex_s, ctx, p)
    assert a.equals(b)
    changed = (a["question"] != a["question_template"]).to_numpy()
    assert 0.2 * a.height < changed.sum() < 0.8 * a.height
    # ratio 0: nothing sent, every question the template
    n = len(llm.requests)
    with para(llm.url, ratio=0.0) as p:
        z = build(codex_s, ctx, p)
    assert len(llm.requests) == n
    assert (
        z["question"].to_list() == z["question_template"].to_list() == plain["question"].to_list()
    )


def test_selection_does_not_depend_on_the_batch() -> None:
    import numpy as np

    with para("http://127.0.0.1:9/v1", ratio=0.3) as p:
        qid = np.arange(10_000, dtype=np.uint64) * 7 + 3
        whole = p.selected(qid, 11)
        parts = np.concatenate([p.selected(qid[:1234], 11), p.selected(qid[1234:], 11)])
    assert (whole == parts).all() and 0.27 < whole.mean() < 0.33
    assert (p.selected(qid, 12) != whole).mean() > 0.2  # another seed, another choice


def test_cache_makes_a_second_run_send_nothing(codex_s, ctx, llm, tmp_path) -> None:
    cache = tmp_path / "cache"
    with para(llm.url, cache) as p:
        first, s1 = shard_report(codex_s, ctx, p)
    sent = len(llm.requests)
    assert sent == s1["requests"] > 0
    files = sorted(cache.rglob("*.json"))
    assert len(files) == s1["selected"]
    assert not list(cache.rglob("*.tmp"))
    # the model now answers differently: the cached replies still win
    llm.behaviour = lambda q, names: "Changed: " + q
    with para(llm.url, cache) as p:
        second, s2 = shard_report(codex_s, ctx, p)
    assert len(llm.requests) == sent
    assert s2["requests"] == 0 and s2["from_cache"] == s1["selected"]
    assert second.equals(first)
    # another model (or temperature) is another key
    with Paraphraser(ParaphraseConfig(base_url=llm.url, model="fake-2"), cache_dir=cache) as p:
        third, _ = shard_report(codex_s, ctx, p)
    assert len(llm.requests) > sent
    assert third["question"][0].startswith("Changed: ")


def test_batches_of_questions(codex_s, ctx, plain, llm) -> None:
    with para(llm.url, batch_size=4) as p:
        frame, stats = shard_report(codex_s, ctx, p)
    assert frame["question"].to_list() == [PREFIX + q for q in plain["question"]]
    assert len(llm.requests) == stats["requests"] == -(-stats["selected"] // 4)
    assert json.loads(llm.requests[0]["messages"][-1]["content"])[0]["keep"]
    # a reply that is not a JSON array of the right length: the templates stay
    llm.batch_reply = lambda items: "Sure! Here they are: " + json.dumps(["x?"])
    with para(llm.url, batch_size=4) as p:
        frame, stats = shard_report(codex_s, ctx, p)
    assert frame["question"].to_list() == plain["question"].to_list()
    assert stats["rejected:bad_reply"] == stats["selected"]


# ----- failures -----------------------------------------------------------------------------


def test_endpoint_down_is_one_clear_error(codex_s, ctx, dead_url) -> None:
    with para(dead_url, retries=1) as p, pytest.raises(ParaphraseError) as err:
        build(codex_s, ctx, p)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"paraphrase endpoint {dead_url}/chat/completions: cannot connect")
    assert "after 2 attempts" in msg and "--paraphrase-lenient" in msg


def test_lenient_falls_back_to_templates(codex_s, ctx, plain, dead_url, tmp_path) -> None:
    with para(dead_url, tmp_path / "c", retries=0, lenient=True) as p:
        frame, stats = shard_report(codex_s, ctx, p)
    assert frame["question"].to_list() == plain["question"].to_list()
    assert stats["fallback:endpoint_failed"] == stats["selected"] > 0
    assert not (tmp_path / "c").exists()  # failures are not cached: a later run retries


def test_transient_errors_are_retried(codex_s, ctx, plain, llm) -> None:
    llm.statuses = [503, 429]
    with para(llm.url, retries=2, max_concurrency=1) as p:
        frame, stats = shard_report(codex_s, ctx, p)
    assert frame["question"].to_list() == [PREFIX + q for q in plain["question"]]
    assert stats["requests"] == stats["selected"] + 2


def test_retries_exhausted_names_the_status(codex_s, ctx, llm) -> None:
    llm.statuses = [500] * 3
    with para(llm.url, retries=2, max_concurrency=1) as p, pytest.raises(ParaphraseError) as err:
        build(codex_s, ctx, p)
    assert "HTTP 500: fake failure 500 after 3 attempts" in str(err.value)


@pytest.mark.parametrize("status", [401, 404, 400])
def test_configuration_errors_stop_even_when_lenient(codex_s, ctx, llm, status) -> None:
    llm.statuses = [status] * 100
    with para(llm.url, lenient=True) as p, pytest.raises(ParaphraseError) as err:
        build(codex_s, ctx, p)
    msg = str(err.value)
    assert f"HTTP {status}: fake failure {status}" in msg and "\n" not in msg
    assert "--paraphrase-lenient" not in msg
    if status == 401:
        assert "$OPENAI_API_KEY" in msg
    assert len(llm.requests) < 20  # stopped early, not one request per question


def test_wrong_path_says_so(codex_s, ctx, llm) -> None:
    with para(llm.url.removesuffix("/v1")) as p, pytest.raises(ParaphraseError) as err:
        build(codex_s, ctx, p)
    assert "HTTP 404" in str(err.value) and "base URL" in str(err.value)


def test_not_a_chat_completion(codex_s, ctx, llm) -> None:
    llm.reply = lambda body: (200, {"hello": "world"})  # type: ignore[method-assign]
    with para(llm.url, lenient=True) as p, pytest.raises(ParaphraseError) as err:
        build(codex_s, ctx, p)
    assert "not an OpenAI chat completion" in str(err.value)


def test_api_key_is_sent_from_the_environment(codex_s, ctx, llm, monkeypatch) -> None:
    monkeypatch.setenv("MY_LLM_KEY", SECRET)
    with para(llm.url, key_env="MY_LLM_KEY") as p:
        shard_report(codex_s, ctx, p)
    assert set(llm.auth) == {f"Bearer {SECRET}"}
    monkeypatch.delenv("MY_LLM_KEY")
    with para(llm.url, key_env="MY_LLM_KEY") as p:
        shard_report(codex_s, ctx, p)
    assert llm.auth[-1] is None  # no key: no header (local servers)


# ----- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"paraphrase_model": "m"}, "paraphrase_model set without paraphrase_url"),
        ({"paraphrase_url": "http://h/v1"}, "paraphrase_url needs paraphrase_model"),
        ({"paraphrase_url": "ftp://h/v1", "paraphrase_model": "m"}, "http(s) URL"),
        ({"paraphrase_url": "https://u:pw@h/v1", "paraphrase_model": "m"}, "credentials"),
        ({"paraphrase_url": "http://h/v1", "paraphrase_model": " "}, "paraphrase_model is empty"),
        (
            {"paraphrase_url": "http://h/v1", "paraphrase_model": "m", "paraphrase_ratio": 1.5},
            "paraphrase_ratio must be between 0 and 1",
        ),
        (
            {"paraphrase_url": "http://h/v1", "paraphrase_model": "m", "paraphrase_ratio": "all"},
            "paraphrase_ratio must be a number",
        ),
        (
            {"paraphrase_url": "http://h/v1", "paraphrase_model": "m", "paraphrase_batch": 0},
            "paraphrase_batch and paraphrase_concurrency must be >= 1",
        ),
        (
            {"paraphrase_url": "http://h/v1", "paraphrase_model": "m", "paraphrase_timeout": 0},
            "paraphrase_timeout must be positive",
        ),
        (
            {"paraphrase_url": "http://h/v1", "paraphrase_model": "m", "paraphrase_retries": -1},
            "paraphrase_retries must be >= 0",
        ),
        (
            {"paraphrase_url": "http://h/v1", "paraphrase_model": "m", "paraphrase_key_env": "A-B"},
            "environment variable name",
        ),
        (
            {
                "paraphrase_url": "http://h/v1",
                "paraphrase_model": "m",
                "paraphrase_key_env": "NOPE_KG2TOOL_X",
            },
            "$NOPE_KG2TOOL_X, which is not set",
        ),
    ],
)
def test_settings_are_validated(settings, message, tmp_path) -> None:
    cfg = GenerateConfig(out=str(tmp_path), **settings)
    with pytest.raises(InputError, match=re.escape(message)):
        cfg.validate()


def test_off_by_default_changes_no_dump() -> None:
    """Without an endpoint the config dumps (and so the resume hash) are as before."""
    cfg = GenerateConfig(out="x")
    cfg.validate()
    assert not any(k.startswith("paraphrase") for k in cfg.to_dict())
    # pinned: the defaults' hash from before paraphrasing existed, so runs started by an
    # older kg2tool still resume (update it only when a new output-changing setting is added)
    assert cfg.content_hash() == "626ae458d2276ae6"
    on = GenerateConfig(out="x", paraphrase_url="http://h/v1", paraphrase_model="m")
    on.validate()
    assert on.to_dict()["paraphrase_model"] == "m" and on.content_hash() != cfg.content_hash()
    # where the endpoint is and how failures are handled do not block a resume
    moved = GenerateConfig(
        out="y",
        paraphrase_url="http://other:1/v1",
        paraphrase_model="m",
        paraphrase_lenient=True,
        paraphrase_retries=9,
        paraphrase_ratio=1,
    )
    moved.validate()
    assert moved.content_hash() == on.content_hash()


def test_no_paraphraser_no_column(plain) -> None:
    assert "question_template" not in plain.columns


# ----- kg2tool generate end to end ----------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def data_bytes(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and (p.parts[-2] in ("data", "records") or p.suffix == ".jsonl")
    }


def test_generate_with_paraphrasing(llm, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    out = tmp_path / "out"
    args = [
        "generate", "--out", out, "-n", 60, "--shard-size", 30, "--seed", 2, "-q",
        "--paraphrase-url", llm.url, "--paraphrase-model", "fake-1",
        "--paraphrase-ratio", 0.5, "--paraphrase-concurrency", 2,
    ]  # fmt: skip
    code, stdout, err = cli(capsys, *args)
    assert code == 0, err
    frame = pl.read_parquet(out / "data")
    changed = frame.filter(pl.col("question") != pl.col("question_template"))
    assert 0 < changed.height < frame.height
    assert all(q.startswith(PREFIX) for q in changed["question"])
    assert "paraphrased" in stdout and "requests" in stdout
    card = (out / "README.md").read_text()
    assert (
        f"{changed.height:,} of {frame.height:,} questions in the dataset are paraphrases" in card
    )
    assert card.index("## Known shortfalls") < card.index("## Paraphrasing")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["paraphrase"]["accepted"] >= changed.height
    assert manifest["config"]["paraphrase_model"] == "fake-1"
    cfg = GenerateConfig.from_file(out / "config.toml")
    assert (cfg.paraphrase.base_url, cfg.paraphrase.ratio) == (llm.url, 0.5)
    # the key was sent, and is written nowhere
    assert f"Bearer {SECRET}" in llm.auth
    for p in out.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p
    # the same command again: nothing to do, nothing sent
    sent = len(llm.requests)
    code, stdout, err = cli(capsys, *args)
    assert code == 0, err
    assert "(2 already done)" in stdout
    assert len(llm.requests) == sent
    # a fresh run sharing the cache (a TOML config this time) sends nothing and equals it
    conf = tmp_path / "run.toml"
    conf.write_text(
        "[generate]\n"
        "num_samples = 60\nshard_size = 30\nseed = 2\n"
        f'paraphrase_url = "{llm.url}"\nparaphrase_model = "fake-1"\n'
        "paraphrase_ratio = 0.5\n"
        f'paraphrase_cache = "{out / CACHE_DIR}"\n'
    )
    out2 = tmp_path / "out2"
    code, _, err = cli(capsys, "generate", "--config", conf, "--out", out2, "-q")
    assert code == 0, err
    assert len(llm.requests) == sent
    assert data_bytes(out2) == data_bytes(out)


def test_generate_resume_after_failure_uses_the_cache(llm, tmp_path, capsys) -> None:
    """The endpoint dies mid-run: one line, exit 2; rerun resumes with the cached replies."""
    out = tmp_path / "out"
    args = [
        "generate", "--out", out, "-n", 60, "--shard-size", 30, "--seed", 2, "-q",
        "--paraphrase-url", llm.url, "--paraphrase-model", "fake-1",
        "--paraphrase-retries", 0, "--paraphrase-concurrency", 1,
    ]  # fmt: skip
    calls = {"n": 0}
    real = llm.reply

    def flaky(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        calls["n"] += 1
        if calls["n"] > 35:  # past the first shard
            return 502, {"error": {"message": "bad gateway"}}
        return real(body)

    llm.reply = flaky  # type: ignore[method-assign]
    code, _, err = cli(capsys, *args)
    assert code == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"kg2tool: error: paraphrase endpoint {llm.url}/chat/completions: HTTP 502" in err
    assert len(list(out.glob(".progress/shard-*.json"))) == 1
    llm.reply = real  # type: ignore[method-assign]
    cached = sum(1 for _ in (out / CACHE_DIR).rglob("*.json"))
    assert cached == 35  # every reply before the failure, none after
    before = len(llm.requests)
    code, stdout, err = cli(capsys, *args)
    assert code == 0, err
    assert "(1 already done)" in stdout
    # only the questions never answered before are sent
    assert len(llm.requests) - before == sum(1 for _ in (out / CACHE_DIR).rglob("*.json")) - 35
    ref = tmp_path / "ref"
    code, _, err = cli(capsys, *[a if a != out else ref for a in args])
    assert code == 0, err
    assert data_bytes(ref) == data_bytes(out)


def test_generate_endpoint_down(dead_url, tmp_path, capsys) -> None:
    args = [
        "generate", "--out", tmp_path / "out", "-n", 30, "-q",
        "--paraphrase-url", dead_url, "--paraphrase-model", "m", "--paraphrase-retries", 0,
    ]  # fmt: skip
    code, _, err = cli(capsys, *args)
    assert code == 2 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"kg2tool: error: paraphrase endpoint {dead_url}/chat/completions: ")
    assert "cannot connect" in line
    code, stdout, err = cli(capsys, *args, "--paraphrase-lenient")
    assert code == 0, err
    assert "endpoint failures kept the template" in stdout
    frame = pl.read_parquet(tmp_path / "out" / "data")
    assert frame["question"].to_list() == frame["question_template"].to_list()


def test_generate_bad_flag_is_one_line(tmp_path, capsys) -> None:
    code, _, err = cli(
        capsys, "generate", "--out", tmp_path / "o", "-n", 10, "--paraphrase-model", "m"
    )
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (
        "kg2tool: error: paraphrase_model set without paraphrase_url; give the endpoint "
        "(--paraphrase-url, e.g. http://localhost:8000/v1) or drop these settings"
    )


def test_generate_python_api(llm, tmp_path) -> None:
    report = generate(
        out=str(tmp_path / "o"),
        num_samples=20,
        progress=False,
        paraphrase_url=llm.url,
        paraphrase_model="fake-1",
    )
    assert report.paraphrase["accepted"] == report.paraphrase["selected"] > 0
    assert "paraphrased" in report.summary()


def test_unusable_api_key_is_one_line(codex_s, ctx, llm, monkeypatch) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "sk-\u00e9t\u00e9")
    with (
        para(llm.url, key_env="MY_LLM_KEY", lenient=True) as p,
        pytest.raises(ParaphraseError) as err,
    ):
        build(codex_s, ctx, p)
    assert "$MY_LLM_KEY has characters" in str(err.value) and "\u00e9" not in str(err.value)
    assert llm.requests == []
