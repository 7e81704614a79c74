-- Plausible stand-ins for the Python analytics scores, for local development and
-- the dbt tests while the analytics assets are not available. Run after the marts
-- exist, into the tables crm_warehouse/warehouse/analytics_tables.py creates (the
-- one schema): CLV from completed orders in marts.fct_orders, churn scores from
-- the latest month of intermediate.int_customer_months__panel.


insert into analytics.customer_clv by name
with
completed as (
    select customer_id, cast(ordered_at as date) as order_day, order_revenue
    from marts.fct_orders
    where order_status = 'completed'
),
as_of as (
    select max(order_day) as as_of_day from completed
),
per_day as (
    select customer_id, order_day, sum(order_revenue) as spend
    from completed
    group by customer_id, order_day
),
per_customer as (
    select
        customer_id,
        count(*) - 1 as frequency,
        date_diff('day', min(order_day), max(order_day)) / 7.0 as recency,
        date_diff('day', min(order_day), any_value(as_of_day)) / 7.0 as t,
        coalesce(avg(spend) filter (where order_day > (select min(d.order_day) from per_day d where d.customer_id = per_day.customer_id)), 0) as monetary_value
    from per_day cross join as_of
    group by customer_id
),
scored as (
    select
        *,
        case when frequency = 0 then 0.5 else exp(-greatest(t - recency, 0) / greatest(recency / frequency * 3, 1)) end as p_alive
    from per_customer
)
select
    customer_id,
    cast(frequency as double) as frequency,
    recency,
    t,
    monetary_value,
    p_alive,
    p_alive * (frequency + 1) / greatest(t, 1) * 52 as expected_purchases,
    greatest(monetary_value, 1) as expected_avg_spend,
    p_alive * (frequency + 1) / greatest(t, 1) * 52 * greatest(monetary_value, 1) as expected_spend,
    0.9 * p_alive * (frequency + 1) / greatest(t, 1) * 52 * greatest(monetary_value, 1) as clv,
    12 as horizon_months,
    'stub-clv' as model_id,
    current_timestamp::timestamp as scored_at
from scored;

insert into analytics.customer_churn_scores by name
with
latest_month as (
    select *
    from intermediate.int_customer_months__panel
    qualify row_number() over (partition by customer_id order by month_start desc) = 1
),
scored as (
    select
        customer_id,
        case
            when completed_orders_to_date = 0 then 0.5
            else least(0.99, days_since_last_order / 365.0)
        end as churn_probability
    from latest_month
)
select
    customer_id,
    churn_probability,
    case when churn_probability >= 0.6 then 'high' when churn_probability >= 0.3 then 'medium' else 'low' end as risk_band,
    'days_since_last_order' as driver_1,
    'trailing_revenue' as driver_2,
    'complaints' as driver_3,
    'stub-churn' as model_id,
    current_timestamp::timestamp as scored_at
from scored;
