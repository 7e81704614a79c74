{#- One row per customer and product category bought in a completed order: the first
    and the latest order date. New categories per month (cross-buying) count from it.

    Incremental: a run reads the completed lines ordered from the latest loaded order
    date less var('incremental_lookback_days') on and merges them into the loaded pairs
    (delete+insert on customer and category), so it never re-reads the order history. -#}
{{ config(**incremental_config(unique_key=['customer_id', 'category'])) }}
{{ assert_not_rewound('last_order_date') }}

with

order_lines as (
    select * from {{ ref('int_order_lines__enriched') }}
    where
        is_completed
        and {{ on_or_after('order_date', incremental_start('last_order_date') if is_incremental() else none) }}
),

new_purchases as (
    select
        customer_id,
        category,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date
    from order_lines
    group by customer_id, category
),

{% if is_incremental() %}
merged as (
    select
        new_purchases.customer_id,
        new_purchases.category,
        least(new_purchases.first_order_date, coalesce(loaded.first_order_date, new_purchases.first_order_date))
            as first_order_date,
        greatest(new_purchases.last_order_date, coalesce(loaded.last_order_date, new_purchases.last_order_date))
            as last_order_date
    from new_purchases
    left join {{ this }} as loaded
        on
            new_purchases.customer_id = loaded.customer_id
            and new_purchases.category = loaded.category
),
{% else %}
merged as (
    select * from new_purchases
),
{% endif %}

final as (
    select
        customer_id,
        category,
        first_order_date,
        {{ month_start('first_order_date') }} as first_order_month,
        last_order_date
    from merged
)

select * from final
