with

source as (
    select * from {{ source('surveys', 'surveys_responses') }}
),

known_by_as_of as (
    select *
    from source
    where responded_at < {{ as_of_cutoff() }}
),

final as (
    select
        trim(response_id) as response_id,
        trim(customer_id) as customer_id,
        responded_at,
        csat,
        nps,
        expectation_score,
        perception_score,
        repurchase_intent,
        _loaded_at as loaded_at
    from known_by_as_of
)

select * from final
