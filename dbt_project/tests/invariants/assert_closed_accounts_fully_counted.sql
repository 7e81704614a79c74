-- churn_by_reason and lifecycle_patterns both account for every closed account
-- exactly once: returns the mart whose total differs from the CRM.
with

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

churn_by_reason as (
    select * from {{ ref('churn_by_reason') }}
),

lifecycle_patterns as (
    select * from {{ ref('lifecycle_patterns') }}
),

totals as (
    select
        'churn_by_reason' as mart,
        (select sum(closed_accounts) from churn_by_reason) as closed_accounts
    union all
    select
        'lifecycle_patterns' as mart,
        (
            select count(*) from lifecycle_patterns
            where ended_by = 'account_closed'
        ) as closed_accounts
),

crm as (
    select count(*) as crm_closed_accounts
    from customers
    where customer_status = 'closed'
),

final as (
    select
        totals.mart,
        totals.closed_accounts,
        crm.crm_closed_accounts
    from totals
    cross join crm
)

select * from final
where closed_accounts <> crm_closed_accounts
