select
    business_date,
    exec_id,
    order_id,
    ts,
    account,
    symbol,
    upper(side) as side,
    quantity,
    -- Quantities in trade files are positive; the side gives the sign (BUY adds to the position).
    case when upper(side) = 'BUY' then quantity else -quantity end as signed_quantity,
    price,
    quantity * price as notional,
    upper(currency) as currency,
    fee,
    broker,
    venue
from {{ source('landing', 'executions') }}
