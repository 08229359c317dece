{#- Tests on the reconciliation (models/reconciliation). Each returns the failing rows with a
    sentence a person can act on, and only looks at the trading date being built. -#}

{#- Breaks of recon_breaks selected by blocking flag, family and category. Error severity on
    blocking breaks (dbt then skips the P&L), warn on the others. -#}
{% test no_reconciliation_breaks(model, blocking, families=none, categories=none, exclude_categories=none) %}
select rule, category, account, symbol, reference, firm_value, broker_value, difference, impact_base, description
from {{ model }}
where business_date = {{ business_date() }}
  and blocking = {{ 'true' if blocking else 'false' }}
  {% if families %}and family in ({% for f in families %}'{{ f }}'{% if not loop.last %}, {% endif %}{% endfor %}){% endif %}
  {% if categories %}and category in ({% for c in categories %}'{{ c }}'{% if not loop.last %}, {% endif %}{% endfor %}){% endif %}
  {% if exclude_categories %}and category not in ({% for c in exclude_categories %}'{{ c }}'{% if not loop.last %}, {% endif %}{% endfor %}){% endif %}
{% endtest %}

{#- Invariant 9 end to end: the published P&L (daily_pnl) splits into realized + unrealized, and
    per account equals the change in market value plus the change in cash of the books
    (recon_pnl.books_pnl_base), within the pnl_equation tolerance. -#}
{% test pnl_equations_hold(model, pnl_model, rules_model) %}
with tolerance as (
    select tolerance_absolute as tol from {{ rules_model }}
    where business_date = {{ business_date() }} and rule = 'pnl_equation'
),
published as (
    select account,
           sum(total_pnl_base) as total_pnl_base,
           max(abs(realized_pnl_base + unrealized_pnl_base - total_pnl_base)) as worst_split_error
    from {{ pnl_model }}
    where business_date = {{ business_date() }}
    group by account
)
select
    r.account,
    coalesce(p.total_pnl_base, 0) as published_pnl_base,
    r.books_pnl_base,
    p.worst_split_error,
    {% call cei_format() %}'{}: the published P&L {:,.2f} {} is not the change in market value and cash {:,.2f}, or a security''s realized + unrealized is {:,.6f} off its total.',
           r.account, coalesce(p.total_pnl_base, 0), r.base_currency, r.books_pnl_base, coalesce(p.worst_split_error, 0){% endcall %} as description
from {{ model }} as r
left join published as p on p.account = r.account
cross join tolerance as t
where r.business_date = {{ business_date() }}
  and (abs(coalesce(p.total_pnl_base, 0) - r.books_pnl_base) > t.tol or coalesce(p.worst_split_error, 0) > t.tol)
{% endtest %}

{#- The breaks between the books' and the broker's statements account for the difference between
    the books' P&L and the broker's, per account, within the pnl_explained tolerance. -#}
{% test pnl_difference_explained(model, breaks_model, rules_model) %}
with tolerance as (
    select tolerance_absolute as tol from {{ rules_model }}
    where business_date = {{ business_date() }} and rule = 'pnl_explained'
),
explained as (
    select account, sum(impact_base) as explained_base
    from {{ breaks_model }}
    where business_date = {{ business_date() }} and explains_pnl
    group by account
)
select
    r.account,
    r.difference_base,
    coalesce(e.explained_base, 0) as explained_base,
    {% call cei_format() %}'{}: the books'' P&L is {:,.2f} {} away from the broker''s, of which the breaks explain {:,.2f}; {:,.2f} is unexplained.',
           r.account, r.difference_base, r.base_currency, coalesce(e.explained_base, 0),
           r.difference_base - coalesce(e.explained_base, 0){% endcall %} as description
from {{ model }} as r
left join explained as e on e.account = r.account
cross join tolerance as t
where r.business_date = {{ business_date() }}
  and abs(r.difference_base - coalesce(e.explained_base, 0)) > t.tol
{% endtest %}
