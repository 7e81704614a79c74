"""Model pictures as PNG bytes (matplotlib's Agg canvas, no pyplot state): calibration and CLV distribution."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from crm_warehouse.analytics.metrics import calibration_bins, expected_calibration_error


def figure_png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def calibration_plot_png(
    y: ArrayLike,
    p: ArrayLike,
    *,
    baseline: ArrayLike | None = None,
    bins: int = 10,
    title: str = "Churn model calibration (validation cutoff)",
) -> bytes:
    """Reliability diagram: observed churn rate against mean predicted probability per bin.

    Parameters
    ----------
    y : array-like
        Observed outcomes (0/1).
    p : array-like
        Model probabilities.
    baseline : array-like, optional
        A second model's probabilities (e.g. BG/NBD), drawn for comparison.
    bins : int
        Equal-width probability bins (as in the expected calibration error).
    """
    figure = Figure(figsize=(6.4, 6.0))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    series = [("churn model", p, "tab:blue")]
    if baseline is not None:
        series.append(("BG/NBD P(no purchase)", baseline, "tab:orange"))
    edges = np.linspace(0.0, 1.0, bins + 1)
    for name, probabilities, colour in series:
        count, mean_p, rate = calibration_bins(y, probabilities, bins)
        filled = count > 0
        ece = expected_calibration_error(y, probabilities, bins)
        top.plot(mean_p[filled], rate[filled], marker="o", color=colour, label=f"{name} (ECE {ece:.3f})")
        bottom.hist(np.asarray(probabilities, dtype=float), bins=edges, histtype="step", color=colour)
    top.set_ylabel("observed churn rate")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_title(title)
    top.legend(loc="upper left")
    bottom.set_xlabel("predicted churn probability")
    bottom.set_ylabel("customers")
    return figure_png(figure)


def clv_distribution_png(
    clv: ArrayLike, *, title: str = "Customer lifetime value", sampled_from: int | None = None
) -> bytes:
    """Histogram of the positive CLVs on a log scale, with the median, mean and top-20 % revenue share.

    ``sampled_from``: ``clv`` is a random sample of this many customers' CLVs (the title says so).
    """
    values = np.asarray(clv, dtype=float)
    if sampled_from is not None and sampled_from > values.size:
        title = f"{title} (random sample of {values.size:,} of {sampled_from:,} customers)"
    positive = np.sort(values[np.isfinite(values) & (values > 0)])
    figure = Figure(figsize=(6.4, 4.0))
    axes = figure.subplots()
    if positive.size:
        edges = np.logspace(np.log10(positive[0]), np.log10(positive[-1]) + 1e-9, 40)
        axes.hist(positive, bins=edges, color="tab:green")
        axes.set_xscale("log")
        for stat, style in ((np.median(positive), "--"), (positive.mean(), ":")):
            axes.axvline(stat, color="black", linestyle=style)
        top_share = positive[-int(np.ceil(0.2 * positive.size)) :].sum() / positive.sum()
        axes.set_title(
            f"{title}: {positive.size} customers with CLV > 0 of {values.size}\n"
            f"median {np.median(positive):,.0f} (dashed), mean {positive.mean():,.0f} (dotted); "
            f"top 20% hold {top_share:.0%} of it"
        )
    else:
        axes.set_title(f"{title}: no customer with CLV > 0")
    axes.set_xlabel("CLV (log scale)")
    axes.set_ylabel("customers")
    return figure_png(figure)
