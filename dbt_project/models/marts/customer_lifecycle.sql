with

staged as {{ not_materialized() }} (
    select * from {{ ref('int_customer_months__staged') }}
),

stages as (
    select * from {{ ref('lifecycle_stages') }}
),

reasons as (
    select * from {{ ref('lifecycle_stage_reasons') }}
),

current_stages as (
    select * from staged
    where is_as_of_month
),

other_stage_months as (
    select
        staged.customer_id,
        staged.month_start,
        staged.stage_code,
        row_number() over (partition by staged.customer_id order by staged.month_start desc) as recency_rank
    from staged
    inner join current_stages
        on
            staged.customer_id = current_stages.customer_id
            and staged.stage_code <> current_stages.stage_code
),

last_other_stage as (
    select * from other_stage_months
    where recency_rank = 1
),

first_months as (
    select
        customer_id,
        min(month_start) as first_month_start
    from staged
    group by customer_id
),

final as (
    select
        current_stages.customer_id,
        current_stages.evaluated_on,
        current_stages.stage_code,
        stages.name_en as stage_name_en,
        stages.name_zh as stage_name_zh,
        current_stages.stage_reason_code,
        reasons.description_en as stage_reason_en,
        reasons.description_zh as stage_reason_zh,
        last_other_stage.stage_code as previous_stage_code,
        coalesce(
            cast({{ dbt.dateadd('month', 1, 'last_other_stage.month_start') }} as date),
            first_months.first_month_start
        ) as stage_since_month,
        current_stages.completed_orders_to_date,
        current_stages.revenue_to_date,
        current_stages.trailing_window_revenue,
        current_stages.previous_window_revenue,
        current_stages.best_trailing_window_revenue,
        current_stages.days_since_last_order,
        current_stages.median_gap_days,
        current_stages.tenure_days
    from current_stages
    inner join first_months
        on current_stages.customer_id = first_months.customer_id
    left join last_other_stage
        on current_stages.customer_id = last_other_stage.customer_id
    left join stages
        on current_stages.stage_code = stages.stage_code
    left join reasons
        on current_stages.stage_reason_code = reasons.reason_code
)

select * from final
