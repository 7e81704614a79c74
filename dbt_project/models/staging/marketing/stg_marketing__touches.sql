with

source as (
    select * from {{ source('marketing', 'marketing_touches') }}
),

known_by_as_of as (
    select *
    from source
    where sent_at < {{ as_of_cutoff() }}
),

final as (
    select
        trim(touch_id) as touch_id,
        trim(customer_id) as customer_id,
        trim(campaign_id) as campaign_id,
        campaign_name,
        lower(trim(channel)) as touch_channel,
        lower(trim(touch_type)) as touch_type,
        sent_at,
        -- a response after the as-of date was not known yet
        coalesce(responded and (responded_at is null or responded_at < {{ as_of_cutoff() }}), false)
            as has_responded,
        case when responded_at < {{ as_of_cutoff() }} then responded_at end as responded_at,
        _loaded_at as loaded_at
    from known_by_as_of
)

select * from final
