{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ clear_business_date() }}") }}

-- Every reconciliation break of the trading date, one row per break, from the family models
-- (docs/reconciliation.md). blocking follows asset_checks/reconciliation.yaml (recon_rules):
-- the rule blocks always, or only breaks of the listed categories. The tests on this model turn
-- blocking breaks into failed (error) checks, which make dbt skip books.daily_pnl for the date
-- (daily_pnl depends on this model); the others warn.
-- explains_pnl marks the breaks between the books' and the broker's statements (positions,
-- cash, market values): their impact_base adds up to the books' P&L minus the broker's (recon_pnl).

with families as (
    {% for family in ['recon_orders', 'recon_confirms', 'recon_positions', 'recon_cash', 'recon_market_values', 'recon_fx'] %}
    select business_date, family, rule, category, account, symbol, currency, reference, firm_value, broker_value,
           difference, impact_base, explains_pnl, description
    from {{ ref(family) }}
    where business_date = {{ business_date() }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    b.business_date,
    b.family,
    b.rule,
    b.category,
    coalesce(r.blocks_always or {{ cei_list_contains('r.blocks_categories', 'b.category') }}, false) as blocking,
    b.account,
    b.symbol,
    b.currency,
    b.reference,
    b.firm_value,
    b.broker_value,
    b.difference,
    b.impact_base,
    b.explains_pnl,
    -- A side missing from a feed leaves a sentence without its values: say what is known instead.
    coalesce(
        b.description,
        concat(b.rule, ' break (', b.category, ')', ' in ' || b.account, ', ' || b.symbol, ', ' || b.reference,
               ': firm side ', coalesce(b.firm_value, 'none'), ', other side ', coalesce(b.broker_value, 'none'), '.')
    ) as description
from families as b
left join {{ ref('recon_rules') }} as r on r.business_date = b.business_date and r.rule = b.rule
