with

as_of as (
    select {{ as_of_date(ref('stg_orders__orders')) }} as as_of_date
),

final as (
    select
        as_of_date,
        {{ month_start('as_of_date') }} as as_of_month_start
    from as_of
)

select * from final
