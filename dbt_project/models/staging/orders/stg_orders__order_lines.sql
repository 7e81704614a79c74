{#- Lines carry no date of their own: the as-of filter reaches them through their
    order header downstream (int_order_lines__enriched). -#}
with

source as (
    select * from {{ source('orders', 'orders_order_lines') }}
),

final as (
    select
        {{ dbt.concat(["trim(order_id)", "'-'", dbt.cast("line_number", dbt.type_string())]) }} as order_line_id,
        trim(order_id) as order_id,
        line_number,
        trim(product_id) as product_id,
        lower(trim(category)) as category,
        quantity,
        unit_price,
        discount_rate,
        unit_cost,
        _loaded_at as loaded_at
    from source
)

select * from final
