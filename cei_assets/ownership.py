"""Who owns each table and which business processes it feeds.

Asset owners (Dagster ``owners``) route incidents to a team; ``cei/business_processes`` and
``cei/criticality`` say what a failure endangers. Kept as data in one place so the landing
assets and the dbt models describe themselves the same way.
"""

from __future__ import annotations

MARKET_DATA = "team:market-data"
TRADING_OPS = "team:trading-ops"
FUND_OPS = "team:fund-operations"
REFERENCE_DATA = "team:reference-data"


# table name -> (owner, business processes it feeds, criticality)
_TABLES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "securities": (REFERENCE_DATA, ("EOD valuation", "trade capture"), "high"),
    "accounts": (REFERENCE_DATA, ("EOD valuation", "investor NAV"), "high"),
    "opening_positions": (FUND_OPS, ("EOD valuation", "investor NAV"), "critical"),
    "opening_cash": (FUND_OPS, ("investor NAV",), "critical"),
    "opening_eod_prices": (MARKET_DATA, ("EOD valuation",), "critical"),
    "opening_fx_rates": (MARKET_DATA, ("EOD valuation",), "critical"),
    "quotes": (MARKET_DATA, ("market making", "execution analytics"), "medium"),
    "eod_prices": (MARKET_DATA, ("EOD valuation", "investor NAV", "risk report"), "critical"),
    "fx_rates": (MARKET_DATA, ("EOD valuation", "investor NAV"), "critical"),
    "orders": (TRADING_OPS, ("trade reconciliation", "execution analytics"), "high"),
    "executions": (TRADING_OPS, ("trade reconciliation", "P&L report"), "critical"),
    "broker_trades": (TRADING_OPS, ("trade reconciliation",), "high"),
    "broker_positions": (FUND_OPS, ("position reconciliation",), "high"),
    "broker_cash": (FUND_OPS, ("cash reconciliation",), "high"),
    "corporate_actions": (REFERENCE_DATA, ("EOD valuation", "P&L report"), "critical"),
    "fx_rates_usd": (MARKET_DATA, ("EOD valuation", "investor NAV"), "critical"),
    "opening_books": (FUND_OPS, ("EOD valuation", "investor NAV"), "critical"),
    "positions": (FUND_OPS, ("risk report", "investor NAV", "position reconciliation"), "critical"),
    "cash_balances": (FUND_OPS, ("investor NAV", "cash reconciliation"), "critical"),
    "market_values": (FUND_OPS, ("risk report", "investor NAV"), "critical"),
    "daily_pnl": (FUND_OPS, ("P&L report", "investor NAV", "risk report"), "critical"),
    # Reconciliation: trade breaks belong to trading operations, book breaks to fund operations.
    "recon_orders": (TRADING_OPS, ("trade reconciliation",), "high"),
    "recon_confirms": (TRADING_OPS, ("trade reconciliation",), "high"),
    "recon_positions": (FUND_OPS, ("position reconciliation", "investor NAV"), "high"),
    "recon_cash": (FUND_OPS, ("cash reconciliation", "investor NAV"), "high"),
    "recon_market_values": (FUND_OPS, ("position reconciliation", "EOD valuation"), "high"),
    "recon_marks": (MARKET_DATA, ("EOD valuation",), "high"),
    "recon_fx": (MARKET_DATA, ("EOD valuation",), "high"),
    "recon_fx_rates": (MARKET_DATA, ("EOD valuation",), "high"),
    "recon_fx_to_base": (MARKET_DATA, ("EOD valuation",), "high"),
    "recon_pnl": (FUND_OPS, ("P&L report",), "high"),
    "recon_rules": (FUND_OPS, ("trade reconciliation", "position reconciliation"), "medium"),
    "recon_breaks": (FUND_OPS, ("trade reconciliation", "position reconciliation", "P&L report"), "high"),
}


def owner_of(table: str) -> str | None:
    entry = _TABLES.get(_strip_staging(table))
    return entry[0] if entry else None


def metadata_of(table: str) -> dict:
    entry = _TABLES.get(_strip_staging(table))
    if not entry:
        return {}
    _, processes, criticality = entry
    return {"cei/business_processes": list(processes), "cei/criticality": criticality}


def _strip_staging(table: str) -> str:
    return table[len("stg_"):] if table.startswith("stg_") else table
