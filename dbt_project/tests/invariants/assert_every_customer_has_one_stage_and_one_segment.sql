-- Every CRM customer is in exactly one current stage and one value segment
-- (and nobody else is): returns the customers that break it.
with

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

value_segments as (
    select * from {{ ref('customer_value_segments') }}
),

stage_counts as (
    select
        customer_id,
        count(*) as stage_rows
    from lifecycle
    group by customer_id
),

segment_counts as (
    select
        customer_id,
        count(*) as segments
    from value_segments
    group by customer_id
),

all_ids as (
    select customer_id from customers
    union
    select customer_id from stage_counts
    union
    select customer_id from segment_counts
),

final as (
    select
        all_ids.customer_id,
        customers.customer_id is not null as is_crm_customer,
        coalesce(stage_counts.stage_rows, 0) as stage_rows,
        coalesce(segment_counts.segments, 0) as segments
    from all_ids
    left join customers
        on all_ids.customer_id = customers.customer_id
    left join stage_counts
        on all_ids.customer_id = stage_counts.customer_id
    left join segment_counts
        on all_ids.customer_id = segment_counts.customer_id
)

select * from final
where not is_crm_customer or stage_rows <> 1 or segments <> 1
