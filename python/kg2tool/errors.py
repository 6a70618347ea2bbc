"""Errors users can read: what was wrong and where (file, line, column)."""

from __future__ import annotations

from polars.exceptions import PanicException

# What reading a corrupt file can raise: ordinary exceptions, and the panics of polars'
# Parquet reader on some corrupt files (a BaseException, which `except Exception` misses).
READ_ERRORS: tuple[type[BaseException], ...] = (Exception, PanicException)


class Kg2ToolError(Exception):
    """Base class of every error kg2tool raises on purpose (bad input, bad arguments)."""


class InputError(Kg2ToolError, ValueError):
    """A file or argument given by the user is malformed; the message names it and the place."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
                if column is not None:
                    where += f":{column}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.column = column


class SnapshotError(Kg2ToolError):
    """A snapshot directory is missing, truncated, corrupt or of another format version."""


class PatternError(Kg2ToolError, ValueError):
    """A query pattern is malformed or cannot be grounded; the message points at the column."""


class UnknownNameError(Kg2ToolError, KeyError):
    """An entity, relation, pattern or KG name is unknown; the message suggests close matches."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable.
        return str(self.args[0]) if self.args else ""
