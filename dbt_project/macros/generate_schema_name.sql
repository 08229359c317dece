{#- Schemas named as configured (staging, books), not prefixed with the target schema:
    the warehouse is CEI's alone and the names are what analysts query. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
