"""Point-in-time churn features and labels, computed in DuckDB over the intermediate models.

A cutoff is a day on which the customer-month panel is evaluated: a month end, or
the as-of date in the as-of month. Features read only the panel rows evaluated on
the cutoff (running totals and windows that end there) and the activity rows of
months up to it, so nothing after the cutoff enters. The label reads the purchase
days and closures after it.

Models read (dbt schemas ``intermediate`` and ``staging``):

* ``int_customer_months__staged``: stage, recency, orders, revenue windows, tenure;
* ``int_customer_months__panel``: purchase days and margin to date;
* ``int_customer_months__activity``: complaints, surveys, marketing, categories;
* ``int_order_days__sequenced``: purchase days after the cutoff (label);
* ``int_calendar__as_of``: the last day the warehouse has seen (label completeness);
* ``stg_crm__customers``: customer type, estimated wallet and closure date (label).
  The wallet is the latest CRM version as of the warehouse's as-of date: staging
  keeps no wallet history.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

from crm_warehouse.contracts import CUSTOMER_TYPES
from crm_warehouse.warehouse.dbt_project import relationship_stages
from crm_warehouse.warehouse.relations import (
    INT_CALENDAR_AS_OF,
    INT_CUSTOMER_MONTHS_ACTIVITY,
    INT_CUSTOMER_MONTHS_PANEL,
    INT_CUSTOMER_MONTHS_STAGED,
    INT_ORDER_DAYS_SEQUENCED,
    STG_CRM_CUSTOMERS,
)

#: Stages a churn model scores, the relationship stages of the seed ``lifecycle_stages``:
#: prospects have no relationship to lose and churned ones lost it.
SCORED_STAGES: tuple[str, ...] = relationship_stages()
#: Categorical features and their levels (fixed, so training and scoring agree).
CATEGORICAL_LEVELS: dict[str, tuple[str, ...]] = {
    "stage_code": SCORED_STAGES,
    "customer_type": CUSTOMER_TYPES,
}
NUMERIC_FEATURES: tuple[str, ...] = (
    "days_since_last_order",
    "gap_ratio",
    "completed_orders",
    "orders_per_year",
    "revenue_to_date",
    "average_order_value",
    "margin_rate",
    "trailing_window_revenue",
    "previous_window_revenue",
    "revenue_change",
    "trailing_window_orders",
    "previous_window_orders",
    "order_change",
    "revenue_vs_best",
    "trailing_12m_revenue",
    "share_of_wallet",
    "tenure_days",
    "complaints_to_date",
    "unresolved_complaints",
    "recent_complaints",
    "recent_tickets",
    "recent_praises",
    "latest_csat",
    "latest_nps",
    "latest_satisfaction_index",
    "categories_bought",
    "touches_to_date",
    "touch_response_rate",
    "recent_touch_responses",
)
FEATURES: tuple[str, ...] = (*NUMERIC_FEATURES, *CATEGORICAL_LEVELS)
LABEL = "churned"

_FEATURE_SQL = f"""
with

as_of as (
    select max(as_of_date) as as_of_date from {INT_CALENDAR_AS_OF.sql()}
),

staged as (
    select * from {INT_CUSTOMER_MONTHS_STAGED.sql()}
    where evaluated_on = $cutoff
),

panel as (
    select customer_id, purchase_days_to_date, margin_to_date
    from {INT_CUSTOMER_MONTHS_PANEL.sql()}
    where evaluated_on = $cutoff
),

activity as (
    select * from {INT_CUSTOMER_MONTHS_ACTIVITY.sql()}
    where month_start <= $cutoff
),

current_activity as (
    select * from activity
    where evaluated_on = $cutoff
),

recent_activity as (
    select
        customer_id,
        sum(complaints_opened) as recent_complaints,
        sum(tickets_opened) as recent_tickets,
        sum(praises_received) as recent_praises,
        sum(touch_responses) as recent_touch_responses
    from activity
    where month_start > date_trunc('month', $cutoff) - to_months($recent_months)
    group by customer_id
),

customers as (
    select customer_id, customer_type, estimated_annual_wallet, closed_date
    from {STG_CRM_CUSTOMERS.sql()}
),

purchases_after as (
    select customer_id, count(*) as purchase_days_in_horizon
    from {INT_ORDER_DAYS_SEQUENCED.sql()}
    where order_date > $cutoff and order_date <= $cutoff + to_days($horizon_days)
    group by customer_id
),

final as (
    select
        staged.customer_id,
        cast($cutoff as date) as cutoff,
        cast(staged.days_since_last_order as double) as days_since_last_order,
        staged.days_since_last_order / nullif(staged.median_gap_days, 0) as gap_ratio,
        cast(staged.completed_orders_to_date as double) as completed_orders,
        panel.purchase_days_to_date * 365.0 / greatest(staged.tenure_days, 1) as orders_per_year,
        cast(staged.revenue_to_date as double) as revenue_to_date,
        cast(staged.revenue_to_date as double) / nullif(staged.completed_orders_to_date, 0) as average_order_value,
        cast(panel.margin_to_date as double) / nullif(staged.revenue_to_date, 0) as margin_rate,
        cast(staged.trailing_window_revenue as double) as trailing_window_revenue,
        cast(staged.previous_window_revenue as double) as previous_window_revenue,
        cast(staged.trailing_window_revenue - staged.previous_window_revenue as double)
            / nullif(staged.previous_window_revenue, 0) as revenue_change,
        cast(staged.trailing_window_orders as double) as trailing_window_orders,
        cast(staged.previous_window_orders as double) as previous_window_orders,
        cast(staged.trailing_window_orders - staged.previous_window_orders as double) as order_change,
        cast(staged.trailing_window_revenue as double)
            / nullif(staged.best_trailing_window_revenue, 0) as revenue_vs_best,
        cast(staged.trailing_12m_revenue as double) as trailing_12m_revenue,
        least(cast(staged.trailing_12m_revenue as double) / nullif(customers.estimated_annual_wallet, 0), 1.0)
            as share_of_wallet,
        cast(staged.tenure_days as double) as tenure_days,
        cast(coalesce(current_activity.complaints_to_date, 0) as double) as complaints_to_date,
        cast(coalesce(current_activity.unresolved_complaints, 0) as double) as unresolved_complaints,
        cast(coalesce(recent_activity.recent_complaints, 0) as double) as recent_complaints,
        cast(coalesce(recent_activity.recent_tickets, 0) as double) as recent_tickets,
        cast(coalesce(recent_activity.recent_praises, 0) as double) as recent_praises,
        cast(current_activity.latest_csat as double) as latest_csat,
        cast(current_activity.latest_nps as double) as latest_nps,
        cast(current_activity.latest_satisfaction_index as double) as latest_satisfaction_index,
        cast(coalesce(current_activity.categories_bought_to_date, 0) as double) as categories_bought,
        cast(coalesce(current_activity.touches_to_date, 0) as double) as touches_to_date,
        cast(current_activity.touch_responses_to_date as double)
            / nullif(current_activity.touches_to_date, 0) as touch_response_rate,
        cast(coalesce(recent_activity.recent_touch_responses, 0) as double) as recent_touch_responses,
        staged.stage_code,
        customers.customer_type,
        case
            when $cutoff + to_days($horizon_days) > as_of.as_of_date then null
            else
                coalesce(purchases_after.purchase_days_in_horizon, 0) = 0
                or coalesce(customers.closed_date <= $cutoff + to_days($horizon_days), false)
        end as churned
    from staged
    cross join as_of
    inner join panel on staged.customer_id = panel.customer_id
    left join current_activity on staged.customer_id = current_activity.customer_id
    left join recent_activity on staged.customer_id = recent_activity.customer_id
    left join customers on staged.customer_id = customers.customer_id
    left join purchases_after on staged.customer_id = purchases_after.customer_id
    where list_contains($scored_stages, staged.stage_code)
)

select * from final
order by customer_id
"""


def evaluation_dates(con: duckdb.DuckDBPyConnection) -> list[date]:
    """Days the customer-month panel is evaluated on (month ends and the as-of date), ascending."""
    rows = con.execute(
        f"select distinct evaluated_on from {INT_CUSTOMER_MONTHS_STAGED.sql()} order by evaluated_on"
    ).fetchall()
    return [row[0] for row in rows]


def churn_features(
    con: duckdb.DuckDBPyConnection, cutoff: date, horizon_days: int, *, recent_months: int = 3
) -> pd.DataFrame:
    """Features of every customer in a scored stage at ``cutoff``, with the churn label.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection to a warehouse with the models listed in the module docstring.
    cutoff : datetime.date
        A day the panel is evaluated on (see :func:`evaluation_dates`).
    horizon_days : int
        Length of the label window after the cutoff.
    recent_months : int
        Months counted as "recent" for complaints, tickets, praise and responses.

    Returns
    -------
    pandas.DataFrame
        One row per customer whose stage at the cutoff is in :data:`SCORED_STAGES`
        (customers already churned, by closure or inactivity, and prospects are
        left out), sorted by ``customer_id``: ``customer_id``, ``cutoff``, the
        columns :data:`FEATURES` (``stage_code`` and ``customer_type`` as
        categoricals) and ``churned`` (boolean: no completed order in
        ``(cutoff, cutoff + horizon_days]`` or account closed in it; missing when
        the window runs past the warehouse's as-of date).

    Raises
    ------
    ValueError
        If ``horizon_days`` < 1, ``cutoff`` is not an evaluation day of the panel,
        or no customer is in a scored stage on it.
    """
    if int(horizon_days) != horizon_days or horizon_days < 1:
        raise ValueError(f"horizon_days={horizon_days!r} must be a whole number >= 1")
    days = evaluation_dates(con)
    if cutoff not in days:
        near = [d.isoformat() for d in days if abs((d - cutoff).days) <= 31] or [d.isoformat() for d in days[-3:]]
        raise ValueError(
            f"cutoff={cutoff.isoformat()} is not a day the customer-month panel is evaluated on "
            f"(month ends and the as-of date); nearest: {', '.join(near) or 'none, the panel is empty'}"
        )
    frame = con.execute(
        _FEATURE_SQL,
        {
            "cutoff": cutoff,
            "horizon_days": int(horizon_days),
            "recent_months": int(recent_months),
            "scored_stages": list(SCORED_STAGES),
        },
    ).df()
    if frame.empty:
        raise ValueError(
            f"no customer at cutoff={cutoff.isoformat()} is in a scored stage {SCORED_STAGES} "
            "(all are prospects or already churned)"
        )
    return _typed(frame)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Fixed dtypes: float features, categorical codes with fixed levels, nullable boolean label."""
    frame = frame.copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["cutoff"] = pd.to_datetime(frame["cutoff"]).dt.date
    for column in NUMERIC_FEATURES:
        frame[column] = pd.to_numeric(frame[column]).astype(np.float64)
    for column, levels in CATEGORICAL_LEVELS.items():
        frame[column] = pd.Categorical(frame[column], categories=list(levels))
    frame[LABEL] = frame[LABEL].astype("boolean")
    return frame


def unscored_customers(con: duckdb.DuckDBPyConnection, cutoff: date) -> pd.DataFrame:
    """Customers with an open account at ``cutoff`` that the churn model does not score.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``stage_code`` (``prospect``: no completed order yet, or
        ``churned``: no order for the inactivity period of the stage rule) and
        ``days_since_last_order`` (missing for prospects), sorted by ``customer_id``.
    """
    return con.execute(
        f"""
        select customer_id, stage_code, cast(days_since_last_order as double) as days_since_last_order
        from {INT_CUSTOMER_MONTHS_STAGED.sql()}
        where evaluated_on = $cutoff and not is_closed and not list_contains($scored_stages, stage_code)
        order by customer_id
        """,
        {"cutoff": cutoff, "scored_stages": list(SCORED_STAGES)},
    ).df()


def warehouse_as_of(con: duckdb.DuckDBPyConnection) -> date:
    """The as-of date the dbt models were built for (``int_calendar__as_of``)."""
    row = con.execute(f"select max(as_of_date) from {INT_CALENDAR_AS_OF.sql()}").fetchone()
    if row is None or row[0] is None:
        raise ValueError(f"{INT_CALENDAR_AS_OF} is empty: build the dbt models first")
    return row[0]
