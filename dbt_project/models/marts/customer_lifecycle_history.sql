{#- Incremental like the panel: a run replaces the months the panel recomputed, reading
    one month more for each customer's previous stage. -#}
{{ config(**incremental_config(partition_by='month_start', unique_key=['customer_id', 'month_start'])) }}
{{ assert_not_rewound('evaluated_on') }}

with

staged as {{ not_materialized() }} (
    select * from {{ ref('int_customer_months__staged') }}
    {%- if is_incremental() %}
    where month_start >= {{ dbt.dateadd('month', -1, incremental_months_start()) }}
    {%- endif %}
),

stages as (
    select * from {{ ref('lifecycle_stages') }}
),

reasons as (
    select * from {{ ref('lifecycle_stage_reasons') }}
),

-- the previous month's stage of the same customer (every customer has a row in every
-- month from its first on, so the previous row is the previous month). A window: at
-- 1M customers it took 50 CPU seconds against 57-65 for a join of the table to itself
-- on the previous month, though the join was cheaper at 100k (docs/performance.md).
with_previous as (
    select
        staged.*,
        lag(staged.stage_code) over (partition by staged.customer_id order by staged.month_start) as previous_stage_code
    from staged
),

final as (
    select
        with_previous.customer_id,
        with_previous.month_start,
        with_previous.evaluated_on,
        with_previous.is_as_of_month,
        with_previous.stage_code,
        stages.name_en as stage_name_en,
        stages.name_zh as stage_name_zh,
        with_previous.stage_reason_code,
        reasons.description_en as stage_reason_en,
        reasons.description_zh as stage_reason_zh,
        with_previous.previous_stage_code,
        coalesce(with_previous.stage_code <> with_previous.previous_stage_code, false) as is_stage_change,
        with_previous.completed_orders_to_date,
        with_previous.orders_in_month,
        with_previous.revenue_in_month,
        with_previous.trailing_window_revenue,
        with_previous.previous_window_revenue,
        with_previous.best_trailing_window_revenue,
        with_previous.days_since_last_order,
        with_previous.median_gap_days,
        with_previous.tenure_days
    from with_previous
    left join stages
        on with_previous.stage_code = stages.stage_code
    left join reasons
        on with_previous.stage_reason_code = reasons.reason_code
)

select * from final
{%- if is_incremental() %}
where month_start >= {{ incremental_months_start() }}
{%- endif %}
{{ in_month_order() }}
