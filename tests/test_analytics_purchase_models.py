"""MBG/NBD and Pareto/NBD: likelihoods on hand-computed cases, exact gradients, published estimates, predictions.

Published figures: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value
curves for customer base analysis", Pareto/NBD on the CDNOW sample (2,357
customers, weeks, calibration to 1997-09-30): r = 0.55, alpha = 10.58, s = 0.61,
beta = 11.67, LL = -9595.0. MBG/NBD has no published CDNOW fit; it is compared
with lifetimes' ``ModifiedBetaGeoFitter`` on the same summary.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifetimes import ModifiedBetaGeoFitter, ParetoNBDFitter
from scipy import integrate
from scipy.special import betaln, gammaln, hyp2f1

from crm_warehouse.analytics.clv import (
    BetaGeoModel,
    ModelFitError,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    calibration_and_holdout,
    fit_mbgnbd,
    fit_pareto_nbd,
    mbgnbd,
    pareto_nbd,
)
from crm_warehouse.analytics.clv.synthetic import simulate_customers

CDNOW = Path(__file__).parent / "data" / "cdnow"
PUBLISHED_PARETO_NBD = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
CDNOW_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    columns = ["master_id", "customer_id", "date", "cds", "amount"]
    orders = pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None, names=columns)
    return calibration_and_holdout(
        orders, calibration_end="1997-09-30", observation_end="1998-06-30", time_unit="weeks", date_format="%Y%m%d"
    )


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_customers(3000, CDNOW_BGNBD, CDNOW_GAMMA_GAMMA, max_T_days=273, time_unit="weeks", seed=11)


def _columns(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(data[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))


def _mbg(**params: float) -> ModifiedBetaGeoModel:
    values = {"r": 0.52, "alpha": 6.18, "a": 0.89, "b": 1.61, **params}
    return ModifiedBetaGeoModel(**values, covariance=np.eye(4), log_likelihood=0.0, n_customers=0.0, n_distinct=0)


def _pareto(**params: float) -> ParetoNBDModel:
    values = {**PUBLISHED_PARETO_NBD, **params}
    return ParetoNBDModel(**values, covariance=np.eye(4), log_likelihood=0.0, n_customers=0.0, n_distinct=0)


# --- likelihoods on hand-computed cases ---------------------------------------------------------


def test_mbgnbd_log_likelihood_hand_cases():
    # r = alpha = a = b = 1, x = 0, T = 1: dropped at once (E[p] = 1/2) or alive and silent
    # (E[1-p] E[exp(-lambda)] = 1/2 * 1/2): L = 3/4.
    ll = mbgnbd.log_likelihood(1.0, 1.0, 1.0, 1.0, [0], [0.0], [1.0])
    np.testing.assert_allclose(ll, [math.log(0.75)], rtol=1e-14)
    # r=2, alpha=3, a=2, b=3, x=2, t_x=4, T=6: G(4)/G(2) = 6, alpha^r = 9, B(2, 6)/B(2, 3) = (1/42)/(1/12) = 2/7,
    # a/(b+x) = 2/5.
    expected = 6 * 9 * (2 / 7) * (9.0**-4 + 0.4 * 7.0**-4)
    ll = mbgnbd.log_likelihood(2.0, 3.0, 2.0, 3.0, [2], [4.0], [6.0])
    np.testing.assert_allclose(ll, [math.log(expected)], rtol=1e-14)


def _pareto_closed_form(r, alpha, s, beta, x, tx, T):
    """Fader & Hardie's note, equations (16)-(18), with scipy's hyp2f1."""
    if alpha >= beta:
        z = lambda y: (alpha - beta) / (alpha + y)  # noqa: E731
        term = lambda y: hyp2f1(r + s + x, s + 1, r + s + x + 1, z(y)) / (alpha + y) ** (r + s + x)  # noqa: E731
    else:
        z = lambda y: (beta - alpha) / (beta + y)  # noqa: E731
        term = lambda y: hyp2f1(r + s + x, r + x, r + s + x + 1, z(y)) / (beta + y) ** (r + s + x)  # noqa: E731
    a0 = term(tx) - term(T)
    constant = math.exp(gammaln(r + x) - gammaln(r) + r * math.log(alpha) + s * math.log(beta))
    return math.log(constant * ((alpha + T) ** -(r + x) * (beta + T) ** -s + s / (r + s + x) * a0))


@pytest.mark.parametrize(
    ("params", "row"),
    [
        ((0.55, 10.58, 0.61, 11.67), (0, 0.0, 38.0)),
        ((0.55, 10.58, 0.61, 11.67), (7, 30.5, 38.0)),
        ((1.3, 20.0, 2.5, 4.0), (3, 12.0, 12.0)),
        ((0.4, 2.0, 0.9, 40.0), (25, 60.0, 70.0)),
    ],
)
def test_pareto_nbd_log_likelihood_matches_closed_form_and_integral(params, row):
    r, alpha, s, beta = params
    x, tx, T = row
    ours = pareto_nbd.log_likelihood(*params, [x], [tx], [T])[0]
    assert ours == pytest.approx(_pareto_closed_form(*params, *row), rel=1e-11)
    # The integral over the time of death, by adaptive quadrature.
    integral, _ = integrate.quad(
        lambda tau: (alpha + tau) ** -(r + x) * (beta + tau) ** -(s + 1), tx, T, epsabs=0, epsrel=1e-13
    )
    constant = gammaln(r + x) - gammaln(r) + r * math.log(alpha) + s * math.log(beta)
    direct = constant + math.log((alpha + T) ** -(r + x) * (beta + T) ** -s + s * integral)
    assert ours == pytest.approx(direct, rel=1e-11)


@pytest.mark.parametrize("model", ["mbgnbd", "pareto_nbd"])
def test_objective_matches_log_likelihood_and_its_derivatives(simulated, model):
    """Summed objective equals the per-customer likelihood; gradient and Hessian match finite differences."""
    weights = np.random.default_rng(3).integers(1, 4, len(simulated)).astype(float)
    columns = _columns(simulated)
    module = mbgnbd if model == "mbgnbd" else pareto_nbd
    # Pareto/NBD: alpha < beta and alpha > beta take different branches of the series.
    for theta in ([0.55, 10.58, 0.61, 11.67], [0.55, 12.0, 0.61, 5.0]):
        theta = np.array(theta)
        objective = module._objective(*columns, weights)
        value, grad, hess = objective(theta)
        assert value == pytest.approx(-weights @ module.log_likelihood(*theta, *columns), rel=1e-12)
        step = 1e-6 * theta
        eye = np.eye(4)
        numeric_grad = [
            (objective(theta + h * e)[0] - objective(theta - h * e)[0]) / (2 * h)
            for h, e in zip(step, eye, strict=True)
        ]
        numeric_hess = [
            (objective(theta + h * e)[1] - objective(theta - h * e)[1]) / (2 * h)
            for h, e in zip(step, eye, strict=True)
        ]
        np.testing.assert_allclose(grad, numeric_grad, rtol=1e-5, atol=1e-6 * np.abs(grad).max())
        np.testing.assert_allclose(hess, np.array(numeric_hess), rtol=1e-5, atol=1e-6 * np.abs(hess).max())


# --- published estimates and lifetimes ------------------------------------------------------------


def test_pareto_nbd_reproduces_published_estimates(sample):
    model = fit_pareto_nbd(*_columns(sample))
    assert {k: round(v, 2) for k, v in model.params.items()} == PUBLISHED_PARETO_NBD
    assert model.log_likelihood == pytest.approx(-9594.98, abs=0.005)
    assert model.n_customers == 2357
    # lifetimes' ParetoNBDFitter stops its Nelder-Mead search near the same optimum, never above it.
    reference = ParetoNBDFitter().fit(sample["frequency"], sample["recency"], sample["T"])
    np.testing.assert_allclose(list(model.params.values()), reference.params_.to_numpy(), rtol=1e-3)
    theirs = pareto_nbd.log_likelihood(*reference.params_.to_numpy(), *_columns(sample)).sum()
    assert theirs <= model.log_likelihood
    np.testing.assert_allclose(list(model.standard_errors.values()), [0.0476, 0.8427, 0.1873, 6.2111], atol=5e-5)


def test_mbgnbd_matches_lifetimes(sample):
    x, tx, T = _columns(sample)
    model = fit_mbgnbd(x, tx, T)
    reference = ModifiedBetaGeoFitter().fit(sample["frequency"], sample["recency"], sample["T"])
    np.testing.assert_allclose(list(model.params.values()), reference.params_.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(
        list(model.standard_errors.values()), reference.summary["se(coef)"].to_numpy(), rtol=1e-4
    )
    assert model.log_likelihood == pytest.approx(-9582.14, abs=0.005)
    # Same formulas: lifetimes' predictions with our parameters.
    reference.params_ = pd.Series(model.params)
    np.testing.assert_allclose(
        model.conditional_expected_purchases(39.0, x, tx, T),
        reference.conditional_expected_number_of_purchases_up_to_time(39.0, x, tx, T),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        model.probability_alive(x, tx, T), reference.conditional_probability_alive(x, tx, T), rtol=1e-12
    )


def test_pareto_nbd_predictions_match_lifetimes(sample):
    x, tx, T = _columns(sample)
    model = _pareto()
    reference = ParetoNBDFitter()
    reference.params_ = pd.Series(model.params)
    np.testing.assert_allclose(
        model.conditional_expected_purchases(39.0, x, tx, T),
        reference.conditional_expected_number_of_purchases_up_to_time(39.0, x, tx, T),
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        model.probability_alive(x, tx, T), reference.conditional_probability_alive(x, tx, T), rtol=1e-9
    )


# --- predictions -------------------------------------------------------------------------------


def test_no_purchase_probability_by_monte_carlo():
    """P(no purchase in (T, T+t]) by importance sampling over the prior of the latent rates."""
    rng = np.random.default_rng(8)
    n = 2_000_000
    x, t_x, T, t = 2, 20.0, 38.0, 26.0

    pareto = _pareto()
    rate = rng.gamma(pareto.r, 1 / pareto.alpha, n)
    death_rate = rng.gamma(pareto.s, 1 / pareto.beta, n)
    both = rate + death_rate
    alive = rate**x * np.exp(-both * T)
    likelihood = alive + rate**x * death_rate / both * (np.exp(-both * t_x) - np.exp(-both * T))
    silent_if_alive = (death_rate + rate * np.exp(-both * t)) / both
    expected = (np.mean(likelihood) - np.mean(alive) + np.mean(alive * silent_if_alive)) / np.mean(likelihood)
    assert pareto.conditional_probability_no_purchase(t, [x], [t_x], [T])[0] == pytest.approx(expected, rel=0.01)

    mbg = _mbg()
    rate = rng.gamma(mbg.r, 1 / mbg.alpha, n)
    dropout = rng.beta(mbg.a, mbg.b, n)
    alive = (1 - dropout) ** (x + 1) * rate**x * np.exp(-rate * T)
    likelihood = alive + dropout * (1 - dropout) ** x * rate**x * np.exp(-rate * t_x)
    expected = 1 - np.mean(alive * (1 - np.exp(-rate * t))) / np.mean(likelihood)
    assert mbg.conditional_probability_no_purchase(t, [x], [t_x], [T])[0] == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize(
    "model",
    [
        _mbg(),
        _pareto(),
        BetaGeoModel(**CDNOW_BGNBD, covariance=np.eye(4), log_likelihood=0.0, n_customers=0.0, n_distinct=0),
    ],
    ids=["mbgnbd", "pareto_nbd", "bgnbd"],
)
def test_one_time_buyers_churn_more_the_longer_they_are_silent(model):
    """The old churn score, 1 - P(alive), was 0 for every one-time buyer under BG/NBD, whatever their age."""
    T = np.array([1.0, 10.0, 40.0, 80.0])
    silent = model.conditional_probability_no_purchase(26.0, np.zeros(4), np.zeros(4), T)
    assert np.all(np.diff(silent) > 0)
    assert np.all((silent > 0) & (silent < 1))
    # At t = 0 nobody can buy; a longer horizon leaves fewer customers silent.
    np.testing.assert_allclose(model.conditional_probability_no_purchase(0.0, [0, 3], [0.0, 5.0], [9.0, 9.0]), 1.0)
    horizons = model.conditional_probability_no_purchase(np.array([1.0, 10.0, 100.0]), [3] * 3, [5.0] * 3, [9.0] * 3)
    assert np.all(np.diff(horizons) < 0)


def test_alive_at_horizon_is_finite_for_long_horizons_and_new_customers():
    """scipy's hyp2f1 at -t/(alpha+T) << -1 returned inf for new customers; the transformed argument does not."""
    T = np.array([0.0, 0.0, 1.0, 300.0])
    x = np.array([0.0, 5.0, 1.0, 40.0])
    tx = np.array([0.0, 0.0, 1.0, 280.0])
    for model in (
        _mbg(),
        _pareto(),
        BetaGeoModel(**CDNOW_BGNBD, covariance=np.eye(4), log_likelihood=0.0, n_customers=0.0, n_distinct=0),
    ):
        alive_later = model.probability_alive_at(520.0, x, tx, T)
        assert np.all((alive_later >= 0) & (alive_later <= model.probability_alive(x, tx, T)))


def test_pareto_nbd_p_alive_at_horizon_hand_formula():
    model = _pareto()
    now = model.probability_alive([2], [20.0], [38.0])[0]
    later = model.probability_alive_at(10.0, [2], [20.0], [38.0])[0]
    assert later == pytest.approx(now * ((model.beta + 38.0) / (model.beta + 48.0)) ** model.s, rel=1e-14)


def test_pareto_nbd_expected_purchases_at_s_equal_one_is_the_limit():
    near, at = _pareto(s=1.0 + 1e-7), _pareto(s=1.0)
    expected_at = at.conditional_expected_purchases(20.0, [3], [10.0], [30.0])[0]
    assert expected_at == pytest.approx(near.conditional_expected_purchases(20.0, [3], [10.0], [30.0])[0], rel=1e-6)


def test_mbgnbd_expected_purchases_by_monte_carlo():
    model = _mbg()
    rng = np.random.default_rng(5)
    rate = rng.gamma(model.r, 1 / model.alpha, 2_000_000)
    dropout = rng.beta(model.a, model.b, 2_000_000)
    x, t_x, T, t = 2, 30.43, 38.86, 39.0
    alive = (1 - dropout) ** (x + 1) * rate**x * np.exp(-rate * T)
    likelihood = alive + dropout * (1 - dropout) ** x * rate**x * np.exp(-rate * t_x)
    expected = np.mean(alive * (1 - np.exp(-rate * dropout * t)) / dropout) / likelihood.mean()
    survival = np.mean(alive * np.exp(-rate * dropout * t)) / likelihood.mean()
    assert model.conditional_expected_purchases(t, [x], [t_x], [T])[0] == pytest.approx(expected, rel=0.01)
    assert model.probability_alive_at(t, [x], [t_x], [T])[0] == pytest.approx(survival, rel=0.01)


# --- fitting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fit", [fit_mbgnbd, fit_pareto_nbd], ids=["mbgnbd", "pareto_nbd"])
def test_weighted_fit_equals_unweighted(simulated, fit):
    x, t_x, T = _columns(simulated)
    one_row_each = fit(x, t_x, T, deduplicate=False)
    distinct = simulated.groupby(["frequency", "recency", "T"]).size().reset_index(name="count")
    weighted = fit(*_columns(distinct), weights=distinct["count"], deduplicate=False)
    np.testing.assert_allclose(list(weighted.params.values()), list(one_row_each.params.values()), rtol=1e-8)
    np.testing.assert_allclose(weighted.covariance, one_row_each.covariance, rtol=1e-5)
    assert weighted.log_likelihood == pytest.approx(one_row_each.log_likelihood, rel=1e-12)
    assert weighted.n_customers == len(simulated)


@pytest.mark.parametrize("fit", [fit_mbgnbd, fit_pareto_nbd], ids=["mbgnbd", "pareto_nbd"])
def test_fit_errors(fit):
    with pytest.raises(ModelFitError, match="no customer made a repeat purchase"):
        fit([0, 0], [0.0, 0.0], [5.0, 6.0])
    with pytest.raises(ModelFitError, match="recency is 0 for every repeat buyer"):
        fit([0, 2], [0.0, 0.0], [5.0, 6.0])
    with pytest.raises(ValueError, match="recency > T"):
        fit([1], [7.0], [5.0])


def test_with_params_keeps_the_fit_metadata():
    model = _pareto()
    moved = model.with_params([1.0, 2.0, 3.0, 4.0])
    assert moved.params == {"r": 1.0, "alpha": 2.0, "s": 3.0, "beta": 4.0}
    assert moved.covariance is model.covariance and moved.name == "pareto_nbd" and moved.label == "Pareto/NBD"


def test_mbgnbd_base_term_is_the_beta_of_one_more_coin():
    # B(a, b+x+1)/B(a, b): x+1 survivals of the dropout coin.
    a, b, x = 0.9, 1.6, 4
    value = mbgnbd.log_likelihood(1.0, 1.0, a, b, [x], [0.0], [0.0])[0]
    tail = math.log(1.0 + a / (b + x))
    assert value == pytest.approx(gammaln(1 + x) + betaln(a, b + x + 1) - betaln(a, b) + tail, rel=1e-14)
