{#- Incremental like int_orders__aggregated: a run replaces the orders placed from
    the latest loaded order date less var('incremental_lookback_days') on. -#}
{{ config(**incremental_config(partition_by='order_date', unique_key='order_id')) }}
{{ assert_not_rewound('order_date') }}

with

orders as (
    select * from {{ ref('int_orders__aggregated') }}
    {%- if is_incremental() %}
    where order_date >= {{ incremental_start('order_date') }}
    {%- endif %}
),

final as (
    select
        order_id,
        customer_id,
        ordered_at,
        order_date,
        {{ month_start('order_date') }} as order_month,
        order_channel,
        order_status,
        is_completed,
        completed_order_number,
        coalesce(completed_order_number = 1, false) as is_first_completed_order,
        line_count,
        units,
        category_count,
        order_gross_value,
        order_revenue,
        order_cost,
        order_margin
    from orders
)

select * from final
