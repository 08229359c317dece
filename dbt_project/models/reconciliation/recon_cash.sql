{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}

-- Invariant 8, cash: the books' cash at the close (previous balance - buys - fees + sells +
-- dividends) against the prime broker's EOD statement, per account and currency, within the
-- cash_balance tolerance. difference = firm - broker; impact_base = difference in the account's
-- base currency at the close (how much higher the books' cash, and P&L, is).
--
-- Category, first match wins:
--   1. the trade breaks of the date explain it: the sum of their implied cash (recon_confirms)
--      is the difference within the tolerance -> their category (duplicate, missing internally,
--      missing at broker, quantity, price, fee, in that order of precedence); the security is
--      named when they all concern one;
--   2. an unrecorded dividend explains it: for a security in that currency held at the previous
--      close by at least two accounts, with no dividend recorded today, every holder's broker
--      minus books difference is the same positive amount per share held, at most the
--      suspected_dividend tolerance (a share) of the previous close -> corporate action
--      suspected, naming the security (a single holder's difference cannot be told from any
--      other cash difference, so it stays 'cash');
--   3. otherwise -> cash.

with rules as (
    select * from {{ ref('recon_rules') }} where business_date = {{ business_date() }}
),

tolerance as (
    select
        max(case when rule = 'cash_balance' then tolerance_absolute end) as cash_abs,
        max(case when rule = 'cash_balance' then tolerance_relative_bps end) / 10000 as cash_rel,
        max(case when rule = 'suspected_dividend' then tolerance_relative_bps end) / 10000 as max_yield
    from rules
),

firm as (
    select account, currency, balance
    from {{ ref('cash_balances') }}
    where business_date = {{ business_date() }}
),

broker as (
    select account, currency, sum(balance) as balance
    from {{ ref('stg_broker_cash') }}
    where business_date = {{ business_date() }}
    group by account, currency
),

compared as (
    select
        coalesce(f.account, b.account) as account,
        coalesce(f.currency, b.currency) as currency,
        coalesce(f.balance, 0) as firm_balance,
        coalesce(b.balance, 0) as broker_balance,
        coalesce(f.balance, 0) - coalesce(b.balance, 0) as difference
    from firm as f
    full outer join broker as b on b.account = f.account and b.currency = f.currency
),

breaks as (
    select c.*
    from compared as c, tolerance as t
    where abs(c.difference) > greatest(t.cash_abs, t.cash_rel * abs(c.broker_balance))
),

trades as (
    select
        account,
        currency,
        sum(implied_cash) as implied_cash,
        min(case category when 'duplicate' then 1 when 'missing internally' then 2 when 'missing at broker' then 3
                          when 'quantity' then 4 when 'price' then 5 when 'fee' then 6 end) as precedence,
        string_agg(reference, ', ' order by reference) as trade_refs,
        case when count(distinct symbol) = 1 then min(symbol) end as symbol
    from {{ ref('recon_confirms') }}
    where business_date = {{ business_date() }} and implied_cash <> 0
    group by account, currency
),

recorded_dividends as (
    select distinct symbol
    from {{ ref('stg_corporate_actions') }}
    where action = 'CASH_DIVIDEND' and ex_date = {{ business_date() }}
),

splits as (
    select symbol, max(ratio) as ratio
    from {{ ref('stg_corporate_actions') }}
    where action = 'SPLIT' and ex_date = {{ business_date() }}
    group by symbol
),

-- Holdings at the previous close (before any split of today), of securities with no dividend recorded today.
holdings as (
    select p.account, p.symbol, m.currency, m.previous_close, p.prior_quantity / coalesce(s.ratio, 1) as held
    from {{ ref('positions') }} as p
    join {{ ref('recon_marks') }} as m on m.symbol = p.symbol
    left join splits as s on s.symbol = p.symbol
    where p.business_date = {{ business_date() }} and p.prior_quantity <> 0
      and p.symbol not in (select symbol from recorded_dividends)
),

holders as (
    select symbol, count(*) as holders from holdings group by symbol
),

per_share as (
    select h.symbol, h.account, h.currency, h.held, h.previous_close,
           -b.difference / h.held as amount
    from breaks as b
    join holdings as h on h.account = b.account and h.currency = b.currency
),

dividend_symbols as (
    select g.*
    from (
        select p.symbol, {% call cei_round(8) %}p.amount{% endcall %} as amount, count(*) as accounts
        from per_share as p, tolerance as t
        where p.amount > 0 and p.amount <= t.max_yield * p.previous_close
        group by p.symbol, {% call cei_round(8) %}p.amount{% endcall %}
    ) as g
    join holders as h on h.symbol = g.symbol
    where g.accounts = h.holders and g.accounts >= 2
),

suspected_dividends as (
    select p.account, p.currency, min(p.symbol) as symbol, min(p.held) as held, min(d.amount) as amount,
           min(d.accounts) as accounts
    from per_share as p
    join dividend_symbols as d on d.symbol = p.symbol and d.amount = {% call cei_round(8) %}p.amount{% endcall %}
    group by p.account, p.currency
),

categorised as (
    select
        b.*,
        fx.fx_to_base,
        t.trade_refs,
        d.held,
        d.amount,
        d.accounts,
        case
            when t.implied_cash is not null and abs(b.difference - t.implied_cash) <= tol.cash_abs
                then case t.precedence when 1 then 'duplicate' when 2 then 'missing internally'
                                       when 3 then 'missing at broker' when 4 then 'quantity'
                                       when 5 then 'price' else 'fee' end
            when d.symbol is not null then 'corporate action suspected'
            else 'cash'
        end as category,
        case
            when t.implied_cash is not null and abs(b.difference - t.implied_cash) <= tol.cash_abs then t.symbol
            when d.symbol is not null then d.symbol
        end as symbol
    from breaks as b
    cross join tolerance as tol
    left join {{ ref('recon_fx_to_base') }} as fx on fx.account = b.account and fx.currency = b.currency
    left join trades as t on t.account = b.account and t.currency = b.currency
    left join suspected_dividends as d on d.account = b.account and d.currency = b.currency
)

select
    {{ business_date() }} as business_date,
    'cash' as family,
    'cash_balance' as rule,
    category,
    account,
    symbol,
    currency,
    cast(null as varchar) as reference,
    {% call cei_format() %}'{:.15g}', firm_balance{% endcall %} as firm_value,
    {% call cei_format() %}'{:.15g}', broker_balance{% endcall %} as broker_value,
    cast(difference as decimal(38, 10)) as difference,
    cast(difference as double precision) * fx_to_base as impact_base,
    true as explains_pnl,
    case category
        when 'cash' then
            {% call cei_format() %}'{}: the books hold {:,.2f} {} at the close, the broker''s statement {:,.2f} (difference {:,.2f}).',
                   account, firm_balance, currency, broker_balance, difference{% endcall %}
        when 'corporate action suspected' then
            {% call cei_format() %}'{}: the broker''s {} cash is {:,.2f} {} than the books, {:.15g} per share on the {:.15g} {} held at the previous close, the same per share for all {} holders: a dividend of {} not recorded for {}?',
                   account, currency, abs(difference), case when difference < 0 then 'higher' else 'lower' end,
                   amount, held, symbol, accounts, symbol, {% call cei_strftime('%Y-%m-%d') %}{{ business_date() }}{% endcall %}{% endcall %}
        else
            {% call cei_format() %}'{}: the books hold {:,.2f} {}, the broker {:,.2f}; the difference {:,.2f} is the cash of fill(s) {} ({}).',
                   account, firm_balance, currency, broker_balance, difference, trade_refs, category{% endcall %}
    end as description
from categorised
