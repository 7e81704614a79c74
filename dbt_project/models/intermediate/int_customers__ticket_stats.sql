with

tickets as (
    select * from {{ ref('stg_support__tickets') }}
),

ticket_measures as (
    select
        *,
        ticket_type = 'complaint' as is_complaint,
        ticket_status = 'open' as is_open,
        {{ dbt.datediff('opened_at', 'first_response_at', 'second') }} / {{ as_double(3600) }} as first_response_hours,
        {{ dbt.datediff('opened_at', 'resolved_at', 'second') }} / {{ as_double(3600) }} as resolution_hours
    from tickets
),

final as (
    select
        customer_id,
        count(*) as tickets,
        sum(case when is_complaint then 1 else 0 end) as complaints,
        sum(case when is_complaint and is_open then 1 else 0 end) as open_complaints,
        sum(case when is_complaint and not is_open then 1 else 0 end) as resolved_complaints,
        sum(case when ticket_type = 'praise' then 1 else 0 end) as praises,
        sum(case when is_escalated then 1 else 0 end) as escalated_tickets,
        avg(case when is_first_contact_resolved then 1 when not is_first_contact_resolved then 0 end)
            as first_contact_resolution_rate,
        avg(first_response_hours) as average_first_response_hours,
        avg(resolution_hours) as average_resolution_hours,
        avg(satisfaction_after) as average_satisfaction_after,
        max(opened_at) as last_ticket_at,
        max(case when is_complaint then opened_at end) as last_complaint_at
    from ticket_measures
    group by customer_id
)

select * from final
