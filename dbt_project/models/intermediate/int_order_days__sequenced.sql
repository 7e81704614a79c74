{#- One row per customer and day with a completed order. Gaps are measured between
    purchase days, so two orders on one day are one purchase (as in the CLV models).

    Incremental: a run replaces the purchase days from the latest loaded order date
    less var('incremental_lookback_days') on. A day's number, gap and running median
    depend on the customer's earlier days only, so the days before the window cannot
    change; the customers with a day in the window are sequenced over their whole
    history (the running median needs it) and only their days in the window are
    written. -#}
{{ config(**incremental_config(partition_by='order_date', unique_key=['customer_id', 'order_date'])) }}
{{ assert_not_rewound('order_date') }}

{%- set since = incremental_start('order_date') if is_incremental() else none %}

with

completed_orders as (
    select * from {{ ref('int_orders__aggregated') }}
    where is_completed
),

recent_buyers as (
    select distinct customer_id
    from completed_orders
    where {{ on_or_after('order_date', since) }}
),

orders as (
    select * from completed_orders
    where customer_id in (select recent_buyers.customer_id from recent_buyers)
),

purchase_days as (
    select
        customer_id,
        order_date,
        count(*) as orders_on_day,
        cast(sum(units) as bigint) as units_on_day,
        sum(order_gross_value) as gross_value_on_day,
        sum(order_revenue) as revenue_on_day,
        sum(order_margin) as margin_on_day
    from orders
    group by customer_id, order_date
),

sequenced as (
    select
        *,
        cast(row_number() over (partition by customer_id order by order_date) as bigint) as day_number,
        lag(order_date) over (partition by customer_id order by order_date) as previous_order_date
    from purchase_days
),

gaps as (
    select
        *,
        {{ days_between('previous_order_date', 'order_date') }} as gap_days
    from sequenced
),

-- median of all gaps up to each purchase day (a running median)
median_gap_so_far as (
    {{ running_median('gaps', 'customer_id', 'day_number', 'gap_days') }}
),

final as (
    select
        gaps.customer_id,
        gaps.order_date,
        gaps.day_number,
        gaps.orders_on_day,
        gaps.units_on_day,
        gaps.gross_value_on_day,
        gaps.revenue_on_day,
        gaps.margin_on_day,
        gaps.previous_order_date,
        gaps.gap_days,
        median_gap_so_far.running_median as median_gap_days
    from gaps
    left join median_gap_so_far
        on
            gaps.customer_id = median_gap_so_far.customer_id
            and gaps.day_number = median_gap_so_far.day_number
    where {{ on_or_after('gaps.order_date', since) }}
)

select * from final
