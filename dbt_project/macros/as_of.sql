{#- The as-of date of the whole warehouse: var('as_of_date') or, when it is null,
    the date of the latest loaded order. The same rule as resolve_as_of() in
    crm_warehouse/warehouse/as_of.py; orchestrated runs pass the date resolved there
    as the var, so the default here serves dbt runs started by hand. Every model
    keeps only events on or before it; int_calendar__as_of records it.
    orders: the relation to take the latest order from; staging filters on the raw
    source before any model exists, int_calendar__as_of reads the staged orders (an
    intermediate model reads no source). Staging keeps every order up to this date,
    so both give the same day. -#}
{% macro as_of_date(orders=none) -%}
    {%- set value = var('as_of_date') -%}
    {%- if value -%}
        {%- set text = value | string -%}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
            {{ exceptions.raise_compiler_error("var as_of_date=" ~ text ~ " is not a date in YYYY-MM-DD form") }}
        {%- endif -%}
        cast('{{ text }}' as date)
    {%- else -%}
        (select cast(max(ordered_at) as date) from {{ orders or source('orders', 'orders_orders') }})
    {%- endif -%}
{%- endmacro %}

{#- First instant after the as-of date: events are kept when their timestamp is below it. -#}
{% macro as_of_cutoff() -%}
    {{ dbt.dateadd('day', 1, as_of_date()) }}
{%- endmacro %}
