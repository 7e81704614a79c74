{#- Personal data never reaches a mart in clear: marts carry a masked form for
    people to read and a salted hash for joining. The salt is a secret from the
    environment (CRM_PII_SALT); the default only serves the demo. -#}

{#- Stable salted SHA-256 of a normalised (trimmed, lower-case) value; null stays null. -#}
{% macro hash_pii(expression) -%}
    {%- set salt = env_var('CRM_PII_SALT', 'demo-salt-change-me') -%}
    case
        when {{ expression }} is null then null
        else {{ sha256_hex(dbt.concat([dbt.string_literal(dbt.escape_single_quotes(salt)), "'|'", "lower(trim(" ~ expression ~ "))"])) }}
    end
{%- endmacro %}

{#- First character, then one * per remaining character: 张三丰 -> 张**. -#}
{% macro mask_name(expression) -%}
    case
        when {{ expression }} is null then null
        else {{ dbt.concat(["substring(" ~ expression ~ ", 1, 1)", "lpad('', cast(" ~ dbt.length(expression) ~ " - 1 as " ~ dbt.type_int() ~ "), '*')"]) }}
    end
{%- endmacro %}

{#- First character of the local part, then ***@ and the domain: jane@x.com -> j***@x.com. -#}
{% macro mask_email(expression) -%}
    case
        when {{ expression }} is null then null
        else {{ dbt.concat(["substring(" ~ expression ~ ", 1, 1)", "'***@'", dbt.split_part(expression, "'@'", 2)]) }}
    end
{%- endmacro %}

{#- The last n characters only (phone numbers, id numbers). -#}
{% macro last_characters(expression, n=4) -%}
    {{ dbt.right(expression, n) }}
{%- endmacro %}
