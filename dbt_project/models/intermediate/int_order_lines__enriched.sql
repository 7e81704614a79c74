with

order_lines as (
    select * from {{ ref('stg_orders__order_lines') }}
),

orders as (
    select * from {{ ref('stg_orders__orders') }}
),

products as (
    select * from {{ ref('stg_catalog__products') }}
),

-- the inner join keeps only lines of orders placed by the as-of date
lines_with_orders as (
    select
        order_lines.order_line_id,
        order_lines.order_id,
        order_lines.line_number,
        orders.customer_id,
        orders.ordered_at,
        orders.order_date,
        orders.order_channel,
        orders.order_status,
        order_lines.product_id,
        products.product_name,
        order_lines.category,
        order_lines.quantity,
        order_lines.unit_price,
        order_lines.discount_rate,
        order_lines.unit_cost
    from order_lines
    inner join orders
        on order_lines.order_id = orders.order_id
    left join products
        on order_lines.product_id = products.product_id
),

final as (
    select
        *,
        order_status = 'completed' as is_completed,
        cast(quantity * unit_price as {{ dbt.type_numeric() }}) as line_gross_value,
        cast(quantity * unit_price * (1 - discount_rate) as {{ dbt.type_numeric() }}) as line_revenue,
        cast(quantity * unit_cost as {{ dbt.type_numeric() }}) as line_cost,
        cast(quantity * unit_price * (1 - discount_rate) - quantity * unit_cost as {{ dbt.type_numeric() }})
            as line_margin
    from lines_with_orders
)

select * from final
