{#- Trailing revenue and orders per customer-month: the completed orders in the
    lifecycle window (lifecycle_window_days) before each month's evaluation date,
    in the window before that, and in the trailing_revenue_days. Months in which a
    customer bought nothing in the longest of those spans have no row (the panel
    reads them as zero).

    Its own table, not a step of int_customer_months__panel: within the panel's one
    statement this join and aggregate held memory while the running totals and the
    final sort ran, and at 3 M customers the panel failed at a 2 GiB memory_limit
    (docs/performance.md, "Growth to 3 M customers").

    Incremental like the panel, on the same months (incremental_months_start).

    The order counts are cast to bigint: DuckDB sums integers into 128-bit integers,
    slow to store and to read (at 1M, one data test on the three counts took 8 s
    against 0.06 s as bigint). -#}
{{ config(**incremental_config(partition_by='month_start', unique_key=['customer_id', 'month_start'])) }}
{{ assert_not_rewound('evaluated_on') }}

{%- set lookback_days = [2 * var('lifecycle_window_days'), var('trailing_revenue_days')] | max %}

with

months as (
    select * from {{ ref('int_calendar__months') }}
    {%- if is_incremental() %}
    where month_start >= {{ incremental_months_start() }}
    {%- endif %}
),

purchase_days as (
    select * from {{ ref('int_order_days__sequenced') }}
),

-- every purchase day within the lookback before a month's evaluation date; such a
-- month is never before the customer's first panel month, as it ends after the purchase
window_purchases as (
    select
        purchase_days.customer_id,
        months.month_start,
        months.evaluated_on,
        {{ days_between('purchase_days.order_date', 'months.evaluated_on') }} as days_before,
        purchase_days.orders_on_day,
        purchase_days.revenue_on_day
    from purchase_days
    inner join months
        on
            purchase_days.order_date <= months.evaluated_on
            and purchase_days.order_date > {{ dbt.dateadd('day', -lookback_days, 'months.evaluated_on') }}
),

final as (
    select
        customer_id,
        month_start,
        evaluated_on,
        sum(
            case when days_before < {{ number_var('lifecycle_window_days') }} then revenue_on_day else 0 end
        ) as trailing_window_revenue,
        sum(
            case
                when
                    days_before >= {{ number_var('lifecycle_window_days') }}
                    and days_before < 2 * {{ number_var('lifecycle_window_days') }}
                    then revenue_on_day
                else 0
            end
        ) as previous_window_revenue,
        cast(sum(
            case when days_before < {{ number_var('lifecycle_window_days') }} then orders_on_day else 0 end
        ) as bigint) as trailing_window_orders,
        cast(sum(
            case
                when
                    days_before >= {{ number_var('lifecycle_window_days') }}
                    and days_before < 2 * {{ number_var('lifecycle_window_days') }}
                    then orders_on_day
                else 0
            end
        ) as bigint) as previous_window_orders,
        sum(
            case when days_before < {{ number_var('trailing_revenue_days') }} then revenue_on_day else 0 end
        ) as trailing_12m_revenue,
        cast(sum(
            case when days_before < {{ number_var('trailing_revenue_days') }} then orders_on_day else 0 end
        ) as bigint) as trailing_12m_orders
    from window_purchases
    group by customer_id, month_start, evaluated_on
)

select * from final
{{ in_month_order() }}
