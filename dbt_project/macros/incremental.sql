{#- An incremental model holding rows after the as-of date cannot be rewound by an
    incremental run: fail with a clear message so the caller adds --full-refresh. -#}
{% macro assert_not_rewound(date_column) -%}
    {%- if execute and is_incremental() and var('as_of_date') -%}
        {%- set query -%}
            select count(*) from {{ this }} where cast({{ date_column }} as date) > {{ as_of_date() }}
        {%- endset -%}
        {%- set later_rows = run_query(query).columns[0].values()[0] -%}
        {%- if later_rows > 0 -%}
            {{ exceptions.raise_compiler_error(
                this ~ " holds " ~ later_rows ~ " rows after as_of_date=" ~ var('as_of_date')
                ~ "; rebuild it with dbt build --full-refresh to go back in time") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- Incremental runs re-read from this date on: the latest loaded value of
    date_column less the lookback (late files), as a SQL expression. -#}
{% macro incremental_start(date_column) -%}
    (
        select {{ dbt.dateadd('day', -1 * var('incremental_lookback_days'), 'cast(max(' ~ date_column ~ ') as date)') }}
        from {{ this }}
    )
{%- endmacro %}
