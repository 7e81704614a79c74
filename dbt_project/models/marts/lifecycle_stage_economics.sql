{#- Table 3-1 of domain.md measured on the data: every customer-month in a
    relationship stage, averaged per stage, beside the textbook expectation (seed
    lifecycle_stages). Price paid is shown as revenue per unit (depends on the
    product mix) and as price realisation, net revenue / undiscounted value (mix
    free: 1 - the average discount). Cost to serve is tickets per customer-month, priced at
    var('cost_per_ticket'); profit is gross margin less that service cost. -#}
with

staged as (
    select * from {{ ref('int_customer_months__staged') }}
),

activity as (
    select * from {{ ref('int_customer_months__activity') }}
),

stages as (
    select * from {{ ref('lifecycle_stages') }}
    where is_relationship_stage
),

customer_months as (
    select
        staged.customer_id,
        staged.stage_code,
        staged.orders_in_month,
        staged.units_in_month,
        staged.gross_value_in_month,
        staged.revenue_in_month,
        staged.margin_in_month,
        activity.tickets_opened,
        activity.tickets_opened * {{ number_var('cost_per_ticket') }} as service_cost
    from staged
    inner join activity
        on staged.customer_id = activity.customer_id and staged.month_start = activity.month_start
),

per_stage as (
    select
        stage_code,
        count(*) as customer_months,
        count(distinct customer_id) as customers,
        avg(orders_in_month) as orders_per_customer_month,
        avg(units_in_month) as units_per_customer_month,
        {{ as_double('sum(revenue_in_month)') }} / nullif(sum(units_in_month), 0) as average_price_paid,
        {{ as_double('sum(revenue_in_month)') }} / nullif(sum(gross_value_in_month), 0) as price_realisation,
        {{ as_double('sum(revenue_in_month)') }} / nullif(sum(orders_in_month), 0) as average_order_value,
        avg(tickets_opened) as tickets_per_customer_month,
        avg(service_cost) as service_cost_per_customer_month,
        avg(revenue_in_month) as revenue_per_customer_month,
        avg(margin_in_month) as margin_per_customer_month,
        avg(margin_in_month - service_cost) as profit_per_customer_month
    from customer_months
    group by stage_code
),

final as (
    select
        stages.stage_code,
        stages.lifecycle_order,
        stages.name_en as stage_name_en,
        stages.name_zh as stage_name_zh,
        coalesce(per_stage.customer_months, 0) as customer_months,
        coalesce(per_stage.customers, 0) as customers,
        per_stage.orders_per_customer_month,
        stages.expected_transaction_volume,
        per_stage.units_per_customer_month,
        per_stage.average_price_paid,
        per_stage.price_realisation,
        stages.expected_price_paid,
        per_stage.average_order_value,
        per_stage.tickets_per_customer_month,
        per_stage.service_cost_per_customer_month,
        stages.expected_cost_to_serve,
        per_stage.revenue_per_customer_month,
        stages.expected_revenue,
        per_stage.margin_per_customer_month,
        per_stage.profit_per_customer_month,
        stages.expected_profit
    from stages
    left join per_stage
        on stages.stage_code = per_stage.stage_code
)

select * from final
