"""The P&L explanation: the books' P&L of a trading date against the P&L the broker's side
implies, and the reconciliation breaks that account for the difference, in Markdown a portfolio
manager can read. docs/reconciliation.md gives the definitions; in short, per account and in
its base currency:

reported P&L
    the books' P&L: the sum of ``books.daily_pnl.total_pnl_base`` when the P&L of the date is
    published; when blocking breaks hold it, the books' unpublished P&L, the change in market
    value plus the change in cash of ``books`` (``reconciliation.recon_pnl.books_pnl_base``,
    equal to daily_pnl's sum whenever both exist: the ``published_pnl_is_change_in_value_and_cash``
    check).
expected P&L
    the P&L implied by the broker's side (``recon_pnl.broker_pnl_base``): from the same start (the
    firm's books at the previous close, valued at that close) to the prime broker's end-of-day
    statements, its market values plus its cash, converted at the date's closing rates; a rate
    that moved beyond the ``fx_rate_move`` tolerance is replaced by the previous close's.
difference
    reported - expected.
explained
    the sum of the P&L impacts of the breaks between the books' and the broker's statements
    (``recon_breaks`` rows with ``explains_pnl``: positions, cash, the broker's prices and market
    values, implausible FX rates). By construction they add up to the difference; what is left
    (differences within tolerance, overlapping breaks) is unexplained.
confidence
    explained / difference: the share of the difference the breaks explain (100% when there is
    no difference to explain).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from pathlib import Path

import duckdb

CENT = 0.005  # differences smaller than half a cent are no difference


class ExplanationUnavailable(ValueError):
    """The warehouse has no reconciliation for the date (or account) asked about."""


@dataclasses.dataclass(frozen=True)
class Break:
    rule: str
    category: str
    blocking: bool
    symbol: str | None
    currency: str | None
    reference: str | None
    impact_base: float
    explains_pnl: bool
    description: str

    @property
    def security(self) -> str:
        """Where the break sits: the security, else the cash currency or the FX pair."""
        if self.symbol:
            return self.symbol
        if self.rule == "cash_balance":
            return f"cash {self.currency}"
        if self.reference:
            return self.reference
        return self.currency or "-"


@dataclasses.dataclass(frozen=True)
class SecurityLine:
    security: str
    categories: tuple[str, ...]
    breaks: int
    impact_base: float


@dataclasses.dataclass(frozen=True)
class AccountExplanation:
    account: str
    base_currency: str
    reported_pnl: float
    expected_pnl: float
    explaining: tuple[Break, ...]  # the breaks that account for the difference
    other: tuple[Break, ...]  # open breaks of the account that do not move the difference

    @property
    def difference(self) -> float:
        return self.reported_pnl - self.expected_pnl

    @property
    def explained(self) -> float:
        return sum(b.impact_base for b in self.explaining)

    @property
    def unexplained(self) -> float:
        return self.difference - self.explained

    @property
    def confidence(self) -> float:
        """The share of the difference the breaks explain; 1.0 when there is nothing to explain."""
        if abs(self.difference) < CENT:
            return 1.0 if abs(self.explained) < CENT else 0.0
        return self.explained / self.difference

    def by_security(self) -> list[SecurityLine]:
        grouped: dict[str, list[Break]] = defaultdict(list)
        for item in self.explaining:
            grouped[item.security].append(item)
        lines = [
            SecurityLine(security, tuple(dict.fromkeys(b.category for b in items)), len(items),
                         sum(b.impact_base for b in items))
            for security, items in grouped.items()
        ]
        return sorted(lines, key=lambda line: (-abs(line.impact_base), line.security))


@dataclasses.dataclass(frozen=True)
class PnlExplanation:
    business_date: dt.date
    published: bool  # False when blocking breaks held the P&L of the date (or it is not built)
    blocking: tuple[Break, ...]  # the blocking breaks of the date (all accounts)
    accounts: tuple[AccountExplanation, ...]
    unassigned: tuple[Break, ...]  # breaks that belong to no account (e.g. an FX cross rate)

    def account(self, name: str) -> AccountExplanation:
        for item in self.accounts:
            if item.account == name:
                return item
        raise KeyError(name)


def _table_exists(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchone()[0])


def pnl_explanation(conn: duckdb.DuckDBPyConnection, business_date: dt.date | str,
                    account: str | None = None) -> PnlExplanation:
    """The numbers behind :func:`explain_pnl`, read from the reconciliation in the warehouse."""
    day = business_date if isinstance(business_date, dt.date) else dt.date.fromisoformat(str(business_date))
    if not _table_exists(conn, "reconciliation", "recon_pnl"):
        raise ExplanationUnavailable(
            f"the warehouse holds no reconciliation yet: run `cei run --date {day}` first")
    pnl = conn.execute(
        "SELECT account, base_currency, books_pnl_base, broker_pnl_base FROM reconciliation.recon_pnl "
        "WHERE business_date = ? ORDER BY account", [day]).fetchall()
    if not pnl:
        raise ExplanationUnavailable(
            f"no reconciliation of {day} in the warehouse: run `cei run --date {day}` first")
    if account is not None and account not in {row[0] for row in pnl}:
        known = ", ".join(row[0] for row in pnl)
        raise ExplanationUnavailable(f"no account {account!r} on {day}; the accounts are {known}")

    rows = conn.execute(
        """
        SELECT account, rule, category, blocking, symbol, currency, reference, impact_base, explains_pnl, description
        FROM reconciliation.recon_breaks
        WHERE business_date = ?
        ORDER BY account NULLS LAST, explains_pnl DESC, abs(impact_base) DESC NULLS LAST, rule, symbol, reference
        """, [day]).fetchall() if _table_exists(conn, "reconciliation", "recon_breaks") else []
    breaks_by_account: dict[str | None, list[Break]] = defaultdict(list)
    for acc, rule, category, blocking, symbol, currency, reference, impact, explains, description in rows:
        breaks_by_account[acc].append(Break(rule, category, bool(blocking), symbol, currency, reference,
                                            float(impact or 0.0), bool(explains), description))

    blocking = tuple(b for items in breaks_by_account.values() for b in items if b.blocking)
    # Held when the reconciliation of the date has blocking breaks (dbt then skipped daily_pnl, so
    # rows of an earlier run of the date may still be there: they are not the P&L of these books).
    published: dict[str, float] = {}
    if not blocking and _table_exists(conn, "books", "daily_pnl"):
        published = dict(conn.execute(
            "SELECT account, sum(total_pnl_base) FROM books.daily_pnl WHERE business_date = ? GROUP BY account",
            [day]).fetchall())
    is_published = bool(published)

    accounts = []
    for acc, base_currency, books_pnl, broker_pnl in pnl:
        if account is not None and acc != account:
            continue
        reported = float(published.get(acc, 0.0) or 0.0) if is_published else float(books_pnl)
        items = breaks_by_account.get(acc, [])
        accounts.append(AccountExplanation(
            acc, base_currency, reported, float(broker_pnl),
            tuple(b for b in items if b.explains_pnl), tuple(b for b in items if not b.explains_pnl)))
    return PnlExplanation(day, is_published, blocking, tuple(accounts), tuple(breaks_by_account.get(None, [])))


# --------------------------------------------------------------------------- Markdown


def _money(value: float) -> str:
    text = f"{value:,.2f}"
    return "0.00" if text == "-0.00" else text


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


DEFINITIONS = (
    "**Reported P&L** is the books' P&L of the date per account in its base currency (books.daily_pnl; "
    "when blocking breaks hold the P&L, the books' unpublished P&L: change in market value plus change in cash). "
    "**Expected P&L** is the P&L implied by the broker's side: from the same start (the firm's positions at the "
    "previous close, valued at that close) to the prime broker's end-of-day statements — its market values plus "
    "its cash — converted at the date's closing rates, except a rate that moved beyond the fx_rate_move tolerance, "
    "replaced by the previous close's. **Difference** = reported − expected. Each break's **P&L impact** is how "
    "much higher the books' P&L is than on the other side of that break; **confidence** is the share of the "
    "difference the breaks explain (explained ÷ difference)."
)


def _account_markdown(item: AccountExplanation) -> list[str]:
    ccy = item.base_currency
    lines = [f"## {item.account} ({ccy})", "",
             f"| | {ccy} |", "|---|---:|",
             f"| Reported P&L | {_money(item.reported_pnl)} |",
             f"| Expected P&L (broker) | {_money(item.expected_pnl)} |",
             f"| Difference | {_money(item.difference)} |",
             f"| Explained by breaks | {_money(item.explained)} |",
             f"| Unexplained | {_money(item.unexplained)} |", ""]
    if abs(item.difference) < CENT and not item.explaining:
        lines += ["**Confidence: 100%** — the books and the broker agree to the cent; no break moves the P&L.", ""]
    else:
        lines += [f"**Confidence: {item.confidence:.1%}** — the breaks explain {_money(item.explained)} of the "
                  f"{_money(item.difference)} {ccy} difference; {_money(item.unexplained)} {ccy} is unexplained.", ""]
    if item.explaining:
        lines += ["Breaks that account for the difference, by security:", "",
                  f"| Security | Category | Breaks | P&L impact ({ccy}) |", "|---|---|---:|---:|"]
        for line in item.by_security():
            lines.append(f"| {_cell(line.security)} | {_cell(', '.join(line.categories))} | {line.breaks} | "
                         f"{_money(line.impact_base)} |")
        lines += [f"| **Total** | | {len(item.explaining)} | **{_money(item.explained)}** |", ""]
        for brk in item.explaining:
            flag = " **(blocking)**" if brk.blocking else ""
            lines.append(f"- {brk.security}, {brk.category}{flag}, {_money(brk.impact_base)} {ccy}: {brk.description}")
        lines.append("")
    if item.other:
        lines += ["Other open breaks (trade breaks behind the ones above, or breaks the broker's statements do not "
                  "show, so they do not move the difference):", "",
                  f"| Security | Category | Rule | Blocking | P&L at stake ({ccy}) | What |",
                  "|---|---|---|---|---:|---|"]
        for brk in item.other:
            lines.append(f"| {_cell(brk.security)} | {brk.category} | {brk.rule} | {'yes' if brk.blocking else 'no'} | "
                         f"{_money(brk.impact_base)} | {_cell(brk.description)} |")
        lines.append("")
    return lines


def render_markdown(explanation: PnlExplanation) -> str:
    day = explanation.business_date
    lines = [f"# P&L explanation for {day}", "", DEFINITIONS, ""]
    if explanation.published:
        lines += [f"The P&L of {day} is **published**; no break blocks it.", ""]
    elif not explanation.blocking:
        lines += [f"> The P&L of {day} is **not published** (books.daily_pnl has no rows for it). Reported figures "
                  f"are the books' P&L: change in market value plus change in cash.", ""]
    else:
        counts: dict[str, int] = defaultdict(int)
        for brk in explanation.blocking:
            counts[brk.category] += 1
        held_by = ", ".join(f"{category} ({count})" for category, count in counts.items()) or "a failed check"
        lines += [f"> The P&L of {day} is **held** by blocking breaks: {held_by}. Reported figures are the books' "
                  f"unpublished P&L; fix the data and rerun, or release with `cei override`.", ""]
    for item in explanation.accounts:
        lines += _account_markdown(item)
    if explanation.unassigned:
        lines += ["## Breaks of no single account", ""]
        for brk in explanation.unassigned:
            flag = " **(blocking)**" if brk.blocking else ""
            lines.append(f"- {brk.security}, {brk.category}{flag}: {brk.description}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def explain_pnl(conn: duckdb.DuckDBPyConnection, business_date: dt.date | str, account: str | None = None) -> str:
    """Markdown: reported versus expected P&L per account, the breaks that explain the difference
    by security with their P&L impact, what remains unexplained and the confidence.

    Raises :class:`ExplanationUnavailable` when the date (or account) has no reconciliation.
    """
    return render_markdown(pnl_explanation(conn, business_date, account))


def explain_pnl_command(date: str, account: str | None = None, out: Path | None = None) -> int:
    """``cei explain-pnl --date D [--account A] [--out FILE]``: print or write the explanation.

    Returns the exit code: 0 when written, 2 on bad usage (not a date, no reconciliation of that
    date, unknown account), with the reason on stderr.
    """
    import sys

    from cei_assets.warehouse import WarehouseResource

    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        print(f"error: --date must be a date YYYY-MM-DD, got {date!r}", file=sys.stderr)
        return 2
    try:
        with WarehouseResource.from_environment().read() as conn:
            text = explain_pnl(conn, day, account)
    except ExplanationUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if out is None:
        sys.stdout.write(text)
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote the P&L explanation of {day} to {out}")
    return 0
