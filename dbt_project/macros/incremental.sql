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
    date_column less the lookback (late files), as a SQL expression. relation
    defaults to the model being built; data tests pass the tested model. -#}
{% macro incremental_start(date_column, relation=none) -%}
    (
        select {{ dbt.dateadd('day', -1 * var('incremental_lookback_days'), 'cast(max(' ~ date_column ~ ') as date)') }}
        from {{ relation or this }}
    )
{%- endmacro %}

{#- First month an incremental customer-month model recomputes: the month of its
    latest evaluated day less the lookback. The panel and every model on its grain
    use this same window, so each run replaces the same months in all of them. -#}
{% macro incremental_months_start() -%}
    {{ month_start(incremental_start('evaluated_on')) }}
{%- endmacro %}

{#- The opening balance of an incremental customer-month model: its loaded rows of
    the month before the window. Each customer has a row in every month from its
    first to the as-of month, so a customer with history before the window has one
    there; reading that month alone keeps the run off the rest of the history. -#}
{% macro incremental_opening_months() -%}
    select * from {{ this }}
    where month_start = cast({{ dbt.dateadd('month', -1, incremental_months_start()) }} as date)
{%- endmacro %}

{#- A where condition: "<column> >= <since>" when since (a SQL date expression) is
    given, as in an incremental run, else true (a full build keeps every row). -#}
{% macro on_or_after(column, since) -%}
    {%- if since -%}
        {{ column }} >= {{ since }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Customer-month tables are written in month order. Incremental runs read their
    latest months (the window, the opening month); DuckDB skips the other months'
    row groups by their min and max only when a month is not spread over the whole
    file (measured at 100,000 customers: 0.2 s instead of 2.1 s for one month of
    int_customer_months__activity). Incremental runs append the newest months, so
    the order holds. -#}
{% macro in_month_order() -%}
    order by month_start, customer_id
{%- endmacro %}

{#- on-run-end: for every model built in this invocation whose meta names a
    window_column, record where its recent rows start (incremental_start: the rows
    an incremental run rewrites). A daily run's GX suites validate the rows from there
    (crm_warehouse/warehouse/recent_rows.py), so the window is defined once, here. -#}
{% macro record_recent_windows(results) -%}
    {%- if execute -%}
        {%- set windows = [] -%}
        {%- for result in results
            if result.node.resource_type == 'model' and result.status == 'success'
            and result.node.config.meta.get('window_column') -%}
            {%- do windows.append(result.node) -%}
        {%- endfor -%}
        {%- if windows -%}
            {%- set table = 'audit.recent_windows' -%}
            {%- do adapter.create_schema(api.Relation.create(database=target.database, schema='audit')) -%}
            {%- do run_query(
                'create table if not exists ' ~ table ~ ' (relation_name ' ~ dbt.type_string()
                ~ ', window_column ' ~ dbt.type_string() ~ ', window_start date, recorded_at '
                ~ dbt.type_timestamp() ~ ')') -%}
            {%- for node in windows -%}
                {%- set name = node.schema ~ '.' ~ node.alias -%}
                {%- set relation = api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) -%}
                {%- do run_query("delete from " ~ table ~ " where relation_name = '" ~ name ~ "'") -%}
                {%- do run_query(
                    "insert into " ~ table ~ " select '" ~ name ~ "', '" ~ node.config.meta.window_column ~ "', "
                    ~ incremental_start(node.config.meta.window_column, relation) ~ ", " ~ dbt.current_timestamp()) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
