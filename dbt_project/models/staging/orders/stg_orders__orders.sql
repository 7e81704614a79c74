with

source as (
    select * from {{ source('orders', 'orders_orders') }}
),

known_by_as_of as (
    select *
    from source
    where ordered_at < {{ as_of_cutoff() }}
),

final as (
    select
        trim(order_id) as order_id,
        trim(customer_id) as customer_id,
        ordered_at,
        cast(ordered_at as date) as order_date,
        lower(trim(channel)) as order_channel,
        lower(trim(status)) as order_status,
        _loaded_at as loaded_at
    from known_by_as_of
)

select * from final
