"""CLV on a hand-made warehouse: spend scaled by customer type, prospects and closed accounts, saved models."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from crm_warehouse.analytics.clv import ClvConfig, fit_and_score
from crm_warehouse.analytics.clv.warehouse import (
    CLV_SCORE_COLUMNS,
    clv_inputs_query,
    clv_models,
    clv_payload,
    clv_rows,
    fit_clv,
    order_summary,
    score_clv,
    score_clv_batches,
    spend_scales,
)
from crm_warehouse.analytics.model_store import latest_model_path, load_model, new_model_id, save_model

START = date(2024, 1, 1)
KEY_ACCOUNT_FACTOR = 1000.0


def _consumer_orders(n: int, seed: int, last_day: int = 400, max_orders: int = 60) -> pd.DataFrame:
    """Orders of ``n`` consumers drawn as BG/NBD describes: a first order in the first 300 days,
    exponential gaps at a gamma-distributed rate, dropout after a geometric number of repeat orders."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(2.0, 1.0 / 60.0, n)
    first = rng.integers(0, 300, n)
    days = first[:, None] + np.concatenate(
        [np.zeros((n, 1)), np.cumsum(rng.exponential(1.0, (n, max_orders - 1)) / rate[:, None], axis=1)], axis=1
    )
    repeats = rng.geometric(rng.beta(1.0, 4.0, n))
    kept = (np.arange(max_orders)[None, :] <= repeats[:, None]) & (days <= last_day)
    customer, order = np.nonzero(kept)
    return pd.DataFrame(
        {
            "customer_id": "A" + pd.Series(customer).astype(str).str.zfill(4),
            "order_date": (pd.Timestamp(START) + pd.to_timedelta(np.floor(days[customer, order]), unit="D")).date,
            "order_revenue": np.round(rng.gamma(2.0, 50.0, customer.size), 2),
            "order_status": "completed",
        }
    )


@pytest.fixture()
def warehouse() -> duckdb.DuckDBPyConnection:
    """Consumers A*, their key-account twins K* (same days, 1000x the spend), a prospect, a closed account."""
    consumers = _consumer_orders(200, seed=3)
    twins = consumers.assign(
        customer_id=consumers["customer_id"].str.replace("A", "K"),
        order_revenue=consumers["order_revenue"] * KEY_ACCOUNT_FACTOR,
    )
    cancelled = consumers.head(1).assign(order_status="cancelled", order_revenue=1e6)
    orders = pd.concat([consumers, twins, cancelled], ignore_index=True)
    ids = sorted(set(orders["customer_id"]))
    customers = pd.DataFrame(
        {
            "customer_id": [*ids, "P0001"],
            "customer_type": ["consumer" if i.startswith("A") else "key_account" for i in ids] + ["consumer"],
            "closed_date": [date(2024, 6, 1) if i == "A0007" else None for i in ids] + [None],
        }
    )
    con = duckdb.connect()
    con.execute("create schema marts; create schema staging")
    for name, frame in (("marts.fct_orders", orders), ("staging.stg_crm__customers", customers)):
        con.register("frame", frame)
        con.execute(f"create table {name} as select * from frame")
        con.unregister("frame")
    con.execute("alter table marts.fct_orders alter order_date type date")
    con.execute("alter table staging.stg_crm__customers alter closed_date type date")
    yield con
    con.close()


def test_spend_scales_are_type_medians() -> None:
    summary = pd.DataFrame(
        {"frequency": [1, 2, 0, 3, 1], "monetary_value": [10.0, 30.0, 0.0, 5000.0, 0.0]},
        index=["a", "b", "c", "d", "e"],
    )
    types = pd.Series(["consumer", "consumer", "consumer", "key_account", "distributor"], index=list("abcde"))
    # e's only repeat purchase was free: it does not count; distributors get the overall median.
    assert spend_scales(summary, types) == {"consumer": 20.0, "key_account": 5000.0, "*": 30.0}
    with pytest.raises(ValueError, match="no customer has a repeat purchase"):
        spend_scales(summary.assign(frequency=0), types)


def test_type_scaled_clv(warehouse: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    # This hand-made warehouse has no raw layer for resolve_as_of: the latest order is the as-of date.
    as_of = warehouse.execute("select max(order_date) from marts.fct_orders").fetchone()[0]
    config = ClvConfig()
    fit = fit_clv(warehouse, as_of, config)
    assert fit.spend_scale["key_account"] == pytest.approx(KEY_ACCOUNT_FACTOR * fit.spend_scale["consumer"])
    # The purchase model was chosen on the last 133 days (a third of the 399 days of history) held back.
    assert fit.selection.validation_days == 133 and fit.selection.cut == as_of - timedelta(days=133)
    assert fit.transaction_model.name == fit.selection.chosen
    # Saved and loaded, the model scores the same.
    model_id = new_model_id("clv", datetime(2025, 1, 1, tzinfo=UTC))
    loaded, loaded_config = clv_models(load_model(save_model(tmp_path, model_id, clv_payload(fit, config, as_of))))
    assert loaded_config == config and loaded.spend_scale == fit.spend_scale
    scores = score_clv(warehouse, loaded, loaded_config, as_of).set_index("customer_id")
    assert list(scores.columns) == list(CLV_SCORE_COLUMNS[1:])
    # Twins: same purchase days, 1000x the spend -> the same model on the scaled spend, 1000x the value.
    consumers = [i for i in scores.index if i.startswith("A") and i != "A0007"]
    twins = [i.replace("A", "K") for i in consumers]
    purchase_columns = ("p_alive", "expected_purchases", "expected_purchases_low", "expected_purchases_high")
    for column in (*purchase_columns, "churn_probability", "frequency", "t"):
        np.testing.assert_allclose(scores.loc[twins, column], scores.loc[consumers, column])
    for column in ("monetary_value", "expected_avg_spend", "clv", "clv_low", "clv_high"):
        np.testing.assert_allclose(scores.loc[twins, column], KEY_ACCOUNT_FACTOR * scores.loc[consumers, column])
    buyers = scores[scores["frequency"].notna() & (scores.index != "P0001")]
    assert (buyers["clv_low"] <= buyers["clv"]).all() and (buyers["clv"] <= buyers["clv_high"]).all()
    assert (scores["purchase_model"] == fit.transaction_model.name).all()
    # The consumers alone, fitted without scaling, have the same CLV: the spend model is scale-free.
    summary = order_summary(warehouse, as_of, config)
    same_model = ClvConfig(model=fit.transaction_model.name)
    plain = fit_and_score(summary.loc[summary.index.str.startswith("A")], same_model).scores
    np.testing.assert_allclose(scores.loc[consumers, "clv"], plain.loc[consumers, "clv"], rtol=1e-4)
    # The prospect and the account closed on 2024-06-01.
    assert scores.loc["P0001", ["frequency", "clv", "expected_purchases"]].tolist() == [0.0, 0.0, 0.0]
    assert np.isnan(scores.loc["P0001", "p_alive"]) and np.isnan(scores.loc["P0001", "churn_probability"])
    assert scores.loc["A0007", ["p_alive", "clv", "clv_high", "churn_probability"]].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert scores.drop(index=["P0001", "A0007"])["churn_probability"].between(0, 1).all()
    assert scores.loc["A0007", "frequency"] == scores.loc["K0007", "frequency"] > 0


def test_a_batch_of_customers_gets_what_it_gets_among_all(warehouse: duckdb.DuckDBPyConnection) -> None:
    """What Spark's partitions rely on (crm_warehouse/analytics/clv/spark_scoring.py): scored in
    batches of any size and order (a prospect or a closed account alone, a batch without buyers),
    every customer gets the figures of the scoring of all customers at once."""
    as_of = warehouse.execute("select max(order_date) from marts.fct_orders").fetchone()[0]
    config = ClvConfig()
    fit = fit_clv(warehouse, as_of, config)
    query, params = clv_inputs_query(warehouse, as_of, config)
    inputs = warehouse.execute(f"{query} order by c.customer_id", params).df()
    assert len(inputs) == 401 and inputs["frequency"].isna().sum() == 1  # P0001, the prospect
    whole = clv_rows(inputs, fit, config)
    # score_clv runs the same query again: DuckDB's parallel means may differ in their last bits.
    pd.testing.assert_frame_equal(score_clv(warehouse, fit, config, as_of), whole, check_exact=False, rtol=1e-12)
    shuffled = inputs.sample(frac=1.0, random_state=5)
    batches = [shuffled.iloc[i : i + size] for i, size in ((0, 1), (1, 7), (8, 150), (158, 244))]
    batches.append(inputs[inputs["customer_id"].isin(["P0001", "A0007"])])  # no live buyer at all
    for batch in batches:
        scored = clv_rows(batch, fit, config)
        assert scored["customer_id"].tolist() == batch["customer_id"].tolist()
        expected = whole.set_index("customer_id").loc[batch["customer_id"]].reset_index()
        pd.testing.assert_frame_equal(scored, expected, check_exact=True)


def test_scores_stream_in_batches_in_customer_order(warehouse: duckdb.DuckDBPyConnection) -> None:
    """The asset writes what :func:`score_clv_batches` yields: batches of the configured size, in
    ``customer_id`` order, together every CRM customer once with the figures of one scoring."""
    as_of = warehouse.execute("select max(order_date) from marts.fct_orders").fetchone()[0]
    config = ClvConfig(score_batch_rows=150)
    fit = fit_clv(warehouse, as_of, config)
    batches = list(score_clv_batches(warehouse, fit, config, as_of))
    assert [len(b) for b in batches] == [150, 150, 101]
    streamed = pd.concat(batches, ignore_index=True)
    assert streamed["customer_id"].is_monotonic_increasing and streamed["customer_id"].is_unique
    pd.testing.assert_frame_equal(streamed, score_clv(warehouse, fit, ClvConfig(), as_of), rtol=1e-12)
    # Before the first order nobody has bought: every batch is read, then the scoring refuses.
    first_order = warehouse.execute("select min(order_date) from marts.fct_orders").fetchone()[0]
    with pytest.raises(ValueError, match="no completed order on or before"):
        list(score_clv_batches(warehouse, fit, config, first_order - timedelta(days=1)))
    with pytest.raises(ValueError, match="score_batch_rows=0 must be a whole number >= 1"):
        ClvConfig(score_batch_rows=0)


def test_model_store_keeps_the_newest(tmp_path: Path) -> None:
    assert latest_model_path(tmp_path / "missing", "churn") is None
    older = new_model_id("churn", datetime(2025, 1, 1, 3, 0, tzinfo=UTC))
    newer = new_model_id("churn", datetime(2025, 1, 8, 3, 0, tzinfo=UTC))
    assert newer == "churn-20250108T030000000000Z"
    for model_id in (newer, older, new_model_id("clv", datetime(2026, 1, 1, tzinfo=UTC))):
        save_model(tmp_path, model_id, {"value": model_id})
    assert latest_model_path(tmp_path, "churn") == tmp_path / f"{newer}.json"
    assert load_model(tmp_path / f"{newer}.json") == {"model_id": newer, "value": newer}
    assert not list(tmp_path.glob("*.partial"))
    with pytest.raises(ValueError, match="model_type='rfm' is not one of"):
        new_model_id("rfm", datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="has no timezone"):
        new_model_id("clv", datetime(2025, 1, 1))


def test_models_saved_before_the_model_choice_still_load(warehouse: duckdb.DuckDBPyConnection, tmp_path: Path):
    """Saved payloads had BG/NBD under "bgnbd" and the horizon as horizon_months."""
    as_of = warehouse.execute("select max(order_date) from marts.fct_orders").fetchone()[0]
    config = ClvConfig(model="bgnbd", horizon=6)
    payload = clv_payload(fit_clv(warehouse, as_of, config), config, as_of)
    legacy = {key: value for key, value in payload.items() if key not in ("purchase_model", "selection")}
    legacy["bgnbd"] = {k: v for k, v in payload["purchase_model"].items() if k != "name"}
    legacy["config"] = {"horizon_months": 6, "monthly_discount_rate": 0.01, "margin": 1.0, "time_unit": "weeks"}
    fit, loaded_config = clv_models(legacy)
    assert fit.transaction_model.name == "bgnbd" and fit.selection.chosen == "bgnbd"
    assert (loaded_config.horizon, loaded_config.horizon_unit) == (6, "months")
    new_fit, _ = clv_models(payload)
    assert new_fit.transaction_model.params == fit.transaction_model.params
