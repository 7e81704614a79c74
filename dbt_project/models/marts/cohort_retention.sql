{#- Signup-month cohorts x months since the customer's own first completed order:
    the share of the cohort's buyers observable that many months after their first
    order month who bought in that month. Month 0 is the first order month (100%). -#}
with

staged as (
    select * from {{ ref('int_customer_months__staged') }}
),

buyer_months as (
    select
        customer_id,
        {{ month_start('signup_date') }} as cohort_month,
        {{ dbt.datediff(month_start('first_order_date'), 'month_start', 'month') }} as months_since_first_order,
        orders_in_month > 0 as has_ordered
    from staged
    where first_order_date is not null
),

cohort_sizes as (
    select
        cohort_month,
        count(distinct customer_id) as cohort_buyers
    from buyer_months
    group by cohort_month
),

retention as (
    select
        cohort_month,
        months_since_first_order,
        count(*) as observable_customers,
        sum(case when has_ordered then 1 else 0 end) as ordering_customers
    from buyer_months
    group by cohort_month, months_since_first_order
),

final as (
    select
        retention.cohort_month,
        retention.months_since_first_order,
        cohort_sizes.cohort_buyers,
        retention.observable_customers,
        retention.ordering_customers,
        {{ as_double('retention.ordering_customers') }} / retention.observable_customers as retention_rate
    from retention
    inner join cohort_sizes
        on retention.cohort_month = cohort_sizes.cohort_month
)

select * from final
