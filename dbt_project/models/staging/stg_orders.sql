select
    business_date,
    order_id,
    ts,
    account,
    symbol,
    upper(side) as side,
    quantity,
    upper(order_type) as order_type,
    limit_price
from {{ source('landing', 'orders') }}
