with

touches as (
    select * from {{ ref('stg_marketing__touches') }}
),

ranked as (
    select
        *,
        row_number() over (partition by customer_id order by sent_at desc, touch_id desc) as touch_recency_rank,
        row_number() over (
            partition by customer_id
            order by case when has_responded then 0 else 1 end, responded_at desc, touch_id desc
        ) as response_recency_rank
    from touches
),

final as (
    select
        customer_id,
        count(*) as touches,
        sum(case when has_responded then 1 else 0 end) as touch_responses,
        avg(case when has_responded then 1 else 0 end) as touch_response_rate,
        max(case when touch_recency_rank = 1 then sent_at end) as last_touch_at,
        max(case when touch_recency_rank = 1 then touch_type end) as last_touch_type,
        max(case when touch_recency_rank = 1 then touch_channel end) as last_touch_channel,
        max(case when response_recency_rank = 1 and has_responded then responded_at end) as last_response_at,
        max(case when response_recency_rank = 1 and has_responded then touch_type end) as last_response_touch_type
    from ranked
    group by customer_id
)

select * from final
