{#- Like the CLV scores, churn scores carry wall-clock timestamps: the latest score
    per customer is kept, not filtered by the as-of date. -#}
with

source as (
    select * from {{ source('analytics', 'customer_churn_scores') }}
),

ranked_scores as (
    select
        *,
        row_number() over (
            partition by customer_id
            order by scored_at desc
        ) as score_rank
    from source
),

latest_score as (
    select * from ranked_scores
    where score_rank = 1
),

final as (
    select
        trim(customer_id) as customer_id,
        churn_probability,
        lower(trim(risk_band)) as churn_risk_band,
        driver_1 as churn_driver_1,
        driver_2 as churn_driver_2,
        driver_3 as churn_driver_3,
        model_id as churn_model_id,
        scored_at as churn_scored_at
    from latest_score
)

select * from final
