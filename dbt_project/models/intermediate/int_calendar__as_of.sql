with

orders as (
    select * from {{ ref('stg_orders__orders') }}
),

latest_order as (
    select max(order_date) as latest_order_date
    from orders
),

as_of as (
    select coalesce({{ as_of_date_var() }}, latest_order_date) as as_of_date
    from latest_order
),

final as (
    select
        as_of_date,
        {{ month_start('as_of_date') }} as as_of_month_start
    from as_of
)

select * from final
