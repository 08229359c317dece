select account, upper(currency) as currency, balance
from {{ source('landing', 'opening_cash') }}
