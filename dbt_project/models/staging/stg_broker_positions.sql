select business_date, account, symbol, quantity, close_price, market_value, upper(currency) as currency
from {{ source('landing', 'broker_positions') }}
