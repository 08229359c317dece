{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}
-- The lineage must not depend on which branch a trading date takes below.
-- depends_on: {{ ref('opening_books') }}
-- depends_on: {{ ref('market_values') }}
-- depends_on: {{ ref('recon_breaks') }} -- blocking reconciliation breaks (duplicated or unbooked fills, ...) hold the P&L

-- Daily P&L per account and security in the account's base currency.
--   total      = end market value - start market value - net trade cash flow + dividends - fees
--   realized   = trading P&L realized against average cost + dividends - fees
--   unrealized = change of (market value - cost basis) over the day
-- With costs carried in base currency (see positions), realized + unrealized = total exactly.
-- Trade cash flows, fees and dividends convert at the trading date's closing rate; the start
-- market value is yesterday's, at yesterday's rate.

with start_values as (
    {% if is_first_date() %}
    select account, symbol, market_value_base from {{ ref('opening_books') }}
    {% else %}
    select account, symbol, market_value_base
    from {{ ref('market_values') }}
    where business_date = {{ previous_date() }}
    {% endif %}
),

end_values as (
    select account, symbol, market_value_base
    from {{ ref('market_values') }}
    where business_date = {{ business_date() }}
),

fx as (
    select currency, usd_per_unit from {{ ref('fx_rates_usd') }} where business_date = {{ business_date() }}
),

flows as (
    select
        p.business_date,
        p.account,
        p.symbol,
        p.base_currency,
        p.fx_to_base,
        cast(p.buy_notional - p.sell_notional as double precision) * p.fx_to_base as trade_cash_flow_base,
        cast(p.fees as double precision) * p.fx_to_base as fees_base,
        -- No rate for the dividend's currency gives a null P&L (a failed check), not a zero.
        case when p.dividend_income = 0 then 0
             else cast(p.dividend_income as double precision) * div_fx.usd_per_unit / base_fx.usd_per_unit end as dividends_base,
        p.realized_trading_pnl_base,
        p.cost_basis_base,
        p.prior_cost_basis_base,
        coalesce(s.market_value_base, 0) as start_market_value_base,
        case when p.quantity = 0 then 0 else e.market_value_base end as end_market_value_base
    from {{ ref('positions') }} as p
    left join start_values as s on s.account = p.account and s.symbol = p.symbol
    left join end_values as e on e.account = p.account and e.symbol = p.symbol
    left join fx as div_fx on div_fx.currency = p.dividend_currency
    left join fx as base_fx on base_fx.currency = p.base_currency
    where p.business_date = {{ business_date() }}
)

select
    business_date,
    account,
    symbol,
    base_currency,
    start_market_value_base,
    end_market_value_base,
    trade_cash_flow_base,
    dividends_base,
    fees_base,
    realized_trading_pnl_base + dividends_base - fees_base as realized_pnl_base,
    (end_market_value_base - cost_basis_base) - (start_market_value_base - prior_cost_basis_base) as unrealized_pnl_base,
    end_market_value_base - start_market_value_base - trade_cash_flow_base + dividends_base - fees_base as total_pnl_base
from flows
