with

source as (
    select * from {{ source('crm', 'crm_customers') }}
),

known_by_as_of as (
    select *
    from source
    where updated_at < {{ as_of_cutoff() }}
),

ranked_versions as (
    select
        *,
        row_number() over (
            partition by customer_id
            order by updated_at desc
        ) as version_rank
    from known_by_as_of
),

latest_version as (
    select * from ranked_versions
    where version_rank = 1
),

final as (
    select
        trim(customer_id) as customer_id,
        trim(name_zh) as name_zh,
        trim(name_latin) as name_latin,
        upper(trim(gender)) as gender,
        birth_date,
        trim(city) as city,
        lower(trim(customer_type)) as customer_type,
        lower(trim(acquisition_channel)) as acquisition_channel,
        signup_at as signed_up_at,
        cast(signup_at as date) as signup_date,
        lower(trim(email)) as email,
        trim(phone) as phone,
        upper(trim(national_id)) as national_id,
        estimated_annual_wallet,
        lower(trim(status)) as customer_status,
        closed_at,
        cast(closed_at as date) as closed_date,
        lower(trim(close_reason)) as close_reason,
        updated_at as version_updated_at,
        _loaded_at as loaded_at
    from latest_version
)

select * from final
