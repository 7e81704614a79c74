{#- Customer-month panel: one row per CRM customer per month from the month of signup
    (or of the first order, if earlier) to the as-of month, evaluated at the month end
    (the as-of date in the as-of month). Months before the first completed order are
    the prospect months. Trailing revenue and orders come from
    int_customer_months__trailing_revenue.

    Incremental: a run recomputes the months from the latest evaluated day less
    var('incremental_lookback_days') on, carrying running totals and the best trailing
    revenue forward from the rows already loaded (the opening balance). Going back in
    time (var as_of_date earlier than loaded rows) needs --full-refresh; the model
    refuses to run incrementally then. -#}
{{ config(**incremental_config(partition_by='month_start', unique_key=['customer_id', 'month_start'])) }}
{{ assert_not_rewound('evaluated_on') }}

with

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

months as (
    select * from {{ ref('int_calendar__months') }}
),

purchase_days as (
    select * from {{ ref('int_order_days__sequenced') }}
),

window_revenue as (
    select * from {{ ref('int_customer_months__trailing_revenue') }}
    {%- if is_incremental() %}
    where month_start >= {{ incremental_months_start() }}
    {%- endif %}
),

{% if is_incremental() %}
window_start as (
    select {{ incremental_months_start() }} as first_month_start
),

loaded_months as (
    {{ incremental_opening_months() }}
),

-- running totals as of the last month before the window
opening_balance as (
    select
        customer_id,
        completed_orders_to_date,
        purchase_days_to_date,
        revenue_to_date,
        margin_to_date,
        last_order_date,
        best_trailing_window_revenue
    from loaded_months
),
{% else %}
window_start as (
    select min(month_start) as first_month_start
    from months
),

opening_balance as (
    select
        customer_id,
        0 as completed_orders_to_date,
        0 as purchase_days_to_date,
        0 as revenue_to_date,
        0 as margin_to_date,
        cast(null as date) as last_order_date,
        0 as best_trailing_window_revenue
    from customers
),
{% endif %}

first_purchases as (
    select
        customer_id,
        order_date as first_order_date
    from purchase_days
    where day_number = 1
),

customer_first_months as (
    select
        customers.customer_id,
        customers.signup_date,
        customers.closed_date,
        first_purchases.first_order_date,
        {{ month_start('least(customers.signup_date, coalesce(first_purchases.first_order_date, customers.signup_date))') }}
            as first_month_start
    from customers
    left join first_purchases
        on customers.customer_id = first_purchases.customer_id
),

spine as (
    select
        customer_first_months.customer_id,
        customer_first_months.signup_date,
        customer_first_months.closed_date,
        customer_first_months.first_order_date,
        months.month_start,
        months.month_end,
        months.evaluated_on,
        months.is_as_of_month
    from customer_first_months
    inner join months
        on customer_first_months.first_month_start <= months.month_start
    cross join window_start
    where months.month_start >= window_start.first_month_start
),

monthly_purchases as (
    select
        purchase_days.customer_id,
        {{ month_start('purchase_days.order_date') }} as month_start,
        sum(purchase_days.orders_on_day) as orders_in_month,
        sum(purchase_days.units_on_day) as units_in_month,
        sum(purchase_days.gross_value_on_day) as gross_value_in_month,
        sum(purchase_days.revenue_on_day) as revenue_in_month,
        sum(purchase_days.margin_on_day) as margin_in_month,
        max(purchase_days.day_number) as last_day_number_in_month,
        max(purchase_days.order_date) as last_order_date_in_month
    from purchase_days
    cross join window_start
    where purchase_days.order_date >= window_start.first_month_start
    group by purchase_days.customer_id, {{ month_start('purchase_days.order_date') }}
),

cumulated as (
    select
        spine.customer_id,
        spine.month_start,
        spine.month_end,
        spine.evaluated_on,
        spine.is_as_of_month,
        spine.signup_date,
        spine.closed_date,
        spine.first_order_date,
        cast(coalesce(monthly_purchases.orders_in_month, 0) as bigint) as orders_in_month,
        cast(coalesce(monthly_purchases.units_in_month, 0) as bigint) as units_in_month,
        coalesce(monthly_purchases.gross_value_in_month, 0) as gross_value_in_month,
        coalesce(monthly_purchases.revenue_in_month, 0) as revenue_in_month,
        coalesce(monthly_purchases.margin_in_month, 0) as margin_in_month,
        cast(
            coalesce(opening_balance.completed_orders_to_date, 0)
            + sum(coalesce(monthly_purchases.orders_in_month, 0)) over customer_months
            as bigint
        ) as completed_orders_to_date,
        greatest(
            coalesce(opening_balance.purchase_days_to_date, 0),
            coalesce(max(monthly_purchases.last_day_number_in_month) over customer_months, 0)
        ) as purchase_days_to_date,
        coalesce(opening_balance.revenue_to_date, 0)
        + sum(coalesce(monthly_purchases.revenue_in_month, 0)) over customer_months as revenue_to_date,
        coalesce(opening_balance.margin_to_date, 0)
        + sum(coalesce(monthly_purchases.margin_in_month, 0)) over customer_months as margin_to_date,
        coalesce(
            max(monthly_purchases.last_order_date_in_month) over customer_months,
            opening_balance.last_order_date
        ) as last_order_date,
        coalesce(window_revenue.trailing_window_revenue, 0) as trailing_window_revenue,
        coalesce(window_revenue.previous_window_revenue, 0) as previous_window_revenue,
        cast(coalesce(window_revenue.trailing_window_orders, 0) as bigint) as trailing_window_orders,
        cast(coalesce(window_revenue.previous_window_orders, 0) as bigint) as previous_window_orders,
        greatest(
            coalesce(opening_balance.best_trailing_window_revenue, 0),
            max(
                greatest(
                    coalesce(window_revenue.trailing_window_revenue, 0),
                    coalesce(window_revenue.previous_window_revenue, 0)
                )
            ) over customer_months
        ) as best_trailing_window_revenue,
        coalesce(window_revenue.trailing_12m_revenue, 0) as trailing_12m_revenue,
        cast(coalesce(window_revenue.trailing_12m_orders, 0) as bigint) as trailing_12m_orders
    from spine
    left join opening_balance
        on spine.customer_id = opening_balance.customer_id
    left join monthly_purchases
        on
            spine.customer_id = monthly_purchases.customer_id
            and spine.month_start = monthly_purchases.month_start
    left join window_revenue
        on
            spine.customer_id = window_revenue.customer_id
            and spine.month_start = window_revenue.month_start
    window customer_months as (
        partition by spine.customer_id
        order by spine.month_start
        rows between unbounded preceding and current row
    )
),

final as (
    select
        cumulated.customer_id,
        cumulated.month_start,
        cumulated.month_end,
        cumulated.evaluated_on,
        cumulated.is_as_of_month,
        cumulated.signup_date,
        case when cumulated.first_order_date <= cumulated.evaluated_on then cumulated.first_order_date end
            as first_order_date,
        coalesce(cumulated.closed_date <= cumulated.evaluated_on, false) as is_closed,
        cumulated.orders_in_month,
        cumulated.units_in_month,
        cumulated.gross_value_in_month,
        cumulated.revenue_in_month,
        cumulated.margin_in_month,
        cumulated.completed_orders_to_date,
        cumulated.purchase_days_to_date,
        cumulated.revenue_to_date,
        cumulated.margin_to_date,
        cumulated.last_order_date,
        {{ days_between('cumulated.last_order_date', 'cumulated.evaluated_on') }} as days_since_last_order,
        case
            when cumulated.first_order_date <= cumulated.evaluated_on
                then {{ days_between('cumulated.first_order_date', 'cumulated.evaluated_on') }}
        end as tenure_days,
        purchase_days.median_gap_days,
        cumulated.trailing_window_revenue,
        cumulated.previous_window_revenue,
        cumulated.best_trailing_window_revenue,
        cumulated.trailing_window_orders,
        cumulated.previous_window_orders,
        cumulated.trailing_12m_revenue,
        cumulated.trailing_12m_orders
    from cumulated
    left join purchase_days
        on
            cumulated.customer_id = purchase_days.customer_id
            and cumulated.purchase_days_to_date = purchase_days.day_number
)

select * from final
{{ in_month_order() }}
