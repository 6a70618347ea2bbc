"""One progress bar for long jobs (generate's samples, eval's episodes): count, rate and ETA
on a terminal through rich; silent when disabled (not a TTY, ``--quiet``)."""

from __future__ import annotations

import time

__all__ = ["ProgressBar"]


class ProgressBar:
    """``label``: the bar's name; ``unit``: shown with the rate ("samples" -> "1,234
    samples/s"), no rate when None; ``completed``: work already done (a resumed run), left out
    of the rate; ``stderr``: draw on standard error (when standard output carries results)."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        enabled: bool,
        completed: int = 0,
        unit: str | None = None,
        stderr: bool = False,
    ) -> None:
        self.bar = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = [TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn()]
        if unit is not None:
            columns.append(TextColumn("{task.fields[rate]}"))
        columns.append(TimeRemainingColumn())
        self.bar = Progress(*columns, console=Console(stderr=True) if stderr else None)
        self.bar.start()
        self.unit, self.t0, self.base = unit, time.perf_counter(), completed
        self.task = self.bar.add_task(label, total=total, completed=completed, rate="")

    def advance(self, n: int = 1) -> None:
        """``n`` more units done."""
        if self.bar is None:
            return
        self.bar.advance(self.task, n)
        if self.unit is not None:
            done = self.bar.tasks[0].completed - self.base
            rate = done / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.update(self.task, rate=f"{rate:,.0f} {self.unit}/s")

    def close(self) -> None:
        """Stop drawing (the bar stays on screen)."""
        if self.bar is not None:
            self.bar.stop()
