select account, symbol, quantity, avg_cost
from {{ source('landing', 'opening_positions') }}
