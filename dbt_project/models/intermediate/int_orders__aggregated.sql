{#- Incremental: a run re-reads the orders placed from the latest loaded order date
    less var('incremental_lookback_days') on and replaces them (delete+insert on
    order_id). A re-read customer's completed orders are numbered on from the ones
    loaded before that date. -#}
{{ config(**incremental_config(partition_by='order_date', unique_key='order_id')) }}
{{ assert_not_rewound('order_date') }}

{%- set since = incremental_start('order_date') if is_incremental() else none %}

with

orders as (
    select * from {{ ref('stg_orders__orders') }}
    {%- if since %}
    where order_date >= {{ since }}
    {%- endif %}
),

order_lines as (
    select * from {{ ref('int_order_lines__enriched') }}
    {%- if since %}
    where order_date >= {{ since }}
    {%- endif %}
),

{% if since %}
completed_before as (
    select
        customer_id,
        max(completed_order_number) as completed_orders
    from {{ this }}
    where
        order_date < {{ since }}
        and customer_id in (select orders.customer_id from orders)
    group by customer_id
),
{% else %}
completed_before as (
    select
        customer_id,
        0 as completed_orders
    from orders
    where 1 = 0
),
{% endif %}

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
        cast(coalesce(line_totals.units, 0) as bigint) as units,
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
        orders_with_totals.*,
        case
            when orders_with_totals.is_completed
                then
                    coalesce(completed_before.completed_orders, 0)
                    + cast(row_number() over (
                        partition by orders_with_totals.customer_id, orders_with_totals.is_completed
                        order by orders_with_totals.ordered_at, orders_with_totals.order_id
                    ) as bigint)
        end as completed_order_number
    from orders_with_totals
    left join completed_before
        on orders_with_totals.customer_id = completed_before.customer_id
)

select * from final
