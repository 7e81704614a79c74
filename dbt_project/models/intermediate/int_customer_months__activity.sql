{#- Point-in-time service, survey, marketing and assortment activity per
    customer-month, on the grain of int_customer_months__panel: everything a churn
    model may know at a past month end, and nothing after it. Latest survey answers
    are carried forward from the last month that had one.

    Incremental like the panel: a run recomputes the months the panel recomputed,
    from the events in them and the totals and latest answers of the month before
    (the opening balance). -#}
{{ config(**incremental_config(partition_by='month_start', unique_key=['customer_id', 'month_start'])) }}
{{ assert_not_rewound('evaluated_on') }}

{%- set since = incremental_months_start() if is_incremental() else none %}

with

panel as (
    select * from {{ ref('int_customer_months__panel') }}
    {%- if since %}
    where month_start >= {{ since }}
    {%- endif %}
),

tickets as (
    select * from {{ ref('stg_support__tickets') }}
),

responses as (
    select * from {{ ref('stg_surveys__responses') }}
    {%- if since %}
    where responded_at >= {{ since }}
    {%- endif %}
),

touches as (
    select * from {{ ref('stg_marketing__touches') }}
),

first_category_purchases as (
    select * from {{ ref('int_customer_categories__first_purchases') }}
    {%- if since %}
    where first_order_month >= {{ since }}
    {%- endif %}
),

{% if since %}
loaded_months as (
    {{ incremental_opening_months() }}
),

opening_balance as (
    select
        customer_id,
        complaints_to_date,
        complaints_to_date - unresolved_complaints as complaints_resolved_to_date,
        touches_to_date,
        touch_responses_to_date,
        categories_bought_to_date,
        latest_csat,
        latest_nps,
        latest_satisfaction_index
    from loaded_months
),
{% else %}
opening_balance as (
    select
        customer_id,
        0 as complaints_to_date,
        0 as complaints_resolved_to_date,
        0 as touches_to_date,
        0 as touch_responses_to_date,
        0 as categories_bought_to_date,
        cast(null as {{ dbt.type_int() }}) as latest_csat,
        cast(null as {{ dbt.type_int() }}) as latest_nps,
        cast(null as {{ dbt.type_float() }}) as latest_satisfaction_index
    from panel
    where 1 = 0
),
{% endif %}

tickets_opened as (
    select
        customer_id,
        {{ month_start('opened_at') }} as month_start,
        count(*) as tickets_opened,
        sum(case when ticket_type = 'complaint' then 1 else 0 end) as complaints_opened,
        sum(case when ticket_type = 'praise' then 1 else 0 end) as praises_received
    from tickets
    {%- if since %}
    where opened_at >= {{ since }}
    {%- endif %}
    group by customer_id, {{ month_start('opened_at') }}
),

complaints_resolved as (
    select
        customer_id,
        {{ month_start('resolved_at') }} as month_start,
        count(*) as complaints_resolved
    from tickets
    where
        ticket_type = 'complaint'
        and resolved_at is not null
        and {{ on_or_after('resolved_at', since) }}
    group by customer_id, {{ month_start('resolved_at') }}
),

ranked_responses as (
    select
        customer_id,
        {{ month_start('responded_at') }} as month_start,
        csat,
        nps,
        perception_score / nullif(expectation_score, 0) as satisfaction_index,
        row_number() over (
            partition by customer_id, {{ month_start('responded_at') }}
            order by case when csat is null then 1 else 0 end, responded_at desc, response_id desc
        ) as csat_rank,
        row_number() over (
            partition by customer_id, {{ month_start('responded_at') }}
            order by case when nps is null then 1 else 0 end, responded_at desc, response_id desc
        ) as nps_rank,
        row_number() over (
            partition by customer_id, {{ month_start('responded_at') }}
            order by
                case when perception_score is null or expectation_score is null then 1 else 0 end,
                responded_at desc,
                response_id desc
        ) as index_rank
    from responses
),

monthly_responses as (
    select
        customer_id,
        month_start,
        count(*) as survey_responses,
        max(case when csat_rank = 1 then csat end) as last_csat_in_month,
        max(case when nps_rank = 1 then nps end) as last_nps_in_month,
        max(case when index_rank = 1 then satisfaction_index end) as last_satisfaction_index_in_month
    from ranked_responses
    group by customer_id, month_start
),

touches_sent as (
    select
        customer_id,
        {{ month_start('sent_at') }} as month_start,
        count(*) as touches_sent
    from touches
    {%- if since %}
    where sent_at >= {{ since }}
    {%- endif %}
    group by customer_id, {{ month_start('sent_at') }}
),

touch_responses as (
    select
        customer_id,
        {{ month_start('responded_at') }} as month_start,
        count(*) as touch_responses
    from touches
    where
        has_responded
        and responded_at is not null
        and {{ on_or_after('responded_at', since) }}
    group by customer_id, {{ month_start('responded_at') }}
),

new_categories as (
    select
        customer_id,
        first_order_month as month_start,
        count(*) as new_categories_bought
    from first_category_purchases
    group by customer_id, first_order_month
),

monthly as {{ materialized() }} (
    select
        panel.customer_id,
        panel.month_start,
        panel.evaluated_on,
        coalesce(tickets_opened.tickets_opened, 0) as tickets_opened,
        cast(coalesce(tickets_opened.complaints_opened, 0) as bigint) as complaints_opened,
        cast(coalesce(tickets_opened.praises_received, 0) as bigint) as praises_received,
        coalesce(complaints_resolved.complaints_resolved, 0) as complaints_resolved,
        coalesce(monthly_responses.survey_responses, 0) as survey_responses,
        monthly_responses.last_csat_in_month,
        monthly_responses.last_nps_in_month,
        monthly_responses.last_satisfaction_index_in_month,
        coalesce(touches_sent.touches_sent, 0) as touches_sent,
        coalesce(touch_responses.touch_responses, 0) as touch_responses,
        coalesce(new_categories.new_categories_bought, 0) as new_categories_bought
    from panel
    left join tickets_opened
        on panel.customer_id = tickets_opened.customer_id and panel.month_start = tickets_opened.month_start
    left join complaints_resolved
        on panel.customer_id = complaints_resolved.customer_id and panel.month_start = complaints_resolved.month_start
    left join monthly_responses
        on panel.customer_id = monthly_responses.customer_id and panel.month_start = monthly_responses.month_start
    left join touches_sent
        on panel.customer_id = touches_sent.customer_id and panel.month_start = touches_sent.month_start
    left join touch_responses
        on panel.customer_id = touch_responses.customer_id and panel.month_start = touch_responses.month_start
    left join new_categories
        on panel.customer_id = new_categories.customer_id and panel.month_start = new_categories.month_start
),

cumulated as (
    select
        monthly.*,
        cast(
            coalesce(opening_balance.complaints_to_date, 0)
            + sum(monthly.complaints_opened) over customer_months
            as bigint
        ) as complaints_to_date,
        coalesce(opening_balance.complaints_resolved_to_date, 0)
        + sum(monthly.complaints_resolved) over customer_months as complaints_resolved_to_date,
        cast(
            coalesce(opening_balance.touches_to_date, 0)
            + sum(monthly.touches_sent) over customer_months
            as bigint
        ) as touches_to_date,
        cast(
            coalesce(opening_balance.touch_responses_to_date, 0)
            + sum(monthly.touch_responses) over customer_months
            as bigint
        ) as touch_responses_to_date,
        cast(
            coalesce(opening_balance.categories_bought_to_date, 0)
            + sum(monthly.new_categories_bought) over customer_months
            as bigint
        ) as categories_bought_to_date,
        -- the latest month with an answer, found in the same window as the totals (one
        -- sort of the customer-months); none since the opening balance keeps the opening answer
        max(case when monthly.last_csat_in_month is not null then monthly.month_start end)
            over customer_months as latest_csat_month,
        max(case when monthly.last_nps_in_month is not null then monthly.month_start end)
            over customer_months as latest_nps_month,
        max(case when monthly.last_satisfaction_index_in_month is not null then monthly.month_start end)
            over customer_months as latest_satisfaction_index_month,
        opening_balance.latest_csat as opening_csat,
        opening_balance.latest_nps as opening_nps,
        opening_balance.latest_satisfaction_index as opening_satisfaction_index
    from monthly
    left join opening_balance
        on monthly.customer_id = opening_balance.customer_id
    window customer_months as (
        partition by monthly.customer_id
        order by monthly.month_start
        rows between unbounded preceding and current row
    )
),

final as (
    select
        cumulated.customer_id,
        cumulated.month_start,
        cumulated.evaluated_on,
        cumulated.tickets_opened,
        cumulated.complaints_opened,
        cumulated.complaints_resolved,
        cast(cumulated.complaints_to_date - cumulated.complaints_resolved_to_date as bigint) as unresolved_complaints,
        cumulated.complaints_to_date,
        cumulated.praises_received,
        cumulated.survey_responses,
        case
            when cumulated.latest_csat_month is null then cumulated.opening_csat
            else csat_answers.last_csat_in_month
        end as latest_csat,
        case
            when cumulated.latest_nps_month is null then cumulated.opening_nps
            else nps_answers.last_nps_in_month
        end as latest_nps,
        case
            when cumulated.latest_satisfaction_index_month is null then cumulated.opening_satisfaction_index
            else index_answers.last_satisfaction_index_in_month
        end as latest_satisfaction_index,
        cumulated.touches_sent,
        cumulated.touch_responses,
        cumulated.touches_to_date,
        cumulated.touch_responses_to_date,
        cumulated.new_categories_bought,
        cumulated.categories_bought_to_date
    from cumulated
    -- the answers of the latest month that had one (a join on a few rows per customer
    -- instead of a window partitioned by each answer's group: three more sorts)
    left join monthly_responses as csat_answers
        on
            cumulated.customer_id = csat_answers.customer_id
            and cumulated.latest_csat_month = csat_answers.month_start
    left join monthly_responses as nps_answers
        on
            cumulated.customer_id = nps_answers.customer_id
            and cumulated.latest_nps_month = nps_answers.month_start
    left join monthly_responses as index_answers
        on
            cumulated.customer_id = index_answers.customer_id
            and cumulated.latest_satisfaction_index_month = index_answers.month_start
)

select * from final
{{ in_month_order() }}
