"""Gamma-Gamma spend model (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value").

The value of each transaction of a customer is Gamma(p, nu) with the customer's
rate ``nu ~ Gamma(q, gamma)``, so the mean spend of a customer is ``p / nu`` and the
population mean spend is ``p gamma / (q - 1)``. lifetimes calls ``gamma`` ``v``.
The model is fitted on the repeat buyers only (``frequency > 0``) and on the mean
value of their repeat transactions. It assumes spend is independent of purchase
frequency; the fit measures their correlation and warns when it is large.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln, polygamma

from crm_warehouse.analytics.clv.config import FitOptions
from crm_warehouse.analytics.clv.mle import (
    FittedParameters,
    FloatArray,
    ModelFitError,
    Objective,
    as_float_array,
    check_weights,
    collapse_rows,
    covariance_from_hessian,
    fit_log_params,
    levels,
    wsum,
)

PARAM_NAMES = ("p", "q", "gamma")


class SpendFrequencyCorrelationWarning(UserWarning):
    """Spend and purchase frequency are correlated, against the Gamma-Gamma assumption."""


def _check_spend(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = as_float_array("frequency", frequency)
    m = as_float_array("monetary_value", monetary_value)
    if x.shape != m.shape:
        raise ValueError(f"frequency and monetary_value have different lengths: {x.size}, {m.size}")
    if x.size == 0:
        raise ValueError("the customer summary is empty")
    if (x < 0).any() or (x != np.round(x)).any():
        raise ValueError("frequency must be a non-negative whole number of purchases")
    return x, m


def log_likelihood(p: float, q: float, gamma: float, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
    """Per-customer log density of the mean spend ``zbar`` of ``x`` transactions (x > 0).

    ``log G(px+q) - log G(px) - log G(q) + q log(gamma) + (px-1) log(zbar) + px log(x)
    - (px+q) log(gamma + x zbar)``
    """
    x, m = _check_spend(frequency, monetary_value)
    if (x == 0).any() or (m <= 0).any():
        raise ValueError("the Gamma-Gamma likelihood needs frequency > 0 and monetary_value > 0")
    return _log_likelihood(np.array([p, q, gamma]), x, m)


def _log_likelihood(theta: FloatArray, x: FloatArray, m: FloatArray) -> FloatArray:
    p, q, gamma = theta
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * m)
    )


def _objective(x: FloatArray, m: FloatArray, w: FloatArray) -> Objective:
    """Weighted negative log-likelihood with its exact gradient and Hessian.

    Same value as ``-w @ log_likelihood(...)``, arranged for speed: the
    special functions depend on x only and are evaluated once per distinct x;
    the terms linear in p are summed once; per row only ``log(gamma + x zbar)``
    and ``1 / (gamma + x zbar)`` remain.
    """
    x_values, x_index = levels(x)
    x_weight = np.bincount(x_index, weights=w, minlength=x_values.size)
    total_weight = w.sum()
    # (px - 1) log zbar + px log x = p * x (log zbar + log x) - log zbar
    linear_in_p = wsum(w, x * (np.log(m) + np.log(x)))
    constant = -wsum(w, np.log(m))
    xm, wx = x * m, w * x

    def objective(theta: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        p, q, gamma = theta
        k = x_values
        pk = p * k
        log_total = np.log(gamma + xm)
        inv_total = 1.0 / (gamma + xm)
        inv_total2 = inv_total**2
        sum_log, sum_x_log = wsum(w, log_total), wsum(wx, log_total)
        sum_inv, sum_x_inv = wsum(w, inv_total), wsum(wx, inv_total)
        sum_inv2, sum_x_inv2 = wsum(w, inv_total2), wsum(wx, inv_total2)
        psi_pkq, tri_pkq = digamma(pk + q), polygamma(1, pk + q)
        ll = (
            wsum(x_weight, gammaln(pk + q) - gammaln(pk))
            - total_weight * (gammaln(q) - q * np.log(gamma))
            + p * linear_in_p
            + constant
            - p * sum_x_log
            - q * sum_log
        )
        grad = np.array(
            [
                wsum(x_weight, k * (psi_pkq - digamma(pk))) + linear_in_p - sum_x_log,
                wsum(x_weight, psi_pkq) - total_weight * (digamma(q) - np.log(gamma)) - sum_log,
                total_weight * q / gamma - p * sum_x_inv - q * sum_inv,
            ]
        )
        hess = np.empty((3, 3))
        hess[0, 0] = wsum(x_weight, k**2 * (tri_pkq - polygamma(1, pk)))
        hess[0, 1] = hess[1, 0] = wsum(x_weight, k * tri_pkq)
        hess[0, 2] = hess[2, 0] = -sum_x_inv
        hess[1, 1] = wsum(x_weight, tri_pkq) - total_weight * polygamma(1, q)
        hess[1, 2] = hess[2, 1] = total_weight / gamma - sum_inv
        hess[2, 2] = -total_weight * q / gamma**2 + p * sum_x_inv2 + q * sum_inv2
        return -float(ll), -grad, -hess

    return objective


@dataclass(frozen=True, eq=False)
class GammaGammaModel(FittedParameters):
    """A fitted Gamma-Gamma spend model.

    Attributes
    ----------
    p, q, gamma : float
        Maximum-likelihood estimates (``gamma`` is in money units).
    covariance : numpy.ndarray
        Asymptotic covariance of (p, q, gamma): inverse Hessian of the negative
        log-likelihood at the optimum.
    log_likelihood : float
        Maximised total log-likelihood.
    n_customers : float
        Number (total weight) of repeat buyers fitted.
    frequency_monetary_corr : float
        Pearson correlation of frequency and mean spend among the repeat buyers
        (NaN if frequency is the same for all).
    independence_ok : bool
        False when ``|frequency_monetary_corr|`` exceeds the threshold of
        ``FitOptions`` (True when the correlation is undefined: all repeat
        buyers have the same frequency).
    """

    param_names: ClassVar[tuple[str, ...]] = PARAM_NAMES
    p: float
    q: float
    gamma: float
    covariance: FloatArray
    log_likelihood: float
    n_customers: float
    frequency_monetary_corr: float
    independence_ok: bool

    @property
    def population_mean_spend(self) -> float:
        """Mean transaction value of a new customer, ``p gamma / (q - 1)``."""
        return self.p * self.gamma / (self.q - 1.0)

    def conditional_expected_average_spend(self, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
        """E[mean transaction value | x, zbar] (Fader & Hardie 2013, equation 5).

        ``p (gamma + x zbar) / (p x + q - 1)``: a weighted average of the population
        mean and the customer's own mean; the population mean when x = 0. A
        repeat buyer whose repeat purchases were all free (zbar = 0) is valid
        here, though not in the fit.
        """
        x, m = _check_spend(frequency, monetary_value)
        if (m < 0).any():
            raise ValueError(f"monetary_value has {int((m < 0).sum())} negative values")
        return self.p * (self.gamma + x * m) / (self.p * x + self.q - 1.0)


def fit_gamma_gamma(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    deduplicate: bool = True,
    options: FitOptions | None = None,
) -> GammaGammaModel:
    """Fit the Gamma-Gamma model by maximum likelihood on the repeat buyers.

    Parameters
    ----------
    frequency, monetary_value : array-like
        The ``frequency`` and ``monetary_value`` (mean value of the repeat
        purchases) columns of a customer summary. Rows with frequency 0 are
        ignored.
    weights : array-like, optional
        Number of customers each row stands for (default one each).
    deduplicate : bool
        Collapse identical (frequency, monetary_value) rows into weighted rows.
    options : FitOptions, optional
        Numerical thresholds; defaults to ``FitOptions()``.

    Warns
    -----
    SpendFrequencyCorrelationWarning
        If ``|corr(frequency, monetary_value)|`` among repeat buyers exceeds
        ``options.max_abs_frequency_monetary_corr``.

    Raises
    ------
    ValueError
        For invalid input, or a repeat buyer with monetary_value <= 0.
    ModelFitError
        If fewer than two repeat buyers, all with the same spend; if the
        optimiser fails, a parameter runs out of range, the Hessian is
        singular, or q <= 1 (infinite mean spend, unusable for CLV).
    """
    options = options or FitOptions()
    x, m = _check_spend(frequency, monetary_value)
    w = check_weights(weights, x.size)
    repeat = (x > 0) & (w > 0)
    x, m, w = x[repeat], m[repeat], w[repeat]
    if x.size == 0:
        raise ModelFitError("no customer made a repeat purchase (frequency is 0 for all): Gamma-Gamma cannot be fitted")
    if (m <= 0).any():
        raise ValueError(
            f"monetary_value is <= 0 for {int((m <= 0).sum())} repeat buyers, e.g. {m[m <= 0][0]}: "
            "the Gamma-Gamma model needs positive spend"
        )
    if np.ptp(m) == 0:
        raise ModelFitError(f"every repeat buyer has the same monetary_value {m[0]}: spend variation cannot be fitted")
    corr = _weighted_corr(x, m, w)
    independence_ok = not abs(corr) > options.max_abs_frequency_monetary_corr
    if not independence_ok:
        warnings.warn(
            f"frequency and monetary_value are correlated (Pearson {corr:.3f}, threshold "
            f"{options.max_abs_frequency_monetary_corr}): the Gamma-Gamma independence assumption is doubtful",
            SpendFrequencyCorrelationWarning,
            stacklevel=2,
        )
    if deduplicate:
        rows = collapse_rows((x, m), w)
        (x, m), w = rows.columns, rows.weights
    start = np.array([1.0, 1.0, float(np.median(m))])
    optimum = fit_log_params(_objective(x, m, w), PARAM_NAMES, start, float(w.sum()), options)
    covariance = covariance_from_hessian(optimum.hessian, PARAM_NAMES, options)
    p, q, gamma = optimum.params.tolist()
    if q <= 1.0:
        raise ModelFitError(f"q = {q:.4g} <= 1: the fitted mean spend p*gamma/(q-1) is infinite, unusable for CLV")
    return GammaGammaModel(
        p=p,
        q=q,
        gamma=gamma,
        covariance=covariance,
        log_likelihood=-optimum.neg_log_likelihood,
        n_customers=float(w.sum()),
        frequency_monetary_corr=corr,
        independence_ok=independence_ok,
    )


def _weighted_corr(x: FloatArray, m: FloatArray, w: FloatArray) -> float:
    """Weighted Pearson correlation; NaN when either variable is constant."""
    dx = x - np.average(x, weights=w)
    dm = m - np.average(m, weights=w)
    var_x, var_m = np.average(dx**2, weights=w), np.average(dm**2, weights=w)
    if var_x == 0 or var_m == 0:
        return float("nan")
    return float(np.average(dx * dm, weights=w) / np.sqrt(var_x * var_m))
