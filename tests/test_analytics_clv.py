"""Validation on CDNOW: published BG/NBD and Gamma-Gamma estimates, holdout accuracy, CLV.

Published figures: Fader, Hardie & Lee (2005), "Counting your customers the easy
way", on the 2,357-customer sample with a 39-week calibration period
(1997-01-01..1997-09-30): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426,
LL = -9582.4. Fader & Hardie (2013), "The Gamma-Gamma model of monetary value",
same sample, 946 repeat buyers: p = 6.25, q = 3.74, gamma = 15.44.

They are reproduced from the raw transactions when orders are grouped by
calendar day (same-day orders are one purchase, amounts added), the first day
is not a repeat purchase, recency and T are days / 7, and the mean repeat spend
is not rounded. lifetimes' reference summary has the same numbers to its two
decimals; fitting Gamma-Gamma on its rounded zbar gives gamma = 15.45, and
counting orders instead of days gives r = 0.218, alpha = 3.27.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crm_warehouse.analytics.clv import (
    CLV_COLUMNS,
    ClvConfig,
    calibration_and_holdout,
    customer_lifetime_value,
    fit_and_score,
    fit_bgnbd,
    fit_gamma_gamma,
    summarize_transactions,
)
from crm_warehouse.analytics.metrics import auc

CDNOW = Path(__file__).parent / "data" / "cdnow"
CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def read_cdnow(name: str) -> pd.DataFrame:
    """Raw CDNOW orders as customer_id, date (int YYYYMMDD), amount.

    The sample file has no header and an extra first column (the customer's id
    in the master file); its second column is the sample id 1..2357.
    """
    if name == "sample":
        columns = ["master_id", "customer_id", "date", "cds", "amount"]
        return pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None, names=columns)
    raw = pd.read_csv(CDNOW / "CDNOW_master.txt", sep=r"\s+")
    return raw.rename(columns={"dollar_value": "amount"})


def _calibration_and_holdout(name: str) -> pd.DataFrame:
    return calibration_and_holdout(
        read_cdnow(name),
        calibration_end=CALIBRATION_END,
        observation_end=OBSERVATION_END,
        time_unit="weeks",
        date_format="%Y%m%d",
    )


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return _calibration_and_holdout("sample")


@pytest.fixture(scope="module")
def sample_bgnbd(sample):
    return fit_bgnbd(sample["frequency"], sample["recency"], sample["T"])


@pytest.fixture(scope="module")
def sample_gamma_gamma(sample):
    return fit_gamma_gamma(sample["frequency"], sample["monetary_value"])


def _round_half_up(values: pd.Series) -> np.ndarray:
    # The reference file was rounded half up (22.345 -> 22.35); Python rounds binary floats half-even-ish.
    return np.floor(values.to_numpy() * 100 + 0.5 + 1e-9) / 100


def test_summary_reproduces_lifetimes_reference(sample):
    reference = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv", index_col="ID")
    assert len(sample) == len(reference) == 2357
    assert (sample["frequency"] > 0).sum() == 946
    np.testing.assert_array_equal(sample["frequency"].to_numpy(), reference["x"].to_numpy())
    for ours, theirs in (("recency", "t_x"), ("T", "T"), ("monetary_value", "zbar")):
        np.testing.assert_allclose(_round_half_up(sample[ours]), reference[theirs].to_numpy(), atol=1e-9)


def test_bgnbd_reproduces_published_estimates(sample_bgnbd):
    assert {k: round(v, 3) for k, v in sample_bgnbd.params.items()} == PUBLISHED_BGNBD
    assert sample_bgnbd.log_likelihood == pytest.approx(-9582.43, abs=0.005)
    # Standard errors (inverse Hessian), as lifetimes reports them for this fit.
    np.testing.assert_allclose(list(sample_bgnbd.standard_errors.values()), [0.0126, 0.3782, 0.1857, 0.7054], atol=5e-5)


def test_gamma_gamma_reproduces_published_estimates(sample_gamma_gamma):
    assert {k: round(v, 2) for k, v in sample_gamma_gamma.params.items()} == PUBLISHED_GAMMA_GAMMA
    assert sample_gamma_gamma.n_customers == 946
    # Fader & Hardie (2013) report a correlation of 0.11 between frequency and mean spend.
    assert sample_gamma_gamma.frequency_monetary_corr == pytest.approx(0.11, abs=0.005)
    assert sample_gamma_gamma.independence_ok


def test_rounded_reference_or_order_counts_do_not_reproduce_the_published_figures():
    reference = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv", index_col="ID")
    rounded = fit_gamma_gamma(reference["x"], reference["zbar"])
    assert round(rounded.gamma, 2) == 15.45
    orders = read_cdnow("sample")
    orders = orders[orders["date"] <= 19970930]
    per_customer = orders.groupby("customer_id")["date"].agg(["size", "min", "max"])
    first, last = (pd.to_datetime(per_customer[c].astype(str)) for c in ("min", "max"))
    counted = fit_bgnbd(
        per_customer["size"] - 1,
        (last - first).dt.days / 7,
        (pd.Timestamp(CALIBRATION_END) - first).dt.days / 7,
    )
    assert round(counted.r, 3) == 0.218
    assert round(counted.alpha, 2) == 3.27


def _holdout_accuracy(data: pd.DataFrame, label: str, capsys) -> dict[str, float]:
    model = fit_bgnbd(data["frequency"], data["recency"], data["T"])
    predicted = model.conditional_expected_purchases(
        data["duration_holdout"].to_numpy(), data["frequency"], data["recency"], data["T"]
    )
    actual = data["frequency_holdout"].to_numpy()
    figures = {
        "customers": len(data),
        "actual": int(actual.sum()),
        "predicted": float(predicted.sum()),
        "mae": float(np.abs(predicted - actual).mean()),
    }
    params = ", ".join(f"{k}={v:.4f}" for k, v in model.params.items())
    with capsys.disabled():
        print(
            f"\n[CDNOW {label}] {figures['customers']:,} customers, BG/NBD {params}; holdout "
            f"1997-10-01..{OBSERVATION_END} (39 weeks): actual {figures['actual']:,} repeat purchase days, "
            f"predicted {figures['predicted']:,.1f} ({figures['predicted'] / figures['actual'] - 1:+.1%}), "
            f"MAE per customer {figures['mae']:.4f}"
        )
    return figures


def test_holdout_accuracy_sample(sample, capsys):
    figures = _holdout_accuracy(sample, "sample", capsys)
    assert figures["actual"] == 1882
    # Same conditional expectations as lifetimes 0.11.3 (checked to 1e-12 per customer).
    assert figures["predicted"] == pytest.approx(1653.409, abs=0.001)
    assert figures["mae"] == pytest.approx(0.78545, abs=1e-5)


def test_holdout_accuracy_master(capsys):
    master = _calibration_and_holdout("master")
    assert len(master) == 23570
    figures = _holdout_accuracy(master, "master", capsys)
    assert figures["actual"] == 19684
    assert figures["predicted"] == pytest.approx(16873.73, abs=0.01)
    assert figures["mae"] == pytest.approx(0.81874, abs=1e-5)


def test_clv_matches_lifetimes_and_month_by_month_sum(sample, sample_bgnbd, sample_gamma_gamma):
    # lifetimes counts a month as 4.345 weeks; its customer_lifetime_value (12 months, 1 % a month)
    # gives 71,507.95 in total on these models.
    lifetimes_months = ClvConfig(horizon=12, monthly_discount_rate=0.01, days_per_month=4.345 * 7)
    scores = customer_lifetime_value(sample_bgnbd, sample_gamma_gamma, sample, lifetimes_months)
    assert scores["clv"].sum() == pytest.approx(71507.95, abs=0.01)

    config = ClvConfig(horizon=6, monthly_discount_rate=0.02, margin=0.3)
    scores = customer_lifetime_value(sample_bgnbd, sample_gamma_gamma, sample, config)
    assert list(scores.columns) == list(CLV_COLUMNS)
    columns = [sample[c] for c in ("frequency", "recency", "T")]
    spend = sample_gamma_gamma.conditional_expected_average_spend(sample["frequency"], sample["monetary_value"])
    expected = np.zeros(len(sample))
    for month in range(1, 7):
        purchases = sample_bgnbd.conditional_expected_purchases(
            month * config.units_per_month, *columns
        ) - sample_bgnbd.conditional_expected_purchases((month - 1) * config.units_per_month, *columns)
        expected += 0.3 * spend * purchases / 1.02**month
    np.testing.assert_allclose(scores["clv"], expected, rtol=1e-10)
    horizon = sample_bgnbd.conditional_expected_purchases(6 * config.units_per_month, *columns)
    np.testing.assert_allclose(scores["expected_purchases"], horizon, rtol=1e-12)
    np.testing.assert_allclose(scores["expected_spend"], horizon * spend, rtol=1e-12)
    np.testing.assert_allclose(scores["p_alive"], sample_bgnbd.probability_alive(*columns))


def test_fit_and_score_leaves_out_free_repeat_purchases():
    master = _calibration_and_holdout("master")
    result = fit_and_score(master)
    assert result.n_zero_spend_excluded == 1
    assert result.spend_model.n_customers == (master["frequency"] > 0).sum() - 1
    assert len(result.scores) == 23570
    assert np.isfinite(result.scores.to_numpy()).all()


# --- model choice, churn probability and intervals --------------------------------------------------


def test_model_choice_on_the_internal_split_of_the_sample(sample):
    """The calibration period is cut 91 days before its end; the holdout is never used."""
    orders = read_cdnow("sample")
    calls = []

    def summarize(day):
        calls.append(day)
        return summarize_transactions(orders, as_of=day, time_unit="weeks", date_format="%Y%m%d")

    config = ClvConfig(horizon=39, horizon_unit="weeks")
    result = fit_and_score(sample, config, summarize=summarize, as_of=date(1997, 9, 30))
    selection = result.selection
    assert calls == [date(1997, 7, 1)] == [selection.cut]
    assert selection.validation_days == 91 and selection.customers == 2357
    assert selection.chosen == "mbgnbd" and selection.ranking == ("mbgnbd", "pareto_nbd", "bgnbd")
    maes = {c.model: round(c.mae, 4) for c in selection.candidates}
    assert maes == {"bgnbd": 0.3928, "mbgnbd": 0.3850, "pareto_nbd": 0.3898}
    assert {c.actual for c in selection.candidates} == {711.0}
    assert selection.reason.startswith("MBG/NBD had the lowest mean absolute error per customer on the internal split")
    assert result.transaction_model.name == "mbgnbd"
    # Holdout figures of the chosen model on the sample, beside BG/NBD's 0.7855 (test_holdout_accuracy_sample).
    actual = sample["frequency_holdout"].to_numpy()
    predicted = result.scores["expected_purchases"].to_numpy()
    assert np.abs(predicted - actual).mean() == pytest.approx(0.76478, abs=1e-5)
    assert auc(actual == 0, result.scores["churn_probability"]) == pytest.approx(0.76010, abs=1e-5)


def test_explicit_model_skips_the_split(sample):
    result = fit_and_score(sample, ClvConfig(model="pareto_nbd"))
    assert result.selection.chosen == "pareto_nbd" and result.selection.cut is None
    assert result.selection.reason == "Pareto/NBD was asked for."
    assert result.transaction_model.name == "pareto_nbd"


def test_intervals_agree_with_a_parametric_bootstrap(sample, sample_bgnbd, sample_gamma_gamma):
    """Delta-method intervals against quantiles of the predictions at parameters drawn from their asymptotic normal."""
    config = ClvConfig(horizon=39, horizon_unit="weeks", interval_level=0.9)
    rows = sample.iloc[[0, 5, 25, 100, 1000]]
    scores = customer_lifetime_value(sample_bgnbd, sample_gamma_gamma, rows, config)
    theta = np.array(list(sample_bgnbd.params.values()))
    log_cov = sample_bgnbd.covariance / np.outer(theta, theta)
    draws = np.exp(np.random.default_rng(1).multivariate_normal(np.log(theta), log_cov, 4000))
    columns = [rows[c].to_numpy() for c in ("frequency", "recency", "T")]
    simulated = np.array([sample_bgnbd.with_params(d).conditional_expected_purchases(39.0, *columns) for d in draws])
    low, high = np.quantile(simulated, [0.05, 0.95], axis=0)
    np.testing.assert_allclose(scores["expected_purchases_low"], low, rtol=0.02)
    np.testing.assert_allclose(scores["expected_purchases_high"], high, rtol=0.02)


def test_intervals_narrow_with_more_customers(sample):
    """Ten times the customers (the full file) gives intervals about sqrt(10) times narrower."""
    master = _calibration_and_holdout("master")
    config = ClvConfig(model="bgnbd")
    widths = []
    for data in (sample, master):
        scores = fit_and_score(data, config).scores
        widths.append(np.median(np.log(scores["clv_high"] / scores["clv_low"])))
    assert widths[0] / widths[1] == pytest.approx(np.sqrt(10), rel=0.25)
