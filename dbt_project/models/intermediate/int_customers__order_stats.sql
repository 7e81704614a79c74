with

orders as (
    select * from {{ ref('int_orders__aggregated') }}
),

order_lines as (
    select * from {{ ref('int_order_lines__enriched') }}
    where is_completed
),

purchase_days as (
    select * from {{ ref('int_order_days__sequenced') }}
),

as_of as (
    select * from {{ ref('int_calendar__as_of') }}
),

order_totals as (
    select
        orders.customer_id,
        count(*) as orders_placed,
        sum(case when orders.is_completed then 1 else 0 end) as completed_orders,
        sum(case when orders.order_status = 'cancelled' then 1 else 0 end) as cancelled_orders,
        sum(case when orders.order_status = 'refunded' then 1 else 0 end) as refunded_orders,
        min(case when orders.is_completed then orders.ordered_at end) as first_order_at,
        max(case when orders.is_completed then orders.ordered_at end) as last_order_at,
        sum(case when orders.is_completed then orders.units else 0 end) as units,
        sum(case when orders.is_completed then orders.order_revenue else 0 end) as revenue,
        sum(case when orders.is_completed then orders.order_cost else 0 end) as cost_of_goods,
        sum(case when orders.is_completed then orders.order_margin else 0 end) as margin,
        sum(
            case
                when orders.is_completed and {{ days_between('orders.order_date', 'as_of.as_of_date') }}
                    < {{ number_var('trailing_revenue_days') }}
                    then orders.order_revenue
                else 0
            end
        ) as trailing_12m_revenue,
        sum(
            case
                when orders.is_completed and {{ days_between('orders.order_date', 'as_of.as_of_date') }}
                    < {{ number_var('trailing_revenue_days') }}
                    then orders.order_margin
                else 0
            end
        ) as trailing_12m_margin,
        sum(
            case
                when orders.is_completed and {{ days_between('orders.order_date', 'as_of.as_of_date') }}
                    < {{ number_var('trailing_revenue_days') }}
                    then 1
                else 0
            end
        ) as trailing_12m_orders
    from orders
    cross join as_of
    group by orders.customer_id
),

categories as (
    select
        customer_id,
        count(distinct category) as categories_bought,
        {{ distinct_list('category') }} as categories_bought_list
    from order_lines
    group by customer_id
),

purchase_day_totals as (
    select
        customer_id,
        count(*) as purchase_days,
        {{ median('gap_days') }} as median_gap_days
    from purchase_days
    group by customer_id
),

final as (
    select
        order_totals.customer_id,
        order_totals.orders_placed,
        order_totals.completed_orders,
        order_totals.cancelled_orders,
        order_totals.refunded_orders,
        order_totals.first_order_at,
        order_totals.last_order_at,
        cast(order_totals.first_order_at as date) as first_order_date,
        cast(order_totals.last_order_at as date) as last_order_date,
        coalesce(purchase_day_totals.purchase_days, 0) as purchase_days,
        purchase_day_totals.median_gap_days,
        order_totals.units,
        order_totals.revenue,
        order_totals.cost_of_goods,
        order_totals.margin,
        {{ as_double('order_totals.revenue') }} / nullif(order_totals.completed_orders, 0) as average_order_value,
        {{ as_double('order_totals.revenue') }} / nullif(order_totals.units, 0) as average_unit_price,
        {{ as_double('order_totals.margin') }} / nullif(order_totals.revenue, 0) as margin_rate,
        order_totals.trailing_12m_revenue,
        order_totals.trailing_12m_margin,
        order_totals.trailing_12m_orders,
        coalesce(categories.categories_bought, 0) as categories_bought,
        categories.categories_bought_list,
        {{ days_between('order_totals.last_order_at', 'as_of.as_of_date') }} as days_since_last_order,
        {{ days_between('order_totals.first_order_at', 'as_of.as_of_date') }} as tenure_days
    from order_totals
    cross join as_of
    left join categories
        on order_totals.customer_id = categories.customer_id
    left join purchase_day_totals
        on order_totals.customer_id = purchase_day_totals.customer_id
)

select * from final
