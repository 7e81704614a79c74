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

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crm_warehouse.contracts import CUSTOMER_TYPES
from crm_warehouse.warehouse.catalog import WarehouseSql
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

# The feature CTEs for every cutoff of ``$cutoffs`` (a list of dates), ending in ``final``:
# one row per (cutoff, customer in a scored stage). Range filters on the evaluation day let
# DuckDB skip the row groups of other months (the panel tables are written in month order).
_FEATURE_CTES = f"""
cutoffs as (
    select unnest(cast($cutoffs as date[])) as cutoff
),

as_of as (
    select max(as_of_date) as as_of_date from {INT_CALENDAR_AS_OF.sql()}
),

staged as (
    select * from {INT_CUSTOMER_MONTHS_STAGED.sql()}
    where evaluated_on between list_min($cutoffs) and list_max($cutoffs)
        and list_contains($cutoffs, evaluated_on)
),

panel as (
    select customer_id, evaluated_on, purchase_days_to_date, margin_to_date
    from {INT_CUSTOMER_MONTHS_PANEL.sql()}
    where evaluated_on between list_min($cutoffs) and list_max($cutoffs)
        and list_contains($cutoffs, evaluated_on)
),

activity as (
    select * from {INT_CUSTOMER_MONTHS_ACTIVITY.sql()}
    where month_start <= list_max($cutoffs)
),

current_activity as (
    select * from activity
    where list_contains($cutoffs, evaluated_on)
),

recent_activity as (
    select
        cutoffs.cutoff,
        activity.customer_id,
        sum(activity.complaints_opened) as recent_complaints,
        sum(activity.tickets_opened) as recent_tickets,
        sum(activity.praises_received) as recent_praises,
        sum(activity.touch_responses) as recent_touch_responses
    from activity
    inner join cutoffs
        on activity.month_start <= cutoffs.cutoff
        and activity.month_start > date_trunc('month', cutoffs.cutoff) - to_months($recent_months)
    group by cutoffs.cutoff, activity.customer_id
),

customers as (
    select customer_id, customer_type, estimated_annual_wallet, closed_date
    from {STG_CRM_CUSTOMERS.sql()}
),

purchases_after as (
    select cutoffs.cutoff, order_days.customer_id, count(*) as purchase_days_in_horizon
    from {INT_ORDER_DAYS_SEQUENCED.sql()} as order_days
    inner join cutoffs
        on order_days.order_date > cutoffs.cutoff
        and order_days.order_date <= cutoffs.cutoff + to_days($horizon_days)
    group by cutoffs.cutoff, order_days.customer_id
),

final as (
    select
        staged.customer_id,
        staged.evaluated_on as cutoff,
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
            when staged.evaluated_on + to_days($horizon_days) > as_of.as_of_date then null
            else
                coalesce(purchases_after.purchase_days_in_horizon, 0) = 0
                or coalesce(customers.closed_date <= staged.evaluated_on + to_days($horizon_days), false)
        end as churned
    from staged
    cross join as_of
    inner join panel
        on staged.customer_id = panel.customer_id and staged.evaluated_on = panel.evaluated_on
    left join current_activity
        on staged.customer_id = current_activity.customer_id and staged.evaluated_on = current_activity.evaluated_on
    left join recent_activity
        on staged.customer_id = recent_activity.customer_id and staged.evaluated_on = recent_activity.cutoff
    left join customers on staged.customer_id = customers.customer_id
    left join purchases_after
        on staged.customer_id = purchases_after.customer_id and staged.evaluated_on = purchases_after.cutoff
    where list_contains($scored_stages, staged.stage_code)
)
"""


def evaluation_dates(con: duckdb.DuckDBPyConnection) -> list[date]:
    """Days the customer-month panel is evaluated on (month ends and the as-of date), ascending."""
    rows = con.execute(
        f"select distinct evaluated_on from {INT_CUSTOMER_MONTHS_STAGED.sql()} order by evaluated_on"
    ).fetchall()
    return [row[0] for row in rows]


def _check_request(con: duckdb.DuckDBPyConnection, cutoffs: Sequence[date], horizon_days: int) -> None:
    """``ValueError`` for a horizon below one day or a cutoff that is not an evaluation day of the panel."""
    if int(horizon_days) != horizon_days or horizon_days < 1:
        raise ValueError(f"horizon_days={horizon_days!r} must be a whole number >= 1")
    days = evaluation_dates(con)
    for cutoff in cutoffs:
        if cutoff not in days:
            near = [d.isoformat() for d in days if abs((d - cutoff).days) <= 31] or [d.isoformat() for d in days[-3:]]
            raise ValueError(
                f"cutoff={cutoff.isoformat()} is not a day the customer-month panel is evaluated on "
                f"(month ends and the as-of date); nearest: {', '.join(near) or 'none, the panel is empty'}"
            )


def _parameters(cutoffs: Sequence[date], horizon_days: int, recent_months: int) -> dict[str, Any]:
    return {
        "cutoffs": list(cutoffs),
        "horizon_days": int(horizon_days),
        "recent_months": int(recent_months),
        "scored_stages": list(SCORED_STAGES),
    }


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
    _check_request(con, [cutoff], horizon_days)
    frame = con.execute(
        f"with {_FEATURE_CTES} select * from final order by customer_id",
        _parameters([cutoff], horizon_days, recent_months),
    ).df()
    if frame.empty:
        raise ValueError(
            f"no customer at cutoff={cutoff.isoformat()} is in a scored stage {SCORED_STAGES} "
            "(all are prospects or already churned)"
        )
    return typed_features(frame)


# Proportional allocation of $sample_rows over the strata (cutoff x label) in whole
# numbers: each stratum gets the floor of its share, the rows left over go to the
# strata with the largest remainders (Hamilton's method), so the total is exact.
# Within a stratum the rows with the smallest md5 of (seed, cutoff, customer) are
# drawn: the same seed draws the same rows, and a customer's cutoffs are drawn independently.
_SAMPLE_SQL = f"""
with {_FEATURE_CTES},

features as materialized (
    select * from final
),

strata as (
    select cutoff, churned, count(*) as stratum_rows
    from features
    group by cutoff, churned
),

shares as (
    select
        cutoff,
        churned,
        stratum_rows,
        least($sample_rows, sum(stratum_rows) over ()) as sample_size,
        sum(stratum_rows) over () as population
    from strata
),

floors as (
    select
        cutoff,
        churned,
        sample_size,
        (sample_size * stratum_rows) // population as floor_rows,
        (sample_size * stratum_rows) % population as remainder
    from shares
),

allocation as (
    select
        cutoff,
        churned,
        floor_rows + cast(
            row_number() over (order by remainder desc, cutoff, churned) <= sample_size - sum(floor_rows) over ()
            as bigint
        ) as sampled_rows
    from floors
),

drawn as (
    select
        features.*,
        row_number() over (
            partition by features.cutoff, features.churned
            order by md5(concat_ws('|', $seed, features.cutoff, features.customer_id)), features.customer_id
        ) as draw
    from features
)

select drawn.* exclude (draw)
from drawn
inner join allocation
    on drawn.cutoff = allocation.cutoff and drawn.churned is not distinct from allocation.churned
where drawn.draw <= allocation.sampled_rows
order by drawn.cutoff, drawn.customer_id
"""


def sample_training_rows(
    con: duckdb.DuckDBPyConnection,
    cutoffs: Sequence[date],
    horizon_days: int,
    *,
    sample_rows: int,
    seed: int,
    recent_months: int = 3,
) -> pd.DataFrame:
    """A stratified random sample of the labelled rows of several cutoffs, drawn in DuckDB.

    The rows of :func:`churn_features` at every cutoff are split into strata by
    cutoff and label; each stratum gives its proportional share of ``sample_rows``
    (whole rows, largest remainders first, so the sample has exactly
    ``min(sample_rows, all rows)`` rows and every stratum's share is within one
    row of proportional). Only the sample leaves DuckDB.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse with the models listed in the module docstring.
    cutoffs : sequence of datetime.date
        Evaluation days of the panel (see :func:`evaluation_dates`).
    horizon_days : int
        Length of the label window after each cutoff.
    sample_rows : int
        Rows to draw (all rows when there are fewer).
    seed : int
        The same seed draws the same rows.
    recent_months : int
        Months counted as "recent" (as in :func:`churn_features`).

    Returns
    -------
    pandas.DataFrame
        Columns of :func:`churn_features`, sorted by ``cutoff`` and ``customer_id``.

    Raises
    ------
    ValueError
        As :func:`churn_features`; also if ``sample_rows`` < 1, ``cutoffs`` is empty,
        or no customer is in a scored stage at any cutoff.
    """
    if int(sample_rows) != sample_rows or sample_rows < 1:
        raise ValueError(f"sample_rows={sample_rows!r} must be a whole number >= 1")
    if not cutoffs:
        raise ValueError("cutoffs is empty: name at least one evaluation day")
    _check_request(con, cutoffs, horizon_days)
    frame = con.execute(
        _SAMPLE_SQL,
        {**_parameters(cutoffs, horizon_days, recent_months), "sample_rows": int(sample_rows), "seed": str(seed)},
    ).df()
    if frame.empty:
        raise ValueError(
            f"no customer at the cutoffs {[c.isoformat() for c in cutoffs]} is in a scored stage {SCORED_STAGES}"
        )
    return typed_features(frame)


#: Column of :func:`open_account_batches` that says why a row is not scored (missing for scored rows).
UNSCORED_REASON = "unscored_reason"

# Every open account at the cutoff: the feature rows of the scored stages, and the
# others (prospects, customers already churned by inactivity) with the reason they get
# no score instead of features.
_OPEN_ACCOUNTS_SQL = f"""
with {_FEATURE_CTES},

unscored as (
    select
        customer_id,
        evaluated_on as cutoff,
        case
            when stage_code = 'prospect' then 'prospect: no completed order yet'
            else concat('already churned: no order for ', cast(round(days_since_last_order) as bigint), ' days')
        end as {UNSCORED_REASON}
    from {INT_CUSTOMER_MONTHS_STAGED.sql()}
    where
        list_contains($cutoffs, evaluated_on)
        and not is_closed
        and not list_contains($scored_stages, stage_code)
)

-- Both row kinds with every column (a union by name, written so that Spark runs it too).
select *
from (select customer_id, cutoff from final union all select customer_id, cutoff from unscored) as accounts
left join final using (customer_id, cutoff)
left join unscored using (customer_id, cutoff)
order by customer_id
"""


def open_account_batches(
    con: duckdb.DuckDBPyConnection,
    cutoff: date,
    horizon_days: int,
    *,
    recent_months: int = 3,
    batch_rows: int = 100_000,
) -> Iterator[pd.DataFrame]:
    """Every account open at ``cutoff``, streamed from DuckDB in batches of at most ``batch_rows`` rows.

    Rows of customers in a scored stage carry the columns of :func:`churn_features`
    and a missing :data:`UNSCORED_REASON`; prospects (``"prospect: no completed
    order yet"``) and customers already churned by inactivity (``"already churned:
    no order for 400 days"``) carry only ``customer_id``, ``cutoff`` and that
    reason. Batches follow ``customer_id``; only one batch is in Python at a time.
    """
    if int(batch_rows) != batch_rows or batch_rows < 1:
        raise ValueError(f"batch_rows={batch_rows!r} must be a whole number >= 1")
    reader = con.execute(*open_accounts_query(con, cutoff, horizon_days, recent_months)).to_arrow_reader(
        int(batch_rows)
    )
    for batch in reader:
        yield typed_features(batch.to_pandas())


def open_accounts_query(
    con: WarehouseSql, cutoff: date, horizon_days: int, recent_months: int = 3
) -> tuple[str, dict[str, Any]]:
    """The SQL (DuckDB's dialect) and parameters of :func:`open_account_batches`, once the
    request is checked against the warehouse behind ``con`` (DuckDB or Spark)."""
    _check_request(con, [cutoff], horizon_days)
    return _OPEN_ACCOUNTS_SQL, _parameters([cutoff], horizon_days, recent_months)


def typed_features(frame: pd.DataFrame) -> pd.DataFrame:
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


def warehouse_as_of(con: duckdb.DuckDBPyConnection) -> date:
    """The as-of date the dbt models were built for (``int_calendar__as_of``)."""
    row = con.execute(f"select max(as_of_date) from {INT_CALENDAR_AS_OF.sql()}").fetchone()
    if row is None or row[0] is None:
        raise ValueError(f"{INT_CALENDAR_AS_OF} is empty: build the dbt models first")
    return row[0]
