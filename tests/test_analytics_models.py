"""BG/NBD and Gamma-Gamma: likelihoods on hand-computed cases, predictions, weighted fits, every error path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from crm_warehouse.analytics.clv import (
    ClvConfig,
    FitOptions,
    ModelFitError,
    SpendFrequencyCorrelationWarning,
    bgnbd,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma,
)
from crm_warehouse.analytics.clv.bgnbd import BetaGeoModel
from crm_warehouse.analytics.clv.mle import covariance_from_hessian
from crm_warehouse.analytics.clv.synthetic import simulate_customers

CDNOW_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def _model(**params: float) -> BetaGeoModel:
    values = {**CDNOW_BGNBD, **params}
    return BetaGeoModel(**values, covariance=np.eye(4), log_likelihood=0.0, n_customers=0.0, n_distinct=0)


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    """3,000 customers with dates at day resolution, so many share a (frequency, recency, T) triple."""
    return simulate_customers(3000, CDNOW_BGNBD, CDNOW_GAMMA_GAMMA, max_T_days=273, time_unit="weeks", seed=11)


# --- likelihoods on hand-computed cases ---------------------------------------------------------


def test_bgnbd_log_likelihood_hand_cases():
    # r = alpha = a = b = 1. x = 0, T = 1: L = (alpha / (alpha + T))^r = 1/2.
    # x = 1, t_x = 1, T = 2: L = G(2)/G(1) * B(1, 2)/B(1, 1) * [3^-2 + 1/1 * 2^-2] = 1/2 * 13/36.
    ll = bgnbd.log_likelihood(1.0, 1.0, 1.0, 1.0, [0, 1], [0.0, 1.0], [1.0, 2.0])
    np.testing.assert_allclose(ll, [math.log(1 / 2), math.log(13 / 72)], rtol=1e-14)
    # r=2, alpha=3, a=2, b=3, x=2, t_x=4, T=6:
    # G(4)/G(2) = 6, alpha^r = 9, B(2, 5)/B(2, 3) = (1/30)/(1/12) = 2/5, a/(b+x-1) = 1/2.
    expected = 6 * 9 * 0.4 * (9.0**-4 + 0.5 * 7.0**-4)
    ll = bgnbd.log_likelihood(2.0, 3.0, 2.0, 3.0, [2], [4.0], [6.0])
    np.testing.assert_allclose(ll, [math.log(expected)], rtol=1e-14)


def test_gamma_gamma_log_likelihood_hand_case():
    # p=1, q=2, gamma=1, x=1, zbar=1: integral of nu e^-nu * nu e^-nu dnu = 2/8.
    ll = gamma_gamma.log_likelihood(1.0, 2.0, 1.0, [1], [1.0])
    np.testing.assert_allclose(ll, [math.log(0.25)], rtol=1e-14)


@pytest.mark.parametrize("model", ["bgnbd", "gamma_gamma"])
def test_fast_objective_matches_log_likelihood_and_its_derivatives(simulated, model):
    """The summed objective equals the per-customer likelihood; gradient and Hessian match finite differences."""
    data = simulated
    weights = np.random.default_rng(3).integers(1, 4, len(data)).astype(float)
    x = data["frequency"].to_numpy(float)
    if model == "bgnbd":
        theta = np.array([0.3, 4.0, 0.8, 2.5])
        columns = (x, data["recency"].to_numpy(), data["T"].to_numpy())
        objective = bgnbd._objective(*columns, weights)
        reference = -weights @ bgnbd.log_likelihood(*theta, *columns)
    else:
        repeat = x > 0
        theta = np.array([6.0, 3.5, 14.0])
        columns = (x[repeat], data["monetary_value"].to_numpy()[repeat])
        weights = weights[repeat]
        objective = gamma_gamma._objective(*columns, weights)
        reference = -weights @ gamma_gamma.log_likelihood(*theta, *columns)
    value, grad, hess = objective(theta)
    assert value == pytest.approx(reference, rel=1e-12)
    step = 1e-6 * theta
    eye = np.eye(theta.size)
    numeric_grad = [
        (objective(theta + h * e)[0] - objective(theta - h * e)[0]) / (2 * h) for h, e in zip(step, eye, strict=True)
    ]
    numeric_hess = [
        (objective(theta + h * e)[1] - objective(theta - h * e)[1]) / (2 * h) for h, e in zip(step, eye, strict=True)
    ]
    np.testing.assert_allclose(grad, numeric_grad, rtol=1e-5, atol=1e-6 * np.abs(grad).max())
    np.testing.assert_allclose(hess, np.array(numeric_hess), rtol=1e-5, atol=1e-6 * np.abs(hess).max())


# --- predictions -------------------------------------------------------------------------------


def test_p_alive_is_one_without_repeat_purchases():
    model = _model()
    np.testing.assert_array_equal(model.probability_alive([0, 0, 0], [0, 0, 0], [0.0, 5.0, 500.0]), [1.0, 1.0, 1.0])
    assert 0 < model.probability_alive([3], [1.0], [30.0])[0] < 1


def test_p_alive_at_horizon_hand_integral():
    """x = 0: P(alive at T+t) = E_p[(1 + p t/(alpha+T))^-r], p ~ Beta(a, b); at t = 0 it is P(alive)."""
    model = _model()
    t, T = 26.0, 10.0
    density = stats.beta(model.a, model.b).pdf
    expected, _ = integrate.quad(lambda p: density(p) * (1 + p * t / (model.alpha + T)) ** -model.r, 0, 1)
    assert model.probability_alive_at(t, [0], [0.0], [T])[0] == pytest.approx(expected, rel=1e-9)
    now = model.probability_alive_at(0.0, [2, 5], [3.0, 20.0], [30.0, 30.0])
    np.testing.assert_allclose(now, model.probability_alive([2, 5], [3.0, 20.0], [30.0, 30.0]), rtol=1e-14)


def test_expected_purchases_identities():
    model = _model()
    horizons = np.array([1.0, 10.0, 52.0])
    # A customer just acquired (x = 0, T = 0) is a new customer.
    np.testing.assert_allclose(
        model.conditional_expected_purchases(horizons, np.zeros(3), np.zeros(3), np.zeros(3)),
        model.expected_purchases_new_customer(horizons),
        rtol=1e-12,
    )
    assert model.conditional_expected_purchases(0.0, [4], [10.0], [20.0])[0] == pytest.approx(0.0, abs=1e-15)
    growing = model.conditional_expected_purchases(horizons, [4, 4, 4], [10.0] * 3, [20.0] * 3)
    assert np.all(np.diff(growing) > 0)


def test_conditional_expectation_by_monte_carlo():
    """E[Y(t) | x, t_x, T] and P(alive at T+t) by importance sampling over the prior of (lambda, p)."""
    model = _model()
    rng = np.random.default_rng(5)
    rate = rng.gamma(model.r, 1 / model.alpha, 2_000_000)
    dropout = rng.beta(model.a, model.b, 2_000_000)
    x, t_x, T, t = 2, 30.43, 38.86, 39.0
    alive = (1 - dropout) ** x * rate**x * np.exp(-rate * T)
    likelihood = alive + dropout * (1 - dropout) ** (x - 1) * rate**x * np.exp(-rate * t_x)
    expected = np.mean(alive * (1 - np.exp(-rate * dropout * t)) / dropout) / likelihood.mean()
    survival = np.mean(alive * np.exp(-rate * dropout * t)) / likelihood.mean()
    assert model.conditional_expected_purchases(t, [x], [t_x], [T])[0] == pytest.approx(expected, rel=0.01)
    assert model.probability_alive_at(t, [x], [t_x], [T])[0] == pytest.approx(survival, rel=0.01)


def test_gamma_gamma_expected_spend_formula():
    model = gamma_gamma.GammaGammaModel(
        p=6.0,
        q=4.0,
        gamma=15.0,
        covariance=np.eye(3),
        log_likelihood=0.0,
        n_customers=0.0,
        frequency_monetary_corr=0.0,
        independence_ok=True,
    )
    spend = model.conditional_expected_average_spend([0, 2, 1], [0.0, 40.0, 0.0])
    # x=0: p gamma/(q-1) = 30; x=2: 6 (15 + 80) / (12 + 3) = 38; free repeat purchases shrink to 6*15/9.
    np.testing.assert_allclose(spend, [30.0, 38.0, 10.0])
    assert model.population_mean_spend == 30.0


# --- fitting -----------------------------------------------------------------------------------


def test_weighted_fit_equals_unweighted(simulated):
    x, t_x, T = (simulated[c].to_numpy() for c in ("frequency", "recency", "T"))
    one_row_each = fit_bgnbd(x, t_x, T, deduplicate=False)
    collapsed = fit_bgnbd(x, t_x, T)
    distinct = simulated.groupby(["frequency", "recency", "T"]).size().reset_index(name="count")
    weighted = fit_bgnbd(
        distinct["frequency"], distinct["recency"], distinct["T"], weights=distinct["count"], deduplicate=False
    )
    assert collapsed.n_distinct == len(distinct) < len(simulated) / 2
    for model in (collapsed, weighted):
        np.testing.assert_allclose(list(model.params.values()), list(one_row_each.params.values()), rtol=1e-9)
        np.testing.assert_allclose(model.covariance, one_row_each.covariance, rtol=1e-6)
        assert model.log_likelihood == pytest.approx(one_row_each.log_likelihood, rel=1e-12)
        assert model.n_customers == len(simulated)
    spend_rows = fit_gamma_gamma(simulated["frequency"], simulated["monetary_value"], deduplicate=False)
    spend_collapsed = fit_gamma_gamma(simulated["frequency"], simulated["monetary_value"])
    np.testing.assert_allclose(list(spend_collapsed.params.values()), list(spend_rows.params.values()), rtol=1e-9)


def test_fits_recover_simulated_parameters():
    data = simulate_customers(
        40_000, CDNOW_BGNBD, CDNOW_GAMMA_GAMMA, max_T_days=546, time_unit="weeks", seed=2, day_resolution=False
    )
    purchases = fit_bgnbd(data["frequency"], data["recency"], data["T"])
    spend = fit_gamma_gamma(data["frequency"], data["monetary_value"])
    for model, truth in ((purchases, CDNOW_BGNBD), (spend, CDNOW_GAMMA_GAMMA)):
        z = {k: (model.params[k] - v) / model.standard_errors[k] for k, v in truth.items()}
        assert all(abs(v) < 3.5 for v in z.values()), z
    assert spend.independence_ok
    assert abs(spend.frequency_monetary_corr) < 0.05


# --- every error path --------------------------------------------------------------------------

GOOD = {"frequency": [0, 2, 1], "recency": [0.0, 5.0, 2.0], "T": [10.0, 10.0, 8.0]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"frequency": [np.nan, 2, 1]}, "frequency has 1 missing or infinite"),
        ({"T": [10.0, np.inf, 8.0]}, "T has 1 missing or infinite"),
        ({"recency": [0.0, -5.0, 2.0]}, "recency has 1 negative values"),
        ({"frequency": [0, 2.5, 1]}, "frequency must count purchases"),
        ({"recency": [0.0, 11.0, 2.0]}, r"recency > T for 1 customers"),
        ({"recency": [1.0, 5.0, 2.0]}, "1 customers have frequency 0 but recency > 0"),
        ({"T": [10.0, 10.0]}, "different lengths"),
        ({"frequency": [], "recency": [], "T": []}, "the customer summary is empty"),
    ],
)
def test_bgnbd_input_errors(change, message):
    data = {**GOOD, **change}
    with pytest.raises(ValueError, match=message):
        fit_bgnbd(data["frequency"], data["recency"], data["T"])
    if len(data["frequency"]) == len(data["T"]):
        with pytest.raises(ValueError, match=message):
            _model().probability_alive(data["frequency"], data["recency"], data["T"])


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1, -1, 1], "weights has 1 negative"),
        ([1, 1], "weights has 2 values for 3"),
        ([0, 0, 0], "weights sum to zero"),
    ],
)
def test_weight_errors(weights, message):
    with pytest.raises(ValueError, match=message):
        fit_bgnbd(GOOD["frequency"], GOOD["recency"], GOOD["T"], weights=weights)


def test_negative_horizon_is_rejected():
    with pytest.raises(ValueError, match="horizon t must be finite and >= 0"):
        _model().conditional_expected_purchases(-1.0, [1], [1.0], [2.0])


def test_bgnbd_no_repeat_buyers():
    with pytest.raises(ModelFitError, match="no customer made a repeat purchase"):
        fit_bgnbd([0, 0, 0], [0, 0, 0], [5.0, 6.0, 7.0])


def test_bgnbd_all_zero_recency():
    with pytest.raises(ModelFitError, match="recency is 0 for every repeat buyer"):
        fit_bgnbd([0, 1, 3], [0, 0, 0], [5.0, 6.0, 7.0])


def test_bgnbd_not_converged(simulated):
    with pytest.raises(ModelFitError, match="did not converge after 1 iterations"):
        fit_bgnbd(
            simulated["frequency"],
            simulated["recency"],
            simulated["T"],
            options=FitOptions(max_iter=1, max_polish_steps=0),
        )


def test_bgnbd_parameter_runs_to_bound():
    """Everyone bought on the last day: no sign of dropout, so E[p] = a/(a+b) runs to 0."""
    T = np.arange(10.0, 40.0)
    with pytest.raises(ModelFitError, match="parameter [ab] ran to .* the data do not identify it"):
        fit_bgnbd(np.full(T.size, 3), T, T)


def test_singular_hessian(simulated):
    with pytest.raises(ModelFitError, match="Hessian at the optimum is singular"):
        fit_bgnbd(simulated["frequency"], simulated["recency"], simulated["T"], options=FitOptions(max_condition=1.0))
    names = ("u", "v")
    with pytest.raises(ModelFitError, match="singular or not positive definite"):
        covariance_from_hessian(np.array([[1.0, 1.0], [1.0, 1.0]]), names, FitOptions())
    with pytest.raises(ModelFitError, match="not positive definite"):
        covariance_from_hessian(np.array([[-1.0, 0.0], [0.0, 1.0]]), names, FitOptions())


@pytest.mark.parametrize(
    ("frequency", "monetary", "error", "message"),
    [
        ([1, 2, 0], [np.nan, 2.0, 0.0], ValueError, "monetary_value has 1 missing"),
        ([-1, 2, 0], [1.0, 2.0, 0.0], ValueError, "frequency must be a non-negative whole number"),
        ([1, 2, 0], [0.0, 2.0, 0.0], ValueError, "monetary_value is <= 0 for 1 repeat buyers"),
        ([1, 2], [1.0, 2.0, 3.0], ValueError, "different lengths"),
        ([0, 0], [0.0, 0.0], ModelFitError, "no customer made a repeat purchase"),
        ([1, 2, 3], [5.0, 5.0, 5.0], ModelFitError, "every repeat buyer has the same monetary_value"),
    ],
)
def test_gamma_gamma_input_errors(frequency, monetary, error, message):
    with pytest.raises(error, match=message):
        fit_gamma_gamma(frequency, monetary)


def test_gamma_gamma_infinite_mean_spend():
    spend = np.exp(np.random.default_rng(0).normal(0.0, 3.0, 500))
    with pytest.raises(ModelFitError, match=r"q = .* <= 1: the fitted mean spend"):
        fit_gamma_gamma(np.ones(500), spend)


def test_gamma_gamma_parameter_runs_to_bound():
    """Spend fully determined by frequency: no spread between customers to fit q to."""
    with pytest.warns(SpendFrequencyCorrelationWarning):
        with pytest.raises(ModelFitError, match="parameter q ran to"):
            fit_gamma_gamma(np.repeat([1, 2], 50), np.repeat([10.0, 20.0], 50))


def test_gamma_gamma_flags_frequency_spend_correlation():
    rng = np.random.default_rng(4)
    frequency = rng.integers(1, 10, 2000)
    spend = rng.gamma(6.0, 2.0 * frequency)
    with pytest.warns(SpendFrequencyCorrelationWarning, match="independence assumption is doubtful"):
        model = fit_gamma_gamma(frequency, spend)
    assert not model.independence_ok
    assert model.frequency_monetary_corr > 0.3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon": 0}, "horizon=0"),
        ({"horizon": float("nan")}, "horizon=nan"),
        ({"horizon_unit": "years"}, "horizon_unit='years'"),
        ({"model": "lstm"}, "model='lstm'"),
        ({"selection_share": 1.0}, "selection_share=1.0"),
        ({"interval_level": 0.0}, "interval_level=0.0"),
        ({"monthly_discount_rate": -0.1}, "monthly_discount_rate=-0.1"),
        ({"margin": 1.5}, "margin=1.5"),
        ({"time_unit": "months"}, "time_unit='months'"),
        ({"days_per_month": 0.0}, "days_per_month=0.0"),
    ],
)
def test_clv_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClvConfig(**kwargs)


def test_clv_config_horizon_units():
    assert ClvConfig(horizon=9, horizon_unit="months", time_unit="weeks").horizon_units == pytest.approx(
        9 * 365.25 / 12 / 7
    )
    assert ClvConfig(horizon=39, horizon_unit="weeks", time_unit="days").horizon_units == 273.0
    assert ClvConfig(horizon=90, horizon_unit="days").horizon_days == 90.0
    # Saved models from before the horizon unit carry horizon_months.
    legacy = ClvConfig.from_dict({"horizon_months": 6, "time_unit": "days"})
    assert (legacy.horizon, legacy.horizon_unit, legacy.time_unit) == (6, "months", "days")
    with pytest.raises(TypeError, match=r"unknown CLV settings \['colour'\]"):
        ClvConfig.from_dict({"colour": "red"})


# --- model choice ------------------------------------------------------------------------------


def test_selection_cut_holds_back_a_share_of_the_history_at_most_the_horizon():
    from datetime import date

    from crm_warehouse.analytics.clv.selection import selection_cut

    as_of = date(2024, 12, 31)
    # 300 days of history: a third is 100 days, but a 30-day horizon caps it.
    assert selection_cut(date(2024, 3, 6), as_of, ClvConfig()) == date(2024, 9, 22)
    assert selection_cut(date(2024, 3, 6), as_of, ClvConfig(horizon=30, horizon_unit="days")) == date(2024, 12, 1)
    # Under a week on either side: no split.
    assert selection_cut(date(2024, 12, 12), as_of, ClvConfig()) is None
    assert selection_cut(date(2024, 3, 6), as_of, ClvConfig(horizon=5, horizon_unit="days")) is None


def test_model_choice_falls_back_and_fails_with_every_model_named():
    from crm_warehouse.analytics.clv.selection import ModelSelection, fit_chosen_model

    # Customers buying on a fixed weekly rhythm with no sign of dropout: no model identifies its parameters.
    weeks = np.arange(1, 21, dtype=float)
    summary = pd.DataFrame({"frequency": weeks, "recency": weeks, "T": weeks + 0.5})
    summary = pd.concat([summary] * 5, ignore_index=True)
    selection = ModelSelection(chosen="mbgnbd", reason="test", ranking=("mbgnbd", "bgnbd"))
    with pytest.raises(ModelFitError, match=r"the MBG/NBD fit failed: .*; BG/NBD failed too \(") as failure:
        fit_chosen_model(selection, summary)
    assert failure.value.model == "mbgnbd"
    # When the first choice fits, the selection is returned unchanged (the fallback itself: test_analytics_byod).
    good = simulate_customers(3000, CDNOW_BGNBD, CDNOW_GAMMA_GAMMA, max_T_days=273, time_unit="weeks", seed=11)
    model, used = fit_chosen_model(ModelSelection(chosen="mbgnbd", reason="Chosen.", ranking=("mbgnbd",)), good)
    assert model.name == "mbgnbd" and used.reason == "Chosen."
