-- Pyramid tiers hold their var shares of all customers (to the customer, rounded
-- down), except that customers without trailing revenue are always small.
with

value_segments as (
    select * from {{ ref('customer_value_segments') }}
),

tier_counts as (
    select
        count(*) as customers,
        sum(case when trailing_12m_revenue > 0 then 1 else 0 end) as customers_with_revenue,
        sum(case when pyramid_tier_code = 'vip' then 1 else 0 end) as vip,
        sum(case when pyramid_tier_code in ('vip', 'major') then 1 else 0 end) as vip_and_major,
        sum(case when pyramid_tier_code in ('vip', 'major', 'ordinary') then 1 else 0 end) as top_three_tiers
    from value_segments
),

expected as (
    select
        *,
        least(floor({{ var('pyramid_vip_share') }} * customers), customers_with_revenue) as expected_vip,
        least(
            floor(({{ var('pyramid_vip_share') }} + {{ var('pyramid_major_share') }}) * customers),
            customers_with_revenue
        ) as expected_vip_and_major,
        least(
            floor(
                (
                    {{ var('pyramid_vip_share') }}
                    + {{ var('pyramid_major_share') }}
                    + {{ var('pyramid_ordinary_share') }}
                ) * customers
            ),
            customers_with_revenue
        ) as expected_top_three_tiers
    from tier_counts
)

select * from expected
where
    vip <> expected_vip
    or vip_and_major <> expected_vip_and_major
    or top_three_tiers <> expected_top_three_tiers
