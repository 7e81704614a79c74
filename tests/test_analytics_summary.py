"""Customer summary from transactions: hand-made cases, pandas == DuckDB SQL, input errors."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from crm_warehouse.analytics.clv import calibration_and_holdout, summarize_transactions, summarize_transactions_sql

CDNOW_SAMPLE = Path(__file__).parent / "data" / "cdnow" / "CDNOW_sample.txt"


@pytest.fixture
def orders() -> pd.DataFrame:
    """A: two orders on day 1 (one purchase), then days 8 and 15, then one after as_of;
    B: one order; C: first order after as_of (not a customer yet)."""
    return pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "A", "B", "C"],
            "date": [
                "2024-01-01",
                "2024-01-01",
                "2024-01-08",
                "2024-01-15",
                "2024-02-01",
                "2024-01-22",
                "2024-02-02",
            ],
            "amount": [10.0, 5.0, 20.0, 30.0, 99.0, 7.0, 3.0],
        }
    )


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def _expected_hand_summary(unit: float) -> pd.DataFrame:
    expected = pd.DataFrame(
        {
            "frequency": np.array([2, 0], dtype="int64"),
            "recency": [14 / unit, 0.0],
            "T": [28 / unit, 7 / unit],
            "monetary_value": [25.0, 0.0],
        },
        index=pd.Index(["A", "B"], name="customer_id"),
    )
    return expected


@pytest.mark.parametrize(("time_unit", "unit"), [("days", 1.0), ("weeks", 7.0)])
def test_hand_case_pandas_and_sql(orders, con, time_unit, unit):
    con.register("orders", orders)
    by_pandas = summarize_transactions(orders, as_of="2024-01-29", time_unit=time_unit)
    by_sql = summarize_transactions_sql(con, "orders", as_of="2024-01-29", time_unit=time_unit)
    expected = _expected_hand_summary(unit)
    pd.testing.assert_frame_equal(by_pandas, expected, check_index_type=False)
    pd.testing.assert_frame_equal(by_sql, expected, check_index_type=False)


@pytest.mark.parametrize(
    "day", ["cast(date as date)", "cast(date as timestamp) + interval 23 hour", "cast(date as varchar)"]
)
def test_sql_summary_reads_typed_and_text_dates_alike(orders, con, day):
    # DATE and TIMESTAMP columns are read as they are (a time of day ignored), text is parsed: the same days.
    con.register("orders_frame", orders)
    con.execute(f"create table typed_orders as select customer_id, {day} as date, amount from orders_frame")
    by_sql = summarize_transactions_sql(con, "typed_orders", as_of="2024-01-29", time_unit="days")
    pd.testing.assert_frame_equal(by_sql, _expected_hand_summary(1.0), check_index_type=False)


def test_sql_equals_pandas_on_cdnow_sample(con):
    columns = ["master_id", "customer_id", "date", "cds", "amount"]
    raw = pd.read_csv(CDNOW_SAMPLE, sep=r"\s+", header=None, names=columns)
    con.register("cdnow", raw)
    kwargs = {"as_of": "1997-09-30", "time_unit": "weeks", "date_format": "%Y%m%d"}
    by_pandas = summarize_transactions(raw, **kwargs)
    by_sql = summarize_transactions_sql(con, "cdnow", **kwargs)
    assert len(by_pandas) == 2357
    pd.testing.assert_frame_equal(by_sql, by_pandas, rtol=1e-12, check_index_type=False)


def test_sql_equals_pandas_on_timestamps_and_custom_columns(con):
    """Times of day are ignored, the result keeps the id column's name, a qualified table name works."""
    rng = np.random.default_rng(7)
    n = 5000
    stamps = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 400 * 24 * 60, n), unit="min")
    frame = pd.DataFrame(
        {
            "client": rng.choice([f"c{i:03d}" for i in range(300)], n),
            "ordered_at": stamps,
            "value": rng.gamma(2.0, 15.0, n).round(2),
        }
    )
    con.execute("create schema shop")
    con.execute("create table shop.orders as select * from frame")
    kwargs = {
        "as_of": "2023-12-31",
        "time_unit": "days",
        "customer_col": "client",
        "date_col": "ordered_at",
        "amount_col": "value",
    }
    by_pandas = summarize_transactions(frame, **kwargs)
    by_sql = summarize_transactions_sql(con, "shop.orders", **kwargs)
    assert by_sql.index.name == "client"
    assert (by_pandas["frequency"] > 0).sum() > 100
    pd.testing.assert_frame_equal(by_sql, by_pandas, rtol=1e-12, check_index_type=False)


def test_calibration_and_holdout_counts_purchase_days(orders):
    extra = pd.DataFrame({"customer_id": ["A", "B"], "date": ["2024-02-01", "2024-02-05"], "amount": [1.0, 2.0]})
    both = pd.concat([orders, extra], ignore_index=True)
    result = calibration_and_holdout(
        both, calibration_end="2024-01-29", observation_end="2024-02-12", time_unit="weeks"
    )
    assert list(result.index) == ["A", "B"]
    # A bought twice on 2024-02-01 (one purchase day); B once; C is not in the calibration.
    assert result["frequency_holdout"].tolist() == [1, 1]
    assert result["duration_holdout"].tolist() == [2.0, 2.0]
    assert result["frequency"].tolist() == [2, 0]


def test_holdout_must_end_after_calibration(orders):
    with pytest.raises(ValueError, match="must be after calibration_end"):
        calibration_and_holdout(orders, calibration_end="2024-01-29", observation_end="2024-01-29", time_unit="weeks")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="amount"), r"no column \['amount'\]"),
        (lambda f: f.assign(customer_id=[None, "A", "A", "A", "A", "B", "C"]), "'customer_id' has 1 missing"),
        (lambda f: f.assign(date=["2024-01-01"] * 6 + ["2024-02-30"]), "'date' has 1 values that are not dates"),
        (lambda f: f.assign(date=[20240101] * 7), "'date' is numeric"),
        (lambda f: f.assign(amount=[1.0, -2.0, 1, 1, 1, 1, 1]), "'amount' has 1 negative amounts"),
        (lambda f: f.assign(amount=["1", "x", "1", "1", "1", "1", "1"]), "'amount' has 1 missing or non-numeric"),
        (lambda f: f.iloc[:0], "transactions is empty"),
        (lambda f: f.assign(date="2025-01-01"), "no transactions on or before as_of=2024-01-29"),
    ],
)
def test_pandas_input_errors(orders, change, message):
    with pytest.raises(ValueError, match=message):
        summarize_transactions(change(orders), as_of="2024-01-29", time_unit="weeks")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="amount"), r"has no column \['amount'\]"),
        (lambda f: f.assign(customer_id=[None, "A", "A", "A", "A", "B", "C"]), "'customer_id' has 1 missing"),
        (
            lambda f: f.assign(date=["2024-01-01"] * 6 + ["2024-02-30"]),
            "'date' has 1 values that are not dates, e.g. '2024-02-30'",
        ),
        (lambda f: f.assign(date=[20240101] * 7), "'date' has 7 values that are not dates"),
        (lambda f: f.assign(amount=[1.0, -2.0, 1, 1, 1, 1, 1]), "'amount' has 1 negative amounts"),
        (lambda f: f.assign(amount=["1", "x", "1", "1", "1", "1", "1"]), "'amount' has 1 missing or non-numeric"),
        (lambda f: f.iloc[:0], "transactions is empty"),
        (lambda f: f.assign(date="2025-01-01"), "no transactions on or before as_of=2024-01-29"),
    ],
)
def test_sql_input_errors(orders, con, change, message):
    con.register("orders", change(orders))
    with pytest.raises(ValueError, match=message):
        summarize_transactions_sql(con, "orders", as_of="2024-01-29", time_unit="weeks")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"relation": "orders; drop table orders"}, "is not a table or view name"),
        ({"time_unit": "months"}, "time_unit='months' is not one of"),
        ({"as_of": "not a date"}, "as_of='not a date' is not a date"),
    ],
)
def test_sql_argument_errors(orders, con, kwargs, message):
    con.register("orders", orders)
    arguments = {"relation": "orders", "as_of": "2024-01-29", "time_unit": "weeks", **kwargs}
    with pytest.raises(ValueError, match=message):
        summarize_transactions_sql(con, arguments.pop("relation"), **arguments)


def test_sql_source_check_can_be_skipped(orders, con):
    """The check reads every row, whatever ``as_of``: a fit summarising the same orders twice checks them once."""
    con.register("orders", orders.assign(amount=[10.0, 5.0, 20.0, 30.0, 99.0, 7.0, -3.0]))  # C's order, after as_of
    with pytest.raises(ValueError, match="'amount' has 1 negative amounts"):
        summarize_transactions_sql(con, "orders", as_of="2024-01-29", time_unit="days")
    unchecked = summarize_transactions_sql(con, "orders", as_of="2024-01-29", time_unit="days", check_source=False)
    pd.testing.assert_frame_equal(unchecked, _expected_hand_summary(1.0))
