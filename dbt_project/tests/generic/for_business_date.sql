{#- Generic tests scoped to the trading date being built: a fault in yesterday's partition
    must not fail today's run (yesterday's run already reported it). -#}

{% test unique_for_business_date(model, columns) %}
select {{ columns | join(', ') }}, count(*) as duplicates
from {{ model }}
where business_date = {{ business_date() }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{% test not_null_for_business_date(model, column_name) %}
select *
from {{ model }}
where business_date = {{ business_date() }} and {{ column_name }} is null
{% endtest %}

{% test pnl_components_add_up(model, tolerance=0.000001) %}
select account, symbol, realized_pnl_base, unrealized_pnl_base, total_pnl_base
from {{ model }}
where business_date = {{ business_date() }}
  and abs(realized_pnl_base + unrealized_pnl_base - total_pnl_base) > {{ tolerance }}
{% endtest %}
