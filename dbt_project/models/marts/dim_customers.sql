{#- Customer 360, one row per CRM customer. Personal data only as masked forms for
    people to read and salted hashes for joining (macros/pii.sql). Satisfaction,
    loyalty and contribution stay separate columns (domain.md section 1). -#}
with

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

customer_types as (
    select * from {{ ref('customer_types') }}
),

order_stats as (
    select * from {{ ref('int_customers__order_stats') }}
),

ticket_stats as (
    select * from {{ ref('int_customers__ticket_stats') }}
),

survey_stats as (
    select * from {{ ref('int_customers__survey_stats') }}
),

marketing_stats as (
    select * from {{ ref('int_customers__marketing_stats') }}
),

lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

value_segments as (
    select * from {{ ref('customer_value_segments') }}
),

as_of as (
    select * from {{ ref('int_calendar__as_of') }}
),

final as (
    select
        customers.customer_id,
        {{ mask_name('customers.name_zh') }} as name_zh_masked,
        {{ mask_name('customers.name_latin') }} as name_latin_masked,
        {{ mask_email('customers.email') }} as email_masked,
        {{ last_characters('customers.phone') }} as phone_last4,
        {{ last_characters('customers.national_id') }} as national_id_last4,
        {{ hash_pii('customers.email') }} as email_hash,
        {{ hash_pii('customers.phone') }} as phone_hash,
        {{ hash_pii('customers.national_id') }} as national_id_hash,
        customers.gender,
        floor({{ days_between('customers.birth_date', 'as_of.as_of_date') }} / {{ as_double(365.25) }}) as age_years,
        customers.customer_type,
        customer_types.name_en as customer_type_name_en,
        customer_types.name_zh as customer_type_name_zh,
        customers.city,
        customers.acquisition_channel,
        customers.signed_up_at,
        customers.signup_date,
        customers.customer_status,
        customers.closed_at,
        customers.close_reason,
        customers.estimated_annual_wallet,
        order_stats.first_order_at,
        order_stats.last_order_at,
        coalesce(order_stats.completed_orders, 0) as completed_orders,
        coalesce(order_stats.cancelled_orders, 0) as cancelled_orders,
        coalesce(order_stats.refunded_orders, 0) as refunded_orders,
        coalesce(order_stats.revenue, 0) as revenue,
        coalesce(order_stats.margin, 0) as margin,
        order_stats.average_order_value,
        coalesce(order_stats.trailing_12m_revenue, 0) as trailing_12m_revenue,
        value_segments.share_of_wallet,
        coalesce(order_stats.categories_bought, 0) as categories_bought,
        order_stats.categories_bought_list,
        order_stats.tenure_days,
        order_stats.days_since_last_order,
        lifecycle.stage_code,
        lifecycle.stage_name_en,
        lifecycle.stage_name_zh,
        lifecycle.stage_reason_code,
        lifecycle.stage_since_month,
        value_segments.current_value,
        value_segments.growth_potential,
        value_segments.value_class_code,
        value_segments.value_class_name_en,
        value_segments.value_class_name_zh,
        value_segments.loyalty_score,
        value_segments.segment_code,
        value_segments.segment_name_en,
        value_segments.segment_name_zh,
        value_segments.pyramid_tier_code,
        value_segments.rfm_group_code,
        coalesce(ticket_stats.tickets, 0) as tickets,
        coalesce(ticket_stats.complaints, 0) as complaints,
        coalesce(ticket_stats.open_complaints, 0) as open_complaints,
        ticket_stats.last_complaint_at,
        survey_stats.latest_csat,
        survey_stats.average_csat,
        survey_stats.latest_nps,
        survey_stats.latest_satisfaction_index,
        survey_stats.average_satisfaction_index,
        marketing_stats.last_touch_at,
        marketing_stats.last_touch_type,
        marketing_stats.last_touch_channel,
        marketing_stats.last_response_at,
        marketing_stats.last_response_touch_type,
        coalesce(marketing_stats.touches, 0) as marketing_touches,
        coalesce(marketing_stats.touch_responses, 0) as marketing_responses
    from customers
    cross join as_of
    left join customer_types
        on customers.customer_type = customer_types.customer_type_code
    left join order_stats
        on customers.customer_id = order_stats.customer_id
    left join ticket_stats
        on customers.customer_id = ticket_stats.customer_id
    left join survey_stats
        on customers.customer_id = survey_stats.customer_id
    left join marketing_stats
        on customers.customer_id = marketing_stats.customer_id
    left join lifecycle
        on customers.customer_id = lifecycle.customer_id
    left join value_segments
        on customers.customer_id = value_segments.customer_id
)

select * from final
