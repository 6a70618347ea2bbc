"""``kg2tool verify``: every call of what users train on is replayed, every failure counted.

Datasets of every format are generated once; tampering with records (JSON(L) files and the
Parquet ``messages`` column) must be found sample for sample, and the broken count on a
CoDEx-S with 10% of its triples removed must equal a plain-Python replay of every call.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
from pathlib import Path

import orjson
import polars as pl
import pytest

from kg2tool.cli import main
from kg2tool.dataset.verify import stated_answers, verify_dataset
from kg2tool.errors import InputError
from kg2tool.kg.bundled import bundled_path
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.io import read_kg_dir
from kg2tool.kg.tables import KGTables
from kg2tool.samples.formats import FORMATS
from kg2tool.samples.readback import read_file
from kg2tool.tools.catalog import ApiCatalog, close_api_names

PATTERNS = "1p,2p,2i,pi,2in,ip"
BATCHED = ("openai-batched", "toolbench-batched")  # list calls <name>_batch
OTHER = "Douglas Adams"  # a real entity to put where another was


def _cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("kg2tool: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small dataset per format (set operations as tool calls, so they are replayed too)."""
    root = tmp_path_factory.mktemp("verify-ds")
    out = {}
    for name in [*FORMATS, *BATCHED]:
        fmt, _, batched = name.partition("-")
        path = root / name
        code = main(
            ["generate", "--out", str(path), "-n", "120", "--patterns", PATTERNS, "--seed", "5",
             "--format", fmt, "--set-ops", "tools", "--shard-size", "40", "-q",
             "--call-style", "batched" if batched else "single"]
        )  # fmt: skip
        assert code == 0
        out[name] = path
    return out


def _split_file(ds: Path) -> Path:
    return ds / "train.json" if (ds / "train.json").exists() else ds / "train.jsonl"


def _train_ids(ds: Path) -> list[str]:
    files = sorted((ds / "data").glob("train-*.parquet"))
    return pl.concat([pl.read_parquet(f, columns=["id"]) for f in files])["id"].to_list()


@pytest.mark.parametrize("fmt", FORMATS)
def test_clean_dataset_holds_everywhere(datasets: dict[str, Path], fmt: str, tmp_path) -> None:
    """Directory, split file and one shard: nothing fails; every record's calls are counted."""
    kg = KnowledgeGraph.load("codex-s")
    ds = datasets[fmt]
    rep = verify_dataset(ds, kg, report_path=tmp_path / "r.json")
    frames = pl.concat([pl.read_parquet(f) for f in sorted((ds / "data").glob("*.parquet"))])
    assert rep.checked == frames.height and rep.failed == 0 and not rep.failures
    assert rep.calls_checked == int(frames["num_calls"].sum())
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["checked"] == rep.checked and saved["failures"] == []
    split = verify_dataset(_split_file(ds), kg)
    assert split.checked == len(_train_ids(ds)) and split.failed == 0
    shard = sorted((ds / "data").glob("train-*.parquet"))[0]
    one = verify_dataset(shard, kg)
    assert one.checked == pl.read_parquet(shard).height and one.failed == 0


# ------------------------------------------------------------------------------ tampering


def _other_args(args: dict) -> dict:
    """The same parameters naming another entity (a real one, so only the trace tells)."""
    new = {}
    for k, v in args.items():
        if isinstance(v, list):
            new[k] = [OTHER] if v != [OTHER] else ["Bob Dylan"]
        else:
            new[k] = OTHER if v != OTHER else "Bob Dylan"
    return new


ATLANTIS = json.dumps(["Atlantis"], separators=(",", ":"))


def _tamper_openai(messages: list, kind: str, rng: random.Random) -> None:
    if kind == "answer":
        messages[-1]["content"] = "So the answer is Atlantis."
        return
    calls = [m for m in messages if m["role"] == "assistant" and m.get("tool_calls")]
    if kind == "argument":
        fn = rng.choice(calls)["tool_calls"][0]["function"]
        fn["arguments"] = json.dumps(_other_args(json.loads(fn["arguments"])))
    else:
        rng.choice([m for m in messages if m["role"] == "tool"])["content"] = ATLANTIS


def _tamper_sharegpt(conv: list, kind: str, rng: random.Random) -> None:
    if kind == "answer":
        conv[-1]["value"] = "So the 2 answers are Atlantis and Brad Pitt."
    elif kind == "argument":
        m = rng.choice([m for m in conv if m["from"] == "function_call"])
        call = json.loads(m["value"])
        call["arguments"] = _other_args(call["arguments"])
        m["value"] = json.dumps(call)
    else:
        rng.choice([m for m in conv if m["from"] == "observation"])["value"] = ATLANTIS


def _tamper_toolbench(records: list, kind: str, rng: random.Random) -> None:
    if kind == "answer":
        fin = records[-1]["conversations"][-1]
        head, raw = fin["value"].split("\nAction Input: ", 1)
        data = json.loads(raw)
        data["final_answer"] = "So the answer is Atlantis."
        fin["value"] = head + "\nAction Input: " + json.dumps(data)
        return
    if kind == "observation":  # the first step record holds no observation yet
        records = [r for r in records if any(m["from"] == "function" for m in r["conversations"])]
    conv = rng.choice(records)["conversations"]
    if kind == "argument":
        steps = [m for m in conv if m["from"] == "assistant" and "Action: Finish" not in m["value"]]
        m = rng.choice(steps)
        head, raw = m["value"].split("\nAction Input: ", 1)
        m["value"] = head + "\nAction Input: " + json.dumps(_other_args(json.loads(raw)))
    else:
        m = rng.choice([m for m in conv if m["from"] == "function"])
        m["value"] = json.dumps({"error": "", "response": ATLANTIS})


def _tamper_xlam(answers: list, rng: random.Random) -> None:
    call = rng.choice(answers)
    call["arguments"] = _other_args(call["arguments"])


def _tampered_samples(fmt: str, kinds: list[str]) -> list[str]:
    """The kinds that can be tampered in a format (xLAM has no observations or answer)."""
    return ["argument"] if fmt == "xlam" else kinds


def _tamper_split_file(path: Path, fmt: str, rng: random.Random, k: int) -> list[int]:
    """Tamper k random samples of a split file; their positions."""
    if fmt == "toolbench":
        records = json.loads(path.read_text())
        groups, cur = [], []
        for r in records:
            cur.append(r)
            if "Action: Finish" in r["conversations"][-1]["value"]:
                groups.append(cur)
                cur = []
        chosen = sorted(rng.sample(range(len(groups)), k))
        for i in chosen:
            _tamper_toolbench(groups[i], rng.choice(["observation", "answer", "argument"]), rng)
        path.write_text(json.dumps([r for g in groups for r in g]))
        return chosen
    lines = path.read_text().splitlines()
    chosen = sorted(rng.sample(range(len(lines)), k))
    for i in chosen:
        rec = json.loads(lines[i])
        kind = rng.choice(_tampered_samples(fmt, ["observation", "answer", "argument"]))
        if fmt in ("openai", "verl"):  # verl runs write the openai records beside its rows
            _tamper_openai(rec["messages"], kind, rng)
        elif fmt == "sharegpt":
            _tamper_sharegpt(rec["conversations"], kind, rng)
        else:
            answers = json.loads(rec["answers"])
            _tamper_xlam(answers, rng)
            rec["answers"] = json.dumps(answers)
        lines[i] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")
    return chosen


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", [*FORMATS, *BATCHED])
def test_tampered_records_are_found_exactly(
    datasets: dict[str, Path], name: str, seed: int, tmp_path: Path
) -> None:
    """Random observations, answers or call arguments changed in the split file: verify
    fails exactly those samples (seeded property test)."""
    fmt = name.partition("-")[0]
    rng = random.Random(seed * 31 + len(name))
    ds = tmp_path / "ds"
    shutil.copytree(datasets[name], ds)
    ids = _train_ids(ds)
    chosen = _tamper_split_file(_split_file(ds), fmt, rng, k=rng.randint(1, 6))
    rep = verify_dataset(ds, KnowledgeGraph.load("codex-s"))
    assert {f["id"] for f in rep.failures} == {ids[i] for i in chosen}
    assert rep.failed == len(chosen) == len(set(chosen))


@pytest.mark.parametrize("fmt", FORMATS)
def test_tampered_parquet_messages_are_found_exactly(
    datasets: dict[str, Path], fmt: str, tmp_path: Path
) -> None:
    """The same in the Parquet ``messages`` column of one shard."""
    rng = random.Random(7 + FORMATS.index(fmt))
    ds = tmp_path / "ds"
    shutil.copytree(datasets[fmt], ds)
    shard = sorted((ds / "data").glob("train-*.parquet"))[0]
    frame = pl.read_parquet(shard)
    messages = frame["messages"].to_list()
    chosen = sorted(rng.sample(range(frame.height), min(4, frame.height)))
    for i in chosen:
        value = json.loads(messages[i])
        kind = rng.choice(_tampered_samples(fmt, ["observation", "answer", "argument"]))
        {
            "openai": lambda v, k: _tamper_openai(v, k, rng),
            "verl": lambda v, k: _tamper_openai(v, k, rng),  # verl runs carry openai messages
            "sharegpt": lambda v, k: _tamper_sharegpt(v, k, rng),
            "toolbench": lambda v, k: _tamper_toolbench(v, k, rng),
            "xlam": lambda v, k: _tamper_xlam(v, rng),
        }[fmt](value, kind)
        messages[i] = json.dumps(value)
    frame.with_columns(pl.Series("messages", messages)).write_parquet(shard)
    rep = verify_dataset(ds, KnowledgeGraph.load("codex-s"))
    assert {f["id"] for f in rep.failures} == {frame["id"][i] for i in chosen}


@pytest.mark.parametrize("fmt", ["openai", "sharegpt", "toolbench"])
def test_standalone_file_finds_changed_observations_and_answers(
    datasets: dict[str, Path], fmt: str, tmp_path: Path
) -> None:
    """A split file on its own (no Parquet beside it): a changed observation or an answer
    naming an entity no call returned is found; the CLI says samples were partly checked."""
    rng = random.Random(11)
    src = _split_file(datasets[fmt])
    lone = tmp_path / src.name
    shutil.copy(src, lone)
    samples = read_file(lone)
    text = lone.read_text()
    # tamper: observation in one sample, answer in another (by rewriting whole records)
    if fmt == "toolbench":
        records = json.loads(text)
        bounds, start = [], 0
        for j, r in enumerate(records):
            if "Action: Finish" in r["conversations"][-1]["value"]:
                bounds.append((start, j + 1))
                start = j + 1
        a, b = rng.sample(range(len(bounds)), 2)
        _tamper_toolbench(records[bounds[a][0] : bounds[a][1]], "observation", rng)
        _tamper_toolbench(records[bounds[b][0] : bounds[b][1]], "answer", rng)
        lone.write_text(json.dumps(records))
    else:
        lines = text.splitlines()
        a, b = rng.sample(range(len(lines)), 2)
        for i, kind in ((a, "observation"), (b, "answer")):
            rec = json.loads(lines[i])
            if fmt == "openai":
                _tamper_openai(rec["messages"], kind, rng)
            else:
                _tamper_sharegpt(rec["conversations"], kind, rng)
            lines[i] = json.dumps(rec)
        lone.write_text("\n".join(lines) + "\n")
    rep = verify_dataset(lone, KnowledgeGraph.load("codex-s"))
    assert {f["where"] for f in rep.failures} == {samples[a].where, samples[b].where}
    assert rep.checked == len(samples) and rep.partial == len(samples)


# --------------------------------------------------- a reduced KG against plain Python


def _reduced_codex(fraction: float, seed: int) -> tuple[KnowledgeGraph, pl.DataFrame]:
    tables = read_kg_dir(bundled_path("codex-s"))
    t = tables.triples
    keep = t.sample(fraction=1 - fraction, seed=seed, shuffle=False)
    keys = pl.concat([keep["head"], keep["tail"]]).unique().implode()
    ents = tables.entities.filter(pl.col("key").is_in(keys))
    types = tables.entity_types.filter(pl.col("key").is_in(keys))
    reduced = KGTables(
        triples=keep,
        entities=ents,
        relations=tables.relations.filter(pl.col("key").is_in(keep["relation"].unique().implode())),
        entity_types=types,
        type_labels=tables.type_labels,
    )
    return KnowledgeGraph.from_tables(reduced), keep


def _sharegpt_calls(out: Path) -> list[tuple[str, list[tuple[str, dict, str]]]]:
    """(sample id, [(api, arguments, observation)]) read with plain json from the ShareGPT
    split files, paired in order with their Parquet rows."""
    samples = []
    for jsonl in sorted(out.glob("*.jsonl")):
        shards = sorted((out / "data").glob(f"{jsonl.stem}-*.parquet"))
        ids = pl.concat([pl.read_parquet(f, columns=["id"]) for f in shards])["id"].to_list()
        lines = jsonl.read_text().splitlines()
        assert len(lines) == len(ids)
        for sid, line in zip(ids, lines, strict=True):
            conv = json.loads(line)["conversations"]
            calls = []
            for m, nxt in itertools.pairwise(conv):
                if m["from"] == "function_call":
                    call = json.loads(m["value"])
                    assert nxt["from"] == "observation"
                    calls.append((call["name"], call["arguments"], nxt["value"]))
            samples.append((sid, calls))
    return samples


def _plain_replay_broken(samples, reduced: KnowledgeGraph, triples: pl.DataFrame) -> set[str]:
    """Samples with a call whose plain-Python result on the reduced triples differs from its
    recorded observation (dict of sets; names are labels, unique in CoDEx-S)."""
    keys, names = reduced.entities["key"].to_list(), reduced.entities["label"].to_list()
    labels = dict(zip(keys, names, strict=True))
    assert len(set(labels.values())) == len(labels)  # display names are the labels
    key_of = {v: k for k, v in labels.items()}
    forward: dict[tuple[str, str], set[str]] = {}
    inverse: dict[tuple[str, str], set[str]] = {}
    for h, r, t in triples.iter_rows():
        forward.setdefault((r, h), set()).add(t)
        inverse.setdefault((r, t), set()).add(h)
    apis = {a.name: a for a in ApiCatalog.from_graph(reduced, list_apis=True).apis}

    def run(name: str, arguments: dict) -> set[str] | None:
        """The result names of one call, None when the API or an entity is gone."""
        api = apis.get(name)
        if api is None:
            return None
        if api.kind == "set_operation":
            first, second = set(arguments["first"]), set(arguments["second"])
            if not (first | second) <= key_of.keys():
                return None
            return {"intersection": first & second, "union": first | second}.get(
                api.operation, first - second
            )
        (arg,) = arguments.values()
        args = arg if isinstance(arg, list) else [arg]  # a list API: the union over its list
        if not set(args) <= key_of.keys():
            return None
        table = forward if api.direction == "forward" else inverse
        return {labels[k] for a in args for k in table.get((api.relation, key_of[a]), ())}

    broken = set()
    for sid, calls in samples:
        for name, arguments, observation in calls:
            got = run(name, arguments)
            if got is None or got != set(json.loads(observation)):
                broken.add(sid)
                break
    return broken


@pytest.mark.parametrize(("call_style", "set_ops"), [("single", "thought"), ("batched", "tools")])
def test_broken_count_on_reduced_codex_equals_plain_python(
    tmp_path: Path, call_style: str, set_ops: str
) -> None:
    """Generate on CoDEx-S, remove 10% of its triples (seeded), verify: the broken samples
    are exactly those with a call a plain-Python replay over the remaining triples changes
    (relation calls, list calls and set-operation calls)."""
    out = tmp_path / "ds"
    assert main(["generate", "--out", str(out), "-n", "600", "--patterns", PATTERNS,
                 "--seed", "2", "--format", "sharegpt", "--call-style", call_style,
                 "--set-ops", set_ops, "-q"]) == 0  # fmt: skip
    reduced, triples = _reduced_codex(0.10, seed=13)
    samples = _sharegpt_calls(out)
    called = {name for _, calls in samples for name, _, _ in calls}
    if call_style == "batched":  # list calls and set-operation calls are among them
        assert any(n.endswith("_batch") for n in called)
        assert {"get_intersection_of", "get_negation_of"} <= called
    want = _plain_replay_broken(samples, reduced, triples)
    rep = verify_dataset(out, reduced, report_path=tmp_path / "report.json")
    got = {f["id"] for f in rep.failures}
    assert got == want and rep.failed == len(want)
    assert 0 < len(want) < len(samples)  # the reduction breaks some samples, not all
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["failed"] == len(want) and len({f["id"] for f in saved["failures"]}) == len(want)


def test_kg_without_the_used_apis_fails_every_sample(datasets: dict[str, Path]) -> None:
    """Every relation the dataset calls removed: every sample fails, none is left uncounted."""
    tables = read_kg_dir(bundled_path("codex-s"))
    ds = datasets["openai"]
    frame = pl.concat([pl.read_parquet(f) for f in sorted((ds / "data").glob("*.parquet"))])
    used = {b for row in frame["bindings"].to_list() for k, b in orjson.loads(row).items()
            if k.startswith("r")}  # fmt: skip
    keep = tables.triples.filter(~pl.col("relation").is_in(list(used)))
    kg = KnowledgeGraph.from_tables(KGTables(triples=keep))
    rep = verify_dataset(ds, kg)
    assert rep.checked == frame.height and rep.failed == frame.height


# --------------------------------------------------------------------------- the CLI


def test_cli_exit_status_report_and_strict(
    datasets: dict[str, Path], tmp_path: Path, capsys
) -> None:
    """Exit 0 when everything holds, 1 when a sample no longer holds (without --strict);
    --strict also fails samples only partly checked (a lone file); the report is written."""
    ds = tmp_path / "ds"
    shutil.copytree(datasets["sharegpt"], ds)
    code, out, _ = _cli(capsys, "verify", ds)
    assert code == 0 and " 0 no longer hold" in out
    assert json.loads((tmp_path / "ds.verify-report.json").read_text())["failed"] == 0
    assert not list(ds.glob("*report*"))  # nothing written into the dataset
    lone = tmp_path / "lone" / "x.jsonl"
    lone.parent.mkdir()
    shutil.copy(ds / "train.jsonl", lone)
    assert _cli(capsys, "verify", lone)[0] == 0
    code, out, _ = _cli(capsys, "verify", lone, "--strict")
    assert code == 1 and "only partly checked" in out
    _tamper_split_file(ds / "train.jsonl", "sharegpt", random.Random(3), k=2)
    report = tmp_path / "elsewhere.json"
    code, out, _ = _cli(capsys, "verify", ds, "--report", report)
    assert code == 1 and ": 2 no longer hold" in out
    assert json.loads(report.read_text())["failed"] == 2


@pytest.mark.parametrize(
    "make",
    [
        lambda d: d,  # a directory without shards
        lambda d: (d / "notes.jsonl").write_text('{"a": 1}\n') and d / "notes.jsonl",
        lambda d: (d / "broken.jsonl").write_text("{not json\n") and d / "broken.jsonl",
        lambda d: (d / "x.parquet").write_bytes(b"PAR1 nonsense") and d / "x.parquet",
        lambda d: (d / "t.txt").write_text("hello") and d / "t.txt",
        lambda d: d / "missing",
    ],
)
def test_cli_not_a_dataset_is_one_line(make, tmp_path: Path, capsys) -> None:
    target = make(tmp_path)
    code, _, err = _cli(capsys, "verify", target)
    assert code == 2
    line = _one_line(err)
    assert str(target.name) in line and "polars" not in line.lower()
    with pytest.raises((InputError, FileNotFoundError)):
        verify_dataset(target, KnowledgeGraph.load("codex-s"))


def test_cli_apis_out_is_a_file_is_one_line(tmp_path: Path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = _cli(capsys, "apis", "--out", f)
    assert code == 2 and "is a file" in _one_line(err) and "Errno" not in err
    code, _, err = _cli(capsys, "apis", "--out", f / "sub")
    assert code == 2 and "Errno" not in _one_line(err)


def test_call_suggests_by_relation_words(capsys) -> None:
    code, out, _ = _cli(capsys, "call", "get_place_of_birth_of_human", '{"human": "Douglas Adams"}')
    assert code == 1
    assert json.loads(out)["suggestions"][0] == "get_birthplace_of_person"
    names = ApiCatalog.from_graph(KnowledgeGraph.load("codex-s")).names
    assert close_api_names("getPlaceOfBirthOfHuman", names)[0] == "get_birthplace_of_person"
    assert close_api_names("get_spouse_of_human", names)[0] == "get_spouses_of_person"
    assert close_api_names("zzzz", names) == []


def test_stated_answers_parses_names_with_commas_and_and() -> None:
    names = ["Bosnia and Herzegovina", "Washington, D.C.", "Paris"]
    text = "First I look. So the 3 answers are Washington, D.C., Bosnia and Herzegovina and Paris."
    assert sorted(stated_answers(text, names)) == sorted(names)
    assert stated_answers("So the answer is Paris.", names) == ["Paris"]
    assert stated_answers("So the 2 answers are Paris.", names) is None  # count disagrees
    assert stated_answers("So the answer is Atlantis.", names) is None
    assert stated_answers('The answers: ["Paris", "Rome"]', names) == ["Paris", "Rome"]
    assert stated_answers('It is ["Foo [band]", "B]"].', names) == ["Foo [band]", "B]"]
    assert stated_answers("So the answer is [1].", names) is None  # not a list of names
    assert stated_answers("So no entity satisfies the question: none left.", names) == []


@pytest.mark.parametrize("fmt", ["openai", "sharegpt"])
def test_record_column_of_a_run_without_jsonl_is_checked(fmt: str, tmp_path: Path) -> None:
    """``jsonl = false`` keeps the records in the Parquet ``record`` column: they are read
    and replayed too, so a changed observation there is found."""
    conf = tmp_path / "run.toml"
    conf.write_text("jsonl = false\n")
    out = tmp_path / "ds"
    assert main(["generate", "--out", str(out), "-n", "40", "--patterns", PATTERNS, "--seed", "4",
                 "--format", fmt, "--config", str(conf), "-q"]) == 0  # fmt: skip
    assert not list(out.glob("*.jsonl"))
    kg = KnowledgeGraph.load("codex-s")
    assert verify_dataset(out, kg).failed == 0
    shard = sorted((out / "data").glob("train-*.parquet"))[0]
    frame = pl.read_parquet(shard)
    records = frame["record"].to_list()
    victim = next(i for i, r in enumerate(records) if '"observation"' in r or '"tool"' in r)
    rec = json.loads(records[victim])
    if fmt == "openai":
        _tamper_openai(rec["messages"], "observation", random.Random(0))
    else:
        _tamper_sharegpt(rec["conversations"], "observation", random.Random(0))
    records[victim] = json.dumps(rec)
    frame.with_columns(pl.Series("record", records)).write_parquet(shard)
    rep = verify_dataset(out, kg)
    assert {f["id"] for f in rep.failures} == {frame["id"][victim]}
    assert {f["where"] for f in rep.failures} == {f"{shard.name}[row {victim}] record"}


def test_split_file_out_of_step_with_its_shards_is_one_line(
    datasets: dict[str, Path], tmp_path: Path, capsys
) -> None:
    """A split file missing a sample, or ToolBench steps cut before Finish: exit 2, one line
    naming the file."""
    ds = tmp_path / "ds"
    shutil.copytree(datasets["sharegpt"], ds)
    lines = (ds / "train.jsonl").read_text().splitlines()
    (ds / "train.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    code, _, err = _cli(capsys, "verify", ds)
    assert code == 2 and "train.jsonl" in _one_line(err) and "Parquet" in err
    tb = tmp_path / "tb.json"
    records = json.loads((datasets["toolbench"] / "train.json").read_text())
    tb.write_text(json.dumps(records[:-1]))
    code, _, err = _cli(capsys, "verify", tb)
    assert code == 2 and "without a Finish step" in _one_line(err)


def test_cli_report_that_cannot_be_written_is_one_line(
    datasets: dict[str, Path], tmp_path: Path, capsys
) -> None:
    code, _, err = _cli(capsys, "verify", datasets["xlam"], "--report", tmp_path / "no" / "r.json")
    assert code == 2 and "cannot write the report" in _one_line(err) and "Errno" not in err
    code, _, err = _cli(capsys, "verify", datasets["xlam"], "--report", tmp_path)
    assert code == 2 and "names a directory" in _one_line(err)
