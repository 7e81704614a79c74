{#- Point-in-time service, survey, marketing and assortment activity per
    customer-month, on the grain of int_customer_months__panel: everything a churn
    model may know at a past month end, and nothing after it. Latest survey answers
    are carried forward from the last month that had one. -#}
with

panel as (
    select * from {{ ref('int_customer_months__panel') }}
),

tickets as (
    select * from {{ ref('stg_support__tickets') }}
),

responses as (
    select * from {{ ref('stg_surveys__responses') }}
),

touches as (
    select * from {{ ref('stg_marketing__touches') }}
),

order_lines as (
    select * from {{ ref('int_order_lines__enriched') }}
    where is_completed
),

tickets_opened as (
    select
        customer_id,
        {{ month_start('opened_at') }} as month_start,
        count(*) as tickets_opened,
        sum(case when ticket_type = 'complaint' then 1 else 0 end) as complaints_opened,
        sum(case when ticket_type = 'praise' then 1 else 0 end) as praises_received
    from tickets
    group by customer_id, {{ month_start('opened_at') }}
),

complaints_resolved as (
    select
        customer_id,
        {{ month_start('resolved_at') }} as month_start,
        count(*) as complaints_resolved
    from tickets
    where ticket_type = 'complaint' and resolved_at is not null
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
    group by customer_id, {{ month_start('sent_at') }}
),

touch_responses as (
    select
        customer_id,
        {{ month_start('responded_at') }} as month_start,
        count(*) as touch_responses
    from touches
    where has_responded and responded_at is not null
    group by customer_id, {{ month_start('responded_at') }}
),

first_category_purchases as (
    select
        customer_id,
        category,
        {{ month_start('min(order_date)') }} as month_start
    from order_lines
    group by customer_id, category
),

new_categories as (
    select
        customer_id,
        month_start,
        count(*) as new_categories_bought
    from first_category_purchases
    group by customer_id, month_start
),

monthly as (
    select
        panel.customer_id,
        panel.month_start,
        panel.evaluated_on,
        coalesce(tickets_opened.tickets_opened, 0) as tickets_opened,
        coalesce(tickets_opened.complaints_opened, 0) as complaints_opened,
        coalesce(tickets_opened.praises_received, 0) as praises_received,
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
        *,
        sum(complaints_opened) over customer_months
        - sum(complaints_resolved) over customer_months as unresolved_complaints,
        sum(complaints_opened) over customer_months as complaints_to_date,
        sum(touches_sent) over customer_months as touches_to_date,
        sum(touch_responses) over customer_months as touch_responses_to_date,
        sum(new_categories_bought) over customer_months as categories_bought_to_date,
        -- each answer opens a group that lasts until the next answer: carry it forward
        count(last_csat_in_month) over customer_months as csat_group,
        count(last_nps_in_month) over customer_months as nps_group,
        count(last_satisfaction_index_in_month) over customer_months as satisfaction_index_group
    from monthly
    window customer_months as (
        partition by customer_id
        order by month_start
        rows between unbounded preceding and current row
    )
),

final as (
    select
        customer_id,
        month_start,
        evaluated_on,
        tickets_opened,
        complaints_opened,
        complaints_resolved,
        unresolved_complaints,
        complaints_to_date,
        praises_received,
        survey_responses,
        max(last_csat_in_month) over (partition by customer_id, csat_group) as latest_csat,
        max(last_nps_in_month) over (partition by customer_id, nps_group) as latest_nps,
        max(last_satisfaction_index_in_month) over (partition by customer_id, satisfaction_index_group)
            as latest_satisfaction_index,
        touches_sent,
        touch_responses,
        touches_to_date,
        touch_responses_to_date,
        new_categories_bought,
        categories_bought_to_date
    from cumulated
)

select * from final
