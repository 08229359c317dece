{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}
-- The lineage must not depend on which branch a trading date takes below.
-- depends_on: {{ ref('opening_books') }}

-- The P&L of the trading date per account, in base currency, two ways (docs/reconciliation.md):
--   books_pnl_base  = end market value - start market value + change in cash, from the firm's
--                     books. By the cash equation this is the books' P&L (end MV - start MV - net
--                     trade cash flow + dividends - fees): the sum of books.daily_pnl.total_pnl_base,
--                     which the test pnl_equations_hold checks whenever the P&L is published.
--   broker_pnl_base = the P&L implied by the broker's side: the same start (the firm's books at the
--                     previous close, which that day's reconciliation compared with the broker), and
--                     the broker's EOD statements as the end: its market values and its cash.
-- The books' end values convert at the date's closing rates, the start market value at the
-- previous close's (as in daily_pnl). The broker states no rates: its end values convert at the
-- closing rates too, except a rate that moved beyond the fx_rate_move tolerance, which is replaced
-- by the previous close's (recon_fx_rates). difference_base = books - broker, which the breaks
-- with explains_pnl in recon_breaks account for.
-- Not downstream of recon_breaks or daily_pnl, so it is there on the days the P&L is blocked.

with accounts as (
    select account, base_currency from {{ ref('stg_accounts') }}
),

start_values as (
    {% if is_first_date() %}
    select account, sum(market_value_base) as value_base from {{ ref('opening_books') }} group by account
    {% else %}
    select account, sum(market_value_base) as value_base
    from {{ ref('market_values') }}
    where business_date = {{ previous_date() }}
    group by account
    {% endif %}
),

end_values as (
    select account, sum(market_value_base) as value_base
    from {{ ref('market_values') }}
    where business_date = {{ business_date() }}
    group by account
),

broker_values as (
    select b.account, sum(cast(b.market_value as double precision) * fx.expected_fx_to_base) as value_base
    from {{ ref('stg_broker_positions') }} as b
    left join {{ ref('recon_marks') }} as m on m.symbol = b.symbol
    left join {{ ref('recon_fx_to_base') }} as fx on fx.account = b.account and fx.currency = coalesce(m.currency, b.currency)
    where b.business_date = {{ business_date() }}
    group by b.account
),

firm_cash as (
    select account, currency, balance, opening_balance
    from {{ ref('cash_balances') }}
    where business_date = {{ business_date() }}
),

broker_cash as (
    select account, currency, sum(balance) as balance
    from {{ ref('stg_broker_cash') }}
    where business_date = {{ business_date() }}
    group by account, currency
),

cash_changes as (
    select
        coalesce(f.account, b.account) as account,
        sum(cast(coalesce(f.balance, 0) - coalesce(f.opening_balance, 0) as double precision) * fx.fx_to_base) as books_change_base,
        sum(cast(coalesce(b.balance, 0) - coalesce(f.opening_balance, 0) as double precision) * fx.expected_fx_to_base) as broker_change_base
    from firm_cash as f
    full outer join broker_cash as b on b.account = f.account and b.currency = f.currency
    left join {{ ref('recon_fx_to_base') }} as fx
        on fx.account = coalesce(f.account, b.account) and fx.currency = coalesce(f.currency, b.currency)
    group by coalesce(f.account, b.account)
),

valued as (
    select
        a.account,
        a.base_currency,
        coalesce(s.value_base, 0) as start_value_base,
        coalesce(e.value_base, 0) as books_end_value_base,
        coalesce(c.books_change_base, 0) as books_cash_change_base,
        coalesce(bv.value_base, 0) as broker_end_value_base,
        coalesce(c.broker_change_base, 0) as broker_cash_change_base
    from accounts as a
    left join start_values as s on s.account = a.account
    left join end_values as e on e.account = a.account
    left join broker_values as bv on bv.account = a.account
    left join cash_changes as c on c.account = a.account
)

select
    {{ business_date() }} as business_date,
    account,
    base_currency,
    start_value_base,
    books_end_value_base,
    books_cash_change_base,
    books_end_value_base - start_value_base + books_cash_change_base as books_pnl_base,
    broker_end_value_base,
    broker_cash_change_base,
    broker_end_value_base - start_value_base + broker_cash_change_base as broker_pnl_base,
    (books_end_value_base + books_cash_change_base) - (broker_end_value_base + broker_cash_change_base) as difference_base
from valued
