{#- Churn early warning (domain.md section 4, 忠诚预警), one row per CRM customer:
    the churn model's score beside the behavioural warning signals, with the rule
    that a high-value customer whose purchase frequency drops is flagged at once. -#}
with

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

churn_scores as (
    select * from {{ ref('stg_analytics__customer_churn_scores') }}
),

risk_bands as (
    select * from {{ ref('churn_risk_bands') }}
),

current_months as (
    select * from {{ ref('int_customer_months__staged') }}
    where is_as_of_month
),

activity as (
    select * from {{ ref('int_customer_months__activity') }}
),

as_of as (
    select * from {{ ref('int_calendar__as_of') }}
),

value_segments as (
    select * from {{ ref('customer_value_segments') }}
),

current_activity as (
    select activity.*
    from activity
    inner join as_of
        on activity.month_start = as_of.as_of_month_start
),

signals as (
    select
        customers.customer_id,
        current_months.stage_code,
        value_segments.value_class_code,
        value_segments.current_value_level,
        current_months.trailing_12m_revenue,
        churn_scores.churn_probability,
        churn_scores.churn_risk_band,
        churn_scores.churn_driver_1,
        churn_scores.churn_driver_2,
        churn_scores.churn_driver_3,
        coalesce(current_months.trailing_window_orders < current_months.previous_window_orders, false)
            as is_frequency_falling,
        coalesce(current_activity.complaints_opened > 0, false) as has_new_complaint,
        coalesce(current_activity.unresolved_complaints > 0, false) as has_unresolved_complaint,
        coalesce(current_activity.latest_csat <= {{ number_var('low_csat_max') }}, false) as is_low_satisfaction,
        coalesce(
            current_activity.praises_received = 0
            and current_activity.touch_responses = 0
            and coalesce(current_activity.latest_nps < {{ number_var('promoter_min_nps') }}, true),
            true
        ) as has_no_positive_feedback
    from customers
    left join current_months
        on customers.customer_id = current_months.customer_id
    left join current_activity
        on customers.customer_id = current_activity.customer_id
    left join value_segments
        on customers.customer_id = value_segments.customer_id
    left join churn_scores
        on customers.customer_id = churn_scores.customer_id
),

final as (
    select
        signals.*,
        risk_bands.name_en as churn_risk_band_name_en,
        risk_bands.name_zh as churn_risk_band_name_zh,
        signals.churn_probability * signals.trailing_12m_revenue as expected_revenue_at_risk,
        (case when signals.is_frequency_falling then 1 else 0 end)
        + (case when signals.has_new_complaint then 1 else 0 end)
        + (case when signals.has_unresolved_complaint then 1 else 0 end)
        + (case when signals.is_low_satisfaction then 1 else 0 end)
        + (case when signals.has_no_positive_feedback then 1 else 0 end) as warning_signals,
        signals.current_value_level = 'high' and signals.is_frequency_falling as needs_immediate_action
    from signals
    left join risk_bands
        on signals.churn_risk_band = risk_bands.risk_band_code
)

select * from final
