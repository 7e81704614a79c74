{#- The CLV asset scores with wall-clock timestamps, so scores are not filtered by
    the as-of date; the asset itself fits on data up to the as-of date. -#}
with

source as (
    select * from {{ source('analytics', 'customer_clv') }}
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
        frequency as clv_frequency,
        recency as clv_recency,
        t as clv_age,
        monetary_value as clv_monetary_value,
        p_alive,
        expected_purchases,
        expected_avg_spend,
        expected_spend,
        clv,
        horizon_months as clv_horizon_months,
        model_id as clv_model_id,
        scored_at as clv_scored_at
    from latest_score
)

select * from final
