"""Trainer formats (``../shared/FORMATS.md``): records built as JSON text with Polars string ops.

- ``openai``: fine-tuning lines ``{messages, tools, parallel_tool_calls: false}``; assistant
  messages carry the thought as ``content`` plus one ``tool_calls`` entry whose ``arguments`` is a
  JSON *string*; ``tool_call_id`` equals the call's ``id`` (``call_<step>``).
- ``toolbench``: one record per assistant step, ``{"id": "Step {i}: {query}", "conversations"}``
  holding the conversation up to that step (system = message 0); the system text is ToolBench's
  ``FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION`` with rapidapi.py's task description, transformed as
  ``process_system_message`` does (format line inserted, ``str(functions)`` appended, Finish
  included); the last step calls ``Finish`` with ``give_answer``. The file is one JSON array.
- ``sharegpt``: LLaMA-Factory ``{"conversations", "system", "tools"}`` with human /
  function_call / observation / gpt turns; ``arguments`` is an object, ``tools`` a JSON string;
  :func:`dataset_info_entry` is the ``dataset_info.json`` entry.
- ``xlam``: ``{id, query, tools, answers}`` (tools/answers JSON strings). xLAM has one set of
  parallel calls and no observations, so only calls whose argument is an anchor of the question
  are exported (``xlam_mode="independent"`` keeps only samples made entirely of such calls:
  1p, 2i, 3i, 2in, 3in, 2u; ``"first_hop"`` also keeps the first hop of multi-hop samples as a
  partial record; with ``call_style="batched"`` a first hop is one list call over its anchor).
  Set operations (thoughts, or with ``set_ops="tools"`` the set-operation calls,
  whose arguments are earlier results), observations, error calls and the final answer are left
  out; JOIN (cyclic) samples are never independent, and in ``first_hop`` mode give their calls
  from anchors.
- ``verl``: the ``openai`` lines (for an SFT warm-up), and at the end of a run the RL rows
  ``verl/{split}.parquet`` and the tool config ``verl/tool_config.yaml`` of
  :mod:`kg2tool.rl.verl`.

Each format's rules are checked by :mod:`kg2tool.testing.validators` (used by the tests).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from kg2tool.textops import Int, Join, Str, Strings, concat_built, group_offsets, json_str
from kg2tool.tools.catalog import ApiCatalog

__all__ = [
    "FORMATS",
    "TOOLBENCH_FINISH",
    "ToolFragments",
    "build_records",
    "dataset_info_entry",
    "record_parts",
    "toolbench_system_prompt",
]

FORMATS = ("openai", "toolbench", "sharegpt", "xlam", "verl")
# formats whose records are the openai lines (verl adds its RL files at the end of a run)
_OPENAI_RECORDS = ("openai", "verl")

# toolbench/inference/Prompts/ReAct_prompts.py (typos are ToolBench's and must stay).
FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION = """You are AutoGPT, you can use many tools(functions) to do the following task.
First I will give you the task description, and your task start.
At each step, you need to give your thought to analyze the status now and what to do next, with a function call to actually excute your step.
After the call, you will get the call result, and you are now in a new state.
Then you will analyze your status now, then decide what to do next...
After many (Thought-call) pairs, you finally perform the task, then you can give your finial answer.
Remember:{TRAILING_SPACE}
1.the state change is irreversible, you can't go back to one of the former state, if you want to restart the task, say "I give up and restart".
2.All the thought is short, at most in 5 sentence.
3.You can do more then one trys, so if your plan is to continusly try some conditions, you can do one of the conditions per try.
Let's Begin!
Task description: {task_description}""".replace("{TRAILING_SPACE}", " ")

# toolbench/inference/Downstream_tasks/rapidapi.py task description (then one line per tool).
TOOLBENCH_TASK = (
    "You should use functions to help handle the real time user querys. Remember:\n"
    '1.ALWAYS call "Finish" function at the end of the task. And the final answer should contain '
    "enough information to show to the user,If you can't handle the task, or you find that "
    "function calls always fail(the function is not valid now), use function "
    "Finish->give_up_and_restart.\n"
    "2.Do not use origin tool names, use only subfunctions' names.\n"
    "You have access of the following tools:\n"
)

TOOLBENCH_FINISH: dict[str, Any] = {
    "name": "Finish",
    "description": "If you believe that you have obtained a result that can answer the task, please call this function to provide the final answer. Alternatively, if you recognize that you are unable to proceed with the task in the current state, call this function to restart. Remember: you must ALWAYS call this function at the end of your attempt, and the only part that will be shown to the user is the final answer, so it should contain sufficient information.",
    "parameters": {
        "type": "object",
        "properties": {
            "return_type": {"type": "string", "enum": ["give_answer", "give_up_and_restart"]},
            "final_answer": {
                "type": "string",
                "description": 'The final answer you want to give the user. You should have this field if "return_type"=="give_answer"',
            },
        },
        "required": ["return_type"],
    },
}
TOOL_NAME = "knowledge_graph"
TOOL_DESCRIPTION = (
    "Look up facts in a knowledge graph: each API follows one relation from an entity."
)


def toolbench_system_prompt() -> str:
    """The system text before ``str(functions)`` (process_system_message applied)."""
    task = (
        TOOLBENCH_TASK + f"1.{TOOL_NAME}: {TOOL_DESCRIPTION[:512].replace(chr(10), '').strip()}\n"
    )
    text = FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION.replace("{task_description}", task)
    anchor = "with a function call to actually excute your step."
    text = text.replace(
        anchor,
        anchor + " Your output should follow this format:\nThought:\nAction\nAction Input:\n",
    )
    return text + "\nSpecifically, you have access to the following APIs: "


def _js_text(text: str) -> str:
    """A Python string as the inside of a JSON string literal (no quotes)."""
    return orjson.dumps(text).decode()[1:-1]


class ToolFragments:
    """Per-API JSON fragments for every format, computed once per catalogue."""

    def __init__(self, catalog: ApiCatalog) -> None:
        """Serialise every API once (the per-sample work is then string joins)."""
        self.catalog = catalog
        self.index = {a.name: i for i, a in enumerate(catalog.apis)}
        openai = catalog.to_openai_tools()
        self.openai = pl.Series([orjson.dumps(t).decode() for t in openai], dtype=pl.String)
        self.openai_strings = Strings(self.openai)
        plain = [t["function"] for t in openai]
        self.plain_js = pl.Series(
            [_js_text(orjson.dumps(t).decode()) for t in plain], dtype=pl.String
        )
        self.xlam_js = pl.Series(
            [_js_text(orjson.dumps(t).decode()) for t in catalog.to_xlam_tools()], dtype=pl.String
        )
        self.toolbench_js = pl.Series([_js_text(repr(t)) for t in plain], dtype=pl.String)
        self.finish_js = _js_text(repr(TOOLBENCH_FINISH))
        self.system_js = _js_text(toolbench_system_prompt())
        self.relation_ids = [i for i, a in enumerate(catalog.apis) if a.kind == "relation"]
        self.set_op_names = [a.name for a in catalog.apis if a.kind == "set_operation"]


def _lists(tool_ids: pl.Series, frag: pl.Series, sep: str) -> pl.Series:
    """Per sample, the fragments of its tools joined by ``sep``."""
    arr = tool_ids.cast(pl.List(pl.Int64))
    return pl.select(
        pl.lit(arr).list.eval(pl.element().replace_strict(range(frag.len()), frag)).list.join(sep)
    ).to_series()


def build_records(
    fmt: str,
    samples: pl.DataFrame,
    steps: pl.DataFrame,
    fragments: ToolFragments,
    *,
    xlam_mode: str = "independent",
    id_offset: int = 0,
    with_record: bool = True,
) -> pl.DataFrame:
    """Columns ``sid``, ``tools`` (OpenAI JSON), ``messages`` (format JSON), ``record`` (one line).

    ``samples``: sid, question, final_text, tool_ids (List of catalogue indices); ``steps``:
    sid, step, kind, api, argument, arguments, observation, thought, from_anchor.
    ``with_record=False`` leaves ``record`` out where :func:`record_parts` can write it from
    the other columns (openai), for callers that only write it out.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    if fmt in _OPENAI_RECORDS:
        return _openai(samples, steps, fragments, with_record=with_record)
    tools_openai = _lists(samples["tool_ids"], fragments.openai, ",")
    base = samples.select("sid", "question", "final_text").with_columns(
        pl.concat_str(pl.lit("["), pl.lit(tools_openai), pl.lit("]")).alias("tools")
    )
    st = steps.sort("sid", "step")
    args_py = pl.concat_str(
        pl.lit('{"'), pl.col("param"), pl.lit('": '), json_str(pl.col("argument")), pl.lit("}")
    )
    if st.height and st["param"].null_count():  # set-operation calls: {"first": [...], ...}
        args_py = pl.when(pl.col("param").is_null()).then(_set_args_py()).otherwise(args_py)
    if st.height and st["argument"].null_count() > st["param"].null_count():
        # list calls (call_style="batched"): a parameter but no single argument
        is_list = pl.col("argument").is_null() & pl.col("param").is_not_null()
        args_py = pl.when(is_list).then(_list_args_py(is_list)).otherwise(args_py)
    if fmt == "sharegpt":
        call = pl.concat_str(
            pl.lit('{"name": "'), pl.col("api"), pl.lit('", "arguments": '), args_py, pl.lit("}")
        )
        frag = pl.concat_str(
            pl.lit('{"from":"function_call","value":'),
            json_str(call),
            pl.lit('},{"from":"observation","value":'),
            json_str(pl.col("observation")),
            pl.lit("}"),
        )
        body = _per_sample(base, st.select("sid", frag.alias("f")), ",")
        tools_plain = _lists(samples["tool_ids"], fragments.plain_js, ",")
        out = (
            body.with_columns(
                pl.concat_str(
                    pl.lit('[{"from":"human","value":'),
                    json_str(pl.col("question")),
                    pl.lit("},"),
                    pl.col("f"),
                    pl.lit('{"from":"gpt","value":'),
                    json_str(pl.col("final_text")),
                    pl.lit("}]"),
                ).alias("messages"),
                pl.concat_str(pl.lit('"['), pl.lit(tools_plain), pl.lit(']"')).alias("tools_str"),
            )
            .with_columns(
                pl.concat_str(
                    pl.lit('{"conversations":'),
                    pl.col("messages"),
                    pl.lit(',"system":"","tools":'),
                    pl.col("tools_str"),
                    pl.lit("}"),
                ).alias("record")
            )
            .drop("tools_str")
        )
    elif fmt == "toolbench":
        out = _toolbench(base, st, samples, fragments, args_py)
    else:
        out = _xlam(base, st, samples, fragments, xlam_mode, id_offset)
    return out.select("sid", "tools", "messages", "record")


def _set_args_py() -> pl.Expr:
    """``{"first": ["A", "B"], "second": [...]}`` (json.dumps spacing) of a set-operation
    call from its compact ``arguments`` JSON (null ``param``)."""
    dtype = pl.Struct({"first": pl.List(pl.String), "second": pl.List(pl.String)})
    decoded = (
        pl.when(pl.col("param").is_null())
        .then(pl.col("arguments"))
        .otherwise(pl.lit('{"first":[],"second":[]}'))
        .str.json_decode(dtype)
    )

    def names(field: str) -> pl.Expr:
        return decoded.struct.field(field).list.eval(json_str(pl.element())).list.join(", ")

    return pl.concat_str(
        pl.lit('{"first": ['),
        names("first"),
        pl.lit('], "second": ['),
        names("second"),
        pl.lit("]}"),
    )


def _list_args_py(is_list: pl.Expr) -> pl.Expr:
    """``{"humans": ["A", "B"]}`` (json.dumps spacing) of a list call from its compact
    ``arguments`` JSON (``{"humans":[...]}``)."""
    body = (
        pl.when(is_list)
        .then(pl.col("arguments").str.extract(r'^\{"[^"]*":(\[.*\])\}$', 1))
        .otherwise(pl.lit("[]"))
        .str.json_decode(pl.List(pl.String))
    )
    return pl.concat_str(
        pl.lit('{"'),
        pl.col("param"),
        pl.lit('": ['),
        body.list.eval(json_str(pl.element())).list.join(", "),
        pl.lit("]}"),
    )


def _flat_ids(col: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int64[n+1], values int64) of a List(Int) column."""
    arr = col.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_list(pa.int64()))
    off = np.asarray(arr.offsets, dtype=np.int64)
    vals = np.asarray(arr.values, dtype=np.int64)[off[0] : off[-1]]
    return off - off[0], vals


def _openai(
    samples: pl.DataFrame, steps: pl.DataFrame, fr: ToolFragments, *, with_record: bool = True
) -> pl.DataFrame:
    """The openai columns in one native pass each (same bytes as the Polars expressions of the
    other formats would give: see :mod:`kg2tool.textops`)."""
    n = samples.height
    t_off, t_ids = _flat_ids(samples["tool_ids"])
    tools = concat_built(n, "[", Join(fr.openai_strings, t_off, t_ids), "]")
    st = steps.select("sid", "step", "thought", "api", "arguments", "observation").sort(
        "sid", "step"
    )
    step = st["step"].to_numpy()
    frag = concat_built(
        st.height,
        '{"role":"assistant","content":',
        Str(st["thought"], json=True),
        ',"tool_calls":[{"id":"call_',
        Int(step),
        '","type":"function","function":{"name":"',
        Str(st["api"]),
        '","arguments":',
        Str(st["arguments"], json=True),
        '}}]},{"role":"tool","tool_call_id":"call_',
        Int(step),
        '","content":',
        Str(st["observation"], json=True),
        "}",
    )
    groups, index = group_offsets(samples["sid"].to_numpy(), st["sid"].to_numpy())
    messages = concat_built(
        n,
        '[{"role":"user","content":',
        Str(samples["question"], json=True),
        "},",
        Join(frag, groups, index, sep=",", trailing=True),
        '{"role":"assistant","content":',
        Str(samples["final_text"], json=True),
        "}]",
    )
    cols = [samples["sid"], tools.series("tools"), messages.series("messages")]
    if with_record:
        head, mid, tail = _OPENAI_RECORD
        record = concat_built(n, head, Str(messages), mid, Str(tools), tail)
        cols.append(record.series("record"))
    return pl.DataFrame(cols)


# The openai line around its ``messages`` and ``tools`` (see :func:`record_parts`).
_OPENAI_RECORD = ('{"messages":', ',"tools":', ',"parallel_tool_calls":false}')


def record_parts(fmt: str, columns: Any, rows: np.ndarray | None = None) -> list[Any] | None:
    """The :mod:`kg2tool.textops` parts of the ``record`` lines of some rows (``rows``: their
    positions; all rows when None), built from the other columns (``columns[name]``: a
    DataFrame, or a mapping to String Series / :class:`~kg2tool.textops.Strings`); None for
    formats whose record is not a concatenation of them (use the ``record`` column)."""
    if fmt not in _OPENAI_RECORDS:
        return None
    idx = None if rows is None else np.asarray(rows, dtype=np.int64)
    head, mid, tail = _OPENAI_RECORD
    return [head, Str(columns["messages"], index=idx), mid, Str(columns["tools"], index=idx), tail]


def _per_sample(base: pl.DataFrame, frags: pl.DataFrame, sep: str) -> pl.DataFrame:
    """base joined with its step fragments joined by ``sep`` (plus a trailing sep), "" if none."""
    agg = frags.group_by("sid", maintain_order=True).agg(
        pl.concat_str(pl.col("f").str.join(sep), pl.lit(sep)).alias("f")
    )
    return base.join(agg, on="sid", how="left", maintain_order="left").with_columns(
        pl.col("f").fill_null("")
    )


def _toolbench(
    base: pl.DataFrame, st: pl.DataFrame, samples: pl.DataFrame, fr: ToolFragments, args_py: pl.Expr
) -> pl.DataFrame:
    """One record per assistant step, each the conversation up to it."""
    funcs = _lists(samples["tool_ids"], fr.toolbench_js, ", ")
    system = pl.concat_str(
        pl.lit('{"from":"system","value":"' + fr.system_js + "["),
        pl.lit(funcs),
        pl.lit(", " + fr.finish_js + ']"}'),
    )
    user = pl.concat_str(
        pl.lit('{"from":"user","value":'),
        json_str(pl.concat_str(pl.lit("\n"), pl.col("question"), pl.lit("\nBegin!\n"))),
        pl.lit("}"),
    )
    assistant = pl.concat_str(
        pl.lit("\nThought: "),
        pl.col("thought"),
        pl.lit("\nAction: "),
        pl.col("api"),
        pl.lit("\nAction Input: "),
        args_py,
    )
    function = pl.concat_str(
        pl.lit('{"error": '),
        pl.when(pl.col("kind") == "error")
        .then(json_str(pl.col("observation").str.json_path_match("$.message")))
        .otherwise(pl.lit('""')),
        pl.lit(', "response": '),
        json_str(pl.col("observation")),
        pl.lit("}"),
    )
    frag = st.select(
        "sid",
        pl.concat_list(
            pl.concat_str(pl.lit('{"from":"assistant","value":'), json_str(assistant), pl.lit("}")),
            pl.concat_str(pl.lit('{"from":"function","value":'), json_str(function), pl.lit("}")),
        ).alias("f"),
    )
    finish_input = pl.concat_str(
        pl.lit('{"return_type": "give_answer", "final_answer": '),
        json_str(pl.col("final_text")),
        pl.lit("}"),
    )
    finish = pl.concat_str(
        pl.lit('{"from":"assistant","value":'),
        json_str(
            pl.concat_str(pl.lit("\nThought: \nAction: Finish\nAction Input: "), finish_input)
        ),
        pl.lit("}"),
    )
    per = frag.explode("f").group_by("sid", maintain_order=True).agg(pl.col("f"))
    conv = (
        base.with_columns(system.alias("sys"), user.alias("usr"), finish.alias("fin"))
        .join(per, on="sid", how="left", maintain_order="left")
        .with_columns(pl.col("f").fill_null(pl.lit([], pl.List(pl.String))))
        .with_columns(
            pl.concat_list(pl.col("sys"), pl.col("usr"), pl.col("f"), pl.col("fin")).alias("els")
        )
    )
    # assistant step j (0-based) is message i = 2 + 2j; its record holds messages 0..i: a
    # prefix of the whole conversation text, cut at the end of message i (no per-record join)
    recs = (
        conv.select(
            "sid",
            "question",
            pl.col("els").list.join(",").alias("whole"),
            pl.col("els")
            .list.eval(pl.element().str.len_chars().cum_sum() + pl.int_range(pl.len()))
            .alias("ends"),
            pl.int_ranges(0, (pl.col("els").list.len() - 1) // 2).alias("j"),
        )
        .explode("j")
        .with_columns((2 + 2 * pl.col("j")).alias("i"))
        .with_columns(
            pl.col("whole").str.slice(0, pl.col("ends").list.get(pl.col("i"))).alias("conv")
        )
    )
    recs = recs.with_columns(
        pl.concat_str(
            pl.lit('{"id":'),
            json_str(
                pl.concat_str(
                    pl.lit("Step "), pl.col("i").cast(pl.String), pl.lit(": "), pl.col("question")
                )
            ),
            pl.lit(',"conversations":['),
            pl.col("conv"),
            pl.lit("]}"),
        ).alias("r")
    )
    agg = recs.group_by("sid", maintain_order=True).agg(pl.col("r").str.join(",").alias("inner"))
    return (
        base.join(agg, on="sid", how="left", maintain_order="left")
        .with_columns(pl.concat_str(pl.lit("["), pl.col("inner"), pl.lit("]")).alias("messages"))
        .with_columns(pl.col("messages").alias("record"))
    )


def _xlam(
    base: pl.DataFrame,
    st: pl.DataFrame,
    samples: pl.DataFrame,
    fr: ToolFragments,
    mode: str,
    id_offset: int,
) -> pl.DataFrame:
    """Anchor-argument calls only (see module doc); samples it cannot say get a null record."""
    if mode not in ("independent", "first_hop"):
        raise ValueError("xlam_mode must be 'independent' or 'first_hop'")
    # set-operation calls take earlier results as arguments: never expressible, left out
    calls = st.filter((pl.col("kind") == "call") & ~pl.col("api").is_in(fr.set_op_names))
    expressible = calls.group_by("sid").agg(pl.col("from_anchor").all().alias("indep"))
    frag = calls.filter(pl.col("from_anchor")).select(
        "sid",
        pl.concat_str(
            pl.lit('{"name":"'),
            pl.col("api"),
            pl.lit('","arguments":'),
            pl.col("arguments"),
            pl.lit("}"),
        ).alias("f"),
    )
    agg = frag.group_by("sid", maintain_order=True).agg(pl.col("f").str.join(","))
    tools = _lists(samples["tool_ids"], fr.xlam_js, ",")
    out = (
        base.with_columns(
            pl.lit(tools).alias("tx"),
            (
                samples["xlam_id"]
                if "xlam_id" in samples.columns
                else pl.int_range(pl.len()) + id_offset
            ).alias("row"),
        )
        .join(agg, on="sid", how="left", maintain_order="left")
        .join(expressible, on="sid", how="left", maintain_order="left")
        .with_columns(
            pl.concat_str(pl.lit("["), pl.col("f").fill_null(""), pl.lit("]")).alias("messages")
        )
    )
    keep = pl.col("indep").fill_null(False) if mode == "independent" else pl.col("f").is_not_null()
    record = pl.concat_str(
        pl.lit('{"id":'),
        pl.col("row").cast(pl.String),
        pl.lit(',"query":'),
        json_str(pl.col("question")),
        pl.lit(',"tools":"['),
        pl.col("tx"),
        pl.lit(']","answers":'),
        json_str(pl.col("messages")),
        pl.lit("}"),
    )
    return out.with_columns(pl.when(keep).then(record).otherwise(None).alias("record"))


def xlam_expressible(pattern: Any, mode: str = "independent") -> bool:
    """Whether xLAM records can say a pattern's samples, decided from its plan before sampling:
    with ``"independent"`` every relation call must start at an anchor (no projection from an
    earlier result, no JOIN), so 2p or a cycle never can; ``"first_hop"`` takes any pattern."""
    from kg2tool.patterns.compile import ANCHOR, JOIN, PROJECT, compile_pattern

    if mode == "first_hop":
        return True
    plan = compile_pattern(pattern)
    kinds = plan.op_kind.tolist()
    return JOIN not in kinds and all(
        kinds[j] == ANCHOR for i, k in enumerate(kinds) if k == PROJECT for j in plan.inputs(i)
    )


def dataset_info_entry(file_name: str, name: str = "kg2tool") -> dict[str, Any]:
    """The LLaMA-Factory ``dataset_info.json`` entry for a ShareGPT file."""
    return {
        name: {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
        }
    }
