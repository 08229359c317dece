{{ config(materialized='table') }}

-- The books as of the close before the landing root's first trading date, valued at that
-- close. Positions' average cost is also carried in the account's base currency at the
-- opening rate, the start of the base-currency cost basis (see the cost method in README).
with opening_fx as (
    select base_currency as currency, rate as usd_per_unit
    from {{ ref('stg_opening_fx_rates') }}
    where quote_currency = 'USD' and base_currency <> 'USD'
    union all
    select 'USD', 1
)

select
    p.account,
    p.symbol,
    s.currency,
    a.base_currency,
    p.quantity,
    p.avg_cost,
    cast(sec_fx.usd_per_unit / base_fx.usd_per_unit as double precision) as fx_to_base,
    cast(p.avg_cost as double precision) * sec_fx.usd_per_unit / base_fx.usd_per_unit as avg_cost_base,
    m.close as close_price,
    p.quantity * m.close as market_value,
    cast(p.quantity * m.close as double precision) * sec_fx.usd_per_unit / base_fx.usd_per_unit as market_value_base
from {{ ref('stg_opening_positions') }} as p
left join {{ ref('stg_securities') }} as s on s.symbol = p.symbol
left join {{ ref('stg_accounts') }} as a on a.account = p.account
left join {{ ref('stg_opening_eod_prices') }} as m on m.symbol = p.symbol
left join opening_fx as sec_fx on sec_fx.currency = s.currency
left join opening_fx as base_fx on base_fx.currency = a.base_currency
where p.quantity <> 0
