{#- Functions dbt has no cross-database macro for. Each has a default (ANSI or the
    most common spelling) and the dialects this project runs on. -#}

{% macro median(expression) -%}
    {{ return(adapter.dispatch('median', 'crm_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__median(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{% macro duckdb__median(expression) -%}
    median({{ expression }})
{%- endmacro %}

{% macro postgres__median(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{% macro spark__median(expression) -%}
    percentile({{ expression }}, 0.5)
{%- endmacro %}

{% macro trino__median(expression) -%}
    approx_percentile({{ expression }}, 0.5)
{%- endmacro %}


{#- Lower-case hexadecimal SHA-256 of a string expression. -#}
{% macro sha256_hex(expression) -%}
    {{ return(adapter.dispatch('sha256_hex', 'crm_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__sha256_hex(expression) -%}
    sha2({{ expression }}, 256)
{%- endmacro %}

{% macro duckdb__sha256_hex(expression) -%}
    sha256({{ expression }})
{%- endmacro %}

{% macro postgres__sha256_hex(expression) -%}
    encode(sha256(convert_to({{ expression }}, 'UTF8')), 'hex')
{%- endmacro %}

{% macro trino__sha256_hex(expression) -%}
    lower(to_hex(sha256(to_utf8({{ expression }}))))
{%- endmacro %}


{#- Distinct values of a string column joined with ", " in alphabetical order. -#}
{% macro distinct_list(expression) -%}
    {{ return(adapter.dispatch('distinct_list', 'crm_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__distinct_list(expression) -%}
    listagg(distinct {{ expression }}, ', ') within group (order by {{ expression }})
{%- endmacro %}

{% macro duckdb__distinct_list(expression) -%}
    string_agg(distinct {{ expression }}, ', ' order by {{ expression }})
{%- endmacro %}

{% macro postgres__distinct_list(expression) -%}
    string_agg(distinct {{ expression }}, ', ' order by {{ expression }})
{%- endmacro %}

{% macro spark__distinct_list(expression) -%}
    array_join(array_sort(collect_set({{ expression }})), ', ')
{%- endmacro %}


{#- Whole days from first_date to second_date (dates or timestamps), as a bigint on
    every engine (Spark's datediff gives an int). -#}
{% macro days_between(first_date, second_date) -%}
    cast({{ dbt.datediff('cast(' ~ first_date ~ ' as date)', 'cast(' ~ second_date ~ ' as date)', 'day') }} as bigint)
{%- endmacro %}

{#- First day of the month of a date or timestamp, as a date. -#}
{% macro month_start(expression) -%}
    cast({{ dbt.date_trunc('month', expression) }} as date)
{%- endmacro %}

{#- A numeric var as a SQL literal; fails the build when it is not a number. -#}
{% macro number_var(name) -%}
    {%- set value = var(name) -%}
    {%- if value is not number or value is boolean -%}
        {{ exceptions.raise_compiler_error("var " ~ name ~ "=" ~ value ~ " must be a number") }}
    {%- endif -%}
    {{ value }}
{%- endmacro %}


{#- An expression (or a number) as a double. Ratios divide doubles: a literal such as
    3600.0 is a decimal, and Spark (like Trino) divides decimals at a fixed, low scale,
    so the same ratio would differ between engines from the fourth digit on. -#}
{% macro as_double(expression) -%}
    {{ return(adapter.dispatch('as_double', 'crm_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__as_double(expression) -%}
    cast({{ expression }} as double)
{%- endmacro %}

{% macro postgres__as_double(expression) -%}
    cast({{ expression }} as double precision)
{%- endmacro %}


{#- Written between a CTE's name and its body (`staged as {{ not_materialized() }} (`)
    when the CTE only selects from a table and is read more than once. DuckDB and
    PostgreSQL would compute such a CTE once and hold every column of every row
    (12 M customer-months at 1 M customers); read again from the table, each use
    takes only its columns and rows. Spark and Trino inline CTEs anyway. -#}
{% macro not_materialized() -%}
    {{ return(adapter.dispatch('not_materialized', 'crm_warehouse')()) }}
{%- endmacro %}

{% macro default__not_materialized() -%}
{%- endmacro %}

{% macro duckdb__not_materialized() -%}
    not materialized
{%- endmacro %}

{% macro postgres__not_materialized() -%}
    not materialized
{%- endmacro %}
