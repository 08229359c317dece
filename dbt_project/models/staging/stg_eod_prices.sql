select business_date, symbol, close, upper(currency) as currency, source
from {{ source('landing', 'eod_prices') }}
