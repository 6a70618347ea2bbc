"""Plot the current benchmark figures of ``bench/README.md``: one panel per area.

Reads ``bench/figures/current.csv`` (columns ``area, item, series, value, unit``: the figures
of the README's tables) and writes ``bench/figures/current.png``. Run from the repository root:
``python bench/plot_figures.py``.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent / "figures"


def read_figures(path: Path) -> dict[str, list[dict[str, str]]]:
    """Rows of the CSV grouped by area, in file order."""
    areas: dict[str, list[dict[str, str]]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            areas.setdefault(row["area"], []).append(row)
    return areas


def plot_area(ax: plt.Axes, area: str, rows: list[dict[str, str]]) -> None:
    """Grouped bars: one group per item, one bar per series; log scale when values span 100x."""
    items = list(dict.fromkeys(r["item"] for r in rows))
    series = list(dict.fromkeys(r["series"] for r in rows))
    value = {(r["item"], r["series"]): float(r["value"]) for r in rows}
    width = 0.8 / len(series)
    for k, name in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i, item in enumerate(items)]
        ys = [value.get((item, name), 0.0) for item in items]
        ax.bar(xs, ys, width, label=name)
    values = [v for v in value.values() if v > 0]
    if max(values) / min(values) > 100:
        ax.set_yscale("log")
    ax.set_xticks(range(len(items)), items, rotation=30 if len(items) > 4 else 0, fontsize=7)
    ax.set_title(area, fontsize=9)
    ax.set_ylabel(rows[0]["unit"], fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=6)


def main(csv_path: Path = HERE / "current.csv", png_path: Path = HERE / "current.png") -> Path:
    """Write the PNG of every area of ``csv_path``; returns its path."""
    areas = read_figures(csv_path)
    first, *rest = list(areas)  # the first area (engine sampling: 14 types) gets a whole row
    cols = 2
    rows = 1 + (len(rest) + cols - 1) // cols
    fig = plt.figure(figsize=(11, 3.2 * rows))
    grid = fig.add_gridspec(rows, cols)
    plot_area(fig.add_subplot(grid[0, :]), first, areas[first])
    for k, area in enumerate(rest):
        plot_area(fig.add_subplot(grid[1 + k // cols, k % cols]), area, areas[area])
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path


if __name__ == "__main__":
    print(main(*(Path(a) for a in sys.argv[1:3])))
