{#- Closed accounts by churn reason (domain.md section 4), every reason of the seed
    listed even when it did not occur. Churn is "within the normal range" when only
    uncontrollable reasons occurred; any controllable churn is serious. -#}
with

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

reasons as (
    select * from {{ ref('churn_reasons') }}
),

closed_accounts as (
    select
        close_reason,
        count(*) as closed_accounts
    from customers
    where customer_status = 'closed'
    group by close_reason
),

reason_counts as (
    select
        reasons.reason_code,
        reasons.name_en as reason_name_en,
        reasons.name_zh as reason_name_zh,
        reasons.is_controllable,
        coalesce(closed_accounts.closed_accounts, 0) as closed_accounts
    from reasons
    left join closed_accounts
        on reasons.reason_code = closed_accounts.close_reason
),

final as (
    select
        *,
        {{ as_double('closed_accounts') }} / nullif(sum(closed_accounts) over (), 0) as share_of_closed_accounts,
        is_controllable and closed_accounts > 0 as is_serious,
        sum(case when is_controllable then closed_accounts else 0 end) over () = 0 as is_within_normal_range
    from reason_counts
)

select * from final
