{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}
-- The lineage must not depend on which branch a trading date takes below.
-- depends_on: {{ ref('stg_opening_cash') }}

-- Cash by account and currency at the close: the previous balance (the opening file on the
-- first date) minus buys and fees, plus sells and cash dividends, each in its own currency.

with prior as (
    {% if is_first_date() %}
    select account, currency, balance from {{ ref('stg_opening_cash') }}
    {% else %}
    select account, currency, balance from ({{ previous_books() }}) as previous
    {% endif %}
),

trade_flows as (
    select
        account,
        currency,
        sum(case when side = 'SELL' then notional else -notional end) as trade_cash_flow,
        sum(fee) as fees
    from {{ ref('stg_executions') }}
    where business_date = {{ business_date() }}
    group by account, currency
),

dividend_flows as (
    select account, dividend_currency as currency, sum(dividend_income) as dividends
    from {{ ref('positions') }}
    where business_date = {{ business_date() }} and dividend_currency is not null
    group by account, dividend_currency
),

keys as (
    select account, currency from prior
    union
    select account, currency from trade_flows
    union
    select account, currency from dividend_flows
)

select
    {{ business_date() }} as business_date,
    k.account,
    k.currency,
    coalesce(p.balance, 0) as opening_balance,
    coalesce(t.trade_cash_flow, 0) as trade_cash_flow,
    coalesce(t.fees, 0) as fees,
    coalesce(d.dividends, 0) as dividends,
    coalesce(p.balance, 0) + coalesce(t.trade_cash_flow, 0) - coalesce(t.fees, 0) + coalesce(d.dividends, 0) as balance
from keys as k
left join prior as p on p.account = k.account and p.currency = k.currency
left join trade_flows as t on t.account = k.account and t.currency = k.currency
left join dividend_flows as d on d.account = k.account and d.currency = k.currency
