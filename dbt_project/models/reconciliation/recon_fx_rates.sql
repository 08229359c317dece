{{ config(materialized='ephemeral') }}
-- The lineage must not depend on which branch a trading date takes below.
-- depends_on: {{ ref('stg_opening_fx_rates') }}

-- USD per unit of each currency at the trading date's close (fx_rates_usd) next to the previous
-- close's (the opening rates on the landing root's first date), the move in basis points, and
-- the rate the reconciliation expects: today's, or the previous close's when today's moved
-- beyond the fx_rate_move tolerance (such a rate is a blocking break until confirmed or fixed).
with previous as (
    {% if is_first_date() %}
    select base_currency as currency, max(rate) as rate
    from {{ ref('stg_opening_fx_rates') }}
    where quote_currency = 'USD'
    group by base_currency
    {% else %}
    select base_currency as currency, max(rate) as rate
    from {{ ref('stg_fx_rates') }}
    where business_date = {{ previous_date() }} and quote_currency = 'USD'
    group by base_currency
    {% endif %}
),

tolerance as (
    select tolerance_relative_bps as move_bps
    from {{ ref('recon_rules') }}
    where business_date = {{ business_date() }} and rule = 'fx_rate_move'
),

rates as (
    select
        t.currency,
        cast(t.usd_per_unit as double precision) as usd_per_unit,
        case when t.currency = 'USD' then 1 else cast(p.rate as double precision) end as previous_usd_per_unit
    from {{ ref('fx_rates_usd') }} as t
    left join previous as p on p.currency = t.currency
    where t.business_date = {{ business_date() }}
),

moved as (
    select r.*, (r.usd_per_unit / nullif(r.previous_usd_per_unit, 0) - 1) * 10000 as move_bps
    from rates as r
)

select
    m.currency,
    m.usd_per_unit,
    m.previous_usd_per_unit,
    m.move_bps,
    coalesce(abs(m.move_bps) > t.move_bps, false) as implausible,
    case when abs(m.move_bps) > t.move_bps then m.previous_usd_per_unit else m.usd_per_unit end as expected_usd_per_unit
from moved as m
cross join tolerance as t
