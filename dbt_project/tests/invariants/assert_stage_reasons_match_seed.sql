-- The reason the stage rule reports belongs to the stage it assigned, as the seed
-- lifecycle_stage_reasons says: returns the pairs that do not.
with

staged as (
    select * from {{ ref('int_customer_months__staged') }}
),

reasons as (
    select * from {{ ref('lifecycle_stage_reasons') }}
),

pairs as (
    select distinct
        stage_code,
        stage_reason_code
    from staged
),

final as (
    select pairs.*
    from pairs
    left join reasons
        on
            pairs.stage_reason_code = reasons.reason_code
            and pairs.stage_code = reasons.stage_code
    where reasons.reason_code is null
)

select * from final
