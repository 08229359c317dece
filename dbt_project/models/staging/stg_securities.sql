select
    symbol,
    upper(currency) as currency,
    upper(exchange) as exchange,
    sector,
    lot_size
from {{ source('landing', 'securities') }}
