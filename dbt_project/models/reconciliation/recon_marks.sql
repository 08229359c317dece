{{ config(materialized='ephemeral') }}
-- The lineage must not depend on which branch a trading date takes below.
-- depends_on: {{ ref('stg_opening_eod_prices') }}

-- Every security with the firm's EOD mark of the trading date and of the previous close (the
-- opening marks on the landing root's first date). A duplicated mark is the marks checks'
-- business; here the larger one is taken so each security has one row.
with today as (
    select symbol, max(close) as close
    from {{ ref('stg_eod_prices') }}
    where business_date = {{ business_date() }}
    group by symbol
),

previous as (
    {% if is_first_date() %}
    select symbol, max(close) as close from {{ ref('stg_opening_eod_prices') }} group by symbol
    {% else %}
    select symbol, max(close) as close
    from {{ ref('stg_eod_prices') }}
    where business_date = {{ previous_date() }}
    group by symbol
    {% endif %}
)

select s.symbol, s.currency, t.close, p.close as previous_close
from {{ ref('stg_securities') }} as s
left join today as t on t.symbol = s.symbol
left join previous as p on p.symbol = s.symbol
