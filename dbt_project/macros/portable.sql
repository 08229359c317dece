{#- The few DuckDB functions the models use that PostgreSQL spells differently, behind
    adapter.dispatch so one model builds on either warehouse (profiles.yml, targets duckdb and
    postgres). The default__ flavour is DuckDB's own SQL, unchanged; the postgres__ flavour may
    call the functions CEI installs in the warehouse's cei_compat schema
    (cei_assets/warehouse_postgres.py, COMPAT_SQL), e.g. DuckDB's format().

    Macros that take SQL with Jinja inside it are used as call blocks, so the SQL stays SQL:
        {% call cei_format() %}'{}: {:,.2f} {}', account, balance, currency{% endcall %}
-#}

{#- format(template, args...) with fmt placeholders {}, {:.15g}, {:.Nf}, {:,.Nf}; NULL when any
    argument is NULL. The body is the template (a string literal), then the arguments. -#}
{% macro cei_format() -%}
    {{- return(adapter.dispatch('cei_format', 'cei')(caller())) -}}
{%- endmacro %}

{% macro default__cei_format(body) -%}
    format({{ body }})
{%- endmacro %}

{% macro postgres__cei_format(body) -%}
    {%- set parts = modules.re.match("^\\s*('(?:[^']|'')*')\\s*(?:,(.*))?$", body, modules.re.S) -%}
    {%- if parts is none -%}
        {{ exceptions.raise_compiler_error("cei_format: the call block must start with the template as a string literal, got: " ~ body) }}
    {%- endif -%}
    cei_compat.format({{ parts.group(1) }}, json_build_array({{ parts.group(2) or '' }}))
{%- endmacro %}


{#- strftime(timestamp, format) with the codes %Y %m %d %H %M %S and %g (milliseconds); the
    body is the timestamp or date expression. -#}
{% macro cei_strftime(format) -%}
    {{- return(adapter.dispatch('cei_strftime', 'cei')(caller(), format)) -}}
{%- endmacro %}

{% macro default__cei_strftime(value, format) -%}
    strftime({{ value }}, '{{ format }}')
{%- endmacro %}

{% macro postgres__cei_strftime(value, format) -%}
    {%- set codes = {'Y': 'YYYY', 'm': 'MM', 'd': 'DD', 'H': 'HH24', 'M': 'MI', 'S': 'SS', 'g': 'MS'} -%}
    {%- set pattern = namespace(text='', percent=false) -%}
    {%- for character in format -%}
        {%- if pattern.percent -%}
            {%- if character not in codes -%}
                {{ exceptions.raise_compiler_error("cei_strftime: %" ~ character ~ " has no PostgreSQL spelling here; known: %" ~ codes.keys() | join(', %')) }}
            {%- endif -%}
            {%- set pattern.text = pattern.text ~ codes[character] -%}
            {%- set pattern.percent = false -%}
        {%- elif character == '%' -%}
            {%- set pattern.percent = true -%}
        {%- elif character.isalpha() -%}
            {%- set pattern.text = pattern.text ~ '"' ~ character ~ '"' -%}
        {%- else -%}
            {%- set pattern.text = pattern.text ~ character -%}
        {%- endif -%}
    {%- endfor -%}
    to_char({{ value }}, '{{ pattern.text }}')
{%- endmacro %}


{#- epoch_ms(timestamp): whole milliseconds since 1970-01-01 00:00 UTC; the body is the timestamp. -#}
{% macro cei_epoch_ms() -%}
    {{- return(adapter.dispatch('cei_epoch_ms', 'cei')(caller())) -}}
{%- endmacro %}

{% macro default__cei_epoch_ms(value) -%}
    epoch_ms({{ value }})
{%- endmacro %}

{% macro postgres__cei_epoch_ms(value) -%}
    cast(floor(extract(epoch from {{ value }}) * 1000) as bigint)
{%- endmacro %}


{#- round(x, digits) of a double too: PostgreSQL rounds to digits only numerics. -#}
{% macro cei_round(digits) -%}
    {{- return(adapter.dispatch('cei_round', 'cei')(caller(), digits)) -}}
{%- endmacro %}

{% macro default__cei_round(value, digits) -%}
    round({{ value }}, {{ digits }})
{%- endmacro %}

{% macro postgres__cei_round(value, digits) -%}
    round(cast({{ value }} as numeric), {{ digits }})
{%- endmacro %}


{#- A list of strings as SQL (DuckDB list, PostgreSQL array), typed varchar[]. -#}
{% macro cei_text_list(items) -%}
    {{- return(adapter.dispatch('cei_text_list', 'cei')(items)) -}}
{%- endmacro %}

{% macro default__cei_text_list(items) -%}
    [{% for item in items %}'{{ item | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor %}]
{%- endmacro %}

{#- PostgreSQL spells the same bracketed list array[...], and types an empty one only by a cast. -#}
{% macro postgres__cei_text_list(items) -%}
    cast(array{{ default__cei_text_list(items) }} as varchar[])
{%- endmacro %}


{#- Whether a list holds a value (NULL for a NULL list). -#}
{% macro cei_list_contains(list, value) -%}
    {{- return(adapter.dispatch('cei_list_contains', 'cei')(list, value)) -}}
{%- endmacro %}

{% macro default__cei_list_contains(list, value) -%}
    list_contains({{ list }}, {{ value }})
{%- endmacro %}

{% macro postgres__cei_list_contains(list, value) -%}
    ({{ value }} = any({{ list }}))
{%- endmacro %}


{#- Fail the statement with a message (the body, a string expression), as DuckDB's error(). -#}
{% macro cei_error() -%}
    {{- return(adapter.dispatch('cei_error', 'cei')(caller())) -}}
{%- endmacro %}

{% macro default__cei_error(message) -%}
    error({{ message }})
{%- endmacro %}

{% macro postgres__cei_error(message) -%}
    cei_compat.error({{ message }})
{%- endmacro %}
