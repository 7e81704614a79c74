with

responses as (
    select * from {{ ref('stg_surveys__responses') }}
),

ranked as (
    select
        *,
        perception_score / nullif(expectation_score, 0) as satisfaction_index,
        row_number() over (
            partition by customer_id
            order by case when csat is null then 1 else 0 end, responded_at desc, response_id desc
        ) as csat_recency_rank,
        row_number() over (
            partition by customer_id
            order by case when nps is null then 1 else 0 end, responded_at desc, response_id desc
        ) as nps_recency_rank,
        row_number() over (
            partition by customer_id
            order by
                case when perception_score is null or expectation_score is null then 1 else 0 end,
                responded_at desc,
                response_id desc
        ) as index_recency_rank
    from responses
),

final as (
    select
        customer_id,
        count(*) as survey_responses,
        max(responded_at) as last_response_at,
        avg(csat) as average_csat,
        max(case when csat_recency_rank = 1 then csat end) as latest_csat,
        max(case when nps_recency_rank = 1 then nps end) as latest_nps,
        avg(satisfaction_index) as average_satisfaction_index,
        max(case when index_recency_rank = 1 then satisfaction_index end) as latest_satisfaction_index,
        max(case when index_recency_rank = 1 then perception_score end) as latest_perception_score,
        max(case when index_recency_rank = 1 then expectation_score end) as latest_expectation_score,
        avg(repurchase_intent) as average_repurchase_intent
    from ranked
    group by customer_id
)

select * from final
