select symbol, close, upper(currency) as currency, source
from {{ source('landing', 'opening_eod_prices') }}
