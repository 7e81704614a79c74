{#- Relationship and service KPIs per calendar month (domain.md sections 3c, 4 and 5).
    Active = in a relationship stage (seed lifecycle_stages) at the month end.
    Retention rate = (active at the end - new) / active at the start; churn rate =
    customers who became churned in the month / active at the start. A customer's
    weekly value is its trailing-12-month revenue per week of that year (or of its
    tenure when shorter); annualised revenue at risk = weekly value x
    var('weeks_per_year') summed over customers in decline, and annualised revenue
    lost the same over the month's churners (at the previous month end).

    Incremental: a run replaces the months from the panel's window less
    var('service_recovery_days'), the longest a month's figures keep changing (its
    complainants count once their recovery window has passed), reading the events
    of those months and the month before (for changes since the previous month). -#}
{{ config(**incremental_config(partition_by='month_start')) }}
{{ assert_not_rewound('evaluated_on') }}

{%- set since = month_start(dbt.dateadd('day', -var('service_recovery_days'), incremental_start('evaluated_on')))
    if is_incremental() else none %}
{%- set month_before = 'cast(' ~ dbt.dateadd('month', -1, since) ~ ' as date)' if since else none %}

with

months as (
    select * from {{ ref('int_calendar__months') }}
    {%- if since %}
    where month_start >= {{ month_before }}
    {%- endif %}
),

staged as (
    select * from {{ ref('int_customer_months__staged') }}
    {%- if since %}
    where month_start >= {{ month_before }}
    {%- endif %}
),

tickets as (
    select * from {{ ref('stg_support__tickets') }}
    {%- if since %}
    where opened_at >= {{ since }} or resolved_at >= {{ since }}
    {%- endif %}
),

responses as (
    select * from {{ ref('stg_surveys__responses') }}
    {%- if since %}
    where responded_at >= {{ since }}
    {%- endif %}
),

orders as (
    select * from {{ ref('int_orders__aggregated') }}
    where
        is_completed
        and {{ on_or_after('order_date', since) }}
),

as_of as (
    select * from {{ ref('int_calendar__as_of') }}
),

stages as (
    select * from {{ ref('lifecycle_stages') }}
),

customer_months as (
    select
        staged.customer_id,
        staged.month_start,
        staged.stage_code,
        coalesce(stages.is_relationship_stage, false) as is_active,
        coalesce({{ month_start('staged.first_order_date') }} = staged.month_start, false) as is_new,
        staged.orders_in_month > 0 as is_buyer,
        staged.orders_in_month > 0 and staged.completed_orders_to_date > staged.orders_in_month as is_repeat_buyer,
        staged.orders_in_month,
        staged.revenue_in_month,
        staged.margin_in_month,
        staged.trailing_12m_revenue,
        staged.trailing_12m_revenue
        / (least(coalesce(staged.tenure_days, 0) + 1, {{ number_var('trailing_revenue_days') }}) / {{ as_double(7) }})
            as weekly_value
    from staged
    left join stages
        on staged.stage_code = stages.stage_code
),

customer_month_changes as (
    select
        *,
        lag(stage_code) over (partition by customer_id order by month_start) as previous_stage_code,
        lag(weekly_value) over (partition by customer_id order by month_start) as previous_weekly_value,
        row_number() over (partition by month_start order by trailing_12m_revenue desc, customer_id asc)
            as revenue_rank,
        count(*) over (partition by month_start) as customers_in_month
    from customer_months
),

customer_totals as (
    select
        month_start,
        sum(case when is_active then 1 else 0 end) as active_customers,
        sum(case when is_new then 1 else 0 end) as new_customers,
        sum(
            case when stage_code = 'churned' and coalesce(previous_stage_code, '') <> 'churned' then 1 else 0 end
        ) as churned_customers,
        sum(case when is_buyer then 1 else 0 end) as buying_customers,
        sum(case when is_repeat_buyer then 1 else 0 end) as repeat_buying_customers,
        sum(orders_in_month) as orders,
        sum(revenue_in_month) as revenue,
        sum(margin_in_month) as margin,
        sum(
            case
                when revenue_rank <= {{ number_var('top_revenue_customer_share') }} * customers_in_month
                    then trailing_12m_revenue
                else 0
            end
        ) / nullif({{ as_double('sum(trailing_12m_revenue)') }}, 0) as top_customer_revenue_share,
        sum(case when stage_code = 'decline' then weekly_value else 0 end) * {{ number_var('weeks_per_year') }}
            as annualised_revenue_at_risk,
        sum(
            case
                when stage_code = 'churned' and coalesce(previous_stage_code, '') <> 'churned'
                    then coalesce(previous_weekly_value, 0)
                else 0
            end
        ) * {{ number_var('weeks_per_year') }} as annualised_revenue_lost
    from customer_month_changes
    group by month_start
),

ticket_totals as (
    select
        {{ month_start('opened_at') }} as month_start,
        count(*) as tickets_opened,
        sum(case when ticket_type = 'complaint' then 1 else 0 end) as complaints_opened,
        avg(case when is_first_contact_resolved then 1 when not is_first_contact_resolved then 0 end)
            as first_contact_resolution_rate,
        avg({{ dbt.datediff('opened_at', 'first_response_at', 'second') }} / {{ as_double(3600) }}) as average_first_response_hours
    from tickets
    group by {{ month_start('opened_at') }}
),

resolution_totals as (
    select
        {{ month_start('resolved_at') }} as month_start,
        count(*) as tickets_resolved,
        avg({{ dbt.datediff('opened_at', 'resolved_at', 'second') }} / {{ as_double(3600) }}) as average_resolution_hours
    from tickets
    where resolved_at is not null
    group by {{ month_start('resolved_at') }}
),

survey_totals as (
    select
        {{ month_start('responded_at') }} as month_start,
        count(*) as survey_responses,
        avg(csat) as average_csat,
        100 * (
            avg(case when nps >= {{ number_var('promoter_min_nps') }} then 1 when nps is not null then 0 end)
            - avg(case when nps <= {{ number_var('detractor_max_nps') }} then 1 when nps is not null then 0 end)
        ) as nps,
        avg(perception_score / nullif(expectation_score, 0)) as average_satisfaction_index
    from responses
    group by {{ month_start('responded_at') }}
),

resolved_complaints as (
    select
        customer_id,
        ticket_id,
        resolved_at,
        {{ month_start('resolved_at') }} as month_start
    from tickets
    where ticket_type = 'complaint' and resolved_at is not null
),

complaint_recoveries as (
    select
        resolved_complaints.customer_id,
        resolved_complaints.month_start,
        max(case when orders.order_id is not null then 1 else 0 end) as bought_again,
        max(resolved_complaints.resolved_at) as last_resolved_at
    from resolved_complaints
    left join orders
        on
            resolved_complaints.customer_id = orders.customer_id
            and resolved_complaints.resolved_at < orders.ordered_at
            and orders.ordered_at
            <= {{ dbt.dateadd('day', var('service_recovery_days'), 'resolved_complaints.resolved_at') }}
    group by resolved_complaints.customer_id, resolved_complaints.month_start
),

-- only complainants whose whole recovery window lies before the as-of date count
recovery_totals as (
    select
        complaint_recoveries.month_start,
        count(*) as recovery_complainants,
        avg(complaint_recoveries.bought_again) as service_recovery_rate
    from complaint_recoveries
    cross join as_of
    where
        {{ days_between('complaint_recoveries.last_resolved_at', 'as_of.as_of_date') }}
        >= {{ number_var('service_recovery_days') }}
    group by complaint_recoveries.month_start
),

final as (
    select
        months.month_start,
        months.evaluated_on,
        months.is_as_of_month,
        coalesce(customer_totals.active_customers, 0) as active_customers,
        coalesce(lag(customer_totals.active_customers) over (order by months.month_start), 0)
            as active_customers_at_start,
        coalesce(customer_totals.new_customers, 0) as new_customers,
        coalesce(customer_totals.churned_customers, 0) as churned_customers,
        {{ as_double('customer_totals.active_customers - customer_totals.new_customers') }}
        / nullif(lag(customer_totals.active_customers) over (order by months.month_start), 0) as retention_rate,
        {{ as_double('customer_totals.churned_customers') }}
        / nullif(lag(customer_totals.active_customers) over (order by months.month_start), 0) as churn_rate,
        {{ as_double('customer_totals.repeat_buying_customers') }} / nullif(customer_totals.buying_customers, 0)
            as repeat_purchase_rate,
        coalesce(customer_totals.orders, 0) as orders,
        coalesce(customer_totals.revenue, 0) as revenue,
        coalesce(customer_totals.margin, 0) as margin,
        customer_totals.top_customer_revenue_share,
        coalesce(ticket_totals.tickets_opened, 0) as tickets_opened,
        coalesce(ticket_totals.complaints_opened, 0) as complaints_opened,
        {{ as_double('100 * coalesce(ticket_totals.complaints_opened, 0)') }} / nullif(customer_totals.active_customers, 0)
            as complaints_per_100_active,
        ticket_totals.first_contact_resolution_rate,
        ticket_totals.average_first_response_hours,
        resolution_totals.average_resolution_hours,
        coalesce(survey_totals.survey_responses, 0) as survey_responses,
        survey_totals.average_csat,
        survey_totals.nps,
        survey_totals.average_satisfaction_index,
        coalesce(recovery_totals.recovery_complainants, 0) as recovery_complainants,
        recovery_totals.service_recovery_rate,
        coalesce(customer_totals.annualised_revenue_at_risk, 0) as annualised_revenue_at_risk,
        coalesce(customer_totals.annualised_revenue_lost, 0) as annualised_revenue_lost
    from months
    left join customer_totals
        on months.month_start = customer_totals.month_start
    left join ticket_totals
        on months.month_start = ticket_totals.month_start
    left join resolution_totals
        on months.month_start = resolution_totals.month_start
    left join survey_totals
        on months.month_start = survey_totals.month_start
    left join recovery_totals
        on months.month_start = recovery_totals.month_start
)

select * from final
{%- if since %}
where month_start >= {{ since }}
{%- endif %}
