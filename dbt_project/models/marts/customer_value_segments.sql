with

scored as (
    select * from {{ ref('int_customers__value_scored') }}
),

drivers as (
    select * from {{ ref('int_customers__value_drivers') }}
),

value_classes as (
    select * from {{ ref('value_classes') }}
),

value_segments as (
    select * from {{ ref('value_segments') }}
),

pyramid_tiers as (
    select * from {{ ref('pyramid_tiers') }}
),

rfm_groups as (
    select * from {{ ref('rfm_groups') }}
),

final as (
    select
        scored.customer_id,
        scored.stage_code,
        scored.current_value,
        drivers.up_buying_value,
        drivers.cross_buying_value,
        drivers.referral_value,
        scored.growth_potential,
        scored.current_value_level,
        scored.growth_potential_level,
        value_classes.value_class_code,
        value_classes.name_en as value_class_name_en,
        value_classes.name_zh as value_class_name_zh,
        value_classes.resource_allocation_en,
        value_classes.resource_allocation_zh,
        value_classes.retention_strategy_en,
        value_classes.retention_strategy_zh,
        drivers.share_of_wallet,
        drivers.trailing_12m_orders,
        drivers.tenure_days,
        scored.loyalty_score,
        scored.loyalty_level,
        value_segments.segment_code,
        value_segments.name_en as segment_name_en,
        value_segments.name_zh as segment_name_zh,
        value_segments.action_en as segment_action_en,
        scored.trailing_12m_revenue,
        pyramid_tiers.tier_code as pyramid_tier_code,
        pyramid_tiers.name_en as pyramid_tier_name_en,
        pyramid_tiers.name_zh as pyramid_tier_name_zh,
        scored.recency_days,
        scored.frequency,
        scored.monetary,
        scored.recency_score,
        scored.frequency_score,
        scored.monetary_score,
        rfm_groups.rfm_group_code,
        rfm_groups.name_en as rfm_group_name_en,
        rfm_groups.name_zh as rfm_group_name_zh,
        rfm_groups.action_en as rfm_group_action_en
    from scored
    inner join drivers
        on scored.customer_id = drivers.customer_id
    inner join value_classes
        on
            scored.current_value_level = value_classes.current_value_level
            and scored.growth_potential_level = value_classes.growth_potential_level
    inner join value_segments
        on
            scored.current_value_level = value_segments.current_value_level
            and scored.growth_potential_level = value_segments.growth_potential_level
            and scored.loyalty_level = value_segments.loyalty_level
    inner join pyramid_tiers
        on scored.pyramid_tier_rank = pyramid_tiers.tier_rank
    inner join rfm_groups
        on
            coalesce(scored.recency_score, 0) between rfm_groups.r_score_min and rfm_groups.r_score_max
            and coalesce(scored.frequency_score, 0) between rfm_groups.f_score_min and rfm_groups.f_score_max
)

select * from final
