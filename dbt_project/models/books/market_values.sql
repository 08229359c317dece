{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}

-- Every open position valued at the trading date's EOD mark, in the security's currency and
-- in the account's base currency at the closing rate. A position without a mark or a rate has
-- a null value here, never a guessed one: the checks on this table stop the P&L.

with marks as (
    select symbol, close from {{ ref('stg_eod_prices') }} where business_date = {{ business_date() }}
),

fx as (
    select currency, usd_per_unit from {{ ref('fx_rates_usd') }} where business_date = {{ business_date() }}
)

select
    p.business_date,
    p.account,
    p.symbol,
    p.currency,
    p.base_currency,
    p.quantity,
    m.close as close_price,
    p.quantity * m.close as market_value,
    cast(sec_fx.usd_per_unit as double precision) / base_fx.usd_per_unit as fx_to_base,
    cast(p.quantity * m.close as double precision) * sec_fx.usd_per_unit / base_fx.usd_per_unit as market_value_base
from {{ ref('positions') }} as p
left join marks as m on m.symbol = p.symbol
left join fx as sec_fx on sec_fx.currency = p.currency
left join fx as base_fx on base_fx.currency = p.base_currency
where p.business_date = {{ business_date() }} and p.quantity <> 0
