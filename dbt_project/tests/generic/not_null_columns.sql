{#- Several not_null tests in one pass: the rows in which any of `columns` is null.
    The same guarantee as one not_null test per column, for one scan of the model
    instead of one each (a daily run still reads only the recent rows). -#}
{% test not_null_columns(model, columns) %}
    select *
    from {{ model }}
    where
        {% for column in columns -%}
            {{ column }} is null{% if not loop.last %} or {% endif %}
        {% endfor %}
{% endtest %}
