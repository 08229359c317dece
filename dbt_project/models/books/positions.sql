{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}
-- The lineage must not depend on which branch a trading date takes below.
-- depends_on: {{ ref('opening_books') }}

-- The firm's positions at the close of the trading date, rolled forward from the previous
-- date's books (the opening files on the landing root's first date): splits effective today,
-- then today's fills.
--
-- Cost method: average cost, with intraday netting. A day's buys and sells of one security in
-- one account are first matched against each other at their volume-weighted prices (that
-- round trip is realized today); only the net quantity moves the overnight position: adding
-- to it re-averages the cost, reducing it realizes P&L against the average cost, and crossing
-- through zero opens the remainder at the day's price. Costs are kept in the security's
-- currency and, at the trade date's closing rate, in the account's base currency, so base
-- P&L splits exactly into realized and unrealized (README, "Books and P&L").

with prior as (
    {% if is_first_date() %}
    select account, symbol, quantity, avg_cost, avg_cost_base from {{ ref('opening_books') }}
    {% else %}
    select account, symbol, quantity, avg_cost, avg_cost_base from ({{ previous_books() }}) as previous
    where quantity <> 0
    {% endif %}
),

splits as (
    select symbol, max(ratio) as ratio
    from {{ ref('stg_corporate_actions') }}
    where action = 'SPLIT' and ex_date = {{ business_date() }}
    group by symbol
),

dividends as (
    select symbol, max(amount) as amount_per_share, max(currency) as currency
    from {{ ref('stg_corporate_actions') }}
    where action = 'CASH_DIVIDEND' and ex_date = {{ business_date() }}
    group by symbol
),

-- Splits change quantity and cost per share, never the cost basis. A dividend is paid on the
-- holding at the end of the previous date, before any split of the same day.
prior_adjusted as (
    select
        p.account,
        p.symbol,
        p.quantity as prior_quantity_unadjusted,
        p.quantity * coalesce(s.ratio, 1) as prior_quantity,
        cast(p.avg_cost as double precision) / coalesce(s.ratio, 1) as prior_avg_cost,
        cast(p.avg_cost_base as double precision) / coalesce(s.ratio, 1) as prior_avg_cost_base
    from prior as p
    left join splits as s on s.symbol = p.symbol
),

fills as (
    select
        account,
        symbol,
        sum(case when side = 'BUY' then quantity else 0 end) as bought_quantity,
        sum(case when side = 'BUY' then notional else 0 end) as buy_notional,
        sum(case when side = 'SELL' then quantity else 0 end) as sold_quantity,
        sum(case when side = 'SELL' then notional else 0 end) as sell_notional,
        sum(fee) as fees
    from {{ ref('stg_executions') }}
    where business_date = {{ business_date() }}
    group by account, symbol
),

fx as (
    select currency, usd_per_unit from {{ ref('fx_rates_usd') }} where business_date = {{ business_date() }}
),

activity as (
    select
        coalesce(p.account, f.account) as account,
        coalesce(p.symbol, f.symbol) as symbol,
        coalesce(p.prior_quantity_unadjusted, 0) as prior_quantity_unadjusted,
        coalesce(p.prior_quantity, 0) as prior_quantity,
        p.prior_avg_cost,
        p.prior_avg_cost_base,
        coalesce(f.bought_quantity, 0) as bought_quantity,
        coalesce(f.buy_notional, 0) as buy_notional,
        coalesce(f.sold_quantity, 0) as sold_quantity,
        coalesce(f.sell_notional, 0) as sell_notional,
        coalesce(f.fees, 0) as fees
    from prior_adjusted as p
    full outer join fills as f on f.account = p.account and f.symbol = p.symbol
),

priced as (
    select
        a.*,
        s.currency,
        acc.base_currency,
        cast(sec_fx.usd_per_unit as double precision) / base_fx.usd_per_unit as fx_to_base,
        case when a.bought_quantity > 0 then cast(a.buy_notional as double precision) / a.bought_quantity end as buy_price,
        case when a.sold_quantity > 0 then cast(a.sell_notional as double precision) / a.sold_quantity end as sell_price,
        least(a.bought_quantity, a.sold_quantity) as matched_quantity,
        a.bought_quantity - a.sold_quantity as net_quantity
    from activity as a
    left join {{ ref('stg_securities') }} as s on s.symbol = a.symbol
    left join {{ ref('stg_accounts') }} as acc on acc.account = a.account
    left join fx as sec_fx on sec_fx.currency = s.currency
    left join fx as base_fx on base_fx.currency = acc.base_currency
),

netted as (
    select
        *,
        case when net_quantity > 0 then buy_price when net_quantity < 0 then sell_price end as net_price,
        -- The part of the net trade that closes prior holdings, signed like the prior position.
        case
            when net_quantity = 0 or prior_quantity = 0 or sign(net_quantity) = sign(prior_quantity) then 0
            else sign(prior_quantity) * least(abs(net_quantity), abs(prior_quantity))
        end as closed_quantity,
        prior_quantity + net_quantity as quantity
    from priced
),

rolled as (
    select
        *,
        coalesce(matched_quantity * (sell_price - buy_price), 0)
            + coalesce(closed_quantity * (net_price - prior_avg_cost), 0) as realized_trading_pnl,
        coalesce(matched_quantity * (sell_price - buy_price) * fx_to_base, 0)
            + coalesce(closed_quantity * (net_price * fx_to_base - prior_avg_cost_base), 0) as realized_trading_pnl_base,
        case
            when quantity = 0 then null
            when net_quantity = 0 then prior_avg_cost
            when prior_quantity = 0 or sign(net_quantity) = sign(prior_quantity)
                then (prior_quantity * coalesce(prior_avg_cost, 0) + net_quantity * net_price) / quantity
            when sign(quantity) = sign(prior_quantity) then prior_avg_cost
            else net_price  -- crossed through zero: the remainder opens at today's price
        end as avg_cost,
        case
            when quantity = 0 then null
            when net_quantity = 0 then prior_avg_cost_base
            when prior_quantity = 0 or sign(net_quantity) = sign(prior_quantity)
                then (prior_quantity * coalesce(prior_avg_cost_base, 0) + net_quantity * net_price * fx_to_base) / quantity
            when sign(quantity) = sign(prior_quantity) then prior_avg_cost_base
            else net_price * fx_to_base
        end as avg_cost_base
    from netted
)

select
    {{ business_date() }} as business_date,
    r.account,
    r.symbol,
    r.currency,
    r.base_currency,
    r.quantity,
    r.avg_cost,
    r.avg_cost_base,
    r.quantity * coalesce(r.avg_cost_base, 0) as cost_basis_base,
    r.prior_quantity,
    r.prior_quantity * coalesce(r.prior_avg_cost_base, 0) as prior_cost_basis_base,
    r.bought_quantity,
    r.sold_quantity,
    r.buy_notional,
    r.sell_notional,
    r.fees,
    r.fx_to_base,
    r.realized_trading_pnl,
    r.realized_trading_pnl_base,
    d.currency as dividend_currency,
    r.prior_quantity_unadjusted * coalesce(d.amount_per_share, 0) as dividend_income
from rolled as r
left join dividends as d on d.symbol = r.symbol
-- Closed positions stay for the day they closed (their realized P&L), then drop out.
where r.quantity <> 0 or r.bought_quantity <> 0 or r.sold_quantity <> 0
