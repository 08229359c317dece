select upper(pair) as pair, substr(upper(pair), 1, 3) as base_currency, substr(upper(pair), 4, 3) as quote_currency, rate
from {{ source('landing', 'opening_fx_rates') }}
