with

source as (
    select * from {{ source('support', 'support_tickets') }}
),

known_by_as_of as (
    select *
    from source
    where
        updated_at < {{ as_of_cutoff() }}
        and opened_at < {{ as_of_cutoff() }}
),

ranked_versions as (
    select
        *,
        row_number() over (
            partition by ticket_id
            order by updated_at desc
        ) as version_rank
    from known_by_as_of
),

latest_version as (
    select * from ranked_versions
    where version_rank = 1
),

final as (
    select
        trim(ticket_id) as ticket_id,
        trim(customer_id) as customer_id,
        opened_at,
        first_response_at,
        resolved_at,
        lower(trim(channel)) as ticket_channel,
        lower(trim(ticket_type)) as ticket_type,
        lower(trim(category)) as ticket_category,
        lower(trim(fault_party)) as fault_party,
        first_contact_resolved as is_first_contact_resolved,
        escalated as is_escalated,
        satisfaction_after,
        lower(trim(status)) as ticket_status,
        updated_at as version_updated_at,
        _loaded_at as loaded_at
    from latest_version
)

select * from final
