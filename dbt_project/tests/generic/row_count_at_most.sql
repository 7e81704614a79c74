{#- Fan-out guard between layers: the model has no more rows than its grain in
    `compare_model` (with `exact`, exactly as many). -#}
{% test row_count_at_most(model, compare_model, exact=false) %}
    with

    counts as (
        select
            (select count(*) from {{ model }}) as model_rows,
            (select count(*) from {{ compare_model }}) as grain_rows
    )

    select *
    from counts
    where model_rows > grain_rows
    {%- if exact %} or model_rows < grain_rows{% endif %}
{% endtest %}
