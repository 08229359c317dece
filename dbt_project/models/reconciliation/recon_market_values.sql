{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}

-- Invariant 10, market values: every line of the broker's statement is quantity x close price
-- (broker_market_value), and the broker's close price is the firm's EOD mark (broker_price).
-- Both are valuation differences: category price. impact_base, in the account's base currency,
-- is how much higher the firm's valuation of the line is than the broker's:
--   broker_price:        broker quantity x (firm mark - broker price)
--   broker_market_value: broker quantity x broker price - the broker's stated market value
-- With position_quantity ((firm - broker quantity) x firm mark) these add up exactly to the
-- firm's market value minus the broker's stated market value. (The firm's own market values are
-- quantity x mark by construction: books.market_values.)

with rules as (
    select * from {{ ref('recon_rules') }} where business_date = {{ business_date() }}
),

tolerance as (
    select
        max(case when rule = 'broker_market_value' then tolerance_absolute end) as mv_abs,
        max(case when rule = 'broker_market_value' then tolerance_relative_bps end) / 10000 as mv_rel,
        max(case when rule = 'broker_price' then tolerance_absolute end) as price_abs,
        max(case when rule = 'broker_price' then tolerance_relative_bps end) / 10000 as price_rel
    from rules
),

lines as (
    select
        b.account,
        b.symbol,
        coalesce(m.currency, b.currency) as currency,
        b.quantity,
        b.close_price,
        b.market_value,
        b.quantity * b.close_price as computed_value,
        m.close as mark,
        fx.fx_to_base
    from {{ ref('stg_broker_positions') }} as b
    left join {{ ref('recon_marks') }} as m on m.symbol = b.symbol
    left join {{ ref('recon_fx_to_base') }} as fx on fx.account = b.account and fx.currency = coalesce(m.currency, b.currency)
    where b.business_date = {{ business_date() }}
),

breaks as (
    select
        'broker_market_value' as rule, l.account, l.symbol, l.currency,
        {% call cei_format() %}'{:.15g}', l.computed_value{% endcall %} as firm_value,
        {% call cei_format() %}'{:.15g}', l.market_value{% endcall %} as broker_value,
        l.computed_value - l.market_value as difference,
        cast(l.computed_value - l.market_value as double precision) * l.fx_to_base as impact_base,
        {% call cei_format() %}'{}: the broker''s statement values {:.15g} {} at {:,.2f} {} but {:.15g} x {:.15g} is {:,.2f}.',
               l.account, l.quantity, l.symbol, l.market_value, l.currency, l.quantity, l.close_price,
               l.computed_value{% endcall %} as description
    from lines as l, tolerance as t
    where abs(l.computed_value - l.market_value) > greatest(t.mv_abs, t.mv_rel * abs(l.computed_value))

    union all
    select
        'broker_price', l.account, l.symbol, l.currency,
        {% call cei_format() %}'{:.15g}', l.mark{% endcall %}, {% call cei_format() %}'{:.15g}', l.close_price{% endcall %},
        l.mark - l.close_price,
        cast(l.quantity * (l.mark - l.close_price) as double precision) * l.fx_to_base,
        {% call cei_format() %}'{}: the broker prices {} at {:.15g} {}, the firm''s EOD mark is {:.15g} ({} bps apart).',
               l.account, l.symbol, l.close_price, l.currency, l.mark,
               coalesce(cast({% call cei_round(1) %}(l.close_price - l.mark) / nullif(l.mark, 0) * 10000{% endcall %} as varchar), 'n/a'){% endcall %}
    from lines as l, tolerance as t
    where l.mark is not null
      and abs(l.mark - l.close_price) > greatest(t.price_abs, t.price_rel * abs(l.mark))
)

select
    {{ business_date() }} as business_date,
    'market values' as family,
    rule,
    'price' as category,
    account,
    symbol,
    currency,
    cast(null as varchar) as reference,
    firm_value,
    broker_value,
    cast(difference as decimal(38, 10)) as difference,
    impact_base,
    true as explains_pnl,
    description
from breaks
