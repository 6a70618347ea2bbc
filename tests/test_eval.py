"""kg2tool eval against a scripted OpenAI-compatible server on 127.0.0.1 (tests/chat_server.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from chat_server import ScriptedPolicies, free_url, serve_policies

from kg2tool.cli import main
from kg2tool.errors import InputError
from kg2tool.evaluate import EndpointError, evaluate, load_samples
from kg2tool.pipeline.driver import generate
from kg2tool.tools.catalog import ApiCatalog
from kg2tool.tools.runtime import ToolRuntime

PATTERNS = "1p,2p,2i,2in,pi,triangle"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "ds"
    generate(out=str(out), kg="codex-s", patterns=PATTERNS, num_samples=48, seed=3, engine="local")
    return out


@pytest.fixture(scope="module")
def runtime(codex_s: Any) -> ToolRuntime:
    return ToolRuntime(codex_s, ApiCatalog.from_graph(codex_s, list_apis=True))


@pytest.fixture(scope="module")
def samples(dataset: Path) -> pl.DataFrame:
    return load_samples(dataset, None)


@pytest.fixture()
def policies(samples: pl.DataFrame, runtime: ToolRuntime) -> ScriptedPolicies:
    return ScriptedPolicies(samples, dict(zip(runtime.keys, runtime.names, strict=True)))


def run(dataset: Path, kg: Any, url: str, model: str, **kw: Any) -> Any:
    kw.setdefault("split", None)
    kw.setdefault("backoff", 0.01)
    return evaluate(dataset, kg, model=model, base_url=url, **kw)


def test_reference_agent_is_exact(dataset: Path, codex_s: Any, samples: pl.DataFrame) -> None:
    report = evaluate(dataset, codex_s, agent="reference", split=None)
    assert len(report.episodes) == samples.height
    want = {p for p in samples["pattern"]}
    assert set(report.summary["per_pattern"]) == want
    for e in report.episodes:
        assert e["exact_match"] == 1.0 and e["f1"] == 1.0, e["id"]
        assert e["calls"] == e["reference_calls"] and e["calls_error"] == 0
        assert e["finished"]
    assert report.summary["overall"]["calls_vs_reference"] == 1.0


def test_reference_over_http_cached_and_resumed(
    dataset: Path, codex_s: Any, policies: ScriptedPolicies, tmp_path: Path
) -> None:
    with serve_policies(policies) as url:
        # an eval stopped after 5 samples, then the whole one: it resumes from the cache
        first = run(dataset, codex_s, url, "reference", out=tmp_path / "r", limit=5)
        before = policies.requests
        assert before == sum(e["turns"] for e in first.episodes)
        report = run(dataset, codex_s, url, "reference", out=tmp_path / "r", concurrency=3)
        sent = policies.requests
        assert sent == sum(e["turns"] for e in report.episodes)
        assert report.summary["requests"] == {"sent": sent - before, "cached": before}
        assert all(e["exact_match"] == 1.0 for e in report.episodes)
        # tokens as the server reports them: 10 per message sent, 7 per reply
        e = report.episodes[0]
        asked = [n for n, m in enumerate(e["messages"]) if m["role"] == "assistant"]
        assert e["prompt_tokens"] == sum(10 * n for n in asked)
        assert e["completion_tokens"] == 7 * len(asked)
        again = run(dataset, codex_s, url, "reference", out=tmp_path / "r")
        assert policies.requests == sent  # every reply came from the cache
        assert again.summary["requests"] == {"sent": 0, "cached": sent}
    files = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"report.json", "report.md", "report.png", "episodes.jsonl"} <= files
    lines = (tmp_path / "r" / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == len(report.episodes)
    assert json.loads(lines[0])["messages"][0]["role"] == "user"
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert saved["overall"]["exact_match"] == 1.0
    assert "| all |" in (tmp_path / "r" / "report.md").read_text()


def test_wrong_and_missing_answer(dataset: Path, codex_s: Any, policies: ScriptedPolicies) -> None:
    with serve_policies(policies) as url:
        report = run(dataset, codex_s, url, "wrong_missing")
    changed = 0
    for e in report.episodes:
        if e["question"] not in policies.changed:
            assert e["exact_match"] == 1.0
            continue
        changed += 1
        wrong, missing = policies.changed[e["question"]]
        n = len(e["answers"])
        assert e["wrong"] == [wrong] and e["missing"] == [missing]
        assert e["precision"] == pytest.approx((n - 1) / n)
        assert e["recall"] == pytest.approx((n - 1) / n)
        assert e["exact_match"] == 0.0
    assert changed >= 5


@pytest.mark.parametrize(
    ("policy", "kind"),
    [("malformed", "malformed_arguments"), ("unknown_tool", "unknown_api"),
     ("misspelt", "unknown_entity")],
)  # fmt: skip
def test_failed_call_then_recovery(
    dataset: Path, codex_s: Any, policies: ScriptedPolicies, policy: str, kind: str
) -> None:
    with serve_policies(policies) as url:
        report = run(dataset, codex_s, url, policy, limit=12)
    for e in report.episodes:
        bad = e["messages"][2]
        assert bad["role"] == "tool" and bad["tool_call_id"] == "bad_0"
        error = json.loads(bad["content"])
        assert error["error"] == kind
        assert e["calls"] == e["reference_calls"] + 1 and e["calls_error"] == 1
        assert e["calls_parsed"] == e["calls"] - (policy == "malformed")
        # a misspelt name is still a schema-valid string argument
        assert e["calls_valid"] == e["calls"] - (policy != "misspelt")
        assert e["exact_match"] == 1.0 and e["finished"]
        if policy == "misspelt":  # the error suggests the name the retry then uses
            retry = json.loads(e["messages"][3]["tool_calls"][0]["function"]["arguments"])
            assert next(iter(retry.values())) in error["suggestions"]


def test_turn_limit(dataset: Path, codex_s: Any, policies: ScriptedPolicies) -> None:
    with serve_policies(policies) as url:
        report = run(dataset, codex_s, url, "never_stop", limit=5, max_turns=3)
    for e in report.episodes:
        assert e["turns"] == 3 and e["calls"] == 3 and not e["finished"]
        assert e["predicted"] == [] and e["exact_match"] == 0.0
    assert report.summary["overall"]["turn_limit"] == 5


def test_http_500_is_retried(dataset: Path, codex_s: Any, policies: ScriptedPolicies) -> None:
    with serve_policies(policies) as url:
        report = run(dataset, codex_s, url, "flaky", limit=4)
    assert all(e["exact_match"] == 1.0 for e in report.episodes)
    assert policies.requests == sum(e["turns"] for e in report.episodes) + 4
    assert report.summary["requests"]["sent"] == policies.requests


def test_endpoint_down_one_line(
    dataset: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = free_url()
    args = ["eval", str(dataset), "--model", "m", "--base-url", url, "--split", "all",
            "--retries", "0", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("kg2tool: error: endpoint http://127.0.0.1:")
    assert "cannot connect" in err
    assert not (tmp_path / "o" / "report.json").exists()


def test_api_key_a_header_cannot_carry_is_one_line(
    dataset: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KG2TOOL_TEST_KEY", "sk-\u00e9t\u00e9\nsecret")
    args = ["eval", str(dataset), "--model", "m", "--base-url", free_url(), "--split", "all",
            "--key-env", "KG2TOOL_TEST_KEY", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "$KG2TOOL_TEST_KEY has characters" in err
    assert "secret" not in err


def test_not_a_chat_completion(dataset: Path, codex_s: Any, policies: ScriptedPolicies) -> None:
    with serve_policies(policies) as url, pytest.raises(EndpointError, match="not an OpenAI chat"):
        run(dataset, codex_s, url, "not_chat", limit=2)


def test_http_404_and_system_message(
    dataset: Path, codex_s: Any, policies: ScriptedPolicies
) -> None:
    with serve_policies(policies) as url:
        with pytest.raises(EndpointError, match=r"HTTP 404: no route /chat/completions"):
            run(dataset, codex_s, url.removesuffix("/v1"), "reference", limit=1)
        report = run(dataset, codex_s, url, "reference", limit=3, system="Use the tools.")
    for e in report.episodes:
        assert e["messages"][0] == {"role": "system", "content": "Use the tools."}
        assert e["exact_match"] == 1.0


def test_dataset_of_another_kg(dataset: Path, shared_dir: Path) -> None:
    from kg2tool.kg.bundled import load_dataset
    from kg2tool.kg.graph import KnowledgeGraph

    tables, _ = load_dataset("nations", shared_dir)
    nations = KnowledgeGraph.from_tables(tables)
    with pytest.raises(InputError, match=r"made on another KG than 'nations'.*'codex-s'"):
        evaluate(dataset, nations, agent="reference", split=None, kg_name="nations")


def test_empty_split_and_bad_options(dataset: Path, codex_s: Any) -> None:
    with pytest.raises(InputError, match="no samples in split 'nope'"):
        evaluate(dataset, codex_s, agent="reference", split="nope")
    with pytest.raises(InputError, match="needs --model and --base-url"):
        evaluate(dataset, codex_s, split=None)
    with pytest.raises(InputError, match="unknown agent"):
        evaluate(dataset, codex_s, agent="oracle", split=None)


def test_cli_reference(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert (
        main(["eval", str(dataset), "--agent", "reference", "--split", "all", "--out", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    assert "| all | 48 | 1.000 |" in text
    assert json.loads((out / "report.json").read_text())["overall"]["n"] == 48
