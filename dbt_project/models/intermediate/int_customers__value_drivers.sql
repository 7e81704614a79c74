{#- Inputs of the value segmentation (domain.md section 3), one row per CRM customer:
    current value (model CLV), the three parts of growth potential, the behaviour
    that makes up loyalty, and the raw recency, frequency and monetary values. -#}
with

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

order_stats as (
    select * from {{ ref('int_customers__order_stats') }}
),

current_stages as (
    select * from {{ ref('int_customer_months__staged') }}
    where is_as_of_month
),

survey_stats as (
    select * from {{ ref('int_customers__survey_stats') }}
),

clv_scores as (
    select * from {{ ref('stg_analytics__customer_clv') }}
),

products as (
    select * from {{ ref('stg_catalog__products') }}
),

order_lines as (
    select * from {{ ref('int_order_lines__enriched') }}
    where is_completed
),

as_of as (
    select * from {{ ref('int_calendar__as_of') }}
),

catalogue_categories as (
    select count(distinct category) as category_count
    from products
),

trailing_category_margins as (
    select
        order_lines.category,
        {{ as_double('sum(order_lines.line_margin)') }} / count(distinct order_lines.customer_id) as margin_per_buyer
    from order_lines
    cross join as_of
    where {{ days_between('order_lines.order_date', 'as_of.as_of_date') }} < {{ number_var('trailing_revenue_days') }}
    group by order_lines.category
),

portfolio as (
    select
        (select avg(trailing_category_margins.margin_per_buyer) from trailing_category_margins) as average_category_margin,
        {{ as_double('sum(margin)') }} / nullif(sum(revenue), 0) as portfolio_margin_rate
    from order_stats
),

customer_drivers as (
    select
        customers.customer_id,
        current_stages.stage_code,
        coalesce(clv_scores.clv, 0) as current_value,
        coalesce(clv_scores.p_alive, 0) as p_alive,
        coalesce(customers.estimated_annual_wallet, 0) as estimated_annual_wallet,
        coalesce(order_stats.completed_orders, 0) as completed_orders,
        coalesce(order_stats.revenue, 0) as revenue,
        coalesce(order_stats.trailing_12m_revenue, 0) as trailing_12m_revenue,
        coalesce(order_stats.trailing_12m_orders, 0) as trailing_12m_orders,
        coalesce(order_stats.margin_rate, portfolio.portfolio_margin_rate, 0) as margin_rate,
        coalesce(order_stats.categories_bought, 0) as categories_bought,
        greatest(catalogue_categories.category_count - coalesce(order_stats.categories_bought, 0), 0)
            as categories_never_bought,
        coalesce(portfolio.average_category_margin, 0) as average_category_margin,
        case current_stages.stage_code
            {%- for stage, propensity in var('cross_buy_propensity').items() %}
            when '{{ stage }}' then {{ propensity }}
            {%- endfor %}
            else 0
        end as cross_buy_propensity,
        survey_stats.latest_nps,
        coalesce(survey_stats.latest_nps >= {{ number_var('promoter_min_nps') }}, false) as is_promoter,
        order_stats.days_since_last_order as recency_days,
        coalesce(order_stats.tenure_days, 0) as tenure_days
    from customers
    cross join catalogue_categories
    cross join portfolio
    left join current_stages
        on customers.customer_id = current_stages.customer_id
    left join order_stats
        on customers.customer_id = order_stats.customer_id
    left join survey_stats
        on customers.customer_id = survey_stats.customer_id
    left join clv_scores
        on customers.customer_id = clv_scores.customer_id
),

potential_parts as (
    select
        *,
        greatest(estimated_annual_wallet - trailing_12m_revenue, 0) * greatest(margin_rate, 0) * p_alive
            as up_buying_value,
        categories_never_bought * average_category_margin * cross_buy_propensity as cross_buying_value,
        case
            when is_promoter and stage_code = '{{ var("referral_stage") }}' then {{ number_var('referral_value') }}
            else 0
        end as referral_value,
        case
            when estimated_annual_wallet > 0 then least({{ as_double('trailing_12m_revenue') }} / estimated_annual_wallet, 1)
        end as share_of_wallet
    from customer_drivers
),

final as (
    select
        *,
        up_buying_value + cross_buying_value + referral_value as growth_potential
    from potential_parts
)

select * from final
