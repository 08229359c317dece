{{ config(materialized='ephemeral') }}

{#- The reconciliation rules of this build: the catalogue below (what each rule compares) with the
    tolerances and blocking choices of asset_checks/reconciliation.yaml, which cei passes as the
    var `reconciliation` (cei_assets/assets/books.py, dbt_vars_for). Ephemeral: every model that
    needs a tolerance compiles this in from the vars of its own build, so no selection of assets
    can leave a model comparing with another build's rules (or none), and a bad file stops each of
    them with the file and the rule named, before anything is compared. -#}

{%- set source_file = 'asset_checks/reconciliation.yaml' -%}
{%- set categories = ['missing at broker', 'missing internally', 'late confirm', 'quantity', 'price', 'fee',
                      'duplicate', 'position', 'cash', 'FX', 'corporate action suspected'] -%}
{%- set catalogue = [
    ('fill_without_order', 'orders', 5, "every fill's order_id is an order of the firm"),
    ('overfill', 'orders', 5, "an order's fills never exceed its quantity"),
    ('fill_account', 'orders', 5, "a fill's account is its order's account"),
    ('fill_symbol', 'orders', 5, "a fill's security is its order's security"),
    ('fill_side', 'orders', 5, "a fill's side is its order's side"),
    ('limit_price', 'orders', 5, "a LIMIT buy never fills above its limit, a LIMIT sell never below"),
    ('duplicate_fill', 'confirms', 6, "no fill is recorded twice (the broker confirmed it once)"),
    ('fill_missing', 'confirms', 6, "every broker confirm has the firm's fill"),
    ('confirm_missing', 'confirms', 6, "every fill has a broker confirm"),
    ('duplicate_confirm', 'confirms', 6, "no fill is confirmed twice"),
    ('confirm_account', 'confirms', 6, "a confirm's account is its fill's account"),
    ('confirm_symbol', 'confirms', 6, "a confirm's security is its fill's security"),
    ('confirm_side', 'confirms', 6, "a confirm's side is its fill's side"),
    ('confirm_quantity', 'confirms', 6, "a confirm's quantity is its fill's quantity"),
    ('confirm_price', 'confirms', 6, "a confirm's price is its fill's price"),
    ('confirm_fee', 'confirms', 6, "a confirm's fee is its fill's fee"),
    ('late_confirm', 'confirms', 6, "every confirm arrives before the cut-off on the trading date"),
    ('position_quantity', 'positions', 7, "the rolled-forward position is the broker's EOD quantity"),
    ('suspected_split', 'positions', 7, "categorisation: a position break that an unrecorded split explains"),
    ('cash_balance', 'cash', 8, "the rolled-forward cash is the broker's EOD balance"),
    ('suspected_dividend', 'cash', 8, "categorisation: cash breaks that an unrecorded dividend explains"),
    ('broker_market_value', 'market values', 10, "the broker's market value is its quantity x close price"),
    ('broker_price', 'market values', 10, "the broker's close price is the firm's EOD mark"),
    ('fx_rate_move', 'FX', 9, "a closing XXXUSD rate stays near the previous close's"),
    ('fx_cross_rate', 'FX', 9, "a cross rate is the ratio of its USD legs"),
    ('pnl_equation', 'P&L', 9, "the P&L equals the change in market value and cash (test on recon_pnl)"),
    ('pnl_explained', 'P&L', 9, "the breaks account for the books' P&L minus the broker's (test on recon_pnl)"),
] -%}
{%- set allowed_keys = ['absolute', 'relative_bps', 'blocking', 'reason', 'cutoff_utc'] -%}

{#- Problems are collected, not raised: a compile error in an ephemeral model reaches the log
    without its message, so a bad file instead fails every model that uses the rules at run time
    with the message (DuckDB's error(), macros/portable.sql), and nothing is compared. -#}
{%- set settings = var('reconciliation', none) -%}
{%- set problems = [] -%}
{%- set clean = {} -%}
{%- set known = catalogue | map(attribute=0) | list -%}
{%- if settings is not mapping or settings.get('rules') is not mapping -%}
    {%- do problems.append("the reconciliation settings are missing: dbt must be run with --vars holding 'reconciliation' as read from " ~ source_file ~ " (cei run does this; see dbt_vars_for in cei_assets/assets/books.py)") -%}
{%- else -%}
    {%- for name in settings['rules'] if name not in known -%}
        {%- do problems.append(source_file ~ ": unknown rule '" ~ name ~ "'; the rules are: " ~ known | join(', ')) -%}
    {%- endfor -%}
    {%- for name, family, invariant, checks in catalogue -%}
        {%- set rule = settings['rules'].get(name) -%}
        {%- if rule is none -%}
            {%- do problems.append(source_file ~ ": rule '" ~ name ~ "' is missing (it checks that " ~ checks ~ ")") -%}
        {%- elif rule is not mapping -%}
            {%- do problems.append(source_file ~ ": rule '" ~ name ~ "' must be a mapping of options, got '" ~ rule ~ "'") -%}
        {%- else -%}
            {%- set entry = {'absolute': 0, 'relative_bps': 0, 'always': false, 'categories': [], 'cutoff': none, 'reason': rule.get('reason')} -%}
            {%- for key in rule if key not in allowed_keys or (key == 'cutoff_utc' and name != 'late_confirm') -%}
                {%- do problems.append(source_file ~ ": rule '" ~ name ~ "' has an unknown option '" ~ key ~ "' (options: absolute, relative_bps, blocking, reason; cutoff_utc for late_confirm)") -%}
            {%- endfor -%}
            {%- for key in ['absolute', 'relative_bps'] -%}
                {%- set value = rule.get(key, 0) -%}
                {%- if value is not number or value is sameas true or value is sameas false or value < 0 -%}
                    {%- do problems.append(source_file ~ ": rule '" ~ name ~ "': " ~ key ~ " must be a number of at least 0, got '" ~ value ~ "'") -%}
                {%- else -%}
                    {%- do entry.update({key: value}) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- set blocking = rule.get('blocking', false) -%}
            {%- if blocking is sameas true or blocking is sameas false -%}
                {%- do entry.update({'always': blocking}) -%}
            {%- elif blocking is string or blocking is mapping or blocking is not iterable -%}
                {%- do problems.append(source_file ~ ": rule '" ~ name ~ "': blocking must be true, false or a list of categories, got '" ~ blocking ~ "'") -%}
            {%- else -%}
                {%- for category in blocking -%}
                    {%- if category in categories -%}
                        {%- do entry['categories'].append(category) -%}
                    {%- else -%}
                        {%- do problems.append(source_file ~ ": rule '" ~ name ~ "': unknown category '" ~ category ~ "' in blocking; the categories are: " ~ categories | join(', ')) -%}
                    {%- endif -%}
                {%- endfor -%}
            {%- endif -%}
            {%- if name == 'late_confirm' -%}
                {%- if modules.re.match('^([01][0-9]|2[0-3]):[0-5][0-9]$', rule.get('cutoff_utc', '') | string) -%}
                    {%- do entry.update({'cutoff': rule['cutoff_utc']}) -%}
                {%- else -%}
                    {%- do problems.append(source_file ~ ": rule 'late_confirm': cutoff_utc must be a time HH:MM in UTC, in quotes (e.g. \"23:00\"), got '" ~ rule.get('cutoff_utc') ~ "'") -%}
                {%- endif -%}
            {%- endif -%}
            {%- do clean.update({name: entry}) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif %}

select
    {{ business_date() }} as business_date,
    rule,
    family,
    invariant,
    checks,
    cast(tolerance_absolute as double precision) as tolerance_absolute,
    cast(tolerance_relative_bps as double precision) as tolerance_relative_bps,
    blocks_always,
    cast(blocks_categories as varchar[]) as blocks_categories,
    cast(cutoff_utc as time) as cutoff_utc,
    reason
from (values
{%- for name, family, invariant, checks in catalogue %}
    {%- set entry = clean.get(name) or {'absolute': 0, 'relative_bps': 0, 'always': false, 'categories': [], 'cutoff': none, 'reason': none} %}
    (
        '{{ name }}', '{{ family }}', {{ invariant }}, '{{ checks | replace("'", "''") }}',
        {{ entry['absolute'] }}, {{ entry['relative_bps'] }}, {{ 'true' if entry['always'] else 'false' }},
        {{ cei_text_list(entry['categories']) }},
        {% if entry['cutoff'] %}'{{ entry['cutoff'] }}'{% else %}null{% endif %},
        {% if entry['reason'] %}'{{ entry['reason'] | string | replace("'", "''") }}'{% else %}null{% endif %}
    ){% if not loop.last %},{% endif %}
{%- endfor %}
) as rules(rule, family, invariant, checks, tolerance_absolute, tolerance_relative_bps, blocks_always,
           blocks_categories, cutoff_utc, reason)
{%- if problems and execute %}
where {% call cei_error() %}'{{ problems | join("; ") | replace("'", "''") }}'{% endcall %} is null
{%- endif %}
