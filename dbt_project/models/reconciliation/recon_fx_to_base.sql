{{ config(materialized='ephemeral') }}

-- Units of each account's base currency per unit of each currency at the trading date's close,
-- through the USD legs as the books convert (fx_to_base), and at the rates the reconciliation
-- expects (expected_fx_to_base: a rate that moved beyond the fx_rate_move tolerance replaced by
-- the previous close's; recon_fx_rates). Null when a rate is missing.
select
    a.account,
    a.base_currency,
    c.currency,
    c.usd_per_unit / b.usd_per_unit as fx_to_base,
    c.expected_usd_per_unit / b.expected_usd_per_unit as expected_fx_to_base
from {{ ref('stg_accounts') }} as a
cross join {{ ref('recon_fx_rates') }} as c
left join {{ ref('recon_fx_rates') }} as b on b.currency = a.base_currency
