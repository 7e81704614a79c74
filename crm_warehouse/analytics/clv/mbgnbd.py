"""Modified BG/NBD purchase-count model (Batislam, Denizel & Filiztekin 2007).

As BG/NBD (:mod:`crm_warehouse.analytics.clv.bgnbd`), except that a customer may
also drop out right after the first purchase: the dropout coin ``p ~ Beta(a, b)``
is tossed at time 0 and after every repeat purchase. A one-time buyer is then no
longer certainly alive, so P(alive) falls with the time since the first
purchase, which is what BG/NBD gets wrong for the many one-time buyers.

The log-likelihood per customer (lifetimes' ``ModifiedBetaGeoFitter``) is

``log G(r+x) - log G(r) + r log(alpha) + log B(a, b+x+1) - log B(a, b)
+ log[(alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x)]``

with the second term present for every customer. It is maximised over distinct
(x, t_x, T) rows with the exact gradient and Hessian; standard errors come from
the inverse Hessian.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, expit, gammaln, hyp2f1

from crm_warehouse.analytics.clv.bgnbd import (
    check_finite,
    check_horizon,
    check_rfm,
    count_terms,
    dropout_tail,
    fit_beta_geometric,
)
from crm_warehouse.analytics.clv.config import FitOptions
from crm_warehouse.analytics.clv.mle import (
    FittedParameters,
    FloatArray,
    Objective,
    levels,
)

PARAM_NAMES = ("r", "alpha", "a", "b")
#: The search starts at r = a = b = 1 and alpha = max(T) / this, as for BG/NBD.


def log_likelihood(
    r: float, alpha: float, a: float, b: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Per-customer MBG/NBD log-likelihood (module docstring)."""
    x, tx, t_obs = check_rfm(frequency, recency, T)
    l1 = -(r + x) * np.log(alpha + t_obs)
    l2 = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + tx)
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x + 1) - betaln(a, b) + np.logaddexp(l1, l2)


def _objective(x: FloatArray, tx: FloatArray, t_obs: FloatArray, w: FloatArray) -> Objective:
    """Weighted negative log-likelihood with its exact gradient and Hessian.

    Special functions once per distinct x and logs once per distinct T and t_x,
    as in the BG/NBD objective; every row has the two-term tail.
    """
    x_values, x_index = levels(x)
    x_weight = np.bincount(x_index, weights=w, minlength=x_values.size)
    t_values, t_index = levels(t_obs)
    tx_values, tx_index = levels(tx)

    def objective(theta: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        ll, grad, hess = count_terms(theta, x_values, x_weight, shift=1.0)
        # Every customer has the tail, with a/(b+x) in the dropout term.
        tail = dropout_tail(theta, x, w, (t_values, t_index), (tx_values, tx_index), (x_values, x_index))
        hess = hess + tail[2]
        hess = np.triu(hess) + np.triu(hess, 1).T
        return -float(ll + tail[0]), -(grad + tail[1]), -hess

    return objective


@dataclass(frozen=True, eq=False)
class ModifiedBetaGeoModel(FittedParameters):
    """A fitted MBG/NBD model; attributes as :class:`~crm_warehouse.analytics.clv.bgnbd.BetaGeoModel`."""

    param_names: ClassVar[tuple[str, ...]] = PARAM_NAMES
    name: ClassVar[str] = "mbgnbd"
    label: ClassVar[str] = "MBG/NBD"

    r: float
    alpha: float
    a: float
    b: float
    covariance: FloatArray
    log_likelihood: float
    n_customers: float
    n_distinct: int

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(alive at T | x, t_x, T) = ``1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))``, below 1 for everyone."""
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return self._alive(x, tx, t_obs)

    def probability_alive_at(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(alive at T + t | x, t_x, T).

        Given alive at T, lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x+1)
        (x+1 coins survived), so survival is ``2F1(r+x, a; a+b+x+1; -t/(alpha+T))``,
        evaluated after Pfaff's transformation.
        """
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return self.alive_at(check_horizon(t), x, tx, t_obs)

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[purchases in (T, T + t] | x, t_x, T] (Batislam et al. 2007; lifetimes' formula)."""
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return self.expected_purchases(check_horizon(t), x, tx, t_obs)

    def conditional_probability_no_purchase(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(no purchase in (T, T + t] | x, t_x, T) = ``1 - P(alive) (1 - ((alpha+T)/(alpha+T+t))^(r+x))``."""
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return self.no_purchase(check_horizon(t), x, tx, t_obs)

    def alive_at(self, t: FloatArray, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> FloatArray:
        """:meth:`probability_alive_at` on validated arrays that may broadcast."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        total = alpha + t_obs + t
        survival = np.exp((r + x) * (np.log(alpha + t_obs) - np.log(total))) * hyp2f1(
            r + x, b + x + 1.0, a + b + x + 1.0, t / total
        )
        return check_finite("P(alive at T + t)", self._alive(x, tx, t_obs) * survival)

    def expected_purchases(self, t: FloatArray, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> FloatArray:
        """:meth:`conditional_expected_purchases` on validated arrays that may broadcast."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        total = alpha + t_obs + t
        ratio = np.exp((r + x) * (np.log(alpha + t_obs) - np.log(total)))
        bracket = 1.0 - ratio * hyp2f1(r + x, b + x + 1.0, a + b + x, t / total)
        expected = (a + b + x) / (a - 1.0) * bracket * self._alive(x, tx, t_obs)
        return check_finite("expected purchases", expected)

    def no_purchase(self, t: FloatArray, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> FloatArray:
        """:meth:`conditional_probability_no_purchase` on validated arrays that may broadcast."""
        silent = np.exp((self.r + x) * (np.log(self.alpha + t_obs) - np.log(self.alpha + t_obs + t)))
        return check_finite("P(no purchase)", 1.0 - self._alive(x, tx, t_obs) * (1.0 - silent))

    def _alive(self, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> FloatArray:
        log_dead_odds = (
            np.log(self.a) - np.log(self.b + x) + (self.r + x) * (np.log(self.alpha + t_obs) - np.log(self.alpha + tx))
        )
        return expit(-log_dead_odds)


def fit_mbgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    deduplicate: bool = True,
    options: FitOptions | None = None,
) -> ModifiedBetaGeoModel:
    """Fit the MBG/NBD model by maximum likelihood; arguments and errors as :func:`~.bgnbd.fit_bgnbd`."""
    return fit_beta_geometric(ModifiedBetaGeoModel, _objective, frequency, recency, T, weights, deduplicate, options)
