{#- The trading date a run builds, and its neighbours, as SQL date literals. -#}
{% macro business_date() -%}cast('{{ var("business_date") }}' as date){%- endmacro %}
{% macro previous_date() -%}cast('{{ var("previous_date") }}' as date){%- endmacro %}
{% macro is_first_date() -%}{{ return(var("business_date") == var("first_date")) }}{%- endmacro %}

{#- Incremental books are rebuilt one trading date at a time: clear that date, then append.
    delete+insert on a unique key would leave stale rows when a date's new result is empty. -#}
{% macro clear_business_date() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where business_date = {{ business_date() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- Rows of an incremental book as of the previous trading date. On the landing root's first
    date the books start from the opening files instead (see opening_books). -#}
{% macro previous_books(relation_is_this=true) -%}
    {#- `execute` is false while dbt parses, when no relation exists yet to test. -#}
    {%- if execute and not is_incremental() -%}
        {{ exceptions.raise_compiler_error(
            "the books for " ~ var("previous_date") ~ " are not in the warehouse: materialize the trading dates in order from the landing root's first date (" ~ var("first_date") ~ ")") }}
    {%- endif -%}
    select * from {{ this }} where business_date = {{ previous_date() }}
{%- endmacro %}
