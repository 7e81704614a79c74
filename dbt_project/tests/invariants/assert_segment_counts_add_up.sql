-- Each segmentation (value class, 3-D segment, pyramid tier, RFM group, stage)
-- splits all CRM customers: the counts per scheme add up to the customer count.
with

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

value_segments as (
    select * from {{ ref('customer_value_segments') }}
),

lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

scheme_counts as (
    select
        'value_class' as scheme,
        value_class_code as code,
        count(*) as customers
    from value_segments
    group by value_class_code
    union all
    select
        'segment' as scheme,
        segment_code as code,
        count(*) as customers
    from value_segments
    group by segment_code
    union all
    select
        'pyramid_tier' as scheme,
        pyramid_tier_code as code,
        count(*) as customers
    from value_segments
    group by pyramid_tier_code
    union all
    select
        'rfm_group' as scheme,
        rfm_group_code as code,
        count(*) as customers
    from value_segments
    group by rfm_group_code
    union all
    select
        'stage' as scheme,
        stage_code as code,
        count(*) as customers
    from lifecycle
    group by stage_code
),

scheme_totals as (
    select
        scheme,
        sum(customers) as customers
    from scheme_counts
    group by scheme
),

final as (
    select
        scheme_totals.scheme,
        scheme_totals.customers,
        (select count(*) from customers) as crm_customers
    from scheme_totals
)

select * from final
where customers <> crm_customers
