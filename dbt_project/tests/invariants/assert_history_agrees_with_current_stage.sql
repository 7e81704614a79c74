-- The history at the as-of month and the current stage are the same rule applied
-- at the same date: returns the customers where they differ.
with

lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

history as (
    select * from {{ ref('customer_lifecycle_history') }}
    where is_as_of_month
),

final as (
    select
        coalesce(lifecycle.customer_id, history.customer_id) as customer_id,
        lifecycle.stage_code as current_stage_code,
        history.stage_code as history_stage_code,
        lifecycle.stage_reason_code as current_reason_code,
        history.stage_reason_code as history_reason_code
    from lifecycle
    full outer join history
        on lifecycle.customer_id = history.customer_id
)

select * from final
where
    current_stage_code is null
    or history_stage_code is null
    or current_stage_code <> history_stage_code
    or current_reason_code <> history_reason_code
