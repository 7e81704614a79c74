{#- The as-of date of the whole warehouse: var('as_of_date') or, when it is null,
    the latest order date. Every model keeps only events on or before it. -#}

{#- The var as a date literal, or a null date when the var is null. -#}
{% macro as_of_date_var() -%}
    {%- set value = var('as_of_date') -%}
    {%- if value -%}
        {%- set text = value | string -%}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
            {{ exceptions.raise_compiler_error("var as_of_date=" ~ text ~ " is not a date in YYYY-MM-DD form") }}
        {%- endif -%}
        cast('{{ text }}' as date)
    {%- else -%}
        cast(null as date)
    {%- endif -%}
{%- endmacro %}

{#- The as-of date as a SQL expression (staging filters on it before any model exists). -#}
{% macro as_of_date() -%}
    {%- if var('as_of_date') -%}
        {{ as_of_date_var() }}
    {%- else -%}
        (select cast(max(ordered_at) as date) from {{ source('orders', 'orders_orders') }})
    {%- endif -%}
{%- endmacro %}

{#- First instant after the as-of date: events are kept when their timestamp is below it. -#}
{% macro as_of_cutoff() -%}
    {{ dbt.dateadd('day', 1, as_of_date()) }}
{%- endmacro %}
