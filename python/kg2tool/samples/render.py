"""The texts of a call table: thoughts before calls, call arguments and observations, and
the final answer.

Explanations (what an op's result is) go into the thought of the first call of the next op
with calls, or before the final answer, which always ends with ANSWER_PREFIX and the answer
names as a JSON list (:func:`parse_final_answer` reads it back).
"""

from __future__ import annotations

import numpy as np
import orjson
import polars as pl

from kg2tool.arrays import list_series
from kg2tool.patterns import DIFFERENCE, INTERSECT, JOIN_CLOSE, JOIN_TREE, UNION
from kg2tool.samples.calls import (
    EXPL_INTERSECT,
    EXPL_JOIN,
    EXPL_PROJECT,
    EXPL_UNION,
    Calls,
    CallTables,
    Executed,
    ListCalls,
    NameTables,
    SetCalls,
    api_tables,
    set_op_names,
)
from kg2tool.samples.questions import RelationLexicon, name_list_text
from kg2tool.tools.runtime import ToolRuntime

__all__ = ["ANSWER_PREFIX", "final_answers", "one_period", "parse_final_answer", "render_steps"]

# What the final answer text says before the JSON list of answer names (see parse_final_answer).
ANSWER_PREFIX = "The answers are:"
# Why the answer set is empty, per explanation kind of the last op.
_REASONS = [
    "the last lookup returned no entity",
    "the lists have no entity in common",
    "every lookup came back empty",
    "every candidate is excluded",
    "no candidate passes every check",
]


def parse_final_answer(text: str) -> list[str]:
    """The answer names of a final answer text (``... The answers are: ["Paris", "Lyon,
    France"]``): the JSON list after the last ANSWER_PREFIX. ValueError when there is none."""
    at = text.rfind(ANSWER_PREFIX)
    if at < 0:
        raise ValueError(f"no {ANSWER_PREFIX!r} in the final answer")
    names = orjson.loads(text[at + len(ANSWER_PREFIX) :].strip())
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise ValueError("the final answer's list is not a JSON list of names")
    return names


def one_period(text: pl.Expr) -> pl.Expr:
    """One period where a name ending in "." ends a sentence ("Sammy Davis Jr.." -> "Jr.");
    an ellipsis stays."""
    return (
        pl.when(text.str.contains("..", literal=True))
        .then(text.str.replace_all(r"([^.])\.\.(\s|$)", "${1}.${2}"))
        .otherwise(text)
    )


def _names_column(cnt: np.ndarray, ids: np.ndarray, nm: NameTables, name: str) -> pl.Series:
    """A List(String) column: per row the display names of its ``cnt`` ids (in order)."""
    return list_series(np.r_[0, np.cumsum(cnt)], nm.names.gather(ids).to_arrow(), name)


def _name_lists(cnt: np.ndarray, ids: np.ndarray, enc: pl.Series) -> pl.Series:
    """Per row, the JSON-encoded names of its ids (already in result order) joined by ","."""
    lists = list_series(np.r_[0, np.cumsum(cnt)].astype(np.int64), enc.gather(ids).to_arrow(), "l")
    return pl.select(pl.lit(lists).list.join(",")).to_series()


def _null_if_set(values: np.ndarray, name: str, lists: bool = False) -> pl.Expr:
    """An int column, null on set-operation calls (rows with ``sx >= 0``) and, with
    ``lists``, on list calls (``lx >= 0``)."""
    cond = pl.col("sx") >= 0
    if lists:
        cond = cond | (pl.col("lx") >= 0)
    return (
        pl.when(cond)
        .then(pl.lit(None, pl.Int64))
        .otherwise(pl.lit(pl.Series(values.astype(np.int64))))
        .alias(name)
    )


def _explanation_exprs() -> tuple[pl.Expr, pl.Expr]:
    """(text, brief) of an explanation row (columns names, drop, kind, nin): the text said
    before the next call, the brief said before the final answer (which lists the names)."""
    listed = name_list_text(pl.col("names"))
    empty = pl.col("names").list.len() == 0
    both = (
        pl.when(pl.col("nin") == 2)
        .then(pl.lit("both lists"))
        .otherwise(pl.format("all {} lists", pl.col("nin")))
    )
    text = (
        pl.when(pl.col("kind") == EXPL_PROJECT)
        .then(
            pl.when(empty)
            .then(pl.lit("These lookups found nothing."))
            .when(pl.col("nin") > 1)
            .then(pl.concat_str(pl.lit("Together, these lookups give "), listed, pl.lit(".")))
        )
        .when(pl.col("kind") == EXPL_INTERSECT)
        .then(
            pl.when(empty)
            .then(pl.concat_str(pl.lit("No entity appears in "), both, pl.lit(".")))
            .otherwise(
                pl.concat_str(
                    pl.lit("The entities found in "), both, pl.lit(" are "), listed, pl.lit(".")
                )
            )
        )
        .when(pl.col("kind") == EXPL_UNION)
        .then(
            pl.when(empty)
            .then(pl.lit("Both lists are empty."))
            .otherwise(
                pl.concat_str(pl.lit("Taken together, the lists give "), listed, pl.lit("."))
            )
        )
        .when(pl.col("kind") == EXPL_JOIN)
        .then(
            pl.when(empty)
            .then(pl.lit("No candidate passes every check."))
            .when(pl.col("drop").list.len() == 0)
            .then(pl.concat_str(pl.lit("Every candidate passes the checks: "), listed, pl.lit(".")))
            .otherwise(
                pl.concat_str(
                    pl.lit("Checking every link rules out "),
                    name_list_text(pl.col("drop")),
                    pl.lit(", which leaves "),
                    listed,
                    pl.lit("."),
                )
            )
        )
        .otherwise(
            pl.when(empty)
            .then(pl.lit("Every entity of the first list is also excluded by the second one."))
            .otherwise(
                pl.concat_str(
                    pl.lit("Removing the entities of the second list from the first leaves "),
                    listed,
                    pl.lit("."),
                )
            )
        )
    )
    # before the final answer, which lists the names once: what was done, not its result
    brief = (
        pl.when(pl.col("kind") == EXPL_PROJECT)
        .then(pl.when(empty).then(pl.lit("These lookups found nothing.")))
        .when(pl.col("kind") == EXPL_INTERSECT)
        .then(pl.concat_str(pl.lit("I keep the entities found in "), both, pl.lit(".")))
        .when(pl.col("kind") == EXPL_UNION)
        .then(pl.lit("I merge the lists."))
        .when(pl.col("kind") == EXPL_JOIN)
        .then(
            pl.when(empty | (pl.col("drop").list.len() == 0))
            .then(pl.lit(None, pl.String))
            .otherwise(
                pl.concat_str(
                    pl.lit("Checking every link rules out "),
                    name_list_text(pl.col("drop")),
                    pl.lit("."),
                )
            )
        )
        .otherwise(pl.lit("I remove the entities of the second list from the first."))
    )
    return text, brief


def _explanation_prefixes(t: CallTables, nm: NameTables) -> tuple[pl.Series, pl.Series]:
    """Explanations joined per call they are said before (``pre``, one per call) and per
    sample before the final answer (``final_pre``)."""
    e, c, jl = t.explanations, t.calls, t.join_leads
    ncalls, sid_all = len(c.sid), t.answers.sid
    e_order = np.lexsort((e.after, e.sid))
    ex_sid = e.sid[e_order]
    ex_at = e.at[e_order]
    ex_names = _names_column(e.cnt, e.ids, nm, "names")[e_order]
    ex_drop = _names_column(e.xcnt, e.xids, nm, "drop")[e_order]
    expl = pl.DataFrame(
        {"names": ex_names, "drop": ex_drop, "kind": e.kind[e_order], "nin": e.nin[e_order]}
    )
    text, brief = _explanation_exprs()
    ex_text, ex_brief = expl.select(text.alias("t"), brief.alias("b")).get_columns()
    keep = ex_text.is_not_null().to_numpy()
    # target call row: first call of (sid, at); calls are sorted by (sid, op, pos)
    call_key = c.sid * 64 + c.op
    to_call = keep & (ex_at >= 0)
    tgt = np.searchsorted(call_key, ex_sid[to_call] * 64 + ex_at[to_call])
    pre = pl.repeat(None, ncalls, dtype=pl.String, eager=True)
    g_parts = []
    if to_call.any():
        g_parts.append(pl.DataFrame({"tgt": tgt, "t": ex_text.filter(pl.Series(to_call))}))
    if len(jl.sid):  # inside JOIN ops: the first call of the next sub-step with calls
        full_key = (call_key << 24) | c.pos
        jk = ((jl.sid * 64 + jl.op) << 24) | jl.pos
        j_names = _names_column(jl.cnt, jl.ids, nm, "names")
        j_text = pl.select(
            pl.concat_str(
                pl.lit("Together, these lookups give "),
                name_list_text(pl.lit(j_names)),
                pl.lit("."),
            )
        ).to_series()
        g_parts.append(pl.DataFrame({"tgt": np.searchsorted(full_key, jk), "t": j_text}))
    if g_parts:
        g = pl.concat(g_parts).with_columns(pl.col("tgt").cast(pl.Int64))
        g = g.group_by("tgt", maintain_order=True).agg(pl.col("t").str.join(" "))
        pre = pre.scatter(g["tgt"].to_numpy(), g["t"])
    to_final = keep & (ex_at < 0)
    final_pre = pl.repeat(None, len(sid_all), dtype=pl.String, eager=True)
    if to_final.any():
        g = pl.DataFrame({"sid": ex_sid[to_final], "t": ex_brief.filter(pl.Series(to_final))})
        g = g.drop_nulls("t")
        g = g.group_by("sid", maintain_order=True).agg(pl.col("t").str.join(" "))
        final_pre = final_pre.scatter(np.searchsorted(sid_all, g["sid"].to_numpy()), g["t"])
    return pre, final_pre


def _lookup(phrase: pl.Expr, first_of: pl.Expr, position: str) -> pl.Expr:
    """A lookup's thought: "I need to find" from an anchor, "Now I look up" at the first
    call (column ``position`` 0), else "Next,"."""
    anchor, first = pl.col("from_anchor"), pl.col(position) == 0
    lead = (
        pl.when(anchor).then(pl.lit("I need to find ")).when(first).then(pl.lit("Now I look up "))
    )
    end = pl.when(anchor).then(pl.lit(".")).when(first).then(first_of).otherwise(pl.lit("."))
    return pl.concat_str(lead.otherwise(pl.lit("Next, ")), phrase, end)


def _prefix(lex: pl.DataFrame, rd: np.ndarray) -> pl.Expr:
    """A lookup's phrase before its argument, as the question reads it: singular where the
    relation gives one result ("the capital of"), else plural ("the people who influenced")."""
    return (
        pl.when(pl.lit(lex["functional"].gather(rd)))
        .then(pl.lit(lex["prefix"].gather(rd)))
        .otherwise(pl.lit(lex["prefix_p"].gather(rd)))
    )


def _call_thought(
    c: Calls, rd: np.ndarray, ent: np.ndarray, nm: NameTables, lex: pl.DataFrame
) -> tuple[pl.Expr, pl.Expr]:
    """Thought of a relation call (one entity; a JOIN sub-step's tree or check call): what it
    looks up, named as in the question; it reads column ``phrase``, the second expression
    (made once: the thought says it in several ways)."""
    made = pl.concat_str(  # "the capital of the Netherlands": names read as in the question
        _prefix(lex, rd),
        pl.lit(nm.articled().gather(ent)),
        pl.lit(lex["suffix"].gather(rd)),
    )
    phrase = pl.col("phrase")
    first_of = (
        pl.when(pl.col("m") > 1)
        .then(pl.format(", the first of the {} entities found so far.", pl.col("m")))
        .otherwise(pl.lit("."))
    )
    thought = _lookup(phrase, first_of, "pos")
    if len(c.sid) and (c.role >= 0).any():  # JOIN sub-steps
        checks = pl.when(pl.col("m") > 1).then(
            pl.format(", the first of the {} candidates to check.", pl.col("m"))
        )
        tree = _lookup(phrase, first_of, "spos")
        check = (
            pl.when(pl.col("spos") > 0)
            .then(pl.concat_str(pl.lit("Next, "), phrase, pl.lit(".")))
            .when(pl.col("from_anchor") & (pl.col("role") == JOIN_CLOSE))
            .then(
                pl.concat_str(
                    pl.lit("To see which candidates are also linked to "),
                    pl.lit(nm.articled().gather(ent)),
                    pl.lit(", I look up "),
                    phrase,
                    pl.lit("."),
                )
            )
            .when(pl.col("from_anchor"))
            .then(
                pl.concat_str(
                    pl.lit("To rule out the candidates linked to "),
                    pl.lit(nm.articled().gather(ent)),
                    pl.lit(", I look up "),
                    phrase,
                    pl.lit("."),
                )
            )
            .otherwise(
                pl.concat_str(
                    pl.when(pl.col("role") == JOIN_CLOSE)
                    .then(pl.lit("To check which candidate pairs are linked, I look up "))
                    .otherwise(
                        pl.lit("To rule out the candidate pairs that are linked, I look up ")
                    ),
                    phrase,
                    checks.otherwise(pl.lit(".")),
                )
            )
        )
        thought = (
            pl.when(pl.col("role") == JOIN_TREE)
            .then(tree)
            .when(pl.col("role") > JOIN_TREE)
            .then(check)
            .otherwise(thought)
        )
    return thought, made


def _set_call_texts(
    sc: SetCalls, nm: NameTables, runtime: ToolRuntime
) -> tuple[pl.Series, pl.Series, pl.Series, pl.Series]:
    """(API, arguments, observation, thought) of every set-operation call."""
    enc = nm.encoded
    set_args = pl.select(
        pl.concat_str(
            pl.lit('{"first":['),
            pl.lit(_name_lists(sc.fc, sc.fi, enc)),
            pl.lit('],"second":['),
            pl.lit(_name_lists(sc.sc, sc.si, enc)),
            pl.lit("]}"),
        )
    ).to_series()
    set_obs = runtime.encode_results(np.r_[0, np.cumsum(sc.rc)], sc.ri)
    op_api = set_op_names(runtime)
    sk, sn, sp = sc.kind, sc.nin, sc.pos
    set_api = pl.Series([op_api[INTERSECT], op_api[UNION], op_api[DIFFERENCE]]).gather(
        np.select([sk == INTERSECT, sk == UNION], [0, 1], 2)
    )
    verb = pl.Series(["intersect", "merge"]).gather(np.where(sk == INTERSECT, 0, 1))
    s_thought = pl.select(
        pl.when(pl.lit(pl.Series(sk)) == DIFFERENCE)
        .then(pl.lit("I remove the entities of the second list from the first."))
        .when(pl.lit(pl.Series(sp)) > 0)
        .then(
            pl.concat_str(
                pl.lit("Then I "),
                pl.lit(verb),
                pl.lit(" the result with the next list."),
            )
        )
        .when(pl.lit(pl.Series(sn)) > 2)
        .then(pl.format("I {} the first two of the {} lists.", pl.lit(verb), pl.lit(pl.Series(sn))))
        .when(pl.lit(pl.Series(sk)) == INTERSECT)
        .then(pl.lit("I intersect the two lists to keep the entities found in both."))
        .otherwise(pl.lit("I merge the two lists."))
    ).to_series()
    return set_api, set_args, set_obs, s_thought


def _list_call_thought(
    lc: ListCalls, lxg: np.ndarray, rd: np.ndarray, nm: NameTables, lex: pl.DataFrame
) -> pl.Expr:
    """Thought of a list call: the entities named when few, else counted ("these 12
    entities")."""
    l_names = _names_column(lc.cnt, lc.ids, nm, "names")
    listed = pl.lit(l_names.gather(lxg))
    one = pl.concat_str(_prefix(lex, rd), listed.list.first(), pl.lit(lex["suffix"].gather(rd)))
    many = pl.concat_str(
        pl.lit(lex["prefix_m"].gather(rd)),
        pl.when(pl.col("m") <= 3)
        .then(name_list_text(listed))
        .otherwise(pl.format("these {} entities", pl.col("m"))),
        pl.lit(lex["suffix_m"].gather(rd)),
    )
    l_thought = (
        pl.when(pl.col("from_anchor") & (pl.col("m") == 1))
        .then(pl.concat_str(pl.lit("I need to find "), one, pl.lit(".")))
        .when(pl.col("m") == 1)
        .then(pl.concat_str(pl.lit("Now I look up "), one, pl.lit(".")))
        .otherwise(pl.concat_str(pl.lit("Now I look up "), many, pl.lit(" in one call.")))
    )
    return l_thought


def render_steps(
    t: CallTables, ex: Executed, runtime: ToolRuntime, lexicon: RelationLexicon, nm: NameTables
) -> tuple[pl.DataFrame, pl.Series]:
    """The steps frame of a call table (one row per call: api, param, argument, arguments,
    observation, thought, plus ``rd``/``ent``/``uid`` for provenance), and per sample the
    explanations said before its final answer."""
    c, lex = t.calls, lexicon.frame
    n_sx, n_lx = len(t.set_calls.kind), len(t.list_calls.rd)
    is_list = c.lx >= 0
    is_rel = (c.rd >= 0) & ~is_list
    rd = np.where(c.rd >= 0, c.rd, 0)
    ent = np.where(is_rel, c.ent, 0)
    uid_all = ex.uid.copy()
    uid_all[is_list] = len(ex.rd) + c.lx[is_list]  # grounding index: after the single calls
    pre, final_pre = _explanation_prefixes(t, nm)
    thought, phrase = _call_thought(c, rd, ent, nm, lex)  # then set and list calls
    api_name_s, api_param_s = api_tables(runtime)
    param = pl.lit(api_param_s.gather(rd))
    arguments = pl.concat_str(
        pl.lit('{"'), param, pl.lit('":'), pl.lit(nm.encoded.gather(ent)), pl.lit("}")
    )
    api = pl.lit(api_name_s.gather(rd))
    argument = pl.lit(nm.names.gather(ent))
    obs = ex.obs
    observation = pl.lit(obs.gather(np.maximum(ex.uid, 0))) if len(obs) else pl.lit(None, pl.String)
    if n_sx:
        set_api, set_args, set_obs, s_thought = _set_call_texts(t.set_calls, nm, runtime)
        setc = pl.col("sx") >= 0
        sxg = np.maximum(c.sx, 0)
        thought = pl.when(setc).then(pl.lit(s_thought.gather(sxg))).otherwise(thought)
        api = pl.when(setc).then(pl.lit(set_api.gather(sxg))).otherwise(api)
        arguments = pl.when(setc).then(pl.lit(set_args.gather(sxg))).otherwise(arguments)
        observation = pl.when(setc).then(pl.lit(set_obs.gather(sxg))).otherwise(observation)
        param = pl.when(setc).then(pl.lit(None, pl.String)).otherwise(param)
        argument = pl.when(setc).then(pl.lit(None, pl.String)).otherwise(argument)
    if n_lx:  # list calls: {"<param>":[names]}, argument null (a list, not one name)
        lc, lxg = t.list_calls, np.maximum(c.lx, 0)
        listc = pl.col("lx") >= 0
        thought = pl.when(listc).then(_list_call_thought(lc, lxg, rd, nm, lex)).otherwise(thought)
        list_api_s, list_param_s = api_tables(runtime, lists=True)
        lparam = list_param_s.gather(rd)
        l_args = pl.select(
            pl.concat_str(
                pl.lit('{"'),
                pl.lit(lparam),
                pl.lit('":['),
                pl.lit(_name_lists(lc.cnt, lc.ids, nm.encoded).gather(lxg)),
                pl.lit("]}"),
            )
        ).to_series()
        api = pl.when(listc).then(pl.lit(list_api_s.gather(rd))).otherwise(api)
        arguments = pl.when(listc).then(pl.lit(l_args)).otherwise(arguments)
        observation = pl.when(listc).then(pl.lit(ex.list_obs.gather(lxg))).otherwise(observation)
        param = pl.when(listc).then(pl.lit(lparam)).otherwise(param)
        argument = pl.when(listc).then(pl.lit(None, pl.String)).otherwise(argument)
    said_expr, said = thought, pl.col("said")  # the thought, made once (read twice below)
    thought = (
        pl.when(pl.col("pre").is_not_null())
        .then(pl.concat_str(pl.col("pre"), pl.lit(" "), said))
        .otherwise(said)
    )
    steps = pl.DataFrame(
        {
            "sid": c.sid,
            "op": c.op,
            "pos": c.pos,
            "spos": c.spos,
            "m": c.m,
            "from_anchor": c.from_anchor,
            "role": c.role,
            "sx": c.sx,
            "lx": c.lx,
            "pre": pre,
        }
    )
    steps = steps.with_columns(phrase.alias("phrase"))
    steps = steps.with_columns(said_expr.alias("said"))
    steps = steps.with_columns(thought.alias("thought")).select(
        "sid",
        "op",
        "pos",
        pl.lit("call").alias("kind"),
        api.alias("api"),
        param.alias("param"),
        argument.alias("argument"),
        arguments.alias("arguments"),
        observation.alias("observation"),
        one_period(pl.col("thought")).alias("thought"),
        _null_if_set(rd, "rd"),
        _null_if_set(ent, "ent", lists=True),
        _null_if_set(uid_all, "uid"),
        pl.lit(pl.Series(c.sub)).alias("sub"),
        "from_anchor",
    )
    return steps, final_pre


def final_answers(t: CallTables, final_pre: pl.Series, nm: NameTables) -> pl.DataFrame:
    """One row per sample: ``answer_names``, ``final_text`` (what was done, or why nothing
    was found, then ANSWER_PREFIX and the names as a JSON list, always last) and ``empty``."""
    a = t.answers
    ans_names = _names_column(a.cnt, a.ids, nm, "answer_names")
    na = pl.col("answer_names").list.len()
    reason = pl.lit(pl.Series(_REASONS, dtype=pl.String).gather(a.kind.astype(np.int64)))
    ans_json = _name_lists(a.cnt, a.ids, nm.encoded) if len(a.cnt) else None
    lead = pl.when(na == 0).then(
        pl.concat_str(pl.lit("So no entity satisfies the question: "), reason, pl.lit("."))
    )
    return pl.DataFrame(
        {
            "sid": a.sid,
            "answer_names": ans_names,
            "final_pre": final_pre,
            "answer_json": ans_json if ans_json is not None else pl.Series([], dtype=pl.String),
        }
    ).select(
        "sid",
        "answer_names",
        pl.concat_str(
            pl.concat_list(
                one_period(pl.col("final_pre")), one_period(lead), pl.lit(ANSWER_PREFIX + " ")
            )
            .list.drop_nulls()
            .list.join(" "),
            pl.lit("["),
            pl.col("answer_json").fill_null(""),
            pl.lit("]"),
        ).alias("final_text"),
        (na == 0).alias("empty"),
    )
