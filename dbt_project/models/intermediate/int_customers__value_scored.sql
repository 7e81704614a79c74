{#- Ranks and scores of the value segmentation, one row per CRM customer:
    high/low current value, growth potential and loyalty (top var('value_high_share')
    of customers with a positive value is high), the pyramid tier rank by
    trailing-12-month revenue, and RFM quintile scores (customers with a completed
    order only; ties are split by customer id, like a quantile cut on ranks). -#}
with

drivers as (
    select * from {{ ref('int_customers__value_drivers') }}
),

stages as (
    select * from {{ ref('lifecycle_stages') }}
),

loyalty_ranks as (
    select
        drivers.*,
        case
            when stages.is_relationship_stage
                then (
                    percent_rank() over (order by drivers.trailing_12m_orders)
                    + percent_rank() over (order by drivers.tenure_days)
                    + percent_rank() over (order by coalesce(drivers.share_of_wallet, 0))
                ) / {{ as_double(3) }}
            else 0
        end as loyalty_score
    from drivers
    left join stages
        on drivers.stage_code = stages.stage_code
),

ranked as (
    select
        *,
        count(*) over () as customer_count,
        row_number() over (order by current_value desc, customer_id asc) as current_value_rank,
        row_number() over (order by growth_potential desc, customer_id asc) as growth_potential_rank,
        row_number() over (order by loyalty_score desc, customer_id asc) as loyalty_rank,
        row_number() over (order by trailing_12m_revenue desc, customer_id asc) as revenue_rank,
        ntile({{ var('rfm_bins') }}) over (
            partition by completed_orders > 0
            order by recency_days desc, customer_id asc
        ) as recency_bin,
        ntile({{ var('rfm_bins') }}) over (
            partition by completed_orders > 0
            order by completed_orders, customer_id
        ) as frequency_bin,
        ntile({{ var('rfm_bins') }}) over (
            partition by completed_orders > 0
            order by revenue, customer_id
        ) as monetary_bin
    from loyalty_ranks
),

final as (
    select
        customer_id,
        stage_code,
        current_value,
        growth_potential,
        loyalty_score,
        trailing_12m_revenue,
        case
            when current_value > 0 and current_value_rank <= {{ number_var('value_high_share') }} * customer_count
                then 'high'
            else 'low'
        end as current_value_level,
        case
            when growth_potential > 0 and growth_potential_rank <= {{ number_var('value_high_share') }} * customer_count
                then 'high'
            else 'low'
        end as growth_potential_level,
        case
            when loyalty_score > 0 and loyalty_rank <= {{ number_var('value_high_share') }} * customer_count
                then 'high'
            else 'low'
        end as loyalty_level,
        case
            when trailing_12m_revenue <= 0 then 4
            when revenue_rank <= {{ number_var('pyramid_vip_share') }} * customer_count then 1
            when revenue_rank <= ({{ number_var('pyramid_vip_share') }} + {{ number_var('pyramid_major_share') }})
                * customer_count then 2
            when revenue_rank <= (
                    {{ number_var('pyramid_vip_share') }}
                    + {{ number_var('pyramid_major_share') }}
                    + {{ number_var('pyramid_ordinary_share') }}
                ) * customer_count then 3
            else 4
        end as pyramid_tier_rank,
        recency_days,
        completed_orders as frequency,
        revenue as monetary,
        case when completed_orders > 0 then recency_bin end as recency_score,
        case when completed_orders > 0 then frequency_bin end as frequency_score,
        case when completed_orders > 0 then monetary_bin end as monetary_score
    from ranked
)

select * from final
