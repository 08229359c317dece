select
    account,
    strategy,
    upper(base_currency) as base_currency,
    prime_broker
from {{ source('landing', 'accounts') }}
