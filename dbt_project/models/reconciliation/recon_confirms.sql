{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}

-- Invariant 6, fills to broker confirms: one confirm per fill (by exec_id) with the same account,
-- security, side, quantity, price and fee, received before the cut-off. One row per break.
-- firm_value is the fill's, broker_value the confirm's. impact_base (account's base currency):
-- how much higher the firm's P&L of the date is than with the confirm's terms.
-- implied_quantity / implied_cash (security currency) say how the break would move the firm's
-- books against the broker's if the broker booked exactly what it confirmed; recon_positions and
-- recon_cash use them to tell a break the trades explain from one they do not.

with rules as (
    select * from {{ ref('recon_rules') }} where business_date = {{ business_date() }}
),

tolerance as (
    select
        max(case when rule = 'confirm_price' then tolerance_absolute end) as price_abs,
        max(case when rule = 'confirm_price' then tolerance_relative_bps end) as price_bps,
        max(case when rule = 'confirm_fee' then tolerance_absolute end) as fee_abs,
        max(case when rule = 'confirm_fee' then tolerance_relative_bps end) as fee_bps,
        max(case when rule = 'confirm_quantity' then tolerance_absolute end) as quantity_abs,
        max(case when rule = 'late_confirm' then cutoff_utc end) as cutoff_utc
    from rules
),

fills as (
    select
        f.*,
        -f.signed_quantity * f.price - f.fee as cash_flow,
        m.close as mark,
        fx.fx_to_base,
        (f.signed_quantity * (m.close - f.price) - f.fee) * fx.fx_to_base as pnl_base,
        row_number() over (partition by f.exec_id order by f.ts, f.order_id) as copy_number
    from {{ ref('stg_executions') }} as f
    left join {{ ref('recon_marks') }} as m on m.symbol = f.symbol
    left join {{ ref('recon_fx_to_base') }} as fx on fx.account = f.account and fx.currency = f.currency
    where f.business_date = {{ business_date() }}
),

confirms as (
    select
        c.*,
        s.currency,
        case when c.side = 'BUY' then c.quantity else -c.quantity end as signed_quantity,
        -(case when c.side = 'BUY' then c.quantity else -c.quantity end) * c.price - c.fee as cash_flow,
        m.close as mark,
        fx.fx_to_base,
        ((case when c.side = 'BUY' then c.quantity else -c.quantity end) * (m.close - c.price) - c.fee)
            * fx.fx_to_base as pnl_base,
        row_number() over (partition by c.exec_id order by c.received_ts, c.broker_ref) as copy_number
    from {{ ref('stg_broker_trades') }} as c
    left join {{ ref('stg_securities') }} as s on s.symbol = c.symbol
    left join {{ ref('recon_marks') }} as m on m.symbol = c.symbol
    left join {{ ref('recon_fx_to_base') }} as fx on fx.account = c.account and fx.currency = s.currency
    where c.business_date = {{ business_date() }}
),

-- The n-th fill of an exec_id pairs with its n-th confirm.
paired as (
    select
        f.exec_id as f_exec_id, c.exec_id as c_exec_id,
        f.order_id, f.ts, f.account as f_account, f.symbol as f_symbol, f.side as f_side,
        f.quantity as f_quantity, f.signed_quantity as f_signed, f.price as f_price, f.fee as f_fee,
        f.currency as f_currency, f.cash_flow as f_cash, f.mark as f_mark, f.fx_to_base as f_fx, f.pnl_base as f_pnl,
        c.broker, c.broker_ref, c.account as c_account, c.symbol as c_symbol, c.side as c_side,
        c.quantity as c_quantity, c.signed_quantity as c_signed, c.price as c_price, c.fee as c_fee,
        c.currency as c_currency, c.cash_flow as c_cash, c.pnl_base as c_pnl, c.received_ts
    from fills as f
    full outer join confirms as c on c.exec_id = f.exec_id and c.copy_number = f.copy_number
),

confirmed_fills as (
    select * from paired where f_exec_id is not null and c_exec_id is not null
),

unconfirmed as (
    select p.*,
        -- Recorded twice: the same exec_id again, or a copy under another exec_id of a fill the
        -- broker confirmed (same order, time, account, security, side, quantity, price and fee).
        p.f_exec_id in (select f_exec_id from confirmed_fills)
        or exists (
            select 1 from confirmed_fills as twin
            where twin.f_exec_id <> p.f_exec_id and twin.order_id = p.order_id and twin.ts = p.ts
              and twin.f_account = p.f_account and twin.f_symbol = p.f_symbol and twin.f_side = p.f_side
              and twin.f_quantity = p.f_quantity and twin.f_price = p.f_price and twin.f_fee = p.f_fee
        ) as is_copy,
        (select string_agg(twin.f_exec_id, ', ' order by twin.f_exec_id) from confirmed_fills as twin
         where (twin.f_exec_id = p.f_exec_id)
            or (twin.order_id = p.order_id and twin.ts = p.ts and twin.f_account = p.f_account
                and twin.f_symbol = p.f_symbol and twin.f_side = p.f_side and twin.f_quantity = p.f_quantity
                and twin.f_price = p.f_price and twin.f_fee = p.f_fee)) as twins
    from paired as p
    where p.f_exec_id is not null and p.c_exec_id is null
),

unmatched_confirms as (
    select p.*, p.c_exec_id in (select exec_id from fills) as fill_exists
    from paired as p
    where p.f_exec_id is null
),

cutoff as (
    select {{ business_date() }} + cutoff_utc as cutoff_ts from tolerance
),

breaks as (
    select
        case when is_copy then 'duplicate_fill' else 'confirm_missing' end as rule,
        case when is_copy then 'duplicate' else 'missing at broker' end as category,
        f_account as account, f_symbol as symbol, f_currency as currency, f_exec_id as reference,
        {% call cei_format() %}'{} {:.15g} at {:.15g}', f_side, f_quantity, f_price{% endcall %} as firm_value,
        cast(null as varchar) as broker_value,
        cast(f_signed as decimal(38, 10)) as difference,
        f_pnl as impact_base,
        f_signed as implied_quantity,
        f_cash as implied_cash,
        case when is_copy then
            {% call cei_format() %}'{}: fill {} ({} {:.15g} {} at {:.15g}) repeats fill {} (same order, time, quantity, price and fee); the broker confirmed it once.',
                   f_account, f_exec_id, f_side, f_quantity, f_symbol, f_price, twins{% endcall %}
        else
            {% call cei_format() %}'{}: fill {} ({} {:.15g} {} at {:.15g}) has no broker confirm.',
                   f_account, f_exec_id, f_side, f_quantity, f_symbol, f_price{% endcall %}
        end as description
    from unconfirmed

    union all
    select
        case when fill_exists then 'duplicate_confirm' else 'fill_missing' end,
        case when fill_exists then 'duplicate' else 'missing internally' end,
        c_account, c_symbol, c_currency, c_exec_id,
        null, {% call cei_format() %}'{} {:.15g} at {:.15g}', c_side, c_quantity, c_price{% endcall %},
        cast(-c_signed as decimal(38, 10)),
        -c_pnl,
        -c_signed,
        -c_cash,
        case when fill_exists then
            {% call cei_format() %}'{}: {} confirmed fill {} ({} {:.15g} {} at {:.15g}) again as {}.',
                   c_account, broker, c_exec_id, c_side, c_quantity, c_symbol, c_price, broker_ref{% endcall %}
        else
            {% call cei_format() %}'{}: {} confirmed {} {:.15g} {} at {:.15g} as {} ({}), a fill the firm has not booked.',
                   c_account, broker, c_side, c_quantity, c_symbol, c_price, c_exec_id, broker_ref{% endcall %}
        end
    from unmatched_confirms

    union all
    select
        'confirm_account', 'position', f_account, f_symbol, f_currency, f_exec_id, f_account, c_account,
        null, f_pnl, 0, 0,
        {% call cei_format() %}'Fill {} ({} {:.15g} {}) is booked to {} but {} confirmed it for {}.',
               f_exec_id, f_side, f_quantity, f_symbol, f_account, broker, c_account{% endcall %}
    from confirmed_fills
    where f_account <> c_account

    union all
    select
        'confirm_symbol', 'position', f_account, f_symbol, f_currency, f_exec_id, f_symbol, c_symbol,
        null, f_pnl, 0, 0,
        {% call cei_format() %}'{}: fill {} ({} {:.15g} {}) was confirmed by {} in {}.',
               f_account, f_exec_id, f_side, f_quantity, f_symbol, broker, c_symbol{% endcall %}
    from confirmed_fills
    where f_symbol <> c_symbol

    union all
    select
        'confirm_side', 'quantity', f_account, f_symbol, f_currency, f_exec_id, f_side, c_side,
        cast(f_signed - c_signed as decimal(38, 10)),
        (f_signed - c_signed) * (f_mark - f_price) * f_fx,
        f_signed - c_signed,
        -(f_signed - c_signed) * f_price,
        {% call cei_format() %}'{}: fill {} is a {} of {:.15g} {} but {} confirmed a {}.',
               f_account, f_exec_id, f_side, f_quantity, f_symbol, broker, c_side{% endcall %}
    from confirmed_fills
    where f_side <> c_side

    union all
    select
        'confirm_quantity', 'quantity', p.f_account, p.f_symbol, p.f_currency, p.f_exec_id,
        {% call cei_format() %}'{:.15g}', p.f_quantity{% endcall %}, {% call cei_format() %}'{:.15g}', p.c_quantity{% endcall %},
        cast(p.f_quantity - p.c_quantity as decimal(38, 10)),
        sign(p.f_signed) * (p.f_quantity - p.c_quantity) * (p.f_mark - p.f_price) * p.f_fx,
        sign(p.f_signed) * (p.f_quantity - p.c_quantity),
        -sign(p.f_signed) * (p.f_quantity - p.c_quantity) * p.f_price,
        {% call cei_format() %}'{}: fill {} ({} {} at {:.15g}) is for {:.15g} but {} confirmed {:.15g}.',
               p.f_account, p.f_exec_id, p.f_side, p.f_symbol, p.f_price, p.f_quantity, p.broker, p.c_quantity{% endcall %}
    from confirmed_fills as p, tolerance as t
    where abs(p.f_quantity - p.c_quantity) > t.quantity_abs

    union all
    select
        'confirm_price', 'price', p.f_account, p.f_symbol, p.f_currency, p.f_exec_id,
        {% call cei_format() %}'{:.15g}', p.f_price{% endcall %}, {% call cei_format() %}'{:.15g}', p.c_price{% endcall %},
        cast(p.f_price - p.c_price as decimal(38, 10)),
        -p.f_signed * (p.f_price - p.c_price) * p.f_fx,
        0,
        -p.f_signed * (p.f_price - p.c_price),
        {% call cei_format() %}'{}: fill {} ({} {:.15g} {}) is at {:.15g} but {} confirmed {:.15g}.',
               p.f_account, p.f_exec_id, p.f_side, p.f_quantity, p.f_symbol, p.f_price, p.broker, p.c_price{% endcall %}
    from confirmed_fills as p, tolerance as t
    where abs(p.f_price - p.c_price) > greatest(t.price_abs, t.price_bps / 10000 * abs(p.f_price))

    union all
    select
        'confirm_fee', 'fee', p.f_account, p.f_symbol, p.f_currency, p.f_exec_id,
        {% call cei_format() %}'{:.15g}', p.f_fee{% endcall %}, {% call cei_format() %}'{:.15g}', p.c_fee{% endcall %},
        cast(p.f_fee - p.c_fee as decimal(38, 10)),
        -(p.f_fee - p.c_fee) * p.f_fx,
        0,
        -(p.f_fee - p.c_fee),
        {% call cei_format() %}'{}: fill {} ({} {:.15g} {} at {:.15g}) carries a fee of {:.15g} but {} confirmed {:.15g}.',
               p.f_account, p.f_exec_id, p.f_side, p.f_quantity, p.f_symbol, p.f_price, p.f_fee, p.broker, p.c_fee{% endcall %}
    from confirmed_fills as p, tolerance as t
    where abs(p.f_fee - p.c_fee) > greatest(t.fee_abs, t.fee_bps / 10000 * abs(p.f_fee))

    union all
    select
        'late_confirm', 'late confirm', coalesce(p.f_account, p.c_account), coalesce(p.f_symbol, p.c_symbol),
        coalesce(p.f_currency, p.c_currency), p.c_exec_id,
        {% call cei_strftime('%Y-%m-%dT%H:%M:%SZ') %}k.cutoff_ts{% endcall %}, {% call cei_strftime('%Y-%m-%dT%H:%M:%S.%gZ') %}p.received_ts{% endcall %},
        cast(round({% call cei_epoch_ms() %}p.received_ts{% endcall %} - {% call cei_epoch_ms() %}k.cutoff_ts{% endcall %}) / 60000.0 as decimal(38, 10)),
        0, 0, 0,
        {% call cei_format() %}'{}: {} confirm {} of fill {} ({} {:.15g} {}) arrived at {} UTC, {} minutes after the {} UTC cut-off.',
               coalesce(p.f_account, p.c_account), p.broker, p.broker_ref, p.c_exec_id, p.c_side, p.c_quantity,
               p.c_symbol, {% call cei_strftime('%H:%M:%S') %}p.received_ts{% endcall %},
               cast(floor(({% call cei_epoch_ms() %}p.received_ts{% endcall %} - {% call cei_epoch_ms() %}k.cutoff_ts{% endcall %}) / 60000.0) as bigint),
               {% call cei_strftime('%H:%M') %}k.cutoff_ts{% endcall %}{% endcall %}
    from paired as p, cutoff as k
    where p.c_exec_id is not null and p.received_ts > k.cutoff_ts
)

select
    {{ business_date() }} as business_date,
    'confirms' as family,
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
    cast(implied_quantity as decimal(38, 10)) as implied_quantity,
    cast(implied_cash as decimal(38, 10)) as implied_cash,
    description
from breaks
