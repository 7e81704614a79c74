"""Discounted customer lifetime value from a BG/NBD and a Gamma-Gamma model.

As in lifetimes' ``customer_lifetime_value`` and pymc-marketing's
``customer_lifetime_value``: for months m = 1..H,

``CLV = margin * E[spend] * sum_m (E[X(m)] - E[X(m-1)]) / (1 + d)^m``

where ``E[X(m)]`` is the BG/NBD conditional expected number of purchases in the
first m months after the end of calibration and ``E[spend]`` the Gamma-Gamma
conditional expected transaction value. Settings come from :class:`ClvConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_warehouse.analytics.clv.bgnbd import BetaGeoModel, check_rfm, fit_bgnbd
from crm_warehouse.analytics.clv.config import ClvConfig, FitOptions
from crm_warehouse.analytics.clv.gamma_gamma import GammaGammaModel, fit_gamma_gamma
from crm_warehouse.analytics.clv.mle import collapse_rows
from crm_warehouse.analytics.clv.summary import SUMMARY_COLUMNS

__all__ = ["CLV_COLUMNS", "ClvConfig", "ClvResult", "customer_lifetime_value", "fit_and_score"]

CLV_COLUMNS = (
    *SUMMARY_COLUMNS,
    "p_alive",
    "expected_purchases",
    "expected_avg_spend",
    "expected_spend",
    "clv",
)


def customer_lifetime_value(
    transaction_model: BetaGeoModel,
    spend_model: GammaGammaModel,
    summary: pd.DataFrame,
    config: ClvConfig | None = None,
) -> pd.DataFrame:
    """Per-customer P(alive), expected purchases and spend over the horizon, and discounted CLV.

    Parameters
    ----------
    transaction_model : BetaGeoModel
        Fitted on data in ``config.time_unit``.
    spend_model : GammaGammaModel
        Fitted spend model.
    summary : pandas.DataFrame
        Customer summary with columns ``frequency``, ``recency``, ``T`` (in
        ``config.time_unit``) and ``monetary_value``, as from
        :func:`crm_warehouse.analytics.clv.summary.summarize_transactions`.
    config : ClvConfig, optional
        Horizon, monthly discount rate, margin and time unit; defaults to ``ClvConfig()``.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``summary``, columns :data:`CLV_COLUMNS`: the summary,
        ``p_alive`` (now), ``expected_purchases`` (over the horizon),
        ``expected_avg_spend`` (per transaction), ``expected_spend``
        (undiscounted: purchases x average spend) and ``clv`` (discounted, x margin).
    """
    config = config or ClvConfig()
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"summary has no column {missing} (columns: {list(summary.columns)})")
    x, tx, t_obs = check_rfm(summary["frequency"], summary["recency"], summary["T"])
    avg_spend = spend_model.conditional_expected_average_spend(x, summary["monetary_value"])
    # Predictions depend on (x, t_x, T) only: compute once per distinct triple.
    rows = collapse_rows((x, tx, t_obs), np.ones(x.size))
    ux, utx, ut = (c[:, None] for c in rows.columns)
    month_ends = np.arange(config.horizon_months + 1) * config.units_per_month
    cumulative = transaction_model.expected_purchases(month_ends[None, :], ux, utx, ut)
    discount = (1.0 + config.monthly_discount_rate) ** -np.arange(1, config.horizon_months + 1)
    discounted = np.einsum("ij,j->i", np.diff(cumulative, axis=1), discount)  # no BLAS threads, see wsum
    expected = cumulative[:, -1][rows.inverse]
    result = summary[list(SUMMARY_COLUMNS)].copy()
    result["p_alive"] = transaction_model.probability_alive(x, tx, t_obs)
    result["expected_purchases"] = expected
    result["expected_avg_spend"] = avg_spend
    result["expected_spend"] = expected * avg_spend
    result["clv"] = config.margin * avg_spend * discounted[rows.inverse]
    return result


@dataclass(frozen=True)
class ClvResult:
    """Scores of every customer with the two fitted models behind them.

    Attributes
    ----------
    scores : pandas.DataFrame
        Output of :func:`customer_lifetime_value`.
    transaction_model : BetaGeoModel
        Fitted on all customers.
    spend_model : GammaGammaModel
        Fitted on the repeat buyers with positive repeat spend.
    n_zero_spend_excluded : int
        Repeat buyers left out of the spend fit because all their repeat
        purchases were free (the Gamma-Gamma likelihood needs positive spend);
        they are still scored.
    """

    scores: pd.DataFrame
    transaction_model: BetaGeoModel
    spend_model: GammaGammaModel
    n_zero_spend_excluded: int


def fit_and_score(
    summary: pd.DataFrame, config: ClvConfig | None = None, options: FitOptions | None = None
) -> ClvResult:
    """Fit BG/NBD and Gamma-Gamma on a customer summary and score every customer.

    Parameters
    ----------
    summary : pandas.DataFrame
        Columns ``frequency``, ``recency``, ``T`` (in ``config.time_unit``) and
        ``monetary_value``, one row per customer.
    config : ClvConfig, optional
        CLV settings; defaults to ``ClvConfig()``.
    options : FitOptions, optional
        Numerical thresholds of the fits.

    Raises
    ------
    ValueError
        If the summary is invalid or a model cannot be fitted (see
        :func:`~crm_warehouse.analytics.clv.bgnbd.fit_bgnbd` and
        :func:`~crm_warehouse.analytics.clv.gamma_gamma.fit_gamma_gamma`).
    """
    config = config or ClvConfig()
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"summary has no column {missing} (columns: {list(summary.columns)})")
    transaction_model = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"], options=options)
    zero_spend = (summary["frequency"] > 0) & (summary["monetary_value"] == 0)
    fitted = summary[~zero_spend]
    spend_model = fit_gamma_gamma(fitted["frequency"], fitted["monetary_value"], options=options)
    return ClvResult(
        scores=customer_lifetime_value(transaction_model, spend_model, summary, config),
        transaction_model=transaction_model,
        spend_model=spend_model,
        n_zero_spend_excluded=int(zero_spend.sum()),
    )
