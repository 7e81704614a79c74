"""Discounted customer lifetime value from a purchase model and a Gamma-Gamma spend model.

As in lifetimes' ``customer_lifetime_value`` and pymc-marketing's
``customer_lifetime_value``: for months m = 1..H,

``CLV = margin * E[spend] * sum_m (E[X(m)] - E[X(m-1)]) / (1 + d)^m``

where ``E[X(m)]`` is the purchase model's (BG/NBD, MBG/NBD or Pareto/NBD)
conditional expected number of purchases in the first m months after the end of
calibration and ``E[spend]`` the Gamma-Gamma conditional expected transaction
value. A horizon that is not whole months ends with a part month. Settings come
from :class:`ClvConfig`.

Intervals: expected purchases and CLV get a ``config.interval_level`` interval
from the uncertainty of the fitted parameters (delta method on the log scale,
with the parameters' covariance on the log scale; the two models are fitted on
separate likelihoods, so their parameters are independent). They say how well
the population model is known for that customer's history, not how much the
customer's actual purchases will scatter around the expectation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy.stats import norm

from crm_warehouse.analytics.clv.bgnbd import check_rfm
from crm_warehouse.analytics.clv.config import ClvConfig, FitOptions
from crm_warehouse.analytics.clv.gamma_gamma import GammaGammaModel, fit_gamma_gamma
from crm_warehouse.analytics.clv.mle import FloatArray, ModelFitError, collapse_rows
from crm_warehouse.analytics.clv.selection import ModelSelection, PurchaseModel, choose_purchase_model, fit_chosen_model
from crm_warehouse.analytics.clv.summary import SUMMARY_COLUMNS

__all__ = [
    "CLV_COLUMNS",
    "ClvConfig",
    "ClvModels",
    "ClvResult",
    "customer_lifetime_value",
    "fit_and_score",
    "fit_models",
]

CLV_COLUMNS = (
    *SUMMARY_COLUMNS,
    "p_alive",
    "expected_purchases",
    "expected_purchases_low",
    "expected_purchases_high",
    "expected_avg_spend",
    "expected_spend",
    "clv",
    "clv_low",
    "clv_high",
    "churn_probability",
)
#: Relative step in the log-parameters of the numerical derivatives of the delta method.
_LOG_STEP = 1e-4


def _period_ends(config: ClvConfig) -> tuple[FloatArray, FloatArray]:
    """Ends of the discounting periods in model units (0 first) and the discount factor of each period."""
    months = config.horizon_units / config.units_per_month
    n_periods = max(1, int(np.ceil(months - 1e-9)))
    ends = np.minimum(np.arange(n_periods + 1) * config.units_per_month, config.horizon_units)
    discount = (1.0 + config.monthly_discount_rate) ** -np.arange(1, n_periods + 1)
    return ends, discount


def _log_gradients(
    evaluate: Callable[[FloatArray], tuple[FloatArray, ...]], theta: FloatArray, at_theta: tuple[FloatArray, ...]
) -> list[list[FloatArray]]:
    """Forward-difference derivatives of the logs of ``evaluate``'s outputs in ``log(theta)``, per parameter.

    ``at_theta`` is ``evaluate(theta)``. Forward differences (one evaluation per
    parameter) are accurate to about 1e-4 of the derivative, far below the
    uncertainty the interval describes.
    """
    gradients = []
    for i in range(theta.size):
        shift = np.zeros_like(theta)
        shift[i] = _LOG_STEP
        moved = evaluate(theta * np.exp(shift))
        with np.errstate(divide="ignore", invalid="ignore"):
            # A value that underflows to 0 (a customer certainly gone) has no relative uncertainty to report.
            slopes = [np.nan_to_num((np.log(u) - np.log(d)) / _LOG_STEP) for u, d in zip(moved, at_theta, strict=True)]
        gradients.append(slopes)
    return gradients


def _log_variance(gradients: list[FloatArray], theta: FloatArray, covariance: FloatArray) -> FloatArray:
    """``g' Cov(log theta) g`` per row, for the per-parameter gradients ``gradients``."""
    log_cov = covariance / np.outer(theta, theta)
    variance = np.zeros_like(gradients[0])
    for i, gi in enumerate(gradients):
        for j, gj in enumerate(gradients):
            variance += log_cov[i, j] * gi * gj
    return np.maximum(variance, 0.0)


def customer_lifetime_value(
    transaction_model: PurchaseModel,
    spend_model: GammaGammaModel,
    summary: pd.DataFrame,
    config: ClvConfig | None = None,
) -> pd.DataFrame:
    """Per-customer P(alive), expected purchases and spend over the horizon, discounted CLV, churn probability.

    Parameters
    ----------
    transaction_model : BetaGeoModel, ModifiedBetaGeoModel or ParetoNBDModel
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
        ``p_alive`` (now), ``expected_purchases`` (over the horizon) with its
        interval, ``expected_avg_spend`` (per transaction), ``expected_spend``
        (undiscounted: purchases x average spend), ``clv`` (discounted, x
        margin) with its interval, and ``churn_probability``: P(no purchase
        within the horizon), defined for one-time buyers too.
    """
    config = config or ClvConfig()
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"summary has no column {missing} (columns: {list(summary.columns)})")
    x, tx, t_obs = check_rfm(summary["frequency"], summary["recency"], summary["T"])
    monetary = summary["monetary_value"].to_numpy(dtype=np.float64)
    avg_spend = spend_model.conditional_expected_average_spend(x, monetary)
    # Predictions depend on (x, t_x, T) only: compute once per distinct triple.
    rows = collapse_rows((x, tx, t_obs), np.ones(x.size))
    ux, utx, ut = (c[:, None] for c in rows.columns)
    ends, discount = _period_ends(config)

    def purchases(theta: FloatArray) -> tuple[FloatArray, FloatArray]:
        cumulative = transaction_model.with_params(theta).expected_purchases(ends[None, :], ux, utx, ut)
        # einsum: no BLAS threads, see mle.wsum
        return cumulative[:, -1], np.einsum("ij,j->i", np.diff(cumulative, axis=1), discount)

    theta = np.array(list(transaction_model.params.values()))
    expected, discounted = purchases(theta)
    grad_expected, grad_discounted = zip(*_log_gradients(purchases, theta, (expected, discounted)), strict=True)
    var_expected = _log_variance(list(grad_expected), theta, transaction_model.covariance)[rows.inverse]
    var_discounted = _log_variance(list(grad_discounted), theta, transaction_model.covariance)[rows.inverse]
    spend_theta = np.array(list(spend_model.params.values()))

    def spend(values: FloatArray) -> tuple[FloatArray]:
        return (spend_model.with_params(values).conditional_expected_average_spend(x, monetary),)

    grad_spend = [g[0] for g in _log_gradients(spend, spend_theta, (avg_spend,))]
    var_spend = _log_variance(grad_spend, spend_theta, spend_model.covariance)
    z = float(norm.ppf(0.5 + config.interval_level / 2.0))

    expected, discounted = expected[rows.inverse], discounted[rows.inverse]
    clv = config.margin * avg_spend * discounted
    sd_expected, sd_clv = np.sqrt(var_expected), np.sqrt(var_discounted + var_spend)
    result = summary[list(SUMMARY_COLUMNS)].copy()
    result["p_alive"] = transaction_model.probability_alive(x, tx, t_obs)
    result["expected_purchases"] = expected
    result["expected_purchases_low"] = expected * np.exp(-z * sd_expected)
    result["expected_purchases_high"] = expected * np.exp(z * sd_expected)
    result["expected_avg_spend"] = avg_spend
    result["expected_spend"] = expected * avg_spend
    result["clv"] = clv
    result["clv_low"] = clv * np.exp(-z * sd_clv)
    result["clv_high"] = clv * np.exp(z * sd_clv)
    no_purchase = transaction_model.no_purchase(config.horizon_units, *rows.columns)
    result["churn_probability"] = np.clip(no_purchase[rows.inverse], 0.0, 1.0)
    return result


@dataclass(frozen=True)
class ClvModels:
    """The two fitted models and how the purchase model was chosen.

    Attributes
    ----------
    transaction_model : BetaGeoModel, ModifiedBetaGeoModel or ParetoNBDModel
        The chosen purchase model, fitted on all customers.
    spend_model : GammaGammaModel
        Fitted on the repeat buyers with positive repeat spend.
    n_zero_spend_excluded : int
        Repeat buyers left out of the spend fit because all their repeat
        purchases were free (the Gamma-Gamma likelihood needs positive spend);
        they are still scored.
    selection : ModelSelection
        Which purchase model was used and why.
    """

    transaction_model: PurchaseModel
    spend_model: GammaGammaModel
    n_zero_spend_excluded: int
    selection: ModelSelection


@dataclass(frozen=True)
class ClvResult(ClvModels):
    """Scores of every customer with the two fitted models behind them (:class:`ClvModels`).

    Attributes
    ----------
    scores : pandas.DataFrame
        Output of :func:`customer_lifetime_value`.
    """

    scores: pd.DataFrame


def fit_models(
    summary: pd.DataFrame,
    config: ClvConfig | None = None,
    options: FitOptions | None = None,
    *,
    summarize: Callable[[date], pd.DataFrame] | None = None,
    as_of: date | None = None,
) -> ClvModels:
    """Choose and fit the purchase model and fit Gamma-Gamma on a customer summary.

    Parameters
    ----------
    summary : pandas.DataFrame
        Columns ``frequency``, ``recency``, ``T`` (in ``config.time_unit``) and
        ``monetary_value``, one row per customer.
    config : ClvConfig, optional
        CLV settings; defaults to ``ClvConfig()``.
    options : FitOptions, optional
        Numerical thresholds of the fits.
    summarize, as_of : optional
        With ``config.model == "auto"``: the as-of date of ``summary`` and a
        function giving the summary at an earlier day, for the internal time
        split. Without them ``auto`` falls back to the baseline BG/NBD.

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
    if config.model == "auto" and (summarize is None or as_of is None):
        selection = ModelSelection(
            chosen="bgnbd", reason="No transactions to split, so the baseline BG/NBD is used.", ranking=("bgnbd",)
        )
    else:
        selection = choose_purchase_model(summarize, summary, as_of, config, options)
    transaction_model, selection = fit_chosen_model(selection, summary, options)
    zero_spend = (summary["frequency"] > 0) & (summary["monetary_value"] == 0)
    fitted = summary[~zero_spend]
    try:
        spend_model = fit_gamma_gamma(fitted["frequency"], fitted["monetary_value"], options=options)
    except ModelFitError as exc:
        raise ModelFitError(f"the Gamma-Gamma spend fit failed: {exc}", model="gamma_gamma") from exc
    return ClvModels(
        transaction_model=transaction_model,
        spend_model=spend_model,
        n_zero_spend_excluded=int(zero_spend.sum()),
        selection=selection,
    )


def fit_and_score(
    summary: pd.DataFrame,
    config: ClvConfig | None = None,
    options: FitOptions | None = None,
    *,
    summarize: Callable[[date], pd.DataFrame] | None = None,
    as_of: date | None = None,
) -> ClvResult:
    """:func:`fit_models` on a customer summary, then score every customer of it (same parameters)."""
    config = config or ClvConfig()
    models = fit_models(summary, config, options, summarize=summarize, as_of=as_of)
    scores = customer_lifetime_value(models.transaction_model, models.spend_model, summary, config)
    return ClvResult(**vars(models), scores=scores)
