"""Pareto/NBD purchase-count model (Schmittlein, Morrison & Colombo 1987).

While alive a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``
and lives an exponential time with rate ``mu ~ Gamma(s, beta)``, independent of
the purchases (dropout can happen at any time, not only after a purchase).

Likelihood (Fader & Hardie 2005, "A note on deriving the Pareto/NBD model and
related expressions"), written with the integral over the unobserved time of death:

``L = G(r+x) alpha^r beta^s / G(r) [ (alpha+T)^-(r+x) (beta+T)^-s + s I ]``,
``I = int_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau = J(t_x) - J(T)``

where ``J(y)`` is the same integral from y to infinity, a Gauss hypergeometric
function ``(P+y)^-q / q * 2F1(q, c; q+1; z)`` with ``P = max(alpha, beta)`` and
``z = |alpha - beta| / (P + y)`` in [0, 1). Summing that series ourselves gives
its derivatives in the parameters too, so the gradient is exact (scipy's
``hyp2f1`` has no parameter derivatives). The Hessian is the central difference
of that exact gradient (see :func:`~crm_warehouse.analytics.clv.mle.hessian_from_gradient`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from crm_warehouse.analytics.clv.bgnbd import check_finite, check_horizon, check_rfm
from crm_warehouse.analytics.clv.config import FitOptions
from crm_warehouse.analytics.clv.mle import (
    FittedParameters,
    FloatArray,
    ModelFitError,
    Objective,
    check_weights,
    collapse_rows,
    covariance_from_hessian,
    fit_log_params,
    hessian_from_gradient,
    wsum,
)

PARAM_NAMES = ("r", "alpha", "s", "beta")
#: The search starts at r = s = 1 and alpha = beta = max(T) / this.
_START_SCALE_DIVISOR = 10.0
#: Terms of the hypergeometric series before giving up (z = 0.99 needs about 4,000).
_MAX_SERIES_TERMS = 5_000
#: Largest series argument accepted: z = |alpha - beta| / (max(alpha, beta) + y) above it means one rate
#: scale is over 100 times the other: the series would need thousands of terms, and such fits are implausible.
_MAX_SERIES_ARGUMENT = 0.99


@dataclass(frozen=True)
class TailIntegral:
    """``log J(y)`` for ``J = int_y^inf (alpha+tau)^-m (beta+tau)^-c dtau`` and its derivatives.

    ``d_m``, ``d_c``, ``d_alpha``, ``d_beta`` are derivatives of ``log J``.
    """

    log_value: FloatArray
    d_m: FloatArray
    d_c: FloatArray
    d_alpha: FloatArray
    d_beta: FloatArray


def tail_integral(alpha: float, beta: float, m: FloatArray, c: FloatArray, y: FloatArray) -> TailIntegral:
    """``J(y) = int_y^inf (alpha+tau)^-m (beta+tau)^-c dtau`` (needs m + c > 1), with derivatives of its log.

    With ``q = m + c - 1`` and the larger scale P factored out,
    ``J = (P+y)^-q / q * sum_k (e)_k z^k / k! * q / (q+k)`` where ``e = c`` if
    alpha >= beta (``z = (alpha-beta)/(alpha+y)``) and ``e = m`` otherwise
    (``z = (beta-alpha)/(beta+y)``): the series of ``2F1(q, e; q+1; z)``.
    """
    m, c, y = np.broadcast_arrays(np.asarray(m, float), np.asarray(c, float), np.asarray(y, float))
    q = m + c - 1.0
    alpha_larger = alpha >= beta
    scale = (alpha if alpha_larger else beta) + y
    e = c if alpha_larger else m
    z = abs(alpha - beta) / scale
    if z.max(initial=0.0) > _MAX_SERIES_ARGUMENT:
        raise ModelFitError(
            f"alpha = {alpha:.4g} and beta = {beta:.4g} are over 100 times apart: the parameters left any "
            "plausible range"
        )
    # Customers share (q, e, z) triples (all one-time buyers at y = 0 do): sum each series once.
    triples = collapse_rows((q.ravel(), e.ravel(), z.ravel()), np.ones(q.size))
    total, d_q, d_e, d_z = (v[triples.inverse].reshape(q.shape) for v in _series(*triples.columns))
    log_value = -q * np.log(scale) - np.log(q) + np.log(total)
    # d log J / d q with z fixed: from the prefactor and from the series weights q / (q+k).
    by_q = -np.log(scale) - 1.0 / q + d_q
    d_m = by_q + (0.0 if alpha_larger else d_e)
    d_c = by_q + (d_e if alpha_larger else 0.0)
    if alpha_larger:
        d_alpha = -q / scale + d_z * (beta + y) / scale**2
        d_beta = -d_z / scale
    else:
        d_alpha = -d_z / scale
        d_beta = -q / scale + d_z * (alpha + y) / scale**2
    return TailIntegral(log_value=log_value, d_m=d_m, d_c=d_c, d_alpha=d_alpha, d_beta=d_beta)


def _series(q: FloatArray, e: FloatArray, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``S = sum_k (e)_k z^k / k! * q/(q+k)`` and ``dlogS/dq``, ``dlogS/de``, ``dlogS/dz``.

    Terms are added until every row's term is below 1e-17 of its sum and
    shrinking; the harmonic sums for d/de grow only like log k, so the same
    stopping point serves the derivatives. Rows that have converged leave the
    working arrays, so a few customers with many purchases (slow series) do
    not slow down the rest.
    """
    shape = q.shape
    out = np.empty((4, q.size))
    index = np.arange(q.size)
    q, e, z = q.ravel().copy(), e.ravel().copy(), z.ravel().copy()
    power = np.ones_like(q)  # (e)_k z^k / k!
    dz_power = np.zeros_like(q)  # (e)_k z^(k-1) / (k-1)!, the z-derivative of `power`
    harmonic = np.zeros_like(q)  # psi(e+k) - psi(e)
    total, by_q, by_e, by_z = np.ones_like(q), np.zeros_like(q), np.zeros_like(q), np.zeros_like(q)
    k = 0
    while index.size:
        if k >= _MAX_SERIES_TERMS:
            raise ModelFitError(
                f"the Pareto/NBD likelihood series did not converge in {_MAX_SERIES_TERMS} terms (argument up to "
                f"{z.max():.4g}, parameter up to {e.max():.4g}): the parameters left any plausible range"
            )
        dz_power = power * e if k == 0 else dz_power * (e + k) * z / k
        power = power * (e + k) * z / (k + 1)
        harmonic = harmonic + 1.0 / (e + k)
        k += 1
        weight = q / (q + k)
        term = power * weight
        total += term
        by_q += term * k / (q * (q + k))
        by_e += term * harmonic
        by_z += dz_power * weight
        done = (term < 1e-17 * total) & ((e + k) * z < k + 1)
        if done.any():
            out[:, index[done]] = total[done], by_q[done], by_e[done], by_z[done]
            keep = ~done
            index, q, e, z = index[keep], q[keep], e[keep], z[keep]
            power, dz_power, harmonic = power[keep], dz_power[keep], harmonic[keep]
            total, by_q, by_e, by_z = total[keep], by_q[keep], by_e[keep], by_z[keep]
    total = out[0]
    if not np.isfinite(total).all():
        raise ModelFitError("the Pareto/NBD likelihood series overflowed: the parameters left any plausible range")
    return tuple(v.reshape(shape) for v in (total, out[1] / total, out[2] / total, out[3] / total))


def _row_terms(theta: FloatArray, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> tuple[FloatArray, ...]:
    """Per row: log-likelihood, its gradient (4 x n), and P(alive at T)."""
    r, alpha, s, beta = theta
    m = r + x
    log_alive_term = -m * np.log(alpha + t_obs) - s * np.log(beta + t_obs)
    at_tx = tail_integral(alpha, beta, m, s + 1.0, tx)
    at_t = tail_integral(alpha, beta, m, s + 1.0, t_obs)
    # Scale by the largest term so that customers with many purchases do not underflow.
    log_s = np.log(s)
    top = np.maximum(log_alive_term, log_s + at_tx.log_value)
    alive = np.exp(log_alive_term - top)
    dead_tx = np.exp(log_s + at_tx.log_value - top)
    dead_t = np.exp(log_s + at_t.log_value - top)
    bracket = alive + dead_tx - dead_t
    log_constant = gammaln(m) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    ll = log_constant + top + np.log(bracket)

    def d_bracket(d_alive: FloatArray, d_tx: FloatArray, d_t: FloatArray) -> FloatArray:
        return (alive * d_alive + dead_tx * d_tx - dead_t * d_t) / bracket

    grad = np.stack(
        [
            digamma(m) - digamma(r) + np.log(alpha) + d_bracket(-np.log(alpha + t_obs), at_tx.d_m, at_t.d_m),
            r / alpha + d_bracket(-m / (alpha + t_obs), at_tx.d_alpha, at_t.d_alpha),
            np.log(beta) + d_bracket(-np.log(beta + t_obs), 1.0 / s + at_tx.d_c, 1.0 / s + at_t.d_c),
            s / beta + d_bracket(-s / (beta + t_obs), at_tx.d_beta, at_t.d_beta),
        ]
    )
    return ll, grad, alive / bracket


def log_likelihood(
    r: float, alpha: float, s: float, beta: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Per-customer Pareto/NBD log-likelihood (module docstring)."""
    x, tx, t_obs = check_rfm(frequency, recency, T)
    return _row_terms(np.array([r, alpha, s, beta]), x, tx, t_obs)[0]


def _objective(x: FloatArray, tx: FloatArray, t_obs: FloatArray, w: FloatArray) -> Objective:
    """Weighted negative log-likelihood, its exact gradient and the Hessian from that gradient."""

    def gradient(theta: FloatArray) -> FloatArray:
        return -np.einsum("ij,j->i", _row_terms(theta, x, tx, t_obs)[1], w)

    def objective(theta: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        ll, grad, _ = _row_terms(theta, x, tx, t_obs)
        return -wsum(w, ll), -np.einsum("ij,j->i", grad, w), hessian_from_gradient(gradient, theta)

    return objective


@dataclass(frozen=True, eq=False)
class ParetoNBDModel(FittedParameters):
    """A fitted Pareto/NBD model.

    Attributes
    ----------
    r, alpha, s, beta : float
        Maximum-likelihood estimates; ``alpha`` and ``beta`` are in the time unit of the data.
    covariance, log_likelihood, n_customers, n_distinct
        As :class:`~crm_warehouse.analytics.clv.bgnbd.BetaGeoModel`.
    """

    param_names: ClassVar[tuple[str, ...]] = PARAM_NAMES
    name: ClassVar[str] = "pareto_nbd"
    label: ClassVar[str] = "Pareto/NBD"

    r: float
    alpha: float
    s: float
    beta: float
    covariance: FloatArray
    log_likelihood: float
    n_customers: float
    n_distinct: int

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(alive at T | x, t_x, T): the share of the likelihood in which the customer is still alive."""
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return self._alive(x, tx, t_obs)

    def probability_alive_at(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(alive at T + t | x, t_x, T) = P(alive at T) ``((beta+T)/(beta+T+t))^s``."""
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return self.alive_at(check_horizon(t), x, tx, t_obs)

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[purchases in (T, T + t] | x, t_x, T] (Fader & Hardie's note, equation 22)."""
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return self.expected_purchases(check_horizon(t), x, tx, t_obs)

    def conditional_probability_no_purchase(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(no purchase in (T, T + t] | x, t_x, T).

        Alive at T, the customer buys in the horizon when the next purchase comes
        before death and before T + t: ``int_0^t E[lambda exp(-(lambda+mu) u)] du``
        with lambda ~ Gamma(r+x, alpha+T) and mu ~ Gamma(s, beta+T), another tail integral.
        """
        x, tx, t_obs = check_rfm(frequency, recency, T)
        return self.no_purchase(check_horizon(t), x, tx, t_obs)

    def alive_at(self, t: FloatArray, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> FloatArray:
        """:meth:`probability_alive_at` on validated arrays that may broadcast."""
        survival = np.exp(self.s * (np.log(self.beta + t_obs) - np.log(self.beta + t_obs + t)))
        return check_finite("P(alive at T + t)", self._alive(x, tx, t_obs) * survival)

    def expected_purchases(self, t: FloatArray, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> FloatArray:
        """:meth:`conditional_expected_purchases` on validated arrays that may broadcast."""
        r, alpha, s, beta = self.r, self.alpha, self.s, self.beta
        log_ratio = np.log(beta + t_obs) - np.log(beta + t_obs + t)
        # [1 - ((beta+T)/(beta+T+t))^(s-1)] / (s-1), which tends to log((beta+T+t)/(beta+T)) at s = 1.
        if abs(s - 1.0) < 1e-10:
            lifetime = -log_ratio
        else:
            lifetime = -np.expm1((s - 1.0) * log_ratio) / (s - 1.0)
        expected = (r + x) * (beta + t_obs) / (alpha + t_obs) * lifetime * self._alive(x, tx, t_obs)
        return check_finite("expected purchases", expected)

    def no_purchase(self, t: FloatArray, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> FloatArray:
        """:meth:`conditional_probability_no_purchase` on validated arrays that may broadcast."""
        r, alpha, s, beta = self.r, self.alpha, self.s, self.beta
        t, x, tx, t_obs = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (t, x, tx, t_obs)))
        m = r + x
        log_prefactor = np.log(m) + m * np.log(alpha + t_obs) + s * np.log(beta + t_obs)
        start = tail_integral(alpha, beta, m + 1.0, np.full_like(m, s), t_obs).log_value
        end = tail_integral(alpha, beta, m + 1.0, np.full_like(m, s), t_obs + t).log_value
        buys_if_alive = np.exp(log_prefactor + start) * -np.expm1(end - start)
        return check_finite("P(no purchase)", 1.0 - self._alive(x, tx, t_obs) * buys_if_alive)

    def _alive(self, x: FloatArray, tx: FloatArray, t_obs: FloatArray) -> FloatArray:
        x, tx, t_obs = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, tx, t_obs)))
        rows = collapse_rows((x.ravel(), tx.ravel(), t_obs.ravel()), np.ones(x.size))
        alive = _row_terms(np.array([self.r, self.alpha, self.s, self.beta]), *rows.columns)[2]
        return alive[rows.inverse].reshape(x.shape)


def fit_pareto_nbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    deduplicate: bool = True,
    options: FitOptions | None = None,
) -> ParetoNBDModel:
    """Fit the Pareto/NBD model by maximum likelihood; arguments and errors as :func:`~.bgnbd.fit_bgnbd`."""
    options = options or FitOptions()
    x, tx, t_obs = check_rfm(frequency, recency, T)
    w = check_weights(weights, x.size)
    if deduplicate:
        rows = collapse_rows((x, tx, t_obs), w)
        (x, tx, t_obs), w = rows.columns, rows.weights
    keep = w > 0
    x, tx, t_obs, w = x[keep], tx[keep], t_obs[keep], w[keep]
    if not (x > 0).any():
        raise ModelFitError("no customer made a repeat purchase (frequency is 0 for all): Pareto/NBD cannot be fitted")
    if (tx[x > 0] == 0).all():
        raise ModelFitError(
            "recency is 0 for every repeat buyer: repeat purchases all fall on the first purchase period"
        )
    scale = t_obs.max() / _START_SCALE_DIVISOR
    start = np.array([1.0, scale, 1.0, scale])
    optimum = fit_log_params(_objective(x, tx, t_obs, w), PARAM_NAMES, start, float(w.sum()), options)
    covariance = covariance_from_hessian(optimum.hessian, PARAM_NAMES, options)
    r, alpha, s, beta = optimum.params.tolist()
    return ParetoNBDModel(
        r=r,
        alpha=alpha,
        s=s,
        beta=beta,
        covariance=covariance,
        log_likelihood=-optimum.neg_log_likelihood,
        n_customers=float(w.sum()),
        n_distinct=int(x.size),
    )
