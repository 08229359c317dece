{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}

-- Invariant 5, orders to fills: every fill of the trading date against its order (orders of any
-- date up to this one, so a fill of an order placed earlier still finds it). One row per break.
-- The two sides: firm_value is the fill's, broker_value the order's (the reference side here).
-- impact_base (account's base currency): how much higher the firm's P&L of the date is than it
-- would be with the order's value; a fill's P&L contribution is
-- signed quantity x (EOD mark - price) - fee.

with rules as (
    select * from {{ ref('recon_rules') }} where business_date = {{ business_date() }}
),

-- An order's latest version (an order may be restated on a later date).
orders as (
    select *
    from (
        select *, row_number() over (partition by order_id order by business_date desc) as version_rank
        from {{ ref('stg_orders') }}
        where business_date <= {{ business_date() }}
    ) as versions
    where version_rank = 1
),

fills as (
    select
        f.*,
        m.close as mark,
        fx.fx_to_base,
        (f.signed_quantity * (m.close - f.price) - f.fee) * fx.fx_to_base as pnl_base
    from {{ ref('stg_executions') }} as f
    left join {{ ref('recon_marks') }} as m on m.symbol = f.symbol
    left join {{ ref('recon_fx_to_base') }} as fx on fx.account = f.account and fx.currency = f.currency
    where f.business_date = {{ business_date() }}
),

matched as (
    select f.*, o.order_id as o_order_id, o.account as o_account, o.symbol as o_symbol, o.side as o_side,
           o.quantity as o_quantity, o.order_type as o_order_type, o.limit_price as o_limit_price
    from fills as f
    left join orders as o on o.order_id = f.order_id
),

-- Overfills: the fills beyond the order's quantity are its latest (by time, then exec_id), over
-- every date up to this one; today's are the breaks' impact.
order_fills as (
    select
        e.order_id,
        e.exec_id,
        e.business_date,
        e.quantity,
        sum(e.quantity) over (partition by e.order_id order by e.business_date, e.ts, e.exec_id
                              rows between unbounded preceding and current row) as cumulative_quantity
    from {{ ref('stg_executions') }} as e
    where e.business_date <= {{ business_date() }}
),

overfilled as (
    select
        o.order_id,
        o.account,
        o.symbol,
        o.side,
        o.quantity as order_quantity,
        max(c.cumulative_quantity) as filled_quantity,
        min(f.currency) as currency,  -- one security, one currency
        sum(case when f.exec_id is not null then
            greatest(0, least(c.quantity, c.cumulative_quantity - o.quantity))
            * (f.signed_quantity * (f.mark - f.price) - f.fee) / f.quantity * f.fx_to_base end) as impact_base
    from orders as o
    join order_fills as c on c.order_id = o.order_id
    left join fills as f on f.exec_id = c.exec_id and c.business_date = {{ business_date() }}
    group by o.order_id, o.account, o.symbol, o.side, o.quantity
    having max(c.cumulative_quantity) > o.quantity and count(f.exec_id) > 0
),

breaks as (
    select
        'fill_without_order' as rule, 'missing internally' as category, account, symbol, currency,
        exec_id as reference, order_id as firm_value, cast(null as varchar) as broker_value,
        cast(signed_quantity as decimal(38, 10)) as difference, pnl_base as impact_base,
        {% call cei_format() %}'{}: fill {} ({} {:.15g} {} at {:.15g}) refers to order {}, which is not among the firm''s orders.',
               account, exec_id, side, quantity, symbol, price, order_id{% endcall %} as description
    from matched
    where o_order_id is null

    union all
    select
        'fill_account', 'position', account, symbol, currency, exec_id, account, o_account, null, pnl_base,
        {% call cei_format() %}'Fill {} ({} {:.15g} {} at {:.15g}) is booked to {} but its order {} is for {}.',
               exec_id, side, quantity, symbol, price, account, order_id, o_account{% endcall %}
    from matched
    where o_order_id is not null and account <> o_account

    union all
    select
        'fill_symbol', 'position', account, symbol, currency, exec_id, symbol, o_symbol, null, pnl_base,
        {% call cei_format() %}'{}: fill {} ({} {:.15g} {} at {:.15g}) is in {} but its order {} is for {}.',
               account, exec_id, side, quantity, symbol, price, symbol, order_id, o_symbol{% endcall %}
    from matched
    where o_order_id is not null and symbol <> o_symbol

    union all
    select
        'fill_side', 'quantity', account, symbol, currency, exec_id, side, o_side,
        cast(2 * signed_quantity as decimal(38, 10)),
        2 * signed_quantity * (mark - price) * fx_to_base,
        {% call cei_format() %}'{}: fill {} is a {} of {:.15g} {} at {:.15g} but its order {} is a {}.',
               account, exec_id, side, quantity, symbol, price, order_id, o_side{% endcall %}
    from matched
    where o_order_id is not null and side <> o_side

    union all
    select
        'limit_price', 'price', m.account, m.symbol, m.currency, m.exec_id,
        {% call cei_format() %}'{:.15g}', m.price{% endcall %}, {% call cei_format() %}'{:.15g}', m.o_limit_price{% endcall %},
        cast(m.price - m.o_limit_price as decimal(38, 10)),
        m.signed_quantity * (m.o_limit_price - m.price) * m.fx_to_base,
        {% call cei_format() %}'{}: fill {} {} {:.15g} {} at {:.15g}, through the limit {:.15g} of its LIMIT order {}.',
               m.account, m.exec_id, m.side, m.quantity, m.symbol, m.price, m.o_limit_price, m.order_id{% endcall %}
    from matched as m
    cross join (select tolerance_absolute as tol from rules where rule = 'limit_price') as r
    where m.o_order_type = 'LIMIT' and m.o_limit_price is not null
      and ((m.o_side = 'BUY' and m.price - m.o_limit_price > r.tol)
        or (m.o_side = 'SELL' and m.o_limit_price - m.price > r.tol))

    union all
    select
        'overfill', 'quantity', account, symbol, currency, order_id,
        {% call cei_format() %}'{:.15g}', filled_quantity{% endcall %}, {% call cei_format() %}'{:.15g}', order_quantity{% endcall %},
        cast(filled_quantity - order_quantity as decimal(38, 10)),
        impact_base,
        {% call cei_format() %}'{}: order {} to {} {:.15g} {} has fills for {:.15g} ({:.15g} more than ordered).',
               account, order_id, side, order_quantity, symbol, filled_quantity, filled_quantity - order_quantity{% endcall %}
    from overfilled
)

select
    {{ business_date() }} as business_date,
    'orders' as family,
    rule,
    category,
    account,
    symbol,
    currency,
    reference,
    firm_value,
    broker_value,
    difference,
    cast(impact_base as double precision) as impact_base,
    false as explains_pnl,
    description
from breaks
