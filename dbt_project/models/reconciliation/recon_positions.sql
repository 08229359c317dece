{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}

-- Invariant 7, positions: the books' position at the close (rolled forward through recorded
-- splits and the day's fills) against the prime broker's EOD statement, per account and security;
-- quantities exactly. difference = firm - broker; impact_base = difference x the firm's mark in
-- the account's base currency (how much higher the books' market value, and P&L, is).
--
-- Category, first match wins:
--   1. the trade breaks of the date explain it exactly: the sum of their implied quantities
--      (recon_confirms) is the difference -> their category (duplicate, missing internally,
--      missing at broker, quantity, in that order of precedence);
--   2. an unrecorded (or wrongly recorded) split explains it: the broker holds R x the holding at
--      the previous close (plus the day's fills), R differs from the recorded ratio (1 when none),
--      and the mark moved by R give or take an ordinary day's move: |ln(previous close / close / R)|
--      <= ln(1 + tolerance), with R itself further from 1 than two such moves, so that a small
--      break on a day the price moved a little is not taken for a split (rule suspected_split)
--      -> corporate action suspected;
--   3. otherwise -> position.

with rules as (
    select * from {{ ref('recon_rules') }} where business_date = {{ business_date() }}
),

tolerance as (
    select
        max(case when rule = 'position_quantity' then tolerance_absolute end) as quantity_abs,
        max(case when rule = 'suspected_split' then tolerance_relative_bps end) / 10000 as split_tolerance
    from rules
),

splits as (
    select symbol, max(ratio) as ratio
    from {{ ref('stg_corporate_actions') }}
    where action = 'SPLIT' and ex_date = {{ business_date() }}
    group by symbol
),

book as (
    select
        p.account,
        p.symbol,
        p.quantity,
        coalesce(s.ratio, 1) as recorded_ratio,
        p.prior_quantity / coalesce(s.ratio, 1) as prior_unadjusted,
        p.bought_quantity - p.sold_quantity as net_fills
    from {{ ref('positions') }} as p
    left join splits as s on s.symbol = p.symbol
    where p.business_date = {{ business_date() }}
),

broker as (
    select account, symbol, sum(quantity) as quantity
    from {{ ref('stg_broker_positions') }}
    where business_date = {{ business_date() }}
    group by account, symbol
),

keys as (
    select account, symbol from book where quantity <> 0
    union
    select account, symbol from broker where quantity <> 0
),

trades as (
    select
        account,
        symbol,
        sum(implied_quantity) as implied_quantity,
        min(case category when 'duplicate' then 1 when 'missing internally' then 2
                          when 'missing at broker' then 3 when 'quantity' then 4 end) as precedence,
        string_agg(reference, ', ' order by reference) as trade_refs
    from {{ ref('recon_confirms') }}
    where business_date = {{ business_date() }} and implied_quantity <> 0
    group by account, symbol
),

compared as (
    select
        k.account,
        k.symbol,
        m.currency,
        coalesce(f.quantity, 0) as firm_quantity,
        coalesce(b.quantity, 0) as broker_quantity,
        coalesce(f.quantity, 0) - coalesce(b.quantity, 0) as difference,
        coalesce(f.prior_unadjusted, 0) as prior_unadjusted,
        coalesce(f.recorded_ratio, 1) as recorded_ratio,
        coalesce(f.net_fills, 0) as net_fills,
        m.close,
        m.previous_close,
        fx.fx_to_base,
        t.implied_quantity,
        t.precedence,
        t.trade_refs
    from keys as k
    left join book as f on f.account = k.account and f.symbol = k.symbol
    left join broker as b on b.account = k.account and b.symbol = k.symbol
    left join {{ ref('recon_marks') }} as m on m.symbol = k.symbol
    left join {{ ref('recon_fx_to_base') }} as fx on fx.account = k.account and fx.currency = m.currency
    left join trades as t on t.account = k.account and t.symbol = k.symbol
),

classified as (
    select
        c.*,
        case when c.prior_unadjusted <> 0 then (c.broker_quantity - c.net_fills) / c.prior_unadjusted end as broker_ratio,
        case when c.close > 0 and c.previous_close > 0 then cast(c.previous_close as double precision) / c.close end as mark_ratio
    from compared as c, tolerance as t
    where abs(c.difference) > t.quantity_abs
),

categorised as (
    select
        c.*,
        case
            when c.implied_quantity = c.difference
                then case c.precedence when 1 then 'duplicate' when 2 then 'missing internally'
                                       when 3 then 'missing at broker' else 'quantity' end
            when c.broker_ratio > 0 and abs(c.broker_ratio - c.recorded_ratio) > 1e-9 and c.mark_ratio is not null
                 and abs(ln(c.mark_ratio / c.broker_ratio)) <= ln(1 + t.split_tolerance)
                 and abs(ln(c.broker_ratio / c.recorded_ratio)) > 2 * ln(1 + t.split_tolerance)
                then 'corporate action suspected'
            else 'position'
        end as category
    from classified as c, tolerance as t
)

select
    {{ business_date() }} as business_date,
    'positions' as family,
    'position_quantity' as rule,
    category,
    account,
    symbol,
    currency,
    cast(null as varchar) as reference,
    {% call cei_format() %}'{:.15g}', firm_quantity{% endcall %} as firm_value,
    {% call cei_format() %}'{:.15g}', broker_quantity{% endcall %} as broker_value,
    cast(difference as decimal(38, 10)) as difference,
    cast(difference * close as double precision) * fx_to_base as impact_base,
    true as explains_pnl,
    case category
        when 'position' then
            {% call cei_format() %}'{}: the books hold {:.15g} {} at the close, the broker''s statement {:.15g} (difference {:.15g}).',
                   account, firm_quantity, symbol, broker_quantity, difference{% endcall %}
        when 'corporate action suspected' then
            {% call cei_format() %}'{}: the books hold {:.15g} {}, the broker {:.15g}: {:.15g}x the {:.15g} held at the previous close (plus the day''s fills {:.15g}) as after a split, and the mark moved from {:.15g} to {:.15g} (x{:.15g}); {} for {}.',
                   account, firm_quantity, symbol, broker_quantity, {% call cei_round(4) %}broker_ratio{% endcall %}, prior_unadjusted,
                   net_fills, previous_close, close, {% call cei_round(4) %}1 / mark_ratio{% endcall %},
                   case when recorded_ratio = 1 then 'no split of ' || symbol || ' is recorded'
                        else 'the recorded split ratio is ' || {% call cei_format() %}'{:.15g}', recorded_ratio{% endcall %} end,
                   {% call cei_strftime('%Y-%m-%d') %}{{ business_date() }}{% endcall %}{% endcall %}
        else
            {% call cei_format() %}'{}: the books hold {:.15g} {}, the broker {:.15g}; the difference {:.15g} is fill(s) {} ({}).',
                   account, firm_quantity, symbol, broker_quantity, difference, trade_refs, category{% endcall %}
    end as description
from categorised
