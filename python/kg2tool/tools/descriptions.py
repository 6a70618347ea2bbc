"""API texts and schemas: tool descriptions from the lexicon's phrases and the side types,
parameter texts, and the JSON Schemas of parameters and results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kg2tool.tools.inflection import a_an, plural
from kg2tool.tools.lexicon import Entry

if TYPE_CHECKING:
    from kg2tool.tools.catalog import Api


def object_schema(properties: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of an API's parameters: every property required, no others."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def names_schema(description: str) -> dict[str, Any]:
    """JSON Schema of a list of entity names (a list parameter or an API's result)."""
    return {"type": "array", "items": {"type": "string"}, "description": description}


def describe_list(
    single: Api, label: str, meaning: str, entry: Entry | None = None, what: str = ""
) -> str:
    """Description of the list form of a relation API (see :func:`describe`). The single
    API's own sentence (``what``, "Returns the people who have a given occupation") is quoted
    whole, never filled with a list: a lexicon phrase such as "the people with the occupation
    {x}" wants one name in its slot."""
    inp, outp = single.input_type, single.output_type
    several = "entities" if single.input_usually else plural(inp)
    if what.startswith("Returns "):
        what = (
            f"The list form of the lookup that returns {what[len('Returns ') :]}: it takes "
            f"several {several} and returns the union of the results for each, in one call."
        )
    else:
        what = f"Looks up several {several} in one call."
    gloss = _relation_gloss(entry, meaning)
    names = f"entity names, usually of {plural(inp)}" if single.input_usually else f"{inp} names"
    return (
        f"{what}{gloss} Input: a list of {names}. Output: one list of {outp} "
        "names, the union of the results for every given entity, sorted and without "
        "duplicates (it does not say which input each came from); empty if none is known."
    )


def _relation_gloss(entry: Entry | None, meaning: str) -> str:
    """ " Relation 'place of birth': where a person was born." (label words, then gloss)."""
    label = entry.label if entry is not None else ""
    if label and meaning:
        return f" Relation '{label}': {meaning.rstrip('.')}."
    return f" Relation '{label}'." if label else (f" {meaning.rstrip('.')}." if meaning else "")


def what_it_returns(entry: Entry, direction: str, inp: str) -> str:
    """What one direction of a relation returns, as a sentence without its full stop: the
    lexicon's own sentence, else "Returns " + the plural phrase about "the given <type>"."""
    own = entry.description if direction == "forward" else entry.inverse_description
    if own:
        return own.strip().rstrip(".")
    return "Returns " + entry.side(direction).many.replace("{x}", f"the given {inp}")


def param_text(inp: str, usually: bool, many: bool = False) -> str:
    """The parameter's description: "Name of the country (...)", or for a data type word that
    not every argument has, "Name of an entity, usually a country (...)" (``many``: a list)."""
    if many:
        what = f"entities, usually {plural(inp)}" if usually else f"the {plural(inp)}"
        return f"Names of {what} (entity names exactly as returned by other tools)."
    what = f"an entity, usually {a_an(inp)}" if usually else f"the {inp}"
    return f"Name of {what} (an entity name exactly as returned by other tools)."


def describe(
    entry: Entry, direction: str, meaning: str, inp: str, outp: str, usually: bool = False
) -> str:
    """Tool description of one direction of a relation, from its lexicon phrases and the
    declared input/output types: what it returns for the given entity, the relation's gloss,
    input and output."""
    gloss = _relation_gloss(entry, meaning)
    arg = f"an entity, usually {a_an(inp)}" if usually else a_an(inp)
    return (
        f"{what_it_returns(entry, direction, inp)}.{gloss} Input: the name of {arg}. "
        f"Output: a list of {outp} names, empty if none is known."
    )
