select
    business_date,
    vendor,
    ts,
    symbol,
    bid,
    ask,
    bid_size,
    ask_size,
    (bid + ask) / 2 as mid
from {{ source('landing', 'quotes') }}
