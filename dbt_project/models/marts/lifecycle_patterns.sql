{#- One row per ended relationship: every customer churned at the as-of month, and
    every closed account (a closed account without a completed order stays a prospect
    by the stage precedence, but its relationship ended too).

    The pattern is decided by the stage the customer left from: the last of
    exploration, formation or stability observed before the end. Decline is how
    relationships end, not where they are classified, so a customer who went
    stability -> decline -> churned left from stability. A relationship that ended
    before any of the three was observed (closed in the month of its first order,
    or closed without a completed order) aborted in exploration. Stability length
    is the number of days of the months observed in stability. -#}
with

staged as {{ not_materialized() }} (
    select * from {{ ref('int_customer_months__staged') }}
),

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

patterns as (
    select * from {{ ref('lifecycle_pattern_types') }}
),

current_stages as (
    select * from staged
    where is_as_of_month
),

ended as (
    select
        current_stages.customer_id,
        current_stages.stage_code as current_stage_code,
        customers.close_reason,
        current_stages.last_order_date,
        case
            when current_stages.is_closed then 'account_closed'
            else current_stages.stage_reason_code
        end as ended_by,
        case
            when current_stages.is_closed then customers.closed_date
            else cast({{ dbt.dateadd('day', var('churn_inactive_days'), 'current_stages.last_order_date') }} as date)
        end as ended_on
    from current_stages
    inner join customers
        on current_stages.customer_id = customers.customer_id
    where current_stages.is_closed or current_stages.stage_code = 'churned'
),

months_before_end as (
    select
        staged.customer_id,
        staged.month_start,
        staged.stage_code,
        {{ days_between('staged.month_start', 'staged.evaluated_on') }} + 1 as days_observed
    from staged
    inner join ended
        on staged.customer_id = ended.customer_id
    where staged.stage_code <> 'churned'
),

ranked_relationship_months as (
    select
        *,
        row_number() over (partition by customer_id order by month_start desc) as recency_rank
    from months_before_end
    where stage_code in ('exploration', 'formation', 'stability')
),

relationship_stages as (
    select stage_code from {{ ref('lifecycle_stages') }}
    where is_relationship_stage
),

stability_lengths as (
    select
        months_before_end.customer_id,
        sum(
            case when months_before_end.stage_code = 'stability' then months_before_end.days_observed else 0 end
        ) as stability_days,
        count(*) as relationship_months
    from months_before_end
    inner join relationship_stages
        on months_before_end.stage_code = relationship_stages.stage_code
    group by months_before_end.customer_id
),

classified as (
    select
        ended.*,
        coalesce(ranked_relationship_months.stage_code, 'exploration') as exit_stage_code,
        coalesce(stability_lengths.stability_days, 0) as stability_days,
        coalesce(stability_lengths.relationship_months, 0) as relationship_months
    from ended
    left join ranked_relationship_months
        on
            ended.customer_id = ranked_relationship_months.customer_id
            and ranked_relationship_months.recency_rank = 1
    left join stability_lengths
        on ended.customer_id = stability_lengths.customer_id
),

final as (
    select
        classified.customer_id,
        classified.ended_by,
        classified.ended_on,
        classified.close_reason,
        classified.current_stage_code,
        classified.exit_stage_code,
        classified.relationship_months,
        classified.stability_days,
        patterns.pattern_code,
        patterns.name_en as pattern_name_en,
        patterns.name_zh as pattern_name_zh
    from classified
    inner join patterns
        on
            classified.exit_stage_code = patterns.exit_stage_code
            and (
                classified.exit_stage_code = 'stability'
                and classified.stability_days >= {{ number_var('pattern_long_stability_days') }}
            ) = patterns.is_long_stability
)

select * from final
