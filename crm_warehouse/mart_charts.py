"""Pictures of the published marts as PNG bytes: stage mix, stage moves, value matrix.

Pure functions over a DuckDB connection that can read schema ``marts``; the publish
asset shows them in the Dagster UI.
"""

from __future__ import annotations

import duckdb
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from crm_warehouse.analytics.plots import figure_png

STAGE_ORDER = ("prospect", "exploration", "formation", "stability", "decline", "churned")


def stage_distribution_png(con: duckdb.DuckDBPyConnection) -> bytes:
    """Customers per current lifecycle stage (``marts.customer_lifecycle``)."""
    counts = dict(con.execute("select stage_code, count(*) from marts.customer_lifecycle group by 1").fetchall())
    stages = [s for s in STAGE_ORDER if s in counts] + sorted(set(counts) - set(STAGE_ORDER))
    figure = Figure(figsize=(6, 3.2))
    axes = figure.add_subplot()
    bars = axes.bar(stages, [counts[s] for s in stages], color="#4c72b0")
    axes.bar_label(bars, fmt="%d", fontsize=8)
    axes.set_ylabel("customers")
    axes.set_title("Customers by lifecycle stage")
    axes.tick_params(axis="x", labelsize=8)
    return figure_png(figure)


def transitions_png(con: duckdb.DuckDBPyConnection) -> bytes:
    """Stage-to-stage moves in the latest month with moves (``marts.lifecycle_transitions``)."""
    rows = con.execute(
        """select from_stage_code, to_stage_code, sum(customers) from marts.lifecycle_transitions
           where month_start = (select max(month_start) from marts.lifecycle_transitions)
           group by 1, 2"""
    ).fetchall()
    month = con.execute("select max(month_start) from marts.lifecycle_transitions").fetchone()[0]
    index = {stage: i for i, stage in enumerate(STAGE_ORDER)}
    matrix = np.zeros((len(STAGE_ORDER), len(STAGE_ORDER)))
    for source, target, customers in rows:
        if source in index and target in index:
            matrix[index[source], index[target]] += customers
    figure = Figure(figsize=(5.5, 4.5))
    axes = figure.add_subplot()
    axes.imshow(np.log1p(matrix), cmap="Blues")
    for i in range(len(STAGE_ORDER)):
        for j in range(len(STAGE_ORDER)):
            if matrix[i, j]:
                axes.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7)
    axes.set_xticks(range(len(STAGE_ORDER)), STAGE_ORDER, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(len(STAGE_ORDER)), STAGE_ORDER, fontsize=8)
    axes.set_xlabel("to stage")
    axes.set_ylabel("from stage")
    axes.set_title(f"Lifecycle transitions, month of {month}")
    return figure_png(figure)


def value_matrix_png(con: duckdb.DuckDBPyConnection) -> bytes:
    """Customers per value class I-IV on current value × growth potential (``marts.customer_value_segments``)."""
    counts = dict(
        con.execute(
            """select current_value_level || '/' || growth_potential_level, count(*)
               from marts.customer_value_segments group by 1"""
        ).fetchall()
    )
    classes = dict(
        con.execute(
            """select current_value_level || '/' || growth_potential_level, min(value_class_code)
               from marts.customer_value_segments group by 1"""
        ).fetchall()
    )
    figure = Figure(figsize=(4.5, 4))
    axes = figure.add_subplot()
    for x, current in enumerate(("low", "high")):
        for y, potential in enumerate(("low", "high")):
            key = f"{current}/{potential}"
            axes.add_patch(
                Rectangle((x, y), 1, 1, facecolor="#dde6f3" if (x + y) % 2 else "#b8cbe6", edgecolor="white")
            )
            axes.text(
                x + 0.5,
                y + 0.5,
                f"class {classes.get(key, '-')}\n{counts.get(key, 0)} customers",
                ha="center",
                va="center",
                fontsize=9,
            )
    axes.set_xlim(0, 2)
    axes.set_ylim(0, 2)
    axes.set_xticks([0.5, 1.5], ["low", "high"])
    axes.set_yticks([0.5, 1.5], ["low", "high"])
    axes.set_xlabel("current value (CLV)")
    axes.set_ylabel("growth potential")
    axes.set_title("Customer value matrix")
    return figure_png(figure)
