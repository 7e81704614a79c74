{#- Incremental: a run re-reads the orders placed from the latest loaded order date
    less var('incremental_lookback_days') on and replaces their lines (delete+insert
    on order_line_id). Rebuilding as of an earlier date needs --full-refresh. -#}
{{ config(**incremental_config(partition_by='order_date', unique_key='order_line_id')) }}
{{ assert_not_rewound('order_date') }}

with

order_lines as (
    select * from {{ ref('int_order_lines__enriched') }}
    {%- if is_incremental() %}
    where order_date >= {{ incremental_start('order_date') }}
    {%- endif %}
),

final as (
    select
        order_line_id,
        order_id,
        line_number,
        customer_id,
        ordered_at,
        order_date,
        order_channel,
        order_status,
        is_completed,
        product_id,
        product_name,
        category,
        quantity,
        unit_price,
        discount_rate,
        unit_cost,
        line_gross_value,
        line_revenue,
        line_cost,
        line_margin
    from order_lines
)

select * from final
