"""Churn model: point-in-time features, drivers, metrics on known answers, and a time split
on a simulated company checked against the simulator's true dropouts and closures.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from analytics_warehouse import SimulatedWarehouse, simulated_warehouse

from crm_warehouse.analytics.churn.attribution import PathAttribution
from crm_warehouse.analytics.churn.config import ChurnConfig
from crm_warehouse.analytics.churn.drivers import strongest_features, top_drivers
from crm_warehouse.analytics.churn.features import (
    CATEGORICAL_LEVELS,
    FEATURES,
    NUMERIC_FEATURES,
    churn_features,
    evaluation_dates,
    sample_training_rows,
    warehouse_as_of,
)
from crm_warehouse.analytics.churn.model import (
    ChurnModel,
    booster_params,
    customer_folds,
    fit_churn_model,
    isotonic_map,
    no_purchase_probability,
    score_churn,
    score_churn_batches,
    time_split,
    train_churn_model,
)
from crm_warehouse.analytics.clv.bgnbd import BetaGeoModel
from crm_warehouse.analytics.metrics import (
    auc,
    auc_standard_error,
    brier_score,
    expected_calibration_error,
    top_share_lift,
)

CUTOFF = date(2024, 3, 31)
AS_OF = date(2024, 6, 30)
MONTH_ENDS = [
    date(2023, 12, 31),
    date(2024, 1, 31),
    date(2024, 2, 29),
    CUTOFF,
    date(2024, 4, 30),
    date(2024, 5, 31),
    AS_OF,
]

# ---------------------------------------------------------------------------
# A hand-made warehouse: only the columns churn_features reads.
# ---------------------------------------------------------------------------

# Stage-table values at the cutoff; later months change them (more orders, other stages).
AT_CUTOFF = {
    # A: three orders (Jan 5, Feb 1, Mar 1; 100 each), one more on May 10 (after the cutoff).
    "A": dict(
        stage_code="exploration",
        days_since_last_order=30,
        median_gap_days=28,
        completed_orders_to_date=3,
        tenure_days=86,
        revenue_to_date=300,
        trailing_window_revenue=300,
        previous_window_revenue=0,
        trailing_window_orders=3,
        previous_window_orders=0,
        best_trailing_window_revenue=300,
        trailing_12m_revenue=300,
        is_closed=False,
    ),
    # B: a declining distributor (orders Jan 10 and Mar 20), nothing after the cutoff.
    "B": dict(
        stage_code="decline",
        days_since_last_order=11,
        median_gap_days=20,
        completed_orders_to_date=6,
        tenure_days=400,
        revenue_to_date=5000,
        trailing_window_revenue=400,
        previous_window_revenue=1000,
        trailing_window_orders=2,
        previous_window_orders=4,
        best_trailing_window_revenue=2000,
        trailing_12m_revenue=3000,
        is_closed=False,
    ),
    # C: orders on Jan 2 and Apr 10, account closed on Apr 15.
    "C": dict(
        stage_code="formation",
        days_since_last_order=89,
        median_gap_days=None,
        completed_orders_to_date=1,
        tenure_days=89,
        revenue_to_date=100,
        trailing_window_revenue=100,
        previous_window_revenue=0,
        trailing_window_orders=1,
        previous_window_orders=0,
        best_trailing_window_revenue=100,
        trailing_12m_revenue=100,
        is_closed=False,
    ),
    # D: a prospect; E: closed in February.
    "D": dict(
        stage_code="prospect",
        days_since_last_order=None,
        median_gap_days=None,
        completed_orders_to_date=0,
        tenure_days=None,
        revenue_to_date=0,
        trailing_window_revenue=0,
        previous_window_revenue=0,
        trailing_window_orders=0,
        previous_window_orders=0,
        best_trailing_window_revenue=0,
        trailing_12m_revenue=0,
        is_closed=False,
    ),
    "E": dict(
        stage_code="churned",
        days_since_last_order=70,
        median_gap_days=10,
        completed_orders_to_date=4,
        tenure_days=120,
        revenue_to_date=800,
        trailing_window_revenue=200,
        previous_window_revenue=600,
        trailing_window_orders=1,
        previous_window_orders=3,
        best_trailing_window_revenue=600,
        trailing_12m_revenue=800,
        is_closed=True,
    ),
}
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": list("ABCDE"),
        "customer_type": ["consumer", "distributor", "consumer", "consumer", "key_account"],
        "estimated_annual_wallet": [10_000.0, 1_000.0, 500.0, 2_000.0, 50_000.0],
        "closed_date": [None, None, date(2024, 4, 15), None, date(2024, 2, 20)],
    }
)
# Purchase days (completed orders) with revenue.
ORDER_DAYS = [
    ("A", date(2024, 1, 5), 100.0),
    ("A", date(2024, 2, 1), 100.0),
    ("A", date(2024, 3, 1), 100.0),
    ("A", date(2024, 5, 10), 500.0),
    ("B", date(2024, 1, 10), 200.0),
    ("B", date(2024, 3, 20), 200.0),
    ("C", date(2024, 1, 2), 100.0),
    ("C", date(2024, 4, 10), 100.0),
    ("E", date(2023, 12, 10), 800.0),
]


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _staged_rows() -> pd.DataFrame:
    rows = []
    for customer, values in AT_CUTOFF.items():
        rows.append({"customer_id": customer, "evaluated_on": CUTOFF, **values})
        for later in MONTH_ENDS[MONTH_ENDS.index(CUTOFF) + 1 :]:
            # Later months know more: more orders, more revenue, another stage.
            changed = {
                **values,
                "stage_code": "stability",
                "days_since_last_order": 1,
                "completed_orders_to_date": values["completed_orders_to_date"] + 9,
                "revenue_to_date": values["revenue_to_date"] + 9999,
                "trailing_12m_revenue": 99_999,
            }
            rows.append({"customer_id": customer, "evaluated_on": later, **changed})
    rows.append({"customer_id": "D", "evaluated_on": MONTH_ENDS[0], **AT_CUTOFF["D"]})
    frame = pd.DataFrame(rows)
    frame["month_start"] = frame["evaluated_on"].map(_month_start)
    return frame


def _activity_rows() -> pd.DataFrame:
    """A complains every month from December on (resolved in April); surveys answered in March and May."""
    rows = []
    for customer in AT_CUTOFF:
        for month_end in MONTH_ENDS:
            index = MONTH_ENDS.index(month_end)
            is_a = customer == "A"
            rows.append(
                {
                    "customer_id": customer,
                    "month_start": _month_start(month_end),
                    "evaluated_on": month_end,
                    "tickets_opened": 2 if is_a else 0,
                    "complaints_opened": 1 if is_a else 0,
                    "praises_received": 0,
                    "touch_responses": 1 if is_a and month_end > CUTOFF else 0,
                    "complaints_to_date": index + 1 if is_a else 0,
                    "unresolved_complaints": (index + 1 if month_end <= CUTOFF else 1) if is_a else 0,
                    "latest_csat": {CUTOFF: 4, AS_OF: 1}.get(month_end) if is_a else None,
                    "latest_nps": {CUTOFF: 8, AS_OF: 0}.get(month_end) if is_a else None,
                    "latest_satisfaction_index": {CUTOFF: 1.1, AS_OF: 0.5}.get(month_end) if is_a else None,
                    "categories_bought_to_date": min(index, 3) if is_a else 1,
                    "touches_to_date": 4 + 4 * (month_end > CUTOFF) if is_a else 0,
                    "touch_responses_to_date": 1 + 3 * (month_end > CUTOFF) if is_a else 0,
                }
            )
    return pd.DataFrame(rows)


def build_tiny_warehouse(con: duckdb.DuckDBPyConnection, *, until: date = AS_OF) -> None:
    """The models churn_features reads, with every row dated after ``until`` left out."""
    staged = _staged_rows()
    staged = staged[staged["evaluated_on"] <= until]
    panel = staged[["customer_id", "evaluated_on"]].assign(
        purchase_days_to_date=staged["completed_orders_to_date"], margin_to_date=staged["revenue_to_date"] * 0.3
    )
    activity = _activity_rows()
    activity = activity[activity["evaluated_on"] <= until]
    orders = pd.DataFrame(ORDER_DAYS, columns=["customer_id", "order_date", "revenue_on_day"])
    orders = orders[orders["order_date"] <= until]
    customers = CUSTOMERS.assign(
        closed_date=CUSTOMERS["closed_date"].where(CUSTOMERS["closed_date"].map(lambda d: d is not None and d <= until))
    )
    tables = {
        "intermediate.int_customer_months__staged": staged,
        "intermediate.int_customer_months__panel": panel,
        "intermediate.int_customer_months__activity": activity,
        "intermediate.int_order_days__sequenced": orders,
        "intermediate.int_calendar__as_of": pd.DataFrame({"as_of_date": [until]}),
        "staging.stg_crm__customers": customers,
    }
    con.execute("create schema if not exists intermediate")
    con.execute("create schema if not exists staging")
    for name, frame in tables.items():
        con.register("frame", frame)
        con.execute(f"create or replace table {name} as select * from frame")
        con.unregister("frame")
    for column in ("evaluated_on", "month_start"):
        for table in ("int_customer_months__staged", "int_customer_months__activity"):
            con.execute(f"alter table intermediate.{table} alter {column} type date")
    con.execute("alter table intermediate.int_customer_months__panel alter evaluated_on type date")
    con.execute("alter table intermediate.int_order_days__sequenced alter order_date type date")
    con.execute("alter table intermediate.int_calendar__as_of alter as_of_date type date")
    con.execute("alter table staging.stg_crm__customers alter closed_date type date")


@pytest.fixture()
def tiny() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    build_tiny_warehouse(con)
    yield con
    con.close()


def test_features_at_the_cutoff_ignore_everything_after_it(tiny: duckdb.DuckDBPyConnection) -> None:
    features = churn_features(tiny, CUTOFF, 90)
    with duckdb.connect() as truncated:
        build_tiny_warehouse(truncated, until=CUTOFF)
        known_then = churn_features(truncated, CUTOFF, 90)
    pd.testing.assert_frame_equal(features.drop(columns="churned"), known_then.drop(columns="churned"))
    # The later warehouse can label the cutoff; the one of the cutoff day cannot yet.
    assert known_then["churned"].isna().all()


def test_feature_values_and_labels_by_hand(tiny: duckdb.DuckDBPyConnection) -> None:
    features = churn_features(tiny, CUTOFF, 90).set_index("customer_id")
    # Prospect D and closed E are not scored.
    assert list(features.index) == ["A", "B", "C"]
    a, b, c = (features.loc[k] for k in "ABC")
    assert (a["days_since_last_order"], a["gap_ratio"], a["completed_orders"]) == (30, 30 / 28, 3)
    # December's complaint is outside the three recent months, April's is after the cutoff.
    assert (a["recent_complaints"], a["recent_tickets"], a["unresolved_complaints"]) == (3, 6, 4)
    assert (a["latest_csat"], a["latest_nps"], a["touch_response_rate"]) == (4, 8, 0.25)
    assert a["share_of_wallet"] == pytest.approx(300 / 10_000)
    assert np.isnan(a["revenue_change"]) and b["revenue_change"] == pytest.approx(-0.6)
    assert b["revenue_vs_best"] == pytest.approx(0.2)
    assert b["share_of_wallet"] == 1.0  # 3000 / 1000, capped
    assert np.isnan(c["gap_ratio"]) and np.isnan(c["latest_csat"])
    assert (a["stage_code"], b["stage_code"], b["customer_type"]) == ("exploration", "decline", "distributor")
    # A buys on May 10; B buys nothing; C buys on Apr 10 but closes its account on Apr 15.
    assert features["churned"].tolist() == [False, True, True]
    # A 30-day horizon ends before A's May order.
    assert churn_features(tiny, CUTOFF, 30).set_index("customer_id").loc["A", "churned"]


def test_bad_cutoffs_raise(tiny: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="cutoff=2024-03-30 is not a day the customer-month panel is evaluated on"):
        churn_features(tiny, date(2024, 3, 30), 90)
    with pytest.raises(ValueError, match="no customer at cutoff=2023-12-31 is in a scored stage"):
        churn_features(tiny, MONTH_ENDS[0], 90)
    with pytest.raises(ValueError, match="horizon_days=0"):
        churn_features(tiny, CUTOFF, 0)


LABELLED_CUTOFFS = [CUTOFF, date(2024, 4, 30), date(2024, 5, 31)]


def test_sample_is_stratified_by_cutoff_and_label_with_the_exact_size(tiny: duckdb.DuckDBPyConnection) -> None:
    # 30-day labels: March 31 A, B, C all churn; April 30 (A-E in stability) A buys on May 10,
    # the others churn; May 31 all five churn. Strata: 3, 1 + 4, 5 rows (13).
    sample = sample_training_rows(tiny, LABELLED_CUTOFFS, 30, sample_rows=6, seed=7)
    strata = sample.groupby(["cutoff", "churned"]).size().to_dict()
    # Shares of 6: 18/13, 6/13, 24/13, 30/13 -> floors 1, 0, 1, 2; the two rows left go to the
    # largest remainders (11/13 and 6/13).
    assert strata == {
        (CUTOFF, True): 1,
        (date(2024, 4, 30), False): 1,
        (date(2024, 4, 30), True): 2,
        (date(2024, 5, 31), True): 2,
    }
    # Sampled rows are the feature rows themselves.
    everything = pd.concat([churn_features(tiny, c, 30) for c in LABELLED_CUTOFFS], ignore_index=True)
    merged = sample.merge(everything, on=["cutoff", "customer_id"], suffixes=("", "_all"))
    assert len(merged) == 6
    pd.testing.assert_series_equal(merged["revenue_to_date"], merged["revenue_to_date_all"], check_names=False)
    # Same seed, same rows; the seed changes the draw.
    pd.testing.assert_frame_equal(sample, sample_training_rows(tiny, LABELLED_CUTOFFS, 30, sample_rows=6, seed=7))
    draws = {
        tuple(sample_training_rows(tiny, LABELLED_CUTOFFS, 30, sample_rows=6, seed=seed)["customer_id"])
        for seed in range(8)
    }
    assert len(draws) > 1
    # A sample larger than the population is the population, as churn_features gives it per cutoff.
    pd.testing.assert_frame_equal(sample_training_rows(tiny, LABELLED_CUTOFFS, 30, sample_rows=100, seed=7), everything)
    with pytest.raises(ValueError, match="sample_rows=0"):
        sample_training_rows(tiny, LABELLED_CUTOFFS, 30, sample_rows=0, seed=7)
    with pytest.raises(ValueError, match="cutoff=2024-03-30 is not a day"):
        sample_training_rows(tiny, [date(2024, 3, 30)], 30, sample_rows=5, seed=7)


# ---------------------------------------------------------------------------
# Drivers, metrics and the model on hand-made frames.
# ---------------------------------------------------------------------------


def _feature_row(**values: float | str) -> dict[str, float | str]:
    row: dict[str, float | str] = {name: 0.0 for name in NUMERIC_FEATURES}
    row.update(stage_code="formation", customer_type="consumer")
    row.update(values)
    return row


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column, levels in CATEGORICAL_LEVELS.items():
        frame[column] = pd.Categorical(frame[column], categories=list(levels))
    return frame


def test_drivers_in_plain_words() -> None:
    features = _typed(
        pd.DataFrame(
            [
                _feature_row(days_since_last_order=120, unresolved_complaints=2, revenue_change=-0.6),
                _feature_row(
                    latest_csat=np.nan,
                    complaints_to_date=1,
                    stage_code="decline",
                    revenue_change=0.25,
                    recent_complaints=1,
                    share_of_wallet=0.043,
                ),
            ],
            index=["c1", "c2"],
        )
    )
    contributions = pd.DataFrame(0.0, index=features.index, columns=list(FEATURES))
    contributions.loc["c1", ["days_since_last_order", "unresolved_complaints", "revenue_change", "tenure_days"]] = [
        2.0,
        1.5,
        1.0,
        0.5,
    ]
    contributions.loc["c2", ["latest_csat", "stage_code", "revenue_change", "complaints_to_date"]] = [
        0.3,
        0.2,
        0.1,
        -0.5,
    ]
    contributions.loc["c2", "recent_complaints"] = 0.1  # tie with revenue_change: the earlier feature wins
    drivers = top_drivers(features, contributions.to_numpy(), recent_months=3)
    assert drivers.loc["c1"].tolist() == [
        "no order for 120 days",
        "2 unresolved complaints",
        "revenue down 60% vs previous quarter",
        "no order for 120 days; 2 unresolved complaints; revenue down 60% vs previous quarter",
    ]
    assert drivers.loc["c2", ["driver_1", "driver_2", "driver_3"]].tolist() == [
        "no CSAT answer",
        "lifecycle stage: decline",
        "revenue up 25% vs previous quarter",
    ]
    one = top_drivers(features, contributions.assign(revenue_change=0.0, recent_complaints=0.5).to_numpy(), n=2)
    assert one.loc["c2", "top_drivers"] == "1 complaint in the last 3 months; no CSAT answer"


def test_strongest_features_by_hand() -> None:
    values = np.array([[0.1, 0.5, 0.5, 0.2], [1.0, 1.0, 1.0, 1.0], [-1.0, -2.0, -3.0, 0.0], [0.3, 0.1, 0.2, 0.4]])
    # Largest first; ties (row 1, and at the edge in row 0) go to the earlier column.
    assert strongest_features(values, 2).tolist() == [[1, 2], [0, 1], [3, 0], [3, 0]]
    assert strongest_features(values, 3).tolist() == [[1, 2, 3], [0, 1, 2], [3, 0, 1], [3, 0, 2]]
    with pytest.raises(ValueError, match="at least n=5"):
        strongest_features(values, 5)


def test_isotonic_calibration_by_hand() -> None:
    # Pool adjacent violators: 0.2 (churned) and 0.3 (stayed) pool to 0.5; the ends are kept
    # half a row (0.5 / 4) away from 0 and 1.
    x, y = isotonic_map([0.4, 0.1, 0.3, 0.2], [1, 0, 0, 1])
    assert x.tolist() == [0.1, 0.2, 0.3, 0.4]
    assert y.tolist() == [0.125, 0.5, 0.5, 0.875]


def test_customer_folds_keep_customers_together_and_deal_churners_evenly() -> None:
    customers = np.array(["a", "a", "b", "c", "c", "c", "d", "e", "f", "g"])
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 0])
    fold = customer_folds(customers, y, 2, seed=7)
    by_customer = pd.Series(fold).groupby(customers).nunique()
    assert (by_customer == 1).all()
    per_customer = (
        pd.DataFrame({"fold": fold, "churned": y}).groupby(customers).agg({"fold": "first", "churned": "max"})
    )
    # 7 customers (a, c, e churn): 4 + 3, churners 2 + 1.
    assert sorted(per_customer["fold"].value_counts()) == [3, 4]
    assert sorted(per_customer.groupby("fold")["churned"].sum()) == [1, 2]
    np.testing.assert_array_equal(fold, customer_folds(customers, y, 2, seed=7))


def test_metrics_on_known_answers() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.1, 0.9, 0.7])
    # Bins [0.1, 0.2): |0 - 0.1| x 2/4; [0.9, 1]: |1 - 0.9| x 1/4; [0.7, 0.8): |1 - 0.7| x 1/4.
    assert expected_calibration_error(y, p, bins=10) == pytest.approx(0.05 + 0.025 + 0.075)
    assert expected_calibration_error(y, p, bins=1) == pytest.approx(abs(0.5 - 0.45))
    assert brier_score(y, p) == pytest.approx((0.01 + 0.01 + 0.01 + 0.09) / 4)
    assert auc(y, p) == 1.0
    # Ten cases, two churners: the top decile (one case) is a churner -> rate 1 vs 0.2 overall.
    y10 = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    p10 = np.array([0.9, 0.8, 0.1, 0.1, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert top_share_lift(y10, p10, 0.1) == pytest.approx(5.0)
    assert top_share_lift(y10, p10, 0.2) == pytest.approx(2.5)
    # Hanley & McNeil (1982) by hand for AUC 0.8 with 50 churners and 50 stayers.
    q1, q2 = 0.8 / 1.2, 2 * 0.64 / 1.8
    expected = np.sqrt((0.8 * 0.2 + 49 * (q1 - 0.64) + 49 * (q2 - 0.64)) / 2500)
    assert auc_standard_error(0.8, 50, 50) == pytest.approx(expected)
    with pytest.raises(ValueError, match="every y is 0"):
        auc([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="outside"):
        brier_score([0, 1], [0.5, 1.5])


def _labelled_frame(n: int, seed: int, churn_rate: float | None = None) -> pd.DataFrame:
    """Random customers whose churn depends on recency and complaints (plus noise)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=n) for name in NUMERIC_FEATURES})
    frame["days_since_last_order"] = rng.exponential(40.0, n)
    frame["unresolved_complaints"] = rng.poisson(0.3, n).astype(float)
    frame["stage_code"] = rng.choice(CATEGORICAL_LEVELS["stage_code"], n)
    frame["customer_type"] = rng.choice(CATEGORICAL_LEVELS["customer_type"], n)
    logit = (frame["days_since_last_order"] - 60.0) / 15.0 + frame["unresolved_complaints"]
    churned = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    frame["churned"] = churned if churn_rate is None else np.full(n, churn_rate >= 0.5)
    frame["customer_id"] = [f"C{i:05d}" for i in range(n)]
    frame["cutoff"] = date(2024, 3, 31)
    return _typed(frame)


def test_fit_is_deterministic_calibrated_and_survives_a_round_trip(tmp_path: Path) -> None:
    config = ChurnConfig(num_boost_round=60)
    training, held_out = _labelled_frame(1500, seed=1), _labelled_frame(1500, seed=2)
    model = fit_churn_model(training, config)
    again = fit_churn_model(training, config)
    p = model.predict(held_out)
    np.testing.assert_array_equal(p, again.predict(held_out))
    assert 0.0 < p.min() and p.max() < 1.0
    assert expected_calibration_error(held_out["churned"], p) < 0.05
    assert auc(held_out["churned"], p) > 0.85
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model.to_dict()))
    loaded = ChurnModel.from_dict(json.loads(path.read_text()))
    np.testing.assert_array_equal(p, loaded.predict(held_out))
    probability, contributions = model.predict_with_contributions(held_out)
    # The contributions sum (with the bias) to the booster's log-odds: the same probability as predict.
    np.testing.assert_allclose(probability, p, rtol=1e-9)
    np.testing.assert_array_equal(contributions, loaded.predict_with_contributions(held_out)[1])
    # Recency drives the label, so it is the strongest feature for the most overdue customer.
    overdue = held_out["days_since_last_order"].to_numpy().argmax()
    assert FEATURES[contributions[overdue].argmax()] == "days_since_last_order"


def test_scores_stream_in_batches_with_the_reason_for_unscored_accounts(tiny: duckdb.DuckDBPyConnection) -> None:
    model = fit_churn_model(_labelled_frame(1500, seed=1), ChurnConfig(num_boost_round=20))
    config = ChurnConfig(score_batch_rows=3)
    batches = list(score_churn_batches(tiny, model, CUTOFF, config))
    # Open accounts at the cutoff: A, B, C (scored) and the prospect D; E's account is closed.
    assert [len(b) for b in batches] == [3, 1]
    scores = pd.concat(batches, ignore_index=True)
    pd.testing.assert_frame_equal(scores, score_churn(tiny, model, CUTOFF, ChurnConfig()))
    assert scores["customer_id"].tolist() == ["A", "B", "C", "D"]
    features = churn_features(tiny, CUTOFF, 90)
    np.testing.assert_allclose(scores["churn_probability"][:3], model.predict(features), rtol=1e-9)
    assert scores.loc[3, ["driver_1", "top_drivers"]].tolist() == ["prospect: no completed order yet"] * 2
    assert scores.loc[3, ["churn_probability", "risk_band", "driver_2"]].isna().all()
    expected = top_drivers(features, model.predict_with_contributions(features)[1])
    assert scores["top_drivers"][:3].tolist() == expected["top_drivers"].tolist()


def test_path_attribution_is_treeshap_on_single_split_trees_and_adds_up_on_deep_ones() -> None:
    frame = _labelled_frame(2000, seed=4)
    matrix, y = frame[list(FEATURES)], frame["churned"].astype(int).to_numpy()
    for leaves_per_tree in (2, 15):
        params = {**booster_params(ChurnConfig()), "num_leaves": leaves_per_tree}
        booster = lgb.train(params, lgb.Dataset(matrix, label=y), num_boost_round=40)
        attribution = PathAttribution.of(booster)
        log_odds, contributions = attribution.explain(booster.predict(matrix, pred_leaf=True))
        np.testing.assert_allclose(log_odds, booster.predict(matrix, raw_score=True), rtol=0, atol=1e-12)
        np.testing.assert_allclose(contributions.sum(axis=1) + attribution.bias, log_odds, rtol=0, atol=1e-12)
        if leaves_per_tree == 2:
            # One split per tree: the move from the root's expectation to the leaf is the Shapley value.
            shap = booster.predict(matrix, pred_contrib=True)
            np.testing.assert_allclose(contributions, shap[:, :-1], rtol=0, atol=1e-12)


def test_single_class_label_is_refused() -> None:
    with pytest.raises(ValueError, match="the label has a single class \\(every one of 300 customers churned\\)"):
        fit_churn_model(_labelled_frame(300, seed=3, churn_rate=1.0))
    with pytest.raises(ValueError, match="has no column \\['churned'\\]"):
        fit_churn_model(_labelled_frame(300, seed=3).drop(columns="churned"))


def test_time_split_keeps_label_windows_apart() -> None:
    days = [date(2024, m, 1) - timedelta(days=1) for m in range(2, 13)] + [date(2024, 12, 31)]
    split = time_split(days, date(2024, 12, 31), ChurnConfig(horizon_days=90, training_cutoffs=3))
    assert split.validation == date(2024, 9, 30)
    assert split.training == (date(2024, 4, 30), date(2024, 5, 31), date(2024, 6, 30))
    assert all(c + timedelta(days=90) <= split.validation for c in split.training)
    with pytest.raises(ValueError, match="too short for a time split"):
        time_split(days[:4], date(2024, 4, 30), ChurnConfig())


def test_no_purchase_probability_is_calibrated_on_bgnbd_customers() -> None:
    """Customers simulated from BG/NBD itself: the forecast with the true parameters matches the outcomes."""
    r, alpha, a, b = 0.6, 4.0, 0.8, 2.5
    n, observed, horizon, max_purchases = 20_000, 52.0, 13.0, 300
    rng = np.random.default_rng(11)
    rate = rng.gamma(r, 1.0 / alpha, n)
    dropout = rng.beta(a, b, n)
    times = np.cumsum(rng.exponential(1.0, (n, max_purchases)) / rate[:, None], axis=1)
    # The customer drops out right after its j-th repeat purchase, j ~ Geometric(p) on 1, 2, ...
    last = rng.geometric(dropout)
    made = np.arange(1, max_purchases + 1)[None, :] <= last[:, None]
    assert ((times[:, -1] > observed + horizon) | (last < max_purchases)).all()
    before = made & (times <= observed)
    x = before.sum(axis=1).astype(float)
    tx = np.where(x > 0, np.max(np.where(before, times, 0.0), axis=1), 0.0)
    bought = (made & (times > observed) & (times <= observed + horizon)).any(axis=1)
    model = BetaGeoModel(
        r=r, alpha=alpha, a=a, b=b, covariance=np.eye(4), log_likelihood=0.0, n_customers=n, n_distinct=n
    )
    p = no_purchase_probability(model, x, tx, np.full(n, observed), horizon)
    assert expected_calibration_error(~bought, p) < 0.01
    assert p.mean() == pytest.approx((~bought).mean(), abs=0.005)


# ---------------------------------------------------------------------------
# A simulated company, against the simulator's truth.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> SimulatedWarehouse:
    return simulated_warehouse(tmp_path_factory)


@pytest.fixture(scope="module")
def warehouse(company: SimulatedWarehouse) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(company.warehouse_path), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def fitted(warehouse: duckdb.DuckDBPyConnection):
    return train_churn_model(warehouse, warehouse_as_of(warehouse), ChurnConfig())


def true_churn(truth_dir: Path, cutoff: date, horizon_days: int) -> pd.Series:
    """True churn in ``(cutoff, cutoff + horizon]``: the customer's latent dropout or its account
    closure happens by the end of the window (a dropout before the cutoff that the data have not
    shown yet counts too: the customer is gone)."""
    truth = pd.read_parquet(truth_dir / "customers.parquet").set_index("customer_id")
    window_end = pd.Timestamp(cutoff) + pd.Timedelta(days=horizon_days + 1)
    return (truth["dropout_at"] < window_end) | (truth["closed_at"] < window_end)


@pytest.mark.slow
def test_time_split_beats_bgnbd_against_the_truth(company: SimulatedWarehouse, fitted) -> None:
    validation = fitted.validation
    cases = validation.cases.set_index("customer_id")
    truth = true_churn(company.truth_dir, validation.split.validation, fitted.model.horizon_days).reindex(cases.index)
    model_auc = auc(truth, cases["churn_probability"])
    baseline_auc = auc(truth, cases["baseline_probability"])
    figures = validation.model
    print(
        f"\nchurn, {company.config.customers} customers seed {company.config.seed}, "
        f"train {[c.isoformat() for c in validation.split.training]} -> validate {validation.split.validation} "
        f"({figures.rows} customers, {figures.positive_rate:.1%} churn)\n"
        f"  vs observed label: AUC {figures.auc:.3f} (BG/NBD {validation.baseline.auc:.3f}), "
        f"Brier {figures.brier:.4f} (BG/NBD {validation.baseline.brier:.4f}), ECE {figures.calibration_error:.4f}, "
        f"top-decile lift {figures.lift:.2f}\n"
        f"  vs true churn:     AUC {model_auc:.3f} (BG/NBD {baseline_auc:.3f}); "
        f"label = truth for {(truth == cases['churned']).mean():.1%}"
    )
    assert model_auc >= 0.80 and model_auc > baseline_auc
    assert figures.auc > validation.baseline.auc
    assert figures.calibration_error <= 0.05
    assert figures.brier < validation.baseline.brier
    assert figures.lift > 2.5


@pytest.mark.slow
def test_training_never_sees_the_validation_window(fitted) -> None:
    split = fitted.validation.split
    horizon = timedelta(days=fitted.model.horizon_days)
    assert all(c + horizon <= split.validation for c in split.training)
    # The saved model is the same recipe one step later, with the newest observed labels.
    assert fitted.model.training_cutoffs[-1] + horizon <= fitted.as_of < fitted.model.training_cutoffs[-1] + 2 * horizon


@pytest.mark.slow
def test_validation_reads_a_bounded_sample_with_the_cohorts_churn_rate(warehouse: duckdb.DuckDBPyConnection, fitted):
    """The whole cohort of the validation cutoff when it fits in ``validation_sample_rows``; a sample of
    exactly that many customers, stratified by label, when it does not (no process holds every customer)."""
    whole = fitted.validation
    cohort = churn_features(warehouse, whole.split.validation, fitted.model.horizon_days)
    assert whole.model.rows == len(cohort) and len(cohort) > 400
    assert sorted(whole.cases["customer_id"]) == sorted(cohort["customer_id"])
    # 30 boosting rounds: the sample does not depend on the booster, and the fit takes a tenth of the time.
    config = ChurnConfig(validation_sample_rows=300, num_boost_round=30)
    sampled = train_churn_model(warehouse, warehouse_as_of(warehouse), config)
    assert sampled.validation.split == whole.split
    assert sampled.validation.model.rows == 300 == len(sampled.validation.cases)
    assert set(sampled.validation.cases["customer_id"]) < set(cohort["customer_id"])
    churned = int(cohort["churned"].sum())
    assert abs(int(sampled.validation.cases["churned"].sum()) - 300 * churned / len(cohort)) <= 1
    # The saved model is fitted on the training sample alone, which the validation sample leaves as it is.
    assert sampled.model.training_rows == fitted.model.training_rows
    assert sampled.model.training_cutoffs == fitted.model.training_cutoffs


@pytest.mark.slow
def test_scores_every_open_account(warehouse: duckdb.DuckDBPyConnection, fitted) -> None:
    as_of = warehouse_as_of(warehouse)
    assert as_of in evaluation_dates(warehouse)
    scores = score_churn(warehouse, fitted.model, as_of)
    open_accounts = warehouse.execute(
        "select customer_id from intermediate.int_customer_months__staged where evaluated_on = ? and not is_closed",
        [as_of],
    ).df()
    assert sorted(scores["customer_id"]) == sorted(open_accounts["customer_id"])
    scored = scores.dropna(subset=["churn_probability"])
    assert scored["churn_probability"].between(0, 1, inclusive="neither").all()
    assert scored[["driver_1", "driver_2", "driver_3"]].notna().all().all()
    assert set(scored["risk_band"]) == {"low", "medium", "high"}
    unscored = scores[scores["churn_probability"].isna()]
    assert unscored["risk_band"].isna().all()
    reasons = r"^(prospect: no completed order yet|already churned: no order for \d+ days)$"
    assert unscored["driver_1"].str.match(reasons).all()
