with

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

orders as (
    select * from {{ ref('stg_orders__orders') }}
),

as_of as (
    select * from {{ ref('int_calendar__as_of') }}
),

month_numbers as (
    {{ dbt.generate_series(var('calendar_max_months')) }}
),

event_dates as (
    select signup_date as event_date from customers
    union all
    select order_date as event_date from orders
),

first_month as (
    select {{ month_start('min(event_date)') }} as first_month_start
    from event_dates
),

months as (
    select
        cast({{ dbt.dateadd('month', 'month_numbers.generated_number - 1', 'first_month.first_month_start') }} as date)
            as month_start
    from month_numbers
    cross join first_month
),

final as (
    select
        months.month_start,
        cast({{ dbt.last_day('months.month_start', 'month') }} as date) as month_end,
        least(cast({{ dbt.last_day('months.month_start', 'month') }} as date), as_of.as_of_date) as evaluated_on,
        months.month_start = as_of.as_of_month_start as is_as_of_month,
        {{ days_between('months.month_start', dbt.last_day('months.month_start', 'month')) }} + 1 as days_in_month
    from months
    cross join as_of
    where months.month_start <= as_of.as_of_month_start
)

select * from final
