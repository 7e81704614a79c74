"""Plain-language drivers of a churn score from per-feature contributions (LightGBM ``pred_contrib``).

Every feature has a phrase that states the customer's value ("no order for 120
days", "2 unresolved complaints", "revenue down 60% vs previous quarter"). The
drivers of a customer are the phrases of its features with the largest
contributions to the score, strongest first. "Quarter" names the dbt trend windows
(var ``lifecycle_window_days``, 90 days): the last one up to the cutoff and the one before.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from crm_warehouse.analytics.churn.features import FEATURES

Phrase = Callable[[pd.Series], pd.Series]
#: Drivers named per customer (the score table has columns driver_1 .. driver_3).
N_DRIVERS = 3
DRIVER_SEPARATOR = "; "


def _whole(values: pd.Series) -> pd.Series:
    return values.round().astype("Int64").astype(str)


def _percent(values: pd.Series) -> pd.Series:
    return _whole(values * 100.0) + "%"


def _count(values: pd.Series, singular: str, plural: str) -> pd.Series:
    """``"1 complaint"``, ``"3 complaints"``."""
    noun = pd.Series(np.where(values.round() == 1, singular, plural), index=values.index)
    return _whole(values) + " " + noun


def _or_missing(values: pd.Series, text: pd.Series, missing: str) -> pd.Series:
    return text.where(values.notna(), missing)


def _change(values: pd.Series, what: str, missing: str) -> pd.Series:
    """Relative change as "revenue down 60% vs previous quarter"."""
    direction = pd.Series(np.where(values < 0, "down", "up"), index=values.index)
    text = what + " " + direction + " " + _percent(values.abs()) + " vs previous quarter"
    text = text.where(values.round(2) != 0, f"{what} unchanged vs previous quarter")
    return _or_missing(values, text, missing)


def _order_change(values: pd.Series) -> pd.Series:
    direction = pd.Series(np.where(values < 0, "down", "up"), index=values.index)
    text = "orders " + direction + " " + _whole(values.abs()) + " vs previous quarter"
    return text.where(values != 0, "same number of orders as previous quarter")


def _phrases(recent_months: int) -> dict[str, Phrase]:
    recent = f"in the last {recent_months} months"
    return {
        "days_since_last_order": lambda v: "no order for " + _count(v, "day", "days"),
        "gap_ratio": lambda v: _or_missing(
            v, "last order " + v.round(1).astype(str) + "x the usual gap ago", "only one purchase day so far"
        ),
        "completed_orders": lambda v: _count(v, "completed order", "completed orders") + " so far",
        "orders_per_year": lambda v: "buys " + v.round(1).astype(str) + " times a year",
        "revenue_to_date": lambda v: "revenue " + _whole(v) + " to date",
        "average_order_value": lambda v: _or_missing(v, "average order " + _whole(v), "no order value yet"),
        "margin_rate": lambda v: _or_missing(v, "margin rate " + _percent(v), "no margin yet"),
        "trailing_window_revenue": lambda v: "revenue " + _whole(v) + " in the last quarter",
        "previous_window_revenue": lambda v: "revenue " + _whole(v) + " in the previous quarter",
        "revenue_change": lambda v: _change(v, "revenue", "no revenue in the previous quarter"),
        "trailing_window_orders": lambda v: _count(v, "order", "orders") + " in the last quarter",
        "previous_window_orders": lambda v: _count(v, "order", "orders") + " in the previous quarter",
        "order_change": _order_change,
        "revenue_vs_best": lambda v: _or_missing(
            v,
            ("quarterly revenue at " + _percent(v) + " of its best").where(v > 0, "no revenue in the last quarter"),
            "no revenue yet",
        ),
        "trailing_12m_revenue": lambda v: "revenue " + _whole(v) + " in the last 12 months",
        "share_of_wallet": lambda v: _or_missing(v, "share of wallet " + _percent(v), "no wallet estimate"),
        "tenure_days": lambda v: "customer for " + _count(v, "day", "days"),
        "complaints_to_date": lambda v: _count(v, "complaint", "complaints") + " so far",
        "unresolved_complaints": lambda v: _count(v, "unresolved complaint", "unresolved complaints"),
        "recent_complaints": lambda v: _count(v, "complaint", "complaints") + " " + recent,
        "recent_tickets": lambda v: _count(v, "service ticket", "service tickets") + " " + recent,
        "recent_praises": lambda v: _count(v, "praise", "praises") + " " + recent,
        "latest_csat": lambda v: _or_missing(v, "latest CSAT " + _whole(v) + "/5", "no CSAT answer"),
        "latest_nps": lambda v: _or_missing(v, "latest NPS " + _whole(v) + "/10", "no NPS answer"),
        "latest_satisfaction_index": lambda v: _or_missing(
            v, "satisfaction index " + v.round(2).astype(str) + " (perceived / expected)", "no satisfaction survey"
        ),
        "categories_bought": lambda v: "bought " + _count(v, "category", "categories"),
        "touches_to_date": lambda v: _count(v, "marketing touch", "marketing touches") + " received",
        "touch_response_rate": lambda v: _or_missing(
            v, "responded to " + _percent(v) + " of marketing touches", "no marketing touch yet"
        ),
        "recent_touch_responses": lambda v: _count(v, "marketing response", "marketing responses") + " " + recent,
        "stage_code": lambda v: "lifecycle stage: " + v.astype(str),
        "customer_type": lambda v: "customer type: " + v.astype(str).str.replace("_", " "),
    }


def strongest_features(contributions: NDArray[np.float64], n: int) -> NDArray[np.intp]:
    """Column positions of the ``n`` largest values of each row, largest first; ties go to the earlier column.

    Linear in the number of columns (``numpy.partition`` finds each row's ``n``-th
    largest value; only the ``n`` chosen values are sorted), not a full sort per row.
    """
    values = np.asarray(contributions, dtype=np.float64)
    if values.ndim != 2 or not 1 <= n <= values.shape[1]:
        raise ValueError(f"need a 2-D array with at least n={n!r} >= 1 columns, got shape {values.shape}")
    nth_largest = -np.partition(-values, n - 1, axis=1)[:, n - 1 : n]
    above = values > nth_largest
    tied = values == nth_largest
    # Fill up to n with the earliest columns tied at the n-th value.
    room = n - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
    positions = np.nonzero(chosen)[1].reshape(-1, n)
    order = np.argsort(-np.take_along_axis(values, positions, axis=1), axis=1, kind="stable")
    return np.take_along_axis(positions, order, axis=1)


def top_drivers(
    features: pd.DataFrame, contributions: NDArray[np.float64], n: int = N_DRIVERS, recent_months: int = 3
) -> pd.DataFrame:
    """The ``n`` features that raise each customer's score most, in words.

    Only the chosen features are phrased: ``n`` phrases per customer, not one per feature.

    Parameters
    ----------
    features : pandas.DataFrame
        Columns :data:`~crm_warehouse.analytics.churn.features.FEATURES`.
    contributions : numpy.ndarray
        One row per row of ``features``, one column per feature of
        :data:`~crm_warehouse.analytics.churn.features.FEATURES` in that order: its
        contribution to the score (the log-odds ``pred_contrib`` of LightGBM,
        without the bias column).
    n : int
        Number of drivers (at most the number of features).
    recent_months : int
        Length of the "recent" window named in the phrases.

    Returns
    -------
    pandas.DataFrame
        Same index as ``features``; ``driver_1`` .. ``driver_n`` (strongest first;
        when fewer than ``n`` features raise the score, the ones that lower it
        least follow) and ``top_drivers`` (the drivers joined by ``"; "``).
    """
    if not 1 <= n <= len(FEATURES):
        raise ValueError(f"n={n!r} must be between 1 and {len(FEATURES)}")
    missing = [c for c in FEATURES if c not in features.columns]
    if missing:
        raise ValueError(f"features has no column {missing}")
    values = np.asarray(contributions, dtype=np.float64)
    if values.shape != (len(features), len(FEATURES)):
        raise ValueError(f"contributions must have shape {(len(features), len(FEATURES))}, got {values.shape}")
    chosen = strongest_features(values, n)
    phrases = _phrases(recent_months)
    drivers = np.empty(chosen.shape, dtype=object)
    for position, name in enumerate(FEATURES):
        rows, ranks = np.nonzero(chosen == position)
        if rows.size:
            drivers[rows, ranks] = phrases[name](features[name].iloc[rows]).to_numpy(dtype=object)
    result = pd.DataFrame(drivers, index=features.index, columns=[f"driver_{i + 1}" for i in range(n)])
    joined = result["driver_1"]
    for column in result.columns[1:]:
        joined = joined + DRIVER_SEPARATOR + result[column]
    result["top_drivers"] = joined
    return result
