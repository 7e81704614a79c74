"""Per-customer (frequency, recency, T, monetary_value) summary from transactions.

Conventions are those of lifetimes' ``summary_data_from_transaction_data`` with
``freq="D"``: purchases are grouped by calendar day (several orders on one day
are one purchase, their amounts added), the first purchase day is not a repeat
purchase, and

* ``frequency``: number of repeat purchase days up to ``as_of``;
* ``recency``: time from the first to the last purchase day;
* ``T``: time from the first purchase day to ``as_of`` (the end of the calibration period);
* ``monetary_value``: mean amount of the repeat purchase days (0 without repeats).

Times are in days or weeks (days / 7, lifetimes' ``freq_multiplier=7``). The same
summary is computed by :func:`summarize_transactions` (pandas) and
:func:`summarize_transactions_sql` (DuckDB, for data already in the warehouse;
:func:`summary_query` gives its SQL for another engine).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd

from crm_warehouse.analytics.clv.config import TimeUnit, check_time_unit
from crm_warehouse.warehouse.sql import quote_identifier

SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")
_RELATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")


def _as_date(name: str, value: str | date | datetime | pd.Timestamp) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}={value!r} is not a date") from exc
    if pd.isna(stamp):
        raise ValueError(f"{name}={value!r} is not a date")
    return stamp.floor("D")


def _daily_purchases(
    transactions: pd.DataFrame, customer_col: str, date_col: str, amount_col: str, date_format: str | None
) -> pd.DataFrame:
    """Validated transactions added up per (customer, calendar day): columns customer, day, amount."""
    missing = [c for c in (customer_col, date_col, amount_col) if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions has no column {missing} (columns: {list(transactions.columns)})")
    if transactions.empty:
        raise ValueError("transactions is empty")
    customers = transactions[customer_col]
    if customers.isna().any():
        raise ValueError(f"column {customer_col!r} has {int(customers.isna().sum())} missing customer ids")
    raw_dates = transactions[date_col]
    if date_format is None and pd.api.types.is_numeric_dtype(raw_dates):
        raise ValueError(
            f"column {date_col!r} is numeric ({raw_dates.dtype}), not dates; pass date_format (e.g. '%Y%m%d')"
        )
    if date_format is None:
        days = pd.to_datetime(raw_dates, errors="coerce")
    else:
        days = pd.to_datetime(raw_dates.astype("string"), format=date_format, errors="coerce")
    if days.isna().any():
        example = raw_dates[days.isna()].iloc[0]
        raise ValueError(
            f"column {date_col!r} has {int(days.isna().sum())} values that are not dates, e.g. {example!r}"
        )
    amounts = pd.to_numeric(transactions[amount_col], errors="coerce")
    if amounts.isna().any():
        example = transactions[amount_col][amounts.isna()].iloc[0]
        raise ValueError(
            f"column {amount_col!r} has {int(amounts.isna().sum())} missing or non-numeric values, e.g. {example!r}"
        )
    if (amounts < 0).any():
        raise ValueError(
            f"column {amount_col!r} has {int((amounts < 0).sum())} negative amounts, "
            f"e.g. {amounts[amounts < 0].iloc[0]}: pass purchases only (net refunds out first)"
        )
    frame = pd.DataFrame(
        {
            "customer": customers.to_numpy(),
            "day": days.dt.floor("D").to_numpy(),
            "amount": amounts.to_numpy(dtype=float),
        }
    )
    return frame.groupby(["customer", "day"], as_index=False, sort=True)["amount"].sum()


def _summarize_daily(daily: pd.DataFrame, as_of: pd.Timestamp, unit_days: float, customer_col: str) -> pd.DataFrame:
    daily = daily[daily["day"] <= as_of]
    if daily.empty:
        raise ValueError(f"no transactions on or before as_of={as_of.date()}")
    per_customer = daily.groupby("customer", sort=True)
    first = per_customer["day"].transform("min")
    repeat_mean = daily[daily["day"] > first].groupby("customer")["amount"].mean()
    stats = per_customer["day"].agg(["min", "max", "count"])
    summary = pd.DataFrame(
        {
            "frequency": stats["count"].astype("int64") - 1,
            "recency": (stats["max"] - stats["min"]).dt.days / unit_days,
            "T": (as_of - stats["min"]).dt.days / unit_days,
            "monetary_value": repeat_mean.reindex(stats.index, fill_value=0.0),
        }
    )
    summary.index.name = customer_col
    return summary


def summarize_transactions(
    transactions: pd.DataFrame,
    *,
    as_of: str | date | datetime | pd.Timestamp,
    time_unit: TimeUnit,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    date_format: str | None = None,
) -> pd.DataFrame:
    """Per-customer summary of the transactions up to ``as_of`` (pandas).

    Parameters
    ----------
    transactions : pandas.DataFrame
        One row per order with columns ``customer_col`` (any id), ``date_col``
        (dates, timestamps or date strings; the time of day is ignored) and
        ``amount_col`` (non-negative numbers).
    as_of : date-like
        End of the calibration period, inclusive; later transactions are ignored.
    time_unit : {"days", "weeks"}
        Unit of recency and T.
    customer_col, date_col, amount_col : str
        Column names.
    date_format : str, optional
        ``strptime`` format of the dates (e.g. ``"%Y%m%d"``) when they are not ISO.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_col`` (sorted), columns ``frequency`` (int),
        ``recency``, ``T``, ``monetary_value``; one row per customer whose first
        purchase is on or before ``as_of``.

    Raises
    ------
    ValueError
        Naming the column for a missing column, missing ids, values that are not
        dates, missing/non-numeric/negative amounts; or when nothing is left.
    """
    unit_days = check_time_unit(time_unit)
    daily = _daily_purchases(transactions, customer_col, date_col, amount_col, date_format)
    return _summarize_daily(daily, _as_date("as_of", as_of), unit_days, customer_col)


def calibration_and_holdout(
    transactions: pd.DataFrame,
    *,
    calibration_end: str | date | datetime | pd.Timestamp,
    observation_end: str | date | datetime | pd.Timestamp,
    time_unit: TimeUnit,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    date_format: str | None = None,
) -> pd.DataFrame:
    """Calibration summary plus the purchases each customer made in the holdout period.

    Parameters are those of :func:`summarize_transactions`, with ``as_of``
    replaced by ``calibration_end`` (inclusive) and the holdout period running
    from the day after ``calibration_end`` to ``observation_end`` inclusive.

    Returns
    -------
    pandas.DataFrame
        The calibration summary (customers with a first purchase by
        ``calibration_end``) plus ``frequency_holdout`` (number of purchase days
        in the holdout period, as lifetimes counts them) and
        ``duration_holdout`` (length of the holdout period in ``time_unit``).
    """
    unit_days = check_time_unit(time_unit)
    cal_end = _as_date("calibration_end", calibration_end)
    obs_end = _as_date("observation_end", observation_end)
    if obs_end <= cal_end:
        raise ValueError(f"observation_end {obs_end.date()} must be after calibration_end {cal_end.date()}")
    daily = _daily_purchases(transactions, customer_col, date_col, amount_col, date_format)
    summary = _summarize_daily(daily, cal_end, unit_days, customer_col)
    in_holdout = (daily["day"] > cal_end) & (daily["day"] <= obs_end)
    holdout_days = daily[in_holdout].groupby("customer").size()
    summary["frequency_holdout"] = holdout_days.reindex(summary.index, fill_value=0).astype("int64")
    summary["duration_holdout"] = (obs_end - cal_end).days / unit_days
    return summary


def summarize_transactions_sql(con: duckdb.DuckDBPyConnection, relation: str, **options: Any) -> pd.DataFrame:
    """Per-customer summary computed in DuckDB; same result as :func:`summarize_transactions`.

    ``relation`` and the keyword ``options`` are those of :func:`summary_query`, whose SQL this
    runs. Returns the summary as :func:`summarize_transactions` does, indexed by ``customer_col``.

    Raises
    ------
    ValueError
        As :func:`summary_query`, and when no transaction is on or before ``as_of``.
    """
    query, params = summary_query(con, relation, **options)
    return summary_frame(con, query, params, options.get("customer_col", "customer_id"))


def summary_frame(
    con: duckdb.DuckDBPyConnection, query: str, params: dict[str, object], customer_col: str = "customer_id"
) -> pd.DataFrame:
    """Run the SQL of :func:`summary_query`, or a select over it that keeps its columns and adds
    others (e.g. each customer's type, joined in the warehouse), into a summary indexed by customer.

    Raises
    ------
    ValueError
        When the query finds no customer (no transaction on or before ``as_of``).
    """
    summary = con.execute(f"{query}\norder by customer_id", params).df()
    if summary.empty:
        raise ValueError(f"no transactions on or before as_of={params['as_of']}")
    summary["frequency"] = summary["frequency"].astype("int64")
    return summary.set_index("customer_id").rename_axis(customer_col)


#: Type names of a date or time column: DuckDB's, and PyHive's (Spark's Thrift server).
_DATE_TYPES = frozenset({"DATE", "TIMESTAMP", "DATE_TYPE", "TIMESTAMP_TYPE"})


def summary_query(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    *,
    as_of: str | date | datetime | pd.Timestamp,
    time_unit: TimeUnit,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    date_format: str | None = None,
    where: str | None = None,
    check_source: bool = True,
) -> tuple[str, dict[str, object]]:
    """The SQL of :func:`summarize_transactions_sql` (DuckDB's dialect) and its parameters, after the
    source's checks: one row per customer with a transaction by ``as_of``, columns ``customer_id``,
    ``frequency``, ``recency``, ``"T"``, ``monetary_value``, in no order. A select another query can
    join, or another engine run (:func:`crm_warehouse.warehouse.spark.spark_sql`).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection that can see ``relation`` (or a Spark connection of the project).
    relation : str
        Table or view name, optionally qualified (``schema.table`` or
        ``catalog.schema.table``), with one row per order and columns
        ``customer_col``, ``date_col`` (DATE, TIMESTAMP or date strings) and
        ``amount_col`` (non-negative numbers).
    as_of, time_unit, customer_col, date_col, amount_col, date_format
        As in :func:`summarize_transactions`; ``date_format`` is a DuckDB
        ``strptime`` format.
    where : str, optional
        SQL condition on ``relation``'s rows: only those rows are transactions
        (e.g. ``order_status = 'completed'``).
    check_source : bool, optional
        Check every row's values first (one pass over ``relation``, whatever ``as_of``):
        skip it only for a source checked already (a second summary of the same rows).

    Raises
    ------
    ValueError
        For a malformed relation name, a missing column, missing ids, values that
        are not dates, missing/non-numeric/negative amounts, or no rows.
    """
    unit_days = check_time_unit(time_unit)
    cutoff = _as_date("as_of", as_of).date()
    if not _RELATION_NAME.match(relation):
        raise ValueError(f"relation={relation!r} is not a table or view name")
    source = ".".join(quote_identifier(part) for part in relation.split("."))
    if where is not None:
        source = f"(select * from {source} where {where}) as transactions_source"
    column_types = {d[0]: str(d[1]).upper() for d in con.execute(f"select * from {source} limit 0").description}
    columns = list(column_types)
    missing = [c for c in (customer_col, date_col, amount_col) if c not in columns]
    if missing:
        raise ValueError(f"{relation} has no column {missing} (columns: {columns})")
    customer, day, amount = (quote_identifier(c) for c in (customer_col, date_col, amount_col))
    if date_format is None and column_types[date_col] in _DATE_TYPES:
        # Already a date or time: the text round trip below would give the same day, slower.
        day_expr = f"cast({day} as date)"
    elif date_format is None:
        day_expr = f"cast(try_cast(cast({day} as varchar) as timestamp) as date)"
    else:
        day_expr = f"cast(try_strptime(cast({day} as varchar), $date_format) as date)"
    params: dict[str, object] = {} if date_format is None else {"date_format": date_format}
    if check_source:
        _check_sql_source(con, source, customer, day, amount, day_expr, params, (customer_col, date_col, amount_col))
    query = f"""
        with

        transactions as (
            select
                {customer} as customer_id,
                {day_expr} as purchase_date,
                cast({amount} as double) as amount
            from {source}
        ),

        daily as (
            select customer_id, purchase_date, sum(amount) as amount
            from transactions
            where purchase_date <= $as_of
            group by customer_id, purchase_date
        ),

        flagged as (
            select
                *,
                purchase_date > min(purchase_date) over (partition by customer_id) as is_repeat
            from daily
        ),

        final as (
            select
                customer_id,
                count(*) - 1 as frequency,
                date_diff('day', min(purchase_date), max(purchase_date)) / $unit_days as recency,
                date_diff('day', min(purchase_date), $as_of) / $unit_days as "T",
                coalesce(avg(amount) filter (where is_repeat), 0.0) as monetary_value
            from flagged
            group by customer_id
        )

        select * from final"""
    return query, {**params, "as_of": cutoff, "unit_days": unit_days}


def _check_sql_source(
    con: duckdb.DuckDBPyConnection,
    source: str,
    customer: str,
    day: str,
    amount: str,
    day_expr: str,
    params: dict[str, object],
    names: tuple[str, str, str],
) -> None:
    """Raise ``ValueError`` naming the column if the source has no rows or bad values."""
    customer_col, date_col, amount_col = names
    row = con.execute(
        f"""
        select
            count(*),
            count(*) filter (where {customer} is null),
            count(*) filter (where {day_expr} is null),
            any_value(cast({day} as varchar)) filter (where {day_expr} is null),
            count(*) filter (where try_cast({amount} as double) is null),
            any_value(cast({amount} as varchar)) filter (where try_cast({amount} as double) is null),
            count(*) filter (where try_cast({amount} as double) < 0),
            min(try_cast({amount} as double))
        from {source}
        """,
        params,
    ).fetchone()
    n_rows, null_ids, bad_days, bad_day, bad_amounts, bad_amount, negative, lowest = row
    if n_rows == 0:
        raise ValueError("transactions is empty")
    if null_ids:
        raise ValueError(f"column {customer_col!r} has {null_ids} missing customer ids")
    if bad_days:
        raise ValueError(f"column {date_col!r} has {bad_days} values that are not dates, e.g. {bad_day!r}")
    if bad_amounts:
        raise ValueError(f"column {amount_col!r} has {bad_amounts} missing or non-numeric values, e.g. {bad_amount!r}")
    if negative:
        raise ValueError(
            f"column {amount_col!r} has {negative} negative amounts, e.g. {lowest}: "
            "pass purchases only (net refunds out first)"
        )
