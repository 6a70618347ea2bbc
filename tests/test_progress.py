"""The one progress bar: counts and rate while enabled, nothing at all while disabled."""

from __future__ import annotations

from kg2tool.progress import ProgressBar


def test_enabled_bar_counts_and_shows_a_rate() -> None:
    bar = ProgressBar("generate", 100, enabled=True, completed=10, unit="samples", stderr=True)
    bar.advance(30)
    task = bar.bar.tasks[0]
    assert (task.completed, task.total) == (40, 100)
    assert task.fields["rate"].endswith(" samples/s")
    bar.close()


def test_bar_without_unit_has_no_rate_and_disabled_bar_does_nothing() -> None:
    bar = ProgressBar("eval", 3, enabled=True, stderr=True)
    bar.advance()
    assert bar.bar.tasks[0].completed == 1 and bar.bar.tasks[0].fields["rate"] == ""
    bar.close()
    off = ProgressBar("eval", 3, enabled=False)
    off.advance(2)
    off.close()
    assert off.bar is None
