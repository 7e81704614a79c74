"""The as-of date of the warehouse, resolved in one place.

The rule: the configured date (``CRM_AS_OF_DATE``) when there is one, otherwise the
date of the latest order loaded into ``raw.orders_orders``. The dbt macro
``as_of_date()`` (``dbt_project/macros/as_of.sql``) writes the same rule in SQL for
dbt runs started by hand, and the orchestration passes the date resolved here to
dbt as the ``as_of_date`` var, so Python and dbt never compute it apart;
``int_calendar__as_of`` records the date a build used. Ingestion freshness,
preflight, the CLV and churn steps all call :func:`resolve_as_of`.
"""

from __future__ import annotations

from datetime import date

import duckdb

from crm_warehouse.warehouse.relations import RAW_ORDERS


class AsOfError(ValueError):
    """No as-of date can be resolved (nothing loaded yet)."""


def _order_date(con: duckdb.DuckDBPyConnection, aggregate: str) -> date | None:
    if not RAW_ORDERS.exists(con):
        return None
    return con.execute(f"select cast({aggregate}(ordered_at) as date) from {RAW_ORDERS.sql()}").fetchone()[0]


def latest_order_date(con: duckdb.DuckDBPyConnection) -> date | None:
    """Date of the latest loaded order, or None when no order is loaded (or the table does not exist)."""
    return _order_date(con, "max")


def first_order_date(con: duckdb.DuckDBPyConnection) -> date | None:
    """Date of the first loaded order, or None when no order is loaded (or the table does not exist)."""
    return _order_date(con, "min")


def resolve_as_of(con: duckdb.DuckDBPyConnection, configured: date | None) -> date:
    """The warehouse's as-of date: ``configured``, else the latest loaded order's date."""
    if configured is not None:
        return configured
    latest = latest_order_date(con)
    if latest is None:
        raise AsOfError(f"no as-of date: {RAW_ORDERS} holds no orders. Load the orders first, or set CRM_AS_OF_DATE.")
    return latest
