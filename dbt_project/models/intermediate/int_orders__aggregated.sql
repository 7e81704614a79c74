with

orders as (
    select * from {{ ref('stg_orders__orders') }}
),

order_lines as (
    select * from {{ ref('int_order_lines__enriched') }}
),

line_totals as (
    select
        order_id,
        count(*) as line_count,
        sum(quantity) as units,
        count(distinct category) as category_count,
        sum(line_gross_value) as order_gross_value,
        sum(line_revenue) as order_revenue,
        sum(line_cost) as order_cost,
        sum(line_margin) as order_margin
    from order_lines
    group by order_id
),

orders_with_totals as (
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.order_date,
        orders.order_channel,
        orders.order_status,
        orders.order_status = 'completed' as is_completed,
        coalesce(line_totals.line_count, 0) as line_count,
        coalesce(line_totals.units, 0) as units,
        coalesce(line_totals.category_count, 0) as category_count,
        coalesce(line_totals.order_gross_value, 0) as order_gross_value,
        coalesce(line_totals.order_revenue, 0) as order_revenue,
        coalesce(line_totals.order_cost, 0) as order_cost,
        coalesce(line_totals.order_margin, 0) as order_margin
    from orders
    left join line_totals
        on orders.order_id = line_totals.order_id
),

final as (
    select
        *,
        case
            when is_completed
                then row_number() over (
                        partition by customer_id, is_completed
                        order by ordered_at, order_id
                    )
        end as completed_order_number
    from orders_with_totals
)

select * from final
