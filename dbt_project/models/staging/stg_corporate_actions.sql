-- An action may be announced in an earlier date folder than its ex_date; the books apply it
-- on its ex_date whichever file carried it, once.
select distinct
    symbol,
    ex_date,
    upper(action) as action,
    ratio,
    amount,
    upper(currency) as currency
from {{ source('landing', 'corporate_actions') }}
