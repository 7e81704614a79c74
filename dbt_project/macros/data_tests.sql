{#- dbt's hook for the relation a generic data test reads, extended with the recent
    rows of an incremental model. With var('data_tests_scope') = 'recent' (the daily
    job passes it on incremental runs), a test of a model whose meta names a
    window_column reads only the rows of the latest var('incremental_lookback_days')
    days by that column: the rows the run wrote. Row-count comparisons between
    models (row_count_at_most) still read whole tables: they are what shows that no
    row was lost. Otherwise this is dbt's own: the test's where config. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- do conditions.append(where) -%}
    {%- endif -%}
    {%- set recent = recent_rows_condition(relation) -%}
    {%- if recent -%}
        {%- do conditions.append(recent) -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{% macro recent_rows_condition(relation) -%}
    {%- if not execute or var('data_tests_scope') != 'recent' -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- if model.test_metadata is not defined or model.test_metadata.name == 'row_count_at_most' -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set tested = graph.nodes.get(model.attached_node) if model.attached_node else none -%}
    {%- set column = tested.config.meta.get('window_column') if tested else none -%}
    {%- if not column -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- do return(column ~ ' >= ' ~ incremental_start(column, relation)) -%}
{%- endmacro %}
