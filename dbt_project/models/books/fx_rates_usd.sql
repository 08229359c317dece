{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}

-- USD per unit of each currency at the trading date's close, from the XXXUSD legs the spec
-- guarantees. Cross pairs are checked against these legs, never used for valuation.
select {{ business_date() }} as business_date, base_currency as currency, rate as usd_per_unit
from {{ ref('stg_fx_rates') }}
where business_date = {{ business_date() }}
  and quote_currency = 'USD'
  and base_currency <> 'USD'
union all
select {{ business_date() }}, 'USD', 1
