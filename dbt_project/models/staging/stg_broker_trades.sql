select
    business_date,
    broker,
    broker_ref,
    exec_id,
    trade_date,
    settle_date,
    account,
    symbol,
    upper(side) as side,
    quantity,
    price,
    fee,
    received_ts
from {{ source('landing', 'broker_trades') }}
