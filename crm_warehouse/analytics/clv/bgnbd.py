"""BG/NBD purchase-count model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

While alive, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``
(``alpha`` is a rate, in the time unit of the data); after each repeat purchase
the customer drops out for good with probability ``p ~ Beta(a, b)``. A customer
is summarised by ``frequency`` x (repeat purchases), ``recency`` t_x (time of the
last purchase after the first) and ``T`` (time since the first purchase).

The fit maximises the exact log-likelihood (equation 6 of the paper), written in
log space with ``gammaln``/``betaln`` and a log-sum-exp, over the *distinct*
(x, t_x, T) triples weighted by their counts: with purchase dates in days a
million customers collapse to a few hundred thousand triples or fewer. Gradient
and Hessian are analytic; standard errors come from the inverse Hessian.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, polygamma

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

PARAM_NAMES = ("r", "alpha", "a", "b")
#: The search starts at r = a = b = 1 and alpha = max(T) / this (lifetimes' time scaling).
_START_ALPHA_DIVISOR = 10.0


def check_rfm(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate a (frequency, recency, T) summary and return it as float arrays.

    Raises
    ------
    ValueError
        Naming the column for: unequal lengths, no rows, missing or infinite
        values, negative values, non-integer frequency, recency > T, or a
        customer with frequency 0 but recency > 0.
    """
    x = as_float_array("frequency", frequency)
    tx = as_float_array("recency", recency)
    t_obs = as_float_array("T", T)
    if not x.shape == tx.shape == t_obs.shape:
        raise ValueError(f"frequency, recency and T have different lengths: {x.size}, {tx.size}, {t_obs.size}")
    if x.size == 0:
        raise ValueError("the customer summary is empty")
    for name, values in (("frequency", x), ("recency", tx), ("T", t_obs)):
        if (values < 0).any():
            raise ValueError(f"{name} has {int((values < 0).sum())} negative values, e.g. {values[values < 0][0]}")
    if (x != np.round(x)).any():
        raise ValueError(f"frequency must count purchases, got non-integer values, e.g. {x[x != np.round(x)][0]}")
    later = tx > t_obs
    if later.any():
        i = int(np.argmax(later))
        raise ValueError(
            f"recency > T for {int(later.sum())} customers (first at position {i}: recency {tx[i]}, T {t_obs[i]})"
        )
    inconsistent = (x == 0) & (tx > 0)
    if inconsistent.any():
        raise ValueError(f"{int(inconsistent.sum())} customers have frequency 0 but recency > 0")
    return x, tx, t_obs


def log_likelihood(
    r: float, alpha: float, a: float, b: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Per-customer BG/NBD log-likelihood (FHL 2005, equation 6).

    ``log L = log G(r+x) - log G(r) + r log(alpha) + log B(a, b+x) - log B(a, b)
    + log[(alpha+T)^-(r+x) + 1{x>0} a/(b+x-1) (alpha+t_x)^-(r+x)]``
    """
    x, tx, t_obs = check_rfm(frequency, recency, T)
    repeat = x > 0
    b_x_1 = np.where(repeat, b + x - 1.0, 1.0)
    l1 = -(r + x) * np.log(alpha + t_obs)
    l2 = np.where(repeat, np.log(a) - np.log(b_x_1) - (r + x) * np.log(alpha + tx), -np.inf)
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b) + np.logaddexp(l1, l2)


def count_terms(
    theta: FloatArray, k: FloatArray, weight: FloatArray, shift: float
) -> tuple[float, FloatArray, FloatArray]:
    """Weighted ``log G(r+x)/G(r) + r log(alpha) + log B(a, b+x+shift)/B(a, b)`` over the distinct
    counts ``k``, with its gradient and Hessian (upper triangle): the part of the BG/NBD
    (shift 0) and MBG/NBD (shift 1) likelihoods that depends on x only."""
    r, alpha, a, b = theta
    base = gammaln(r + k) - gammaln(r) + r * np.log(alpha) + betaln(a, b + k + shift) - betaln(a, b)
    psi_ab = digamma(a + b) - digamma(a + b + k + shift)
    tri_ab = polygamma(1, a + b) - polygamma(1, a + b + k + shift)
    total = weight.sum()
    grad = np.array(
        [
            wsum(weight, digamma(r + k) - digamma(r) + np.log(alpha)),
            total * r / alpha,
            wsum(weight, psi_ab),
            wsum(weight, psi_ab + digamma(b + k + shift) - digamma(b)),
        ]
    )
    hess = np.zeros((4, 4))
    hess[0, 0] = wsum(weight, polygamma(1, r + k) - polygamma(1, r))
    hess[0, 1] = total / alpha
    hess[1, 1] = -total * r / alpha**2
    hess[2, 2] = hess[2, 3] = wsum(weight, tri_ab)
    hess[3, 3] = wsum(weight, tri_ab + polygamma(1, b + k + shift) - polygamma(1, b))
    return wsum(weight, base), grad, hess


Levels = tuple[FloatArray, NDArray[np.intp]]


def dropout_tail(
    theta: FloatArray, x: FloatArray, w: FloatArray, t_levels: Levels, tx_levels: Levels, bx_levels: Levels
) -> tuple[float, FloatArray, FloatArray]:
    """Weighted ``log[exp(l1) + exp(l2)]``, ``l1 = -(r+x) log(alpha+T)``,
    ``l2 = log a - log(b+x') - (r+x) log(alpha+t_x)``, with its gradient and Hessian (upper
    triangle): the alive-or-dropped tail of BG/NBD (``x' = x - 1``, repeat buyers) and
    MBG/NBD (``x' = x``, everyone). Each ``*_levels`` is ``levels()`` of one column."""
    r, alpha, a, b = theta
    (t_values, t_index), (tx_values, tx_index), (bx_values, bx_index) = t_levels, tx_levels, bx_levels
    log_t = np.log(alpha + t_values)[t_index]
    log_tx = np.log(alpha + tx_values)[tx_index]
    inv_t = (1.0 / (alpha + t_values))[t_index]
    inv_tx = (1.0 / (alpha + tx_values))[tx_index]
    log_bx = np.log(b + bx_values)[bx_index]
    inv_bx = (1.0 / (b + bx_values))[bx_index]
    rx = r + x
    l1 = -rx * log_t
    l2 = np.log(a) - log_bx - rx * log_tx
    # Log-sum-exp by hand: one exp for the tail and both shares (np.logaddexp is slow).
    small = np.exp(-np.abs(l1 - l2))
    tail = np.maximum(l1, l2) + np.log1p(small)
    w2 = np.where(l2 > l1, 1.0, small) / (1.0 + small)
    w1 = np.where(l2 > l1, small, 1.0) / (1.0 + small)
    ww1, ww2 = w * w1, w * w2
    grad = np.array(
        [
            -(wsum(ww1, log_t) + wsum(ww2, log_tx)),
            -(wsum(ww1, rx * inv_t) + wsum(ww2, rx * inv_tx)),
            ww2.sum() / a,
            -wsum(ww2, inv_bx),
        ]
    )
    hess = np.zeros((4, 4))
    hess[0, 1] = -(wsum(ww1, inv_t) + wsum(ww2, inv_tx))
    hess[1, 1] = wsum(ww1, rx * inv_t**2) + wsum(ww2, rx * inv_tx**2)
    hess[2, 2] = -ww2.sum() / a**2
    hess[3, 3] = wsum(ww2, inv_bx**2)
    # Curvature of the log-sum-exp: w1 w2 (g1 - g2)(g1 - g2)'.
    diff = (log_tx - log_t, rx * (inv_tx - inv_t), np.full_like(rx, -1.0 / a), inv_bx)
    share = ww1 * w2
    for i in range(4):
        weighted = share * diff[i]
        for j in range(i, 4):
            hess[i, j] += wsum(weighted, diff[j])
    return wsum(w, tail), grad, hess


def _objective(x: FloatArray, tx: FloatArray, t_obs: FloatArray, w: FloatArray) -> Objective:
    """Weighted negative log-likelihood with its exact gradient and Hessian.

    Same value as ``-w @ log_likelihood(...)``, arranged for speed: the special
    functions depend on x only and are evaluated once per distinct x; the logs
    once per distinct T and t_x; customers without repeat purchases only enter
    through ``-r log(alpha + T)``. What remains per row is plain arithmetic.
    """
    x_values, x_index = levels(x)
    x_weight = np.bincount(x_index, weights=w, minlength=x_values.size)
    once = x == 0
    t0_values, t0_index = levels(t_obs[once])
    t0_weight = np.bincount(t0_index, weights=w[once], minlength=t0_values.size)
    repeat = ~once
    xr, wr = x[repeat], w[repeat]
    xr_values, xr_index = levels(xr)
    t_values, t_index = levels(t_obs[repeat])
    tx_values, tx_index = levels(tx[repeat])

    def objective(theta: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        r, alpha, a, b = theta
        ll, grad, hess = count_terms(theta, x_values, x_weight, shift=0.0)

        # No repeat purchase: the tail is -r log(alpha + T).
        inv0 = 1.0 / (alpha + t0_values)
        log0 = wsum(t0_weight, np.log(alpha + t0_values))
        ll -= r * log0
        grad[0] -= log0
        grad[1] -= r * wsum(t0_weight, inv0)
        hess[0, 1] -= wsum(t0_weight, inv0)
        hess[1, 1] += r * wsum(t0_weight, inv0**2)

        # Repeat buyers: a/(b+x-1) in the dropout term.
        tail = dropout_tail(theta, xr, wr, (t_values, t_index), (tx_values, tx_index), (xr_values - 1.0, xr_index))
        ll += tail[0]
        grad += tail[1]
        hess += tail[2]
        hess = np.triu(hess) + np.triu(hess, 1).T
        return -float(ll), -grad, -hess

    return objective


@dataclass(frozen=True, eq=False)
class BetaGeoModel(FittedParameters):
    """A fitted BG/NBD model.

    Attributes
    ----------
    r, alpha, a, b : float
        Maximum-likelihood estimates; ``alpha`` is in the time unit of the data.
    covariance : numpy.ndarray
        Asymptotic covariance of (r, alpha, a, b): the inverse Hessian of the
        negative log-likelihood at the optimum.
    log_likelihood : float
        Maximised total log-likelihood.
    n_customers : float
        Number (total weight) of customers fitted.
    n_distinct : int
        Number of distinct (frequency, recency, T) rows the likelihood was evaluated on.
    """

    param_names: ClassVar[tuple[str, ...]] = PARAM_NAMES
    name: ClassVar[str] = "bgnbd"
    label: ClassVar[str] = "BG/NBD"

    r: float
    alpha: float
    a: float
    b: float
    covariance: FloatArray
    log_likelihood: float
    n_customers: float
    n_distinct: int

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(customer still alive at T | x, t_x, T) (FHL 2005 note, equation 1).

        ``1 / (1 + 1{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``; exactly 1 for x = 0.
        """
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return expit(-self._log_dead_odds(x, tx, t_obs))

    def probability_alive_at(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(customer still alive at T + t | x, t_x, T).

        Given alive at T, the rate is Gamma(r+x, alpha+T) and the dropout
        probability Beta(a, b+x); dropouts then arrive at rate lambda p, so
        survival to T + t is ``E[exp(-lambda p t)] = 2F1(r+x, a; a+b+x; -t/(alpha+T))``,
        multiplied by P(alive at T).
        """
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return self.alive_at(check_horizon(t), x, tx, t_obs)

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, equation 10).

        ``t`` is a scalar or an array of the customers' length, in the time unit of the data.
        """
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return self.expected_purchases(check_horizon(t), x, tx, t_obs)

    def conditional_probability_no_purchase(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(no purchase in (T, T + t] | x, t_x, T): the churn probability over a horizon t.

        A customer alive at T buys next at rate lambda (the dropout only comes
        after a purchase), and given alive lambda ~ Gamma(r+x, alpha+T), so
        ``1 - P(alive) (1 - ((alpha+T)/(alpha+T+t))^(r+x))``. Unlike
        ``1 - P(alive)`` it grows with the time since the first purchase for
        one-time buyers.
        """
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return self.no_purchase(check_horizon(t), x, tx, t_obs)

    def no_purchase(self, t: FloatArray, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> FloatArray:
        """:meth:`conditional_probability_no_purchase` on validated arrays that may broadcast."""
        silent = np.exp((self.r + x) * (np.log(self.alpha + t_obs) - np.log(self.alpha + t_obs + t)))
        alive = expit(-self._log_dead_odds(x, tx, t_obs))
        return check_finite("P(no purchase)", 1.0 - alive * (1.0 - silent))

    def expected_purchases_new_customer(self, t: ArrayLike) -> FloatArray:
        """E[repeat purchases in (0, t]] of a customer who just made a first purchase (FHL 2005, equation 9)."""
        t = check_horizon(t)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        ratio = np.exp(r * (np.log(alpha) - np.log(alpha + t)))
        expected = (a + b - 1.0) / (a - 1.0) * (1.0 - ratio * hyp2f1(r, b, a + b - 1.0, t / (alpha + t)))
        return check_finite("expected purchases", expected)

    def alive_at(self, t: FloatArray, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> FloatArray:
        """:meth:`probability_alive_at` on validated arrays that may broadcast (e.g. customers x horizons)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        # 2F1(r+x, a; a+b+x; -t/(alpha+T)) after Pfaff's transformation: its argument in [0, 1)
        # keeps scipy accurate for long horizons and young customers (t >> alpha + T).
        total = alpha + t_obs + t
        survival = np.exp((r + x) * (np.log(alpha + t_obs) - np.log(total))) * hyp2f1(
            r + x, b + x, a + b + x, t / total
        )
        return check_finite("P(alive at T + t)", expit(-self._log_dead_odds(x, tx, t_obs)) * survival)

    def expected_purchases(self, t: FloatArray, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> FloatArray:
        """:meth:`conditional_expected_purchases` on validated arrays that may broadcast."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        total = alpha + t_obs + t
        ratio = np.exp((r + x) * (np.log(alpha + t_obs) - np.log(total)))
        bracket = 1.0 - ratio * hyp2f1(r + x, b + x, a + b + x - 1.0, t / total)
        expected = (a + b + x - 1.0) / (a - 1.0) * bracket * expit(-self._log_dead_odds(x, tx, t_obs))
        return check_finite("expected purchases", expected)

    def _log_dead_odds(self, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> FloatArray:
        """log[P(dead at T) / P(alive at T)]; ``-inf`` without repeat purchases."""
        repeat = x > 0
        b_x_1 = np.where(repeat, self.b + x - 1.0, 1.0)
        log_odds = (
            np.log(self.a) - np.log(b_x_1) + (self.r + x) * (np.log(self.alpha + t_obs) - np.log(self.alpha + tx))
        )
        return np.where(repeat, log_odds, -np.inf)


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    deduplicate: bool = True,
    options: FitOptions | None = None,
) -> BetaGeoModel:
    """Fit the BG/NBD model by maximum likelihood.

    Parameters
    ----------
    frequency, recency, T : array-like
        The ``frequency``, ``recency`` and ``T`` columns of a customer summary
        (see :func:`crm_warehouse.analytics.clv.summary.summarize_transactions`), all
        in one time unit.
    weights : array-like, optional
        Number of customers each row stands for (default one each).
    deduplicate : bool
        Collapse identical rows into one weighted row before fitting (same
        optimum, much faster on large data).
    options : FitOptions, optional
        Numerical thresholds; defaults to ``FitOptions()``.

    Raises
    ------
    ValueError
        For invalid input (see :func:`check_rfm`).
    ModelFitError
        If no customer made a repeat purchase, every repeat buyer has recency 0,
        the optimiser does not converge, a parameter runs out of its plausible
        range or the Hessian at the optimum is singular.
    """
    return fit_beta_geometric(BetaGeoModel, _objective, frequency, recency, T, weights, deduplicate, options)


def fit_beta_geometric(
    model: type,
    objective: Callable[[FloatArray, FloatArray, FloatArray, FloatArray], Objective],
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None,
    deduplicate: bool,
    options: FitOptions | None,
) -> Any:
    """The fit BG/NBD and MBG/NBD share: check and collapse the rows, maximise the likelihood
    ``objective(x, t_x, T, w)`` from one start, and build ``model`` with the estimates."""
    options = options or FitOptions()
    x, tx, t_obs = check_rfm(frequency, recency, T)
    w = check_weights(weights, x.size)
    if deduplicate:
        rows = collapse_rows((x, tx, t_obs), w)
        (x, tx, t_obs), w = rows.columns, rows.weights
    repeat = (x > 0) & (w > 0)
    if not repeat.any():
        raise ModelFitError(
            f"no customer made a repeat purchase (frequency is 0 for all): {model.label} cannot be fitted"
        )
    if (tx[repeat] == 0).all():
        raise ModelFitError(
            "recency is 0 for every repeat buyer: repeat purchases all fall on the first purchase period"
        )
    start = np.array([1.0, t_obs.max() / _START_ALPHA_DIVISOR, 1.0, 1.0])
    optimum = fit_log_params(objective(x, tx, t_obs, w), PARAM_NAMES, start, float(w.sum()), options)
    covariance = covariance_from_hessian(optimum.hessian, PARAM_NAMES, options)
    r, alpha, a, b = optimum.params.tolist()
    return model(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        covariance=covariance,
        log_likelihood=-optimum.neg_log_likelihood,
        n_customers=float(w.sum()),
        n_distinct=int(x.size),
    )


def check_horizon(t: ArrayLike) -> FloatArray:
    horizon = np.asarray(t, dtype=np.float64)
    if not np.isfinite(horizon).all() or (horizon < 0).any():
        raise ValueError(f"the horizon t must be finite and >= 0, got {t!r}")
    return horizon


def check_finite(what: str, values: FloatArray) -> FloatArray:
    if not np.isfinite(values).all():
        raise ModelFitError(f"{what} is not finite for {int((~np.isfinite(values)).sum())} customers")
    return values
