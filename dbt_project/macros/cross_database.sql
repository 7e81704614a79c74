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


{#- Written the same way when a CTE joins a large table to several aggregates and feeds
    a window: computed once into a spillable result first, the window's sort no longer
    shares DuckDB's memory limit with the joins' hash tables. int_customer_months__activity
    at 3 M customers ran out of a 2 GiB limit without it and built in 78 s with it. -#}
{% macro materialized() -%}
    {{ return(adapter.dispatch('materialized', 'crm_warehouse')()) }}
{%- endmacro %}

{% macro default__materialized() -%}
{%- endmacro %}

{% macro duckdb__materialized() -%}
    materialized
{%- endmacro %}

{% macro postgres__materialized() -%}
    materialized
{%- endmacro %}


{#- A select of `partition_by`, `order_by` and the median of `value` over each row of
    `relation` and the rows before it in its partition (a running median), for every row
    where that median is not null. `order_by` must be unique within a partition.
    DuckDB has windowed quantiles; elsewhere (PostgreSQL has no ordered-set window
    aggregates) it is a self-join and a grouped median. On DuckDB that join's median
    states live outside the memory limit: for int_order_days__sequenced at 3 M
    customers dbt's process peaked at 4.2 GiB under a 2 GiB limit (40 s), with the
    window at 2.5 GiB (27 s), every value the same (docs/performance.md). -#}
{% macro running_median(relation, partition_by, order_by, value) -%}
    {{ return(adapter.dispatch('running_median', 'crm_warehouse')(relation, partition_by, order_by, value)) }}
{%- endmacro %}

{% macro default__running_median(relation, partition_by, order_by, value) -%}
    select
        this_row.{{ partition_by }},
        this_row.{{ order_by }},
        {{ median('earlier_row.' ~ value) }} as running_median
    from {{ relation }} as this_row
    inner join {{ relation }} as earlier_row
        on
            this_row.{{ partition_by }} = earlier_row.{{ partition_by }}
            and this_row.{{ order_by }} >= earlier_row.{{ order_by }}
    where earlier_row.{{ value }} is not null
    group by this_row.{{ partition_by }}, this_row.{{ order_by }}
{%- endmacro %}

{% macro duckdb__running_median(relation, partition_by, order_by, value) -%}
    select * from (
        select
            {{ partition_by }},
            {{ order_by }},
            median({{ value }}) over (
                partition by {{ partition_by }} order by {{ order_by }}
                rows between unbounded preceding and current row
            ) as running_median
        from {{ relation }}
    ) as running
    where running_median is not null
{%- endmacro %}
