select business_date, account, upper(currency) as currency, balance
from {{ source('landing', 'broker_cash') }}
