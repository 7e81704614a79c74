"""Ground truth written next to (never inside) the landing folder; ingestion never reads it.

``customers.parquet``, one row per customer (planned values may lie after the window):
customer_id, customer_type, signup_at, is_buyer (false: stays a prospect),
purchase_rate_per_year (latent rate at the plateau), exploration_rate_per_year,
order_regularity (gamma shape of the gaps), typical_order_value, service_experience,
satisfaction, price_sensitivity (latent, 0-1), first_order_date, exploration_end_date
(first order + 90 days, for relationships that get past exploration), stability_start_date
(first order + 365 days, patterns III/IV), decline_start_date, dropout_at (no orders after it),
pattern (I-IV: the stage the relationship ends in), closes_account, planned_close_at,
close_reason (planned), account_closed and closed_at (closure inside the window),
last_completed_order_date, churn_date (closure, or a year after the last completed order for
a silent lapser).

``stages_monthly.parquet``: customer_id, month_end (DATE), true_stage (prospect, exploration,
formation, stability, decline, churned) at every month end from the signup month to the
window's last month.

``dirty_records.parquet``: source_table, file (relative to the landing root), line (CSV:
physical line with the header as line 1; JSONL: physical line; Parquet: row number), kind,
column_name (the corrupted column, where there is one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crm_simulator.config import Behaviour, Window
from crm_simulator.ids import customer_ids
from crm_simulator.lifecycle import NEVER_DAY, PATTERNS, STAGES, Plan, stage_at
from crm_simulator.text import codes_text
from crm_warehouse.contracts import CLOSE_REASONS, CUSTOMER_TYPES

DIRTY_KINDS: tuple[str, ...] = (
    "wrong_type",
    "missing_key",
    "duplicate",
    "negative_quantity",
    "future_date",
    "orphan_customer",
    "broken_quoting",
    "malformed_json",
    "out_of_range",
)
DIRTY_SCHEMA = pa.schema(
    [
        pa.field("source_table", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("column_name", pa.string()),
    ]
)


def month_end_days(window: Window) -> np.ndarray:
    """Day numbers of the month ends of every month the window touches (the last may lie past it)."""
    first = np.datetime64(window.start_date, "M")
    last = np.datetime64(window.start_date, "D") + np.timedelta64(window.days - 1, "D")
    months = np.arange(first, last.astype("datetime64[M]") + 1)
    month_end = (months + 1).astype("datetime64[D]") - np.timedelta64(1, "D")
    return (month_end - np.datetime64(window.start_date, "D")).astype(np.int64)


def monthly_stages(
    plan: Plan, churned_from: np.ndarray, window: Window, behaviour: Behaviour
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer index, month-end day, stage code) for every customer-month from the signup month on.

    The stage is the one at the end of the month-end day, or of the window's last day for a
    month that ends after the window.
    """
    ends = month_end_days(window)
    signup_day = np.floor(plan.signup).astype(np.int64)
    first_month = np.searchsorted(ends, signup_day)
    months = len(ends) - first_month
    customer = np.repeat(np.arange(plan.size), months)
    offset = np.arange(len(customer)) - np.repeat(np.cumsum(months) - months, months)
    day = ends[np.repeat(first_month, months) + offset]
    # A month that ends after the window is judged on the window's last day, like the data.
    as_of = np.minimum(day, window.days - 1)
    return customer, day, stage_at(plan, customer, as_of, churned_from, behaviour)


def _timestamp(window: Window, t: np.ndarray) -> pa.Array:
    finite = np.isfinite(t)
    seconds = window.epoch_seconds(np.where(finite, t, 0.0))
    return pa.array(seconds, pa.timestamp("s"), mask=~finite)


def _codes_or_null(codes: tuple[str, ...], index: np.ndarray) -> pa.Array:
    """Code names by index; a negative index is null."""
    missing = index < 0
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), codes_text(codes, np.maximum(index, 0)))


def _date(window: Window, day: np.ndarray) -> pa.Array:
    never = day >= NEVER_DAY
    return pa.array(np.where(never, 0, day + window.epoch_days()).astype(np.int32), pa.date32(), mask=never)


def write_truth_customers(
    path: Path,
    plan: Plan,
    window: Window,
    behaviour: Behaviour,
    churned_from: np.ndarray,
    last_completed_day: np.ndarray,
) -> None:
    """Write ``customers.parquet``: the latent plan, one row per customer."""
    first_day = plan.first_order_day
    pattern = plan.pattern
    exploration_end = np.where(pattern >= 1, first_day + behaviour.exploration_days, NEVER_DAY)
    stability_start = np.where(pattern >= 2, first_day + behaviour.formation_days, NEVER_DAY)
    closed_in_window = plan.close_day < window.days
    not_buyer = ~plan.buyer
    table = pa.table(
        {
            "customer_id": customer_ids(np.arange(plan.size)),
            "customer_type": codes_text(CUSTOMER_TYPES, plan.customer_type),
            "signup_at": _timestamp(window, plan.signup),
            "is_buyer": pa.array(plan.buyer),
            "purchase_rate_per_year": pa.array(plan.plateau_rate * 365.0, mask=not_buyer),
            "exploration_rate_per_year": pa.array(plan.exploration_rate * 365.0, mask=not_buyer),
            "order_regularity": pa.array(plan.regularity, mask=not_buyer),
            "typical_order_value": pa.array(np.round(plan.order_value, 2), mask=not_buyer),
            "service_experience": pa.array(plan.service),
            "satisfaction": pa.array(plan.satisfaction),
            "price_sensitivity": pa.array(plan.price_sensitivity),
            "first_order_date": _date(window, first_day),
            "exploration_end_date": _date(window, exploration_end),
            "stability_start_date": _date(window, stability_start),
            "decline_start_date": _date(window, plan.decline_day),
            "dropout_at": _timestamp(window, plan.dropout),
            "pattern": _codes_or_null(PATTERNS, pattern),
            "closes_account": pa.array(plan.closes),
            "planned_close_at": _timestamp(window, plan.close_at),
            "close_reason": _codes_or_null(CLOSE_REASONS, plan.close_reason),
            "account_closed": pa.array(closed_in_window),
            "closed_at": _timestamp(window, np.where(closed_in_window, plan.close_at, np.inf)),
            "last_completed_order_date": _date(
                window, np.where(last_completed_day >= 0, last_completed_day, NEVER_DAY)
            ),
            "churn_date": _date(window, churned_from),
        }
    )
    pq.write_table(table, path)


def write_truth_stages(path: Path, plan: Plan, window: Window, behaviour: Behaviour, churned_from: np.ndarray) -> int:
    """Write ``stages_monthly.parquet``; returns its row count."""
    customer, day, stage = monthly_stages(plan, churned_from, window, behaviour)
    table = pa.table(
        {
            "customer_id": customer_ids(customer),
            "month_end": pa.array((day + window.epoch_days()).astype(np.int32), pa.date32()),
            "true_stage": codes_text(STAGES, stage),
        }
    )
    pq.write_table(table, path)
    return len(customer)


def write_dirty_manifest(path: Path, parts: list[pa.Table]) -> int:
    """Write ``dirty_records.parquet`` (possibly empty); returns its row count."""
    table = pa.concat_tables(parts).cast(DIRTY_SCHEMA) if parts else DIRTY_SCHEMA.empty_table()
    pq.write_table(table, path)
    return table.num_rows
