{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}

-- FX behind invariant 9 (P&L in the account's base currency). The broker states no rates, so
-- the rates are checked against themselves:
--   fx_rate_move:  a closing XXXUSD rate more than the tolerance away from the previous close's
--                  (the opening rates on the landing root's first date; recon_fx_rates). One row
--                  per account whose P&L the rate moves; impact_base = the account's P&L of the date
--                  at today's rate minus at the previous close's rate for that currency (end market
--                  values, trade cash flows, fees and dividends of the date convert at the close;
--                  start values at the previous close, so they do not move). The broker-implied P&L
--                  (recon_pnl) converts at the previous close's rate instead, so these rows explain
--                  that part of the difference. A currency nobody is exposed to gives one row
--                  without an account.
--   fx_cross_rate: a cross pair (no USD side) more than the tolerance from the ratio of its USD
--                  legs; crosses are not used for valuation, so no P&L impact.
-- firm_value is today's rate, broker_value the reference (previous close, or the legs' ratio).

with rules as (
    select * from {{ ref('recon_rules') }} where business_date = {{ business_date() }}
),

tolerance as (
    select max(case when rule = 'fx_cross_rate' then tolerance_relative_bps end) as cross_bps
    from rules
),

today as (
    select pair, base_currency, quote_currency, rate
    from {{ ref('stg_fx_rates') }}
    where business_date = {{ business_date() }}
),

usd as (
    select currency, usd_per_unit from {{ ref('recon_fx_rates') }}
),

moves as (
    select currency || 'USD' as pair, currency, usd_per_unit as rate, previous_usd_per_unit as previous_rate, move_bps
    from {{ ref('recon_fx_rates') }}
    where implausible
),

-- What each account's P&L of the date converts at today's rates, in local currency.
exposures as (
    select p.account, p.base_currency, p.currency,
           coalesce(mv.market_value, 0) - (p.buy_notional - p.sell_notional) - p.fees as amount
    from {{ ref('positions') }} as p
    left join {{ ref('market_values') }} as mv
        on mv.business_date = p.business_date and mv.account = p.account and mv.symbol = p.symbol
    where p.business_date = {{ business_date() }}
    union all
    select account, base_currency, dividend_currency, dividend_income
    from {{ ref('positions') }}
    where business_date = {{ business_date() }} and dividend_income <> 0
),

impacts as (
    select
        m.pair,
        m.currency as moved_currency,
        e.account,
        e.base_currency,
        sum(cast(e.amount as double precision) * (
            u.usd_per_unit / b.usd_per_unit
            - (case when e.currency = m.currency then m.previous_rate else u.usd_per_unit end)
              / (case when e.base_currency = m.currency then m.previous_rate else b.usd_per_unit end)
        )) as impact_base
    from moves as m
    cross join exposures as e
    join usd as u on u.currency = e.currency
    join usd as b on b.currency = e.base_currency
    where e.currency = m.currency or e.base_currency = m.currency
    group by m.pair, m.currency, e.account, e.base_currency
),

breaks as (
    select
        'fx_rate_move' as rule, i.account, i.moved_currency as currency, m.pair as reference,
        {% call cei_format() %}'{:.15g}', m.rate{% endcall %} as firm_value, {% call cei_format() %}'{:.15g}', m.previous_rate{% endcall %} as broker_value,
        m.rate - m.previous_rate as difference,
        i.impact_base,
        {% call cei_format() %}'{} closed at {:.15g}, {}% from the previous close {:.15g}; it moves {}''s P&L of the date by {:,.2f} {}.',
               m.pair, m.rate, {% call cei_round(2) %}m.move_bps / 100{% endcall %}, m.previous_rate, i.account, i.impact_base,
               i.base_currency{% endcall %} as description
    from moves as m
    join impacts as i on i.pair = m.pair

    union all
    select
        'fx_rate_move', null, m.currency, m.pair, {% call cei_format() %}'{:.15g}', m.rate{% endcall %}, {% call cei_format() %}'{:.15g}', m.previous_rate{% endcall %},
        m.rate - m.previous_rate, 0,
        {% call cei_format() %}'{} closed at {:.15g}, {}% from the previous close {:.15g}; no account holds or trades in {} today.',
               m.pair, m.rate, {% call cei_round(2) %}m.move_bps / 100{% endcall %}, m.previous_rate, m.currency{% endcall %}
    from moves as m
    where m.pair not in (select pair from impacts)

    union all
    select
        'fx_cross_rate', null, t.base_currency, t.pair, {% call cei_format() %}'{:.15g}', t.rate{% endcall %},
        {% call cei_format() %}'{:.15g}', {% call cei_round(10) %}b.usd_per_unit / q.usd_per_unit{% endcall %}{% endcall %},
        t.rate - b.usd_per_unit / q.usd_per_unit, 0,
        {% call cei_format() %}'{} is {:.15g}, {} bps from {} / {} = {:.15g}; cross rates are not used for valuation.',
               t.pair, t.rate, {% call cei_round(1) %}(t.rate / (b.usd_per_unit / q.usd_per_unit) - 1) * 10000{% endcall %},
               t.base_currency || 'USD', t.quote_currency || 'USD', {% call cei_round(10) %}b.usd_per_unit / q.usd_per_unit{% endcall %}{% endcall %}
    from today as t
    join usd as b on b.currency = t.base_currency
    join usd as q on q.currency = t.quote_currency
    cross join tolerance as tol
    where t.base_currency <> 'USD' and t.quote_currency <> 'USD' and t.rate > 0
      and abs(t.rate / (b.usd_per_unit / q.usd_per_unit) - 1) * 10000 > tol.cross_bps
)

select
    {{ business_date() }} as business_date,
    'FX' as family,
    rule,
    'FX' as category,
    account,
    cast(null as varchar) as symbol,
    currency,
    reference,
    firm_value,
    broker_value,
    cast(difference as decimal(38, 10)) as difference,
    cast(impact_base as double precision) as impact_base,
    rule = 'fx_rate_move' and account is not null as explains_pnl,
    description
from breaks
