{#- Incremental: a run replaces the months customer_lifecycle_history replaced (the
    panel's window), counted from those months alone. -#}
{{ config(**incremental_config(partition_by='month_start')) }}
{{ assert_not_rewound('month_start') }}

with

history as (
    select * from {{ ref('customer_lifecycle_history') }}
    {%- if is_incremental() %}
    where month_start >= {{ month_start(incremental_start('month_start')) }}
    {%- endif %}
),

moves as (
    select
        month_start,
        previous_stage_code as from_stage_code,
        stage_code as to_stage_code,
        count(*) as customers
    from history
    where previous_stage_code is not null
    group by month_start, previous_stage_code, stage_code
),

final as (
    select
        month_start,
        from_stage_code,
        to_stage_code,
        from_stage_code <> to_stage_code as is_stage_change,
        customers,
        {{ as_double('customers') }} / sum(customers) over (partition by month_start, from_stage_code) as share_of_from_stage
    from moves
)

select * from final
