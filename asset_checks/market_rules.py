"""Market-data rules: sessions, vendors, marks, FX and statistics from history, all in DuckDB.

Every rule here is a table rule (``evaluate(rule, ctx, conn)``) whose work is SQL pushed down
into the warehouse: the big table (``raw.quotes``, ~10 million rows a day) is read by a hash
aggregate into small per-symbol/per-bucket tables; windows and robust statistics then run on
those. The quote rules of one run share that aggregate (``quote_buckets``): the engine computes
it once for all of them. Nothing big is pulled into Python.

Exchange sessions come from ``exchange_calendars`` for each security's MIC (``raw.securities``),
always with explicit start/end; a security whose exchange is closed that date has no
expectation, one whose MIC has no calendar is reported as not judged.

Statistical rules are robust: median and MAD (scaled by 1.4826 to a standard deviation) over
the previous N partitions of the same table, and they pass with a note when history is short.
See ``docs/checks.md`` for which rules block and why.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import math
from functools import lru_cache
from typing import Any

from asset_checks.outcome import list_for_sentence
from asset_checks.rule_types import RuleType, TableContext, _quote_ident, _sql_string
from asset_checks.rules import Rule, RuleFileError, parse_percent, parse_settings

MAD_TO_SIGMA = 1.4826
LN10 = math.log(10.0)
SAMPLE_LIMIT = 20


# ----------------------------------------------------------------------------- helpers


def _sql_ts(value: dt.datetime) -> str:
    return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _relation_columns(conn, relation: str) -> tuple[str, ...]:
    schema, _, name = relation.partition(".")
    return tuple(
        r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position", [schema, name],
        ).fetchall()
    )


def _exists(conn, relation: str) -> bool:
    return bool(_relation_columns(conn, relation))


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    if value != 0 and abs(value) < 1:
        return f"{value:.6g}"
    return f"{value:,.2f}" if abs(value) < 1e6 else f"{value:,.0f}"


def _hm(value: dt.datetime | None) -> str:
    return value.strftime("%H:%M") if value else "?"


def _fmt_date(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class _MarketRule(RuleType):
    """A table rule whose parameter is a mapping of settings with defaults."""

    kind = "table"
    defaults: dict[str, Any] = {}
    percents: tuple[str, ...] = ()  # settings written as percentages (10%)
    reads: tuple[str, ...] = ()  # other raw tables the rule reads (for lineage/ordering)

    @classmethod
    def default_name(cls, param, options):
        return cls.rule_name

    rule_name = "market_rule"

    @classmethod
    def settings(cls, rule: Rule) -> dict[str, Any]:
        raw = {} if rule.param in (None, True) else parse_settings(rule.param, rule.source)
        unknown = [k for k in raw if k not in cls.defaults]
        if unknown:
            raise RuleFileError(
                f"{rule.source}: {rule.type} does not know setting(s) {', '.join(unknown)} "
                f"(it takes {', '.join(cls.defaults) or 'none'})"
            )
        out = dict(cls.defaults)
        for key, value in raw.items():
            if key in cls.percents:
                out[key] = parse_percent(value, rule.source)
            else:
                out[key] = value
        return out

    @classmethod
    def validate(cls, rule):
        if rule.param is False:
            raise RuleFileError(f"{rule.source}: {rule.type}: false is not a setting; remove the rule instead")
        settings = cls.settings(rule)
        for key, value in settings.items():
            default = cls.defaults[key]
            if isinstance(default, bool) and not isinstance(value, bool):
                raise RuleFileError(f"{rule.source}: {rule.type}: {key} must be true or false, got {value!r}")
            if isinstance(default, str) and not isinstance(value, str):
                raise RuleFileError(f"{rule.source}: {rule.type}: {key} must be a name, got {value!r}")
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                    raise RuleFileError(f"{rule.source}: {rule.type}: {key} must be a non-negative number, got {value!r}")
        cls.validate_settings(rule, settings)

    @classmethod
    def validate_settings(cls, rule: Rule, settings: dict) -> None:
        pass


def _needs_date(ctx: TableContext):
    if ctx.business_date is None:
        return (True, 0, 0, f"{ctx.relation} is not partitioned by trading date: nothing to judge", [], {})
    return None


# ----------------------------------------------------------------------------- exchange sessions


def calendar_name_for(mic: str) -> str:
    """The exchange_calendars name of a MIC (aliases such as XNAS -> XNYS are the library's)."""
    return str(mic).strip().upper()


@lru_cache(maxsize=512)
def _year_sessions(mic: str, year: int) -> dict[dt.date, tuple[tuple[dt.datetime, dt.datetime], ...]] | None:
    """Session segments (naive UTC) by date for one exchange and year; None when no calendar."""
    import exchange_calendars as xcals

    try:
        # Always explicit bounds: the library's default window moves with today's date.
        calendar = xcals.get_calendar(calendar_name_for(mic), start=f"{year}-01-01", end=f"{year}-12-31")
    except Exception:  # unknown MIC, or a year outside the calendar's bounds
        return None
    out = {}
    schedule = calendar.schedule
    has_breaks = "break_start" in schedule.columns
    for day, row in schedule.iterrows():
        opens = row["open"].tz_convert("UTC").tz_localize(None).to_pydatetime()
        closes = row["close"].tz_convert("UTC").tz_localize(None).to_pydatetime()
        segments = [(opens, closes)]
        if has_breaks and not _isnat(row["break_start"]) and not _isnat(row["break_end"]):
            b0 = row["break_start"].tz_convert("UTC").tz_localize(None).to_pydatetime()
            b1 = row["break_end"].tz_convert("UTC").tz_localize(None).to_pydatetime()
            segments = [(opens, b0), (b1, closes)]
        out[day.date()] = tuple(segments)
    return out


def _isnat(value) -> bool:
    try:
        return value is None or value != value or str(value) == "NaT"
    except Exception:
        return True


def exchange_sessions(mic: str, day: dt.date):
    """``None`` when the MIC has no calendar, ``()`` when closed, else the UTC segments."""
    sessions = _year_sessions(calendar_name_for(mic), day.year)
    if sessions is None:
        return None
    return sessions.get(day, ())


class Sessions:
    """The sessions of every exchange of ``raw.securities`` on some dates, as a SQL relation."""

    def __init__(self, conn, dates):
        self.unknown: list[str] = []  # MICs without a calendar
        self.rows: list[tuple] = []  # (exchange, business_date, seg, seg_start, seg_end)
        self.closed: dict[dt.date, list[str]] = {}  # exchanges closed per date
        exchanges = []
        if _exists(conn, "raw.securities"):
            exchanges = [r[0] for r in conn.execute(
                "SELECT DISTINCT exchange FROM raw.securities WHERE exchange IS NOT NULL ORDER BY 1").fetchall()]
        for exchange in exchanges:
            for day in dates:
                segments = exchange_sessions(exchange, day)
                if segments is None:
                    if exchange not in self.unknown:
                        self.unknown.append(exchange)
                    continue
                if not segments:
                    self.closed.setdefault(day, []).append(exchange)
                for i, (start, end) in enumerate(segments):
                    self.rows.append((exchange, day, i, start, end))

    def sql(self) -> str:
        if not self.rows:
            return ("(SELECT NULL::VARCHAR AS exchange, NULL::DATE AS business_date, NULL::INTEGER AS seg, "
                    "NULL::TIMESTAMP AS seg_start, NULL::TIMESTAMP AS seg_end WHERE FALSE)")
        values = ", ".join(
            f"({_sql_string(e)}, DATE '{d.isoformat()}', {i}, {_sql_ts(a)}, {_sql_ts(b)})" for e, d, i, a, b in self.rows
        )
        return f"(SELECT * FROM (VALUES {values}) AS s(exchange, business_date, seg, seg_start, seg_end))"

    def symbol_segments_sql(self) -> str:
        """(symbol, business_date, seg, seg_start, seg_end) of every security whose exchange is open."""
        return (f"(SELECT sec.symbol, x.business_date, x.seg, x.seg_start, x.seg_end FROM raw.securities AS sec "
                f"JOIN {self.sql()} AS x ON x.exchange = sec.exchange)")

    def aligned_bucket_seconds(self, longest: int, day: dt.date) -> int:
        """The longest bucket width (seconds, dividing ``longest``) such that every session boundary
        of ``day`` falls on a bucket boundary: then a bucket is wholly in or out of a session."""
        width = int(longest)
        for _, d, _, start, end in self.rows:
            if d == day:
                for moment in (start, end):
                    width = math.gcd(width, moment.hour * 3600 + moment.minute * 60 + moment.second)
        return max(width, 60)

    def not_judged_note(self, conn, day: dt.date | None = None) -> str:
        notes = []
        if self.unknown:
            (n,) = conn.execute(
                f"SELECT count(*) FROM raw.securities WHERE exchange IN ({', '.join(map(_sql_string, self.unknown))})"
            ).fetchone()
            notes.append(f"{n} securit{'y' if n == 1 else 'ies'} on exchange(s) without a calendar "
                         f"({', '.join(self.unknown)}) not judged")
        if day is not None and self.closed.get(day):
            notes.append(f"exchange(s) closed on {day}: {', '.join(self.closed[day])} (no expectation)")
        return ("; " + "; ".join(notes)) if notes else ""


def _bucket_in_session(sessions: Sessions, alias: str = "b") -> str:
    """A condition keeping buckets that start inside their symbol's session that date, or all
    buckets of a symbol whose session is unknown. Filtering buckets (small) instead of quotes
    (big) keeps the one scan of the quotes a plain hash aggregate."""
    segments = sessions.symbol_segments_sql()
    return (f"(EXISTS (SELECT 1 FROM {segments} AS y WHERE y.symbol = {alias}.symbol AND y.business_date = {alias}.business_date "
            f"AND {alias}.bucket >= y.seg_start AND {alias}.bucket < y.seg_end) "
            f"OR NOT EXISTS (SELECT 1 FROM {segments} AS y WHERE y.symbol = {alias}.symbol AND y.business_date = {alias}.business_date))")


# ----------------------------------------------------------------------------- quotes: per-bucket aggregate

QUOTE_BUCKETS = "quote_buckets"
# Quotes with a usable mid: a positive bid not above the ask.
_VALID_QUOTE = "bid > 0 AND ask >= bid"


def _quote_buckets_sql(ctx: TableContext, width_us: int) -> str:
    """Per vendor, symbol and time bucket of the trading date: the quote count, the first and last
    stamp, and over the valid quotes their count, median mid (an observed mid, ``quantile_disc``)
    and lowest and highest mid. Quotes without a stamp form a bucket of their own (NULL)."""
    mids = f"bid + ask) FILTER (WHERE {_VALID_QUOTE}) / 2"
    return f"""
        SELECT business_date, vendor, symbol, time_bucket(to_microseconds({int(width_us)}), ts) AS bucket,
               count(*) AS quotes, min(ts) AS first_ts, max(ts) AS last_ts,
               count(*) FILTER (WHERE {_VALID_QUOTE}) AS valid_quotes,
               quantile_disc(bid + ask, 0.5) FILTER (WHERE {_VALID_QUOTE}) / 2 AS mid,
               min({mids} AS lo, max({mids} AS hi
        FROM {ctx.relation} WHERE business_date = $business_date
        GROUP BY ALL
    """


def quote_buckets(ctx: TableContext, width_us: int) -> str:
    """The per-bucket aggregate of the date's quotes (``_quote_buckets_sql``) as a relation: the one
    table the run computed for every rule reading it, or the rule's own subquery (its parameter is
    ``$business_date``). vendor_agreement, price_spike and stale_feed read the quotes through it."""
    key = (QUOTE_BUCKETS, ctx.relation, ctx.business_date, int(width_us))
    sql = _quote_buckets_sql(ctx, width_us)
    if ctx.shared is None:
        return f"({sql})"
    # The table holds this date only; naming the date keeps both forms one query shape (the
    # same parameters), whichever the rule gets.
    return f"(SELECT * FROM {ctx.shared.relation(key, sql, ctx.params)} WHERE business_date = $business_date)"


def _shared_bucket_widths(ctx: TableContext) -> list[int]:
    """Bucket widths (microseconds) of the per-bucket aggregates this run computes anyway."""
    if ctx.shared is None:
        return []
    return [k[3] for k in ctx.shared.declared(QUOTE_BUCKETS) if k[1:3] == (ctx.relation, ctx.business_date)]


def _feeds(ctx: TableContext) -> str:
    """(vendor, symbol, quotes) of every feed that delivered quotes that date, from the per-bucket
    aggregate when the run computes one, else from the quotes."""
    widths = _shared_bucket_widths(ctx)
    if widths:
        return f"(SELECT vendor, symbol, sum(quotes)::BIGINT AS quotes FROM {quote_buckets(ctx, widths[0])} GROUP BY ALL)"
    return f"(SELECT vendor, symbol, count(*) AS quotes FROM {ctx.relation} WHERE business_date = $business_date GROUP BY ALL)"


def _bucket_us(bucket_minutes) -> int:
    return int(float(bucket_minutes) * 60_000_000)


def _bucket_needs(ctx: TableContext, bucket_minutes) -> tuple:
    return ((QUOTE_BUCKETS, ctx.relation, ctx.business_date, _bucket_us(bucket_minutes)),) \
        if ctx.business_date is not None else ()


class _BucketedQuotesRule(_MarketRule):
    """A rule on the quotes' ``bucket_minutes`` buckets (``quote_buckets``), shared with the other
    such rules of a run, restricted to each exchange's session when ``session_only``."""

    @classmethod
    def shared_needs(cls, rule, ctx):
        return _bucket_needs(ctx, cls.settings(rule)["bucket_minutes"])

    @classmethod
    def session_buckets(cls, rule, ctx, conn) -> tuple[str, str]:
        """The buckets' relation and the SQL condition keeping a bucket (alias ``b0``) in session."""
        s = cls.settings(rule)
        sessions = Sessions(conn, [ctx.business_date])
        in_session = _bucket_in_session(sessions, "b0") if s["session_only"] else "TRUE"
        return quote_buckets(ctx, _bucket_us(s["bucket_minutes"])), in_session


# ----------------------------------------------------------------------------- quotes: stale feed


class StaleFeed(_MarketRule):
    """``stale_feed: {max_gap_minutes: 30}``: no vendor leaves a symbol silent longer than that
    within its exchange's session, counting open-to-first and last-to-close."""

    rule_name = "stale_feed"
    defaults = {"max_gap_minutes": 30}
    reads = ("securities",)

    @classmethod
    def validate_settings(cls, rule, settings):
        if settings["max_gap_minutes"] < 1:
            raise RuleFileError(f"{rule.source}: stale_feed: max_gap_minutes must be at least 1")

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        if (skip := _needs_date(ctx)) is not None:
            return skip
        gap = float(cls.settings(rule)["max_gap_minutes"])
        day = ctx.business_date
        sessions = Sessions(conn, [day])
        # One hash aggregate of the quotes into buckets no longer than the allowed gap and aligned
        # on the session boundaries: a longer gap always spans buckets, so the exact longest gap
        # comes from each bucket's first and last quote, without sorting the quotes.
        width_us = sessions.aligned_bucket_seconds(int(round(gap * 60)), day) * 1_000_000
        # Finer buckets the run computes anyway roll up exactly into these when their width
        # divides this one (time_bucket's buckets share one origin).
        finer = [w for w in _shared_bucket_widths(ctx) if width_us % w == 0]
        if finer:
            buckets = (f"SELECT vendor, symbol, time_bucket(to_microseconds({width_us}), bucket) AS bucket, "
                       f"min(first_ts) AS first_ts, max(last_ts) AS last_ts FROM {quote_buckets(ctx, max(finer))} "
                       f"WHERE bucket IS NOT NULL GROUP BY ALL")
        else:
            buckets = (f"SELECT vendor, symbol, time_bucket(to_microseconds({width_us}), ts) AS bucket, "
                       f"min(ts) AS first_ts, max(ts) AS last_ts FROM {ctx.relation} "
                       f"WHERE business_date = $business_date AND ts IS NOT NULL GROUP BY ALL")
        query = f"""
            WITH seg AS (SELECT * FROM {sessions.symbol_segments_sql()} WHERE business_date = $business_date),
            b AS ({buckets}),
            feeds AS (SELECT DISTINCT vendor, symbol FROM b),
            inside AS (
                SELECT b.*, y.seg, y.seg_start, y.seg_end FROM b
                JOIN seg AS y ON y.symbol = b.symbol AND b.bucket >= y.seg_start AND b.bucket < y.seg_end
            ),
            gaps AS (
                SELECT vendor, symbol, last_ts AS gap_from,
                       coalesce(lead(first_ts) OVER (PARTITION BY vendor, symbol, seg ORDER BY bucket), seg_end) AS gap_to
                FROM inside
                UNION ALL
                SELECT vendor, symbol, any_value(seg_start), min(first_ts) FROM inside GROUP BY vendor, symbol, seg
                UNION ALL
                SELECT f.vendor, f.symbol, s.seg_start, s.seg_end
                FROM feeds AS f JOIN seg AS s ON s.symbol = f.symbol
                WHERE NOT EXISTS (SELECT 1 FROM inside AS i WHERE i.vendor = f.vendor AND i.symbol = f.symbol AND i.seg = s.seg)
            ),
            ranked AS (
                SELECT vendor, symbol, gap_from, gap_to, epoch(gap_to - gap_from) / 60.0 AS minutes,
                       count(*) FILTER (WHERE epoch(gap_to - gap_from) / 60.0 > {gap}) OVER (PARTITION BY vendor, symbol) AS long_gaps,
                       row_number() OVER (PARTITION BY vendor, symbol ORDER BY gap_to - gap_from DESC, gap_from) AS rn
                FROM gaps
            )
            SELECT vendor, symbol, round(minutes, 1) AS silent_minutes, gap_from, gap_to, long_gaps,
                   (SELECT count(*) FROM feeds AS f JOIN (SELECT DISTINCT symbol FROM seg) AS o USING (symbol)) AS judged
            FROM ranked WHERE rn = 1 AND minutes > {gap}
            ORDER BY minutes DESC, symbol, vendor
        """
        rows = conn.execute(query, ctx.params).fetchall()
        note = sessions.not_judged_note(conn, day)
        if not rows:
            (judged,) = conn.execute(
                f"""SELECT count(*) FROM {_feeds(ctx)} AS f
                    JOIN (SELECT DISTINCT symbol FROM {sessions.symbol_segments_sql()} WHERE business_date = $business_date) USING (symbol)""",
                ctx.params,
            ).fetchone()
            return (True, 0, judged,
                    f"{judged:,} symbol/vendor feed(s) of {day} updated at least every {gap:g} min of their "
                    f"exchange's session{note}", [], {})
        judged = rows[0][6]
        samples = [
            {"symbol": s, "vendor": v, "silent_minutes": float(m), "from": a, "to": b, "long_gaps": int(n)}
            for v, s, m, a, b, n, _ in rows[:SAMPLE_LIMIT]
        ]
        items = [f"{s}/{v} {float(m):,.0f} min ({_hm(a)}-{_hm(b)} UTC)" for v, s, m, a, b, n, _ in rows]
        text = (f"{len(rows):,} of {judged:,} symbol/vendor feed(s) went silent for more than {gap:g} min during "
                f"their exchange's session on {day}: {list_for_sentence(items)}{note}")
        affected = {"symbol": sorted({r[1] for r in rows}), "vendor": sorted({r[0] for r in rows})}
        return False, len(rows), judged, text, samples, affected


# ----------------------------------------------------------------------------- quotes: coverage


class EverySecurityQuoted(_MarketRule):
    """``every_security_quoted: true`` (or ``{vendors: [primary]}``): every security whose exchange
    is open that date has at least one quote from each required vendor. By default the required
    vendors are every vendor that delivered quotes that date (so a symbol dropped by one vendor is
    caught); with no quotes at all, every open security is missing."""

    rule_name = "every_security_quoted"
    defaults = {"vendors": None}
    reads = ("securities",)

    @classmethod
    def validate_settings(cls, rule, settings):
        vendors = settings["vendors"]
        if vendors is not None and not (isinstance(vendors, list) and all(isinstance(v, str) for v in vendors)):
            raise RuleFileError(f"{rule.source}: every_security_quoted: vendors is a list of vendor names")

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        if (skip := _needs_date(ctx)) is not None:
            return skip
        day = ctx.business_date
        sessions = Sessions(conn, [day])
        feeds = _feeds(ctx)
        present = [r[0] for r in conn.execute(f"SELECT DISTINCT vendor FROM {feeds} ORDER BY 1", ctx.params).fetchall()]
        required = cls.settings(rule)["vendors"] or present
        vendor_sql = ("(SELECT NULL::VARCHAR AS vendor)" if not required else
                      "(SELECT * FROM (VALUES " + ", ".join(f"({_sql_string(v)})" for v in required) + ") AS v(vendor))")
        any_vendor = not required
        query = f"""
            WITH open_secs AS (SELECT DISTINCT symbol FROM {sessions.symbol_segments_sql()} WHERE business_date = $business_date),
            quoted AS (SELECT vendor, symbol FROM {feeds}),
            need AS (SELECT o.symbol, v.vendor FROM open_secs AS o CROSS JOIN {vendor_sql} AS v)
            SELECT n.symbol, n.vendor, (SELECT count(*) FROM open_secs) AS open_count FROM need AS n
            WHERE NOT EXISTS (SELECT 1 FROM quoted AS q WHERE q.symbol = n.symbol AND ({'TRUE' if any_vendor else 'q.vendor = n.vendor'}))
            ORDER BY n.symbol, n.vendor
        """
        rows = conn.execute(query, ctx.params).fetchall()
        note = sessions.not_judged_note(conn, day)
        who = "any vendor" if any_vendor else f"each of {', '.join(required)}"
        if not rows:
            (open_count,) = conn.execute(
                f"SELECT count(DISTINCT symbol) FROM {sessions.symbol_segments_sql()} WHERE business_date = $business_date",
                ctx.params).fetchone()
            return True, 0, open_count, f"all {open_count:,} securities whose exchange is open on {day} are quoted by {who}{note}", [], {}
        open_count = rows[0][2]
        by_symbol: dict[str, list[str]] = {}
        for symbol, vendor, _ in rows:
            by_symbol.setdefault(symbol, []).append(vendor or "any vendor")
        items = [f"{s} ({', '.join(v)})" for s, v in by_symbol.items()]
        text = (f"{len(by_symbol):,} of {open_count:,} securities whose exchange is open on {day} have no quotes from "
                f"{who}: {list_for_sentence(items)}{note}")
        samples = [{"symbol": s, "vendor": v} for s, v, _ in rows[:SAMPLE_LIMIT]]
        affected = {"symbol": list(by_symbol)}
        if not any_vendor:
            affected["vendor"] = sorted({v for _, v, _ in rows})
        return False, len(by_symbol), open_count, text, samples, affected


# ----------------------------------------------------------------------------- quotes: vendors agree


class VendorAgreement(_BucketedQuotesRule):
    """``vendor_agreement: {max_bps: 100, bucket_minutes: 5, min_share: 10%}``: per symbol and time
    bucket of its session, each vendor's median mid against the median of the other vendors' medians;
    a vendor disagrees when more than ``min_share`` of the buckets differ by more than ``max_bps``.
    Medians per bucket ignore single bad quotes and spread noise; requiring a share of buckets
    ignores a moment of lag, but a 3% disagreement for an hour of the day is caught."""

    rule_name = "vendor_agreement"
    defaults = {"max_bps": 100, "bucket_minutes": 5, "min_share": 0.10, "session_only": True}
    percents = ("min_share",)
    reads = ("securities",)

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        if (skip := _needs_date(ctx)) is not None:
            return skip
        s = cls.settings(rule)
        day = ctx.business_date
        buckets, in_session = cls.session_buckets(rule, ctx, conn)
        # The median mid of each vendor, symbol and bucket: one hash aggregate of the quotes.
        query = f"""
            WITH b0 AS (
                SELECT business_date, symbol, vendor, bucket, mid FROM {buckets} WHERE valid_quotes > 0
            ),
            b AS (SELECT * FROM b0 WHERE {in_session}),
            cmp AS (
                SELECT a.symbol, a.vendor, a.bucket, any_value(a.mid) AS mid, median(o.mid) AS others
                FROM b AS a JOIN b AS o ON o.symbol = a.symbol AND o.bucket = a.bucket AND o.vendor <> a.vendor
                GROUP BY a.symbol, a.vendor, a.bucket
            ),
            per AS (
                SELECT symbol, vendor, count(*) AS buckets,
                       count_if(abs(ln(mid / others)) * 1e4 > {float(s['max_bps'])}) AS over,
                       median(abs(ln(mid / others)) * 1e4) AS median_bps,
                       max(abs(ln(mid / others)) * 1e4) AS max_bps,
                       arg_max(bucket, (abs(ln(mid / others)), -epoch(bucket))) AS worst_bucket,
                       arg_max(mid, (abs(ln(mid / others)), -epoch(bucket))) AS worst_mid,
                       arg_max(others, (abs(ln(mid / others)), -epoch(bucket))) AS worst_others
                FROM cmp GROUP BY ALL
            )
            SELECT symbol, vendor, buckets, over, median_bps, max_bps, worst_bucket, worst_mid, worst_others,
                   (SELECT count(DISTINCT symbol) FROM cmp) AS compared
            FROM per WHERE over > 0 AND over >= {float(s['min_share'])} * buckets
            ORDER BY symbol, vendor
        """
        rows = conn.execute(query, ctx.params).fetchall()
        if not rows:
            (compared, vendors) = conn.execute(
                f"SELECT count(DISTINCT symbol), count(DISTINCT vendor) FROM {buckets}", ctx.params).fetchone()
            if vendors < 2:
                return True, 0, compared, f"only {vendors} vendor quoted on {day}: nothing to compare", [], {}
            return (True, 0, compared, f"vendors' mids agree within {s['max_bps']:g} bps in at least "
                    f"{1 - s['min_share']:.0%} of the {s['bucket_minutes']:g}-min buckets for every symbol on {day}", [], {})
        compared = rows[0][9]
        vendors_of = dict(conn.execute(
            f"SELECT symbol, count(DISTINCT vendor) FROM {buckets} "
            f"WHERE symbol IN ({', '.join(sorted({_sql_string(r[0]) for r in rows}))}) GROUP BY 1", ctx.params).fetchall())
        by_symbol: dict[str, list] = {}
        for r in rows:
            by_symbol.setdefault(r[0], []).append(r)
        items = []
        for symbol, rs in by_symbol.items():
            worst = max(rs, key=lambda r: r[5])
            who = " vs ".join(r[1] for r in rs) if len(rs) == 2 and vendors_of.get(symbol) == 2 else \
                f"{'/'.join(r[1] for r in rs)} vs the other vendors"
            items.append(
                f"{symbol} ({who}: more than {s['max_bps']:g} bps apart in {worst[3]} of {worst[2]} "
                f"{s['bucket_minutes']:g}-min buckets, up to {worst[5]:,.0f} bps: {worst[1]} {_num(worst[7])} vs "
                f"{_num(worst[8])} at {_hm(worst[6])} UTC)"
            )
        text = (f"{len(by_symbol):,} of {compared:,} symbols have vendors disagreeing by more than {s['max_bps']:g} bps "
                f"on {day}: {list_for_sentence(items, 3)}")
        samples = [
            {"symbol": r[0], "vendor": r[1], "buckets": r[2], "buckets_over": r[3], "median_bps": round(r[4], 1),
             "max_bps": round(r[5], 1), "worst_bucket": r[6], "worst_mid": r[7], "others_mid": r[8]}
            for r in rows[:SAMPLE_LIMIT]
        ]
        return (False, len(by_symbol), compared, text, samples,
                {"symbol": list(by_symbol), "vendor": sorted({r[1] for r in rows})})


# ----------------------------------------------------------------------------- quotes: spikes


class PriceSpike(_BucketedQuotesRule):
    """``price_spike: {max_z: 10, min_bps: 50, bucket_minutes: 5}``: an intraday mid that jumps away
    from BOTH the level before it and the level after it (the neighbouring buckets' median mids) by
    more than ``max_z`` robust standard deviations of that day's bucket-to-bucket returns (MAD) and
    more than ``min_bps``. A real jump does not come back, so it is not a spike."""

    rule_name = "price_spike"
    defaults = {"max_z": 10, "min_bps": 50, "bucket_minutes": 5, "min_buckets": 10, "session_only": True}
    reads = ("securities",)

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        if (skip := _needs_date(ctx)) is not None:
            return skip
        s = cls.settings(rule)
        day = ctx.business_date
        buckets, in_session = cls.session_buckets(rule, ctx, conn)
        query = f"""
            WITH b0 AS (
                SELECT business_date, vendor, symbol, bucket, mid AS med, lo, hi FROM {buckets} WHERE valid_quotes > 0
            ),
            b AS (SELECT * FROM b0 WHERE {in_session}),
            w AS (
                SELECT *, lag(med) OVER s AS prev_med, lead(med) OVER s AS next_med, ln(med / lag(med) OVER s) AS ret
                FROM b WINDOW s AS (PARTITION BY vendor, symbol ORDER BY bucket)
            ),
            scale AS (
                SELECT vendor, symbol, {MAD_TO_SIGMA} * mad(ret) AS sigma, count(ret) AS n_ret FROM w GROUP BY ALL
            ),
            c AS (
                SELECT w.vendor, w.symbol, w.bucket, w.lo, w.hi,
                       coalesce(w.prev_med, w.next_med) AS before, coalesce(w.next_med, w.prev_med) AS after,
                       sc.sigma, sc.n_ret,
                       greatest({float(s['min_bps'])} / 1e4,
                                CASE WHEN sc.n_ret >= {int(s['min_buckets'])} THEN {float(s['max_z'])} * sc.sigma ELSE 0 END) AS thr
                FROM w JOIN scale AS sc USING (vendor, symbol)
            ),
            j AS (
                SELECT *, ln(hi / greatest(before, after)) AS up, ln(least(before, after) / lo) AS down FROM c
                WHERE before IS NOT NULL
            )
            SELECT vendor, symbol, bucket,
                   CASE WHEN up >= down THEN hi ELSE lo END AS spike_mid, bucket AS spike_ts,
                   before, after, greatest(up, down) * 1e4 AS jump_bps, thr * 1e4 AS thr_bps, sigma * 1e4 AS sigma_bps
            FROM j WHERE greatest(up, down) > thr
            ORDER BY jump_bps DESC, symbol, vendor, bucket
        """
        rows = conn.execute(query, ctx.params).fetchall()
        (feeds,) = conn.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT vendor, symbol FROM {buckets})", ctx.params).fetchone()
        if not rows:
            return (True, 0, feeds, f"no mid of {day} jumps away and back by more than {s['max_z']:g} robust sigmas "
                    f"and {s['min_bps']:g} bps ({feeds:,} symbol/vendor feeds)", [], {})
        rows = cls._exact_times(conn, ctx, rows, _bucket_us(s["bucket_minutes"]))
        pairs = sorted({(r[1], r[0]) for r in rows})
        items = [f"{r[1]}/{r[0]} {_num(r[3])} at {r[4].strftime('%H:%M:%S')} UTC between {_num(r[5])} and {_num(r[6])} "
                 f"({r[7]:,.0f} bps, threshold {r[8]:,.0f})" for r in rows]
        text = (f"{len(rows):,} quote spike(s) on {day} in {len(pairs)} symbol/vendor feed(s): "
                f"{list_for_sentence(items, 3)}")
        samples = [
            {"symbol": r[1], "vendor": r[0], "bucket": r[2], "spike_mid": r[3], "spike_ts": r[4], "mid_before": r[5],
             "mid_after": r[6], "jump_bps": round(r[7], 1), "threshold_bps": round(r[8], 1)}
            for r in rows[:SAMPLE_LIMIT]
        ]
        return (False, len(rows), feeds, text, samples,
                {"symbol": sorted({p[0] for p in pairs}), "vendor": sorted({p[1] for p in pairs})})


    @classmethod
    def _exact_times(cls, conn, ctx, rows, bucket_us):
        """The time of the spiking quote itself for the first flagged buckets (a small indexed look-up)."""
        head = rows[:SAMPLE_LIMIT]
        values = ", ".join(f"({_sql_string(r[0])}, {_sql_string(r[1])}, {_sql_ts(r[2])}, {float(r[3])!r})" for r in head)
        found = dict(
            ((v, sym, b), ts) for v, sym, b, ts in conn.execute(
                f"""SELECT f.vendor, f.symbol, f.bucket, min(q.ts) FROM {ctx.relation} AS q
                    JOIN (VALUES {values}) AS f(vendor, symbol, bucket, mid)
                      ON q.vendor = f.vendor AND q.symbol = f.symbol AND q.ts >= f.bucket
                     AND q.ts < f.bucket + to_microseconds({bucket_us}) AND (q.bid + q.ask) / 2 = f.mid
                    WHERE q.business_date = $business_date GROUP BY ALL""", ctx.params).fetchall()
        )
        return [(r[0], r[1], r[2], r[3], found.get((r[0], r[1], r[2]), r[4]), *r[5:]) for r in head] + rows[SAMPLE_LIMIT:]


# ----------------------------------------------------------------------------- eod: last quote


def last_quotes_sql(sessions: Sessions, vendor: str, grace_minutes: float, dates_filter: str) -> str:
    """(business_date, symbol, bid, ask, ts): each symbol's last valid quote of the vendor at or
    before its exchange's close (plus grace); the last quote of the day when the session is unknown."""
    return f"""
        SELECT q.business_date, q.symbol,
               arg_max(q.bid, (q.ts, q._source_line)) AS bid, arg_max(q.ask, (q.ts, q._source_line)) AS ask,
               max(q.ts) AS ts
        FROM raw.quotes AS q
        LEFT JOIN (SELECT symbol, business_date, max(seg_end) AS close_ts FROM {sessions.symbol_segments_sql()} GROUP BY ALL) AS c
               ON c.symbol = q.symbol AND c.business_date = q.business_date
        WHERE {dates_filter} AND q.vendor = {_sql_string(vendor)} AND q.bid > 0 AND q.ask >= q.bid
          AND (c.close_ts IS NULL OR q.ts <= c.close_ts + to_microseconds({int(grace_minutes * 60_000_000)}))
        GROUP BY ALL
    """


def _has_quote_columns(conn) -> bool:
    return {"ts", "symbol", "bid", "ask", "vendor", "business_date", "_source_line"} <= set(_relation_columns(conn, "raw.quotes"))


class EodMatchesLastQuote(_MarketRule):
    """``eod_matches_last_quote: {max_bps: 300, vendor: primary}``: each mark lies within
    ``max_bps`` of the last valid quote of the primary vendor at the close of its exchange
    (distance to the bid-ask interval, in bps of the mid). Securities without such quotes that
    date are not judged (``every_security_quoted`` reports them)."""

    rule_name = "eod_matches_last_quote"
    defaults = {"max_bps": 300, "vendor": "primary", "grace_minutes": 1}
    reads = ("quotes", "securities")

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        if (skip := _needs_date(ctx)) is not None:
            return skip
        s = cls.settings(rule)
        day = ctx.business_date
        (marks,) = conn.execute(f"SELECT count(*) FROM {ctx.relation} WHERE business_date = $business_date", ctx.params).fetchone()
        if not _has_quote_columns(conn) or not cls._quoted_dates(conn, s["vendor"], day, day):
            return cls._nothing_to_compare(s, day, marks)
        sessions = Sessions(conn, [day])
        query = f"""
            WITH last AS ({last_quotes_sql(sessions, s['vendor'], float(s['grace_minutes']), 'q.business_date = $business_date')}),
            cmp AS (
                SELECT e.symbol, e.close::DOUBLE AS close, l.bid, l.ask, l.ts,
                       1e4 * greatest(l.bid - e.close::DOUBLE, e.close::DOUBLE - l.ask, 0) / ((l.bid + l.ask) / 2) AS off_bps
                FROM {ctx.relation} AS e JOIN last AS l ON l.symbol = e.symbol
                WHERE e.business_date = $business_date AND e.close IS NOT NULL
            )
            SELECT symbol, close, bid, ask, ts, off_bps, (SELECT count(*) FROM cmp) AS compared
            FROM cmp WHERE off_bps > {float(s['max_bps'])} ORDER BY off_bps DESC, symbol
        """
        rows = conn.execute(query, ctx.params).fetchall()
        if not rows:
            (compared,) = conn.execute(
                f"""SELECT count(*) FROM {ctx.relation} AS e
                    JOIN (SELECT DISTINCT symbol FROM raw.quotes WHERE business_date = $business_date AND vendor = {_sql_string(s['vendor'])}) USING (symbol)
                    WHERE e.business_date = $business_date""", ctx.params).fetchone()
            return (True, 0, compared, f"{compared:,} of {marks:,} marks of {day} lie within {s['max_bps']:g} bps of "
                    f"their last {s['vendor']} quote at the close (the others have no {s['vendor']} quote)", [], {})
        compared = rows[0][6]
        items = [f"{r[0]} {_num(r[1])} vs bid/ask {_num(r[2])}/{_num(r[3])} at {_hm(r[4])} UTC ({r[5]:,.0f} bps off)" for r in rows]
        text = (f"{len(rows):,} of {compared:,} marks of {day} are more than {s['max_bps']:g} bps away from their last "
                f"{s['vendor']} quote at the close: {list_for_sentence(items)}")
        samples = [{"symbol": r[0], "close": r[1], "last_bid": r[2], "last_ask": r[3], "last_quote_ts": r[4],
                    "off_bps": round(r[5], 1)} for r in rows[:SAMPLE_LIMIT]]
        return False, len(rows), compared, text, samples, {"symbol": [r[0] for r in rows]}

    @staticmethod
    def _quoted_dates(conn, vendor, first, last) -> set:
        return {r[0] for r in conn.execute(
            "SELECT DISTINCT business_date FROM raw.quotes WHERE business_date BETWEEN ? AND ? AND vendor = ?",
            [first, last, vendor]).fetchall()}

    @staticmethod
    def _nothing_to_compare(settings, day, marks):
        return (True, 0, 0, f"no {settings['vendor']} quotes on {day} to compare its {marks:,} marks with "
                f"(every_security_quoted reports missing quotes)", [], {})

    @classmethod
    def evaluate_many(cls, rule, ctx, conn, dates):
        """Dates without quotes of the vendor pass in one query; the others are compared one by one."""
        s = cls.settings(rule)
        quoted = cls._quoted_dates(conn, s["vendor"], min(dates), max(dates)) if _has_quote_columns(conn) else set()
        marks = dict(conn.execute(
            f"SELECT business_date, count(*) FROM {ctx.relation} WHERE business_date BETWEEN ? AND ? GROUP BY 1",
            [min(dates), max(dates)]).fetchall())
        return {d: cls.evaluate(rule, dataclasses.replace(ctx, business_date=d), conn) if d in quoted
                else cls._nothing_to_compare(s, d, marks.get(d, 0)) for d in dates}


class EverySecurityMarked(_MarketRule):
    """``every_security_marked: true``: every security of ``raw.securities`` has an EOD mark that
    date (a security whose exchange is closed carries its previous close)."""

    rule_name = "every_security_marked"
    defaults = {}
    reads = ("securities",)

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        return cls.evaluate_many(rule, ctx, conn, [ctx.business_date])[ctx.business_date] if ctx.business_date else \
            _needs_date(ctx)

    @classmethod
    def evaluate_many(cls, rule, ctx, conn, dates):
        """Many dates in one query."""
        if not _exists(conn, "raw.securities"):
            return {d: (True, 0, 0, "no securities master to expect marks for", [], {}) for d in dates}
        (count,) = conn.execute("SELECT count(DISTINCT symbol) FROM raw.securities WHERE symbol IS NOT NULL").fetchone()
        listed = ", ".join(f"(DATE '{d}')" for d in dates)
        rows = conn.execute(f"""
            SELECT d.business_date, list(s.symbol ORDER BY s.symbol)
            FROM (VALUES {listed}) AS d(business_date)
            CROSS JOIN (SELECT DISTINCT symbol FROM raw.securities WHERE symbol IS NOT NULL) AS s
            WHERE NOT EXISTS (SELECT 1 FROM {ctx.relation} AS e
                              WHERE e.business_date = d.business_date AND e.symbol = s.symbol AND e.close IS NOT NULL)
            GROUP BY 1""").fetchall()
        missing = dict(rows)
        out = {}
        for day in dates:
            symbols = missing.get(day)
            if not symbols:
                out[day] = (True, 0, count, f"all {count:,} securities have an EOD mark on {day}", [], {})
            else:
                out[day] = (False, len(symbols), count,
                            f"{len(symbols):,} of {count:,} securities have no EOD mark on {day}: {list_for_sentence(symbols)}",
                            [{"symbol": x} for x in symbols[:SAMPLE_LIMIT]], {"symbol": list(symbols)})
        return out


# ----------------------------------------------------------------------------- eod: price moves


PRICE_MOVE_FLAGS = ("non_positive", "copied_price", "decimal_shift", "implausible_move", "unexplained_move")


def previous_partitions(conn, relation: str, day: dt.date, n: int) -> list[dt.date]:
    """The previous ``n`` trading dates present in ``relation`` before ``day``, newest first."""
    return [r[0] for r in conn.execute(
        f"SELECT DISTINCT business_date FROM {relation} WHERE business_date < ? ORDER BY 1 DESC LIMIT {int(n)}",
        [day]).fetchall()]


class PriceMove(_MarketRule):
    """``price_move: {flags: [...], ...}``: each mark against the previous trading date's mark of the
    same symbol (``raw.opening_eod_prices`` before the first date), adjusted for the corporate
    actions effective in between (a split divides the expected price by its ratio, a cash dividend
    lowers it by its amount). What it flags:

    - ``non_positive``: a zero or negative mark;
    - ``decimal_shift``: the mark is the expected price times 10, 100, 1000 or divided by them,
      within ``decimal_tolerance``;
    - ``copied_price``: the mark equals another symbol's mark that date, it moved more than
      ``copied_min_move`` and more than ``copied_min_z`` robust sigmas, and the symbol's own last
      primary quote (when there is one) does not confirm it;
    - ``implausible_move``: the mark is more than ``max_ratio`` times (default 3) above or below
      the expected price and the symbol's own last primary quote does not confirm it (a decimal
      shift on a day that also moved a lot lands here);
    - ``unexplained_move``: a move of more than ``max_z`` robust sigmas (median and MAD of the
      symbol's previous ``history`` daily log returns) and more than ``min_move``; with fewer than
      ``min_history`` returns, more than ``max_move``.

    Each symbol gets the first of these that applies, so a decimal shift is not also reported as
    an unexplained move. Usually written twice: the data errors blocking, the large moves warning.
    """

    rule_name = "price_move"
    defaults = {
        "flags": list(PRICE_MOVE_FLAGS),
        "decimal_tolerance": 0.15,
        "copied_min_move": 0.10,
        "copied_min_z": 5,
        "max_ratio": 3,
        "max_z": 8,
        "min_move": 0.15,
        "max_move": 0.50,
        "history": 60,
        "min_history": 20,
        "vendor": "primary",
        "max_quote_bps": 300,
    }
    percents = ("decimal_tolerance", "copied_min_move", "min_move", "max_move")
    reads = ("opening_eod_prices", "corporate_actions", "quotes", "securities")

    @classmethod
    def default_name(cls, param, options):
        flags = param.get("flags") if isinstance(param, dict) else None
        if flags and set(flags) <= {"non_positive", "decimal_shift", "copied_price", "implausible_move"}:
            return "price_move_data_error"
        if flags == ["unexplained_move"]:
            return "price_move_unexplained"
        return "price_move"

    @classmethod
    def validate_settings(cls, rule, settings):
        flags = settings["flags"]
        if not isinstance(flags, list) or not flags or any(f not in PRICE_MOVE_FLAGS for f in flags):
            raise RuleFileError(f"{rule.source}: price_move: flags is a list among {', '.join(PRICE_MOVE_FLAGS)}")
        if settings["history"] < 2 or settings["min_history"] < 2:
            raise RuleFileError(f"{rule.source}: price_move: history and min_history must be at least 2")

    @classmethod
    def findings(cls, conn, settings: dict, date_from: dt.date, date_to: dt.date, relation: str = "raw.eod_prices") -> list[dict]:
        """Every mark of ``date_from``..``date_to`` with its class (or None): one SQL statement for
        any number of dates (the window statistics are per symbol over its previous marks)."""
        s = settings
        n_hist = int(s["history"])
        older = previous_partitions(conn, relation, date_from, n_hist + 1)
        start = older[-1] if older else date_from
        (first_date,) = conn.execute(f"SELECT min(business_date) FROM {relation}").fetchone()
        parts = [f"SELECT symbol, business_date, close::DOUBLE AS close FROM {relation} "
                 f"WHERE business_date BETWEEN DATE '{start}' AND DATE '{date_to}'"]
        if first_date is not None and first_date >= start and _exists(conn, "raw.opening_eod_prices"):
            opening_day = first_date - dt.timedelta(days=1)
            parts.append(f"SELECT symbol, DATE '{opening_day}', close::DOUBLE FROM raw.opening_eod_prices")
        marks = " UNION ALL ".join(parts)
        ca_cols = set(_relation_columns(conn, "raw.corporate_actions"))
        if {"symbol", "ex_date", "action", "ratio", "amount"} <= ca_cols:
            actions = """
                SELECT symbol, ex_date,
                       exp(sum(ln(ratio::DOUBLE)) FILTER (WHERE action = 'SPLIT' AND ratio > 0)) AS split_ratio,
                       sum(amount::DOUBLE) FILTER (WHERE action = 'CASH_DIVIDEND') AS dividend
                FROM (SELECT DISTINCT symbol, ex_date, action, ratio, amount FROM raw.corporate_actions) GROUP BY ALL
            """
        else:
            actions = "SELECT NULL::VARCHAR AS symbol, NULL::DATE AS ex_date, NULL::DOUBLE AS split_ratio, NULL::DOUBLE AS dividend WHERE FALSE"
        quotes_cte = "SELECT NULL::DATE AS business_date, NULL::VARCHAR AS symbol, NULL::DOUBLE AS bid, NULL::DOUBLE AS ask WHERE FALSE"
        if _has_quote_columns(conn) and {"copied_price", "implausible_move"} & set(s["flags"]):
            quoted_dates = [r[0] for r in conn.execute(
                f"SELECT DISTINCT business_date FROM raw.quotes WHERE business_date BETWEEN DATE '{date_from}' AND DATE '{date_to}' "
                f"AND vendor = {_sql_string(s['vendor'])}").fetchall()]
            if quoted_dates:
                sessions = Sessions(conn, quoted_dates)
                quotes_cte = last_quotes_sql(sessions, s["vendor"], 1,
                                             f"q.business_date BETWEEN DATE '{date_from}' AND DATE '{date_to}'")
        tol = math.log(1 + float(s["decimal_tolerance"]))
        query = f"""
            WITH marks AS ({marks}),
            actions AS ({actions}),
            seq AS (
                SELECT symbol, business_date, close,
                       lag(close) OVER w AS prev_close, lag(business_date) OVER w AS prev_date
                FROM marks WINDOW w AS (PARTITION BY symbol ORDER BY business_date)
            ),
            adj AS (
                SELECT s.symbol, s.business_date, any_value(s.close) AS close, any_value(s.prev_close) AS prev_close,
                       any_value(s.prev_date) AS prev_date,
                       coalesce(exp(sum(ln(a.split_ratio))), 1) AS split_ratio, coalesce(sum(a.dividend), 0) AS dividend
                FROM seq AS s LEFT JOIN actions AS a
                  ON a.symbol = s.symbol AND a.ex_date > s.prev_date AND a.ex_date <= s.business_date
                GROUP BY s.symbol, s.business_date
            ),
            ret AS (
                SELECT *, prev_close / split_ratio - dividend AS expected,
                       CASE WHEN close > 0 AND prev_close / split_ratio - dividend > 0
                            THEN ln(close / (prev_close / split_ratio - dividend)) END AS r
                FROM adj
            ),
            stats AS (
                SELECT *, median(r) OVER h AS med, mad(r) OVER h AS mad, count(r) OVER h AS n_hist,
                       list(symbol) OVER same AS same_close
                FROM ret
                WINDOW h AS (PARTITION BY symbol ORDER BY business_date ROWS BETWEEN {n_hist} PRECEDING AND 1 PRECEDING),
                       same AS (PARTITION BY business_date, close)
            ),
            scored AS (
                SELECT st.*, lq.bid AS quote_bid, lq.ask AS quote_ask,
                       CASE WHEN r IS NULL OR med IS NULL THEN NULL
                            WHEN mad > 0 THEN (r - med) / ({MAD_TO_SIGMA} * mad)
                            WHEN r = med THEN 0 ELSE sign(r - med) * 1e9 END AS z,
                       CASE WHEN r IS NULL THEN NULL ELSE round(r / {LN10}) END AS k,
                       coalesce(st.close BETWEEN lq.bid * (1 - {float(s['max_quote_bps'])} / 1e4)
                                             AND lq.ask * (1 + {float(s['max_quote_bps'])} / 1e4), FALSE) AS confirmed
                FROM stats AS st LEFT JOIN ({quotes_cte}) AS lq ON lq.symbol = st.symbol AND lq.business_date = st.business_date
                WHERE st.business_date BETWEEN DATE '{date_from}' AND DATE '{date_to}'
            )
            SELECT business_date, symbol, close, prev_date, prev_close, split_ratio, dividend, expected, r, z, n_hist,
                   list_sort(list_filter(same_close, lambda x: x <> symbol)) AS same_as,
                   CASE
                     WHEN close <= 0 THEN 'non_positive'
                     WHEN r IS NULL THEN NULL
                     WHEN len(list_filter(same_close, lambda x: x <> symbol)) > 0
                          AND abs(exp(r) - 1) >= {float(s['copied_min_move'])}
                          AND (n_hist < {int(s['min_history'])} OR abs(z) >= {float(s['copied_min_z'])})
                          AND NOT confirmed THEN 'copied_price'
                     WHEN k <> 0 AND abs(k) <= 3 AND abs(r - k * {LN10}) <= {tol} THEN 'decimal_shift'
                     WHEN abs(r) >= ln({float(s['max_ratio'])}) AND NOT confirmed THEN 'implausible_move'
                     WHEN n_hist >= {int(s['min_history'])} AND abs(z) >= {float(s['max_z'])}
                          AND abs(exp(r) - 1) >= {float(s['min_move'])} THEN 'unexplained_move'
                     WHEN n_hist < {int(s['min_history'])} AND abs(exp(r) - 1) >= {float(s['max_move'])} THEN 'unexplained_move'
                   END AS finding
            FROM scored
            ORDER BY business_date, symbol
        """
        cursor = conn.execute(query)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    @classmethod
    def judge(cls, rule, settings, day, rows: list[dict]):
        """The outcome tuple of one date from its findings."""
        flags = set(settings["flags"])
        judged = [r for r in rows if r["prev_close"] is not None or r["close"] is not None and r["close"] <= 0]
        failing = [r for r in rows if r["finding"] in flags]
        short = sum(1 for r in rows if r["r"] is not None and r["n_hist"] < int(settings["min_history"]))
        if not failing:
            note = (f"; {short} with under {settings['min_history']} days of history judged against {settings['max_move']:.0%} only"
                    if short and "unexplained_move" in flags else "")
            return (True, 0, len(judged), f"{len(judged):,} marks of {day} checked against the previous mark for "
                    f"{', '.join(f.replace('_', ' ') for f in settings['flags'])}{note}", [], {})
        items = [cls.describe(r, int(settings["min_history"])) for r in failing]
        kinds = sorted({r["finding"].replace("_", " ") for r in failing})
        if kinds == ["unexplained move"]:
            text = (f"{len(failing):,} of {len(judged):,} marks of {day} moved far more than their history with no "
                    f"corporate action to explain it: {list_for_sentence(items, 4)}")
        else:
            text = f"{len(failing):,} of {len(judged):,} marks of {day} look wrong ({', '.join(kinds)}): {list_for_sentence(items, 4)}"
        samples = [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()} for r in failing[:SAMPLE_LIMIT]]
        return False, len(failing), len(judged), text, samples, {"symbol": [r["symbol"] for r in failing]}

    @staticmethod
    def describe(r: dict, min_history: int = 20) -> str:
        close, expected = r["close"], r["expected"]
        base = f"{r['symbol']} {_num(close)}"
        if r["prev_close"] is not None:
            adjust = ""
            if r["split_ratio"] and abs(r["split_ratio"] - 1) > 1e-12:
                adjust += f" / split {r['split_ratio']:g}"
            if r["dividend"]:
                adjust += f" - dividend {_num(r['dividend'])}"
            base += f" after {_num(r['prev_close'])} on {_fmt_date(r['prev_date'])}{adjust}"
        finding = r["finding"]
        if finding == "non_positive":
            return base + " (zero or negative)"
        ratio = math.exp(r["r"]) if r["r"] is not None else None
        if finding == "decimal_shift":
            power = 10 ** abs(round(math.log10(ratio)))
            factor = f"x{power}" if ratio >= 1 else f"/{power}"
            return base + f" (x{ratio:.4g} the expected {_num(expected)}: a decimal shift, {factor})"
        move = f"{ratio - 1:+.1%}"
        if r["z"] is None or r["n_hist"] < min_history:
            z = f", only {r['n_hist']} days of history"
        else:
            z = f", {_z(r['z'])} over {r['n_hist']} days"
        if finding == "copied_price":
            return base + f" ({move}{z}; equal to the mark of {', '.join(r['same_as'])})"
        if finding == "implausible_move":
            return base + f" (x{ratio:.4g} of the expected {_num(expected)} in one day{z}, not confirmed by a quote)"
        hint = _split_hint(ratio)
        return base + f" ({move}{z}{hint})"

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        if (skip := _needs_date(ctx)) is not None:
            return skip
        settings = cls.settings(rule)
        rows = cls.findings(conn, settings, ctx.business_date, ctx.business_date, ctx.relation)
        return cls.judge(rule, settings, ctx.business_date, rows)

    @classmethod
    def evaluate_many(cls, rule, ctx, conn, dates) -> dict:
        """The outcome tuple of each of ``dates`` from one SQL statement."""
        settings = cls.settings(rule)
        dates = sorted(dates)
        if not dates:
            return {}
        rows = cls.findings(conn, settings, dates[0], dates[-1], ctx.relation)
        by_date: dict = {d: [] for d in dates}
        for row in rows:
            if row["business_date"] in by_date:
                by_date[row["business_date"]].append(row)
        return {d: cls.judge(rule, settings, d, by_date[d]) for d in dates}


_SPLIT_SHAPES = {1 / 2: "2-for-1", 1 / 3: "3-for-1", 2 / 3: "3-for-2", 1 / 4: "4-for-1", 1 / 5: "5-for-1",
                 1 / 10: "10-for-1", 2: "1-for-2 reverse", 3: "1-for-3 reverse", 4: "1-for-4 reverse", 5: "1-for-5 reverse"}


def _split_hint(ratio: float) -> str:
    """A hint, never a verdict: a move within 1% of a common split ratio may be an unrecorded split."""
    for shape, name in _SPLIT_SHAPES.items():
        if abs(math.log(ratio / shape)) <= 0.01:
            return f"; the ratio {ratio:.3f} looks like a {name} split missing from corporate_actions"
    return ""


# ----------------------------------------------------------------------------- FX


class FxCrossConsistency(_MarketRule):
    """``fx_cross_consistency: {max_bps: 5}``: every cross pair (neither side USD) equals the ratio
    of its USD legs (EURGBP = EURUSD / GBPUSD), and a USDXXX rate is the inverse of XXXUSD. A cross
    whose legs are missing cannot be verified and fails too."""

    rule_name = "fx_cross_consistency"
    defaults = {"max_bps": 5}

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        if (skip := _needs_date(ctx)) is not None:
            return skip
        max_bps = float(cls.settings(rule)["max_bps"])
        query = f"""
            WITH r AS (
                SELECT upper(pair) AS pair, upper(left(pair, 3)) AS base, upper(right(pair, 3)) AS quote, rate::DOUBLE AS rate
                FROM {ctx.relation} WHERE business_date = $business_date AND rate > 0 AND length(pair) = 6
            ),
            usd AS (SELECT base AS ccy, any_value(rate) AS rate FROM r WHERE quote = 'USD' GROUP BY 1),
            cmp AS (
                SELECT c.pair, c.rate,
                       CASE WHEN c.base = 'USD' THEN 1 / q.rate ELSE b.rate / q.rate END AS implied,
                       CASE WHEN c.base = 'USD' THEN c.quote || 'USD' ELSE c.base || 'USD, ' || c.quote || 'USD' END AS legs,
                       CASE WHEN c.base = 'USD' THEN q.rate IS NULL ELSE b.rate IS NULL OR q.rate IS NULL END AS leg_missing
                FROM r AS c LEFT JOIN usd AS b ON b.ccy = c.base LEFT JOIN usd AS q ON q.ccy = c.quote
                WHERE c.quote <> 'USD' AND c.base <> c.quote
            )
            SELECT pair, rate, implied, legs, leg_missing, abs(ln(rate / implied)) * 1e4 AS off_bps,
                   (SELECT count(*) FROM cmp) AS crosses
            FROM cmp WHERE leg_missing OR abs(ln(rate / implied)) * 1e4 > {max_bps}
            ORDER BY leg_missing DESC, off_bps DESC, pair
        """
        rows = conn.execute(query, ctx.params).fetchall()
        if not rows:
            (crosses,) = conn.execute(
                f"SELECT count(*) FROM {ctx.relation} WHERE business_date = $business_date AND upper(right(pair, 3)) <> 'USD'",
                ctx.params).fetchone()
            return True, 0, crosses, f"{crosses:,} cross/inverse rate(s) of {ctx.business_date} agree with their USD legs within {max_bps:g} bps", [], {}
        crosses = rows[0][6]
        items = [
            f"{p} has no {legs} leg to check it" if missing else
            f"{p} {_num(rate)} vs {_num(implied)} from {legs} ({off:,.1f} bps)"
            for p, rate, implied, legs, missing, off, _ in rows
        ]
        text = (f"{len(rows):,} of {crosses:,} cross/inverse rate(s) of {ctx.business_date} disagree with their USD legs "
                f"(max {max_bps:g} bps): {list_for_sentence(items)}")
        samples = [{"pair": p, "rate": rate, "implied": implied, "legs": legs, "off_bps": None if off is None else round(off, 2)}
                   for p, rate, implied, legs, missing, off, _ in rows[:SAMPLE_LIMIT]]
        return False, len(rows), crosses, text, samples, {"pair": [r[0] for r in rows]}


class FxUsdLegs(_MarketRule):
    """``fx_usd_legs: true``: every non-USD currency of the securities and of the accounts' base
    currencies has a positive XXXUSD rate that date (``from:`` lists other ``relation.column``s)."""

    rule_name = "fx_usd_legs"
    defaults = {"from": ["raw.securities.currency", "raw.accounts.base_currency"]}

    @classmethod
    def validate_settings(cls, rule, settings):
        sources = settings["from"]
        if not isinstance(sources, list) or not all(isinstance(x, str) and x.count(".") == 2 for x in sources):
            raise RuleFileError(f"{rule.source}: fx_usd_legs: from is a list of schema.table.column")

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        if (skip := _needs_date(ctx)) is not None:
            return skip
        parts = []
        for source in cls.settings(rule)["from"]:
            relation, _, column = source.rpartition(".")
            if column in _relation_columns(conn, relation):
                parts.append(f"SELECT DISTINCT upper(trim({_quote_ident(column)})) AS ccy, {_sql_string(relation.split('.')[-1])} AS used_by "
                             f"FROM {relation} WHERE {_quote_ident(column)} IS NOT NULL")
        if not parts:
            return True, 0, 0, "no securities or accounts to need an FX rate", [], {}
        query = f"""
            WITH need AS ({' UNION '.join(parts)}),
            have AS (SELECT DISTINCT upper(left(pair, 3)) AS ccy FROM {ctx.relation}
                     WHERE business_date = $business_date AND upper(right(pair, 3)) = 'USD' AND rate > 0 AND length(pair) = 6)
            SELECT ccy, list(DISTINCT used_by ORDER BY used_by) AS used_by,
                   (SELECT count(DISTINCT ccy) FROM need WHERE ccy <> 'USD') AS needed
            FROM need WHERE ccy <> 'USD' AND ccy NOT IN (SELECT ccy FROM have)
            GROUP BY ccy ORDER BY ccy
        """
        rows = conn.execute(query, ctx.params).fetchall()
        if not rows:
            (needed,) = conn.execute(f"SELECT count(DISTINCT ccy) FROM ({' UNION '.join(parts)}) WHERE ccy <> 'USD'").fetchone()
            return True, 0, needed, f"all {needed:,} non-USD currencies have an XXXUSD rate on {ctx.business_date}", [], {}
        needed = rows[0][2]
        items = [f"{c}USD (for {', '.join(u)})" for c, u, _ in rows]
        text = f"{len(rows):,} of {needed:,} non-USD currencies have no rate to USD on {ctx.business_date}: {list_for_sentence(items)}"
        return (False, len(rows), needed, text, [{"currency": c, "used_by": u} for c, u, _ in rows[:SAMPLE_LIMIT]],
                {"currency": [r[0] for r in rows]})


class FxMove(_MarketRule):
    """``fx_move: {max_move: 5%, max_z: 10, history: 60, min_history: 20}``: each rate against the
    same pair's rate on the previous date (``raw.opening_fx_rates`` before the first date): flagged
    when it moved more than ``max_move`` AND more than ``max_z`` robust sigmas of the pair's previous
    daily log changes (only ``max_move`` with less than ``min_history`` of them). Catches a wrong
    or inverted rate; in G10 currencies a real move that large is a once-in-years event."""

    rule_name = "fx_move"
    defaults = {"max_move": 0.05, "max_z": 10, "history": 60, "min_history": 20}
    percents = ("max_move",)
    reads = ("opening_fx_rates",)

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        if (skip := _needs_date(ctx)) is not None:
            return skip
        s = cls.settings(rule)
        day = ctx.business_date
        n_hist = int(s["history"])
        older = previous_partitions(conn, ctx.relation, day, n_hist + 1)
        start = older[-1] if older else day
        parts = [f"SELECT upper(pair) AS pair, business_date, rate::DOUBLE AS rate FROM {ctx.relation} "
                 f"WHERE business_date BETWEEN DATE '{start}' AND DATE '{day}' AND rate > 0"]
        (first_date,) = conn.execute(f"SELECT min(business_date) FROM {ctx.relation}").fetchone()
        if first_date is not None and first_date >= start and _exists(conn, "raw.opening_fx_rates"):
            parts.append(f"SELECT upper(pair), DATE '{first_date - dt.timedelta(days=1)}', rate::DOUBLE "
                         f"FROM raw.opening_fx_rates WHERE rate > 0")
        query = f"""
            WITH r AS ({' UNION ALL '.join(parts)}),
            seq AS (
                SELECT pair, business_date, rate, lag(rate) OVER w AS prev_rate, lag(business_date) OVER w AS prev_date,
                       ln(rate / lag(rate) OVER w) AS ret
                FROM r WINDOW w AS (PARTITION BY pair ORDER BY business_date)
            ),
            stats AS (
                SELECT *, median(ret) OVER h AS med, mad(ret) OVER h AS mad, count(ret) OVER h AS n_hist
                FROM seq WINDOW h AS (PARTITION BY pair ORDER BY business_date ROWS BETWEEN {n_hist} PRECEDING AND 1 PRECEDING)
            ),
            judged AS (
                SELECT *, CASE WHEN med IS NULL THEN NULL WHEN mad > 0 THEN (ret - med) / ({MAD_TO_SIGMA} * mad)
                               WHEN ret = med THEN 0 ELSE sign(ret - med) * 1e9 END AS z
                FROM stats WHERE business_date = $business_date AND ret IS NOT NULL
            )
            SELECT pair, rate, prev_rate, prev_date, exp(ret) - 1 AS move, z, n_hist, (SELECT count(*) FROM judged) AS judged
            FROM judged
            WHERE abs(exp(ret) - 1) >= {float(s['max_move'])}
              AND (n_hist < {int(s['min_history'])} OR abs(z) >= {float(s['max_z'])})
            ORDER BY abs(ret) DESC, pair
        """
        rows = conn.execute(query, ctx.params).fetchall()
        if not rows:
            (judged,) = conn.execute(f"SELECT count(*) FROM {ctx.relation} WHERE business_date = $business_date", ctx.params).fetchone()
            return (True, 0, judged, f"no rate of {day} moved more than {s['max_move']:.0%} and {s['max_z']:g} robust sigmas "
                    f"from the previous date", [], {})
        judged = rows[0][7]
        items = [f"{p} {_num(rate)} after {_num(prev)} on {_fmt_date(pd)} ({move:+.1%}"
                 + (f", {_z(z)})" if z is not None and n >= int(s["min_history"]) else f", {n} days of history)")
                 for p, rate, prev, pd, move, z, n, _ in rows]
        text = f"{len(rows):,} of {judged:,} rates of {day} moved implausibly: {list_for_sentence(items)}"
        samples = [{"pair": p, "rate": rate, "previous_rate": prev, "previous_date": pd, "move": round(move, 6),
                    "z": None if z is None else round(_zf(z), 2), "history_days": n} for p, rate, prev, pd, move, z, n, _ in rows]
        return False, len(rows), judged, text, samples[:SAMPLE_LIMIT], {"pair": [r[0] for r in rows]}


# ----------------------------------------------------------------------------- statistics from history


def _robust_stats(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    n = len(ordered)
    median = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2
    deviations = sorted(abs(v - median) for v in ordered)
    mad = (deviations[(n - 1) // 2] + deviations[n // 2]) / 2
    return median, MAD_TO_SIGMA * mad


class RowVolume(_MarketRule):
    """``row_volume: {history: 20, min_history: 5, max_z: 6, min_factor: 2}``: the partition's row
    count against the previous ``history`` partitions of the table: flagged when its log count is
    more than ``max_z`` robust sigmas (MAD) from the median AND at least ``min_factor`` times above
    or below it. Too little history passes with a note."""

    rule_name = "row_volume"
    defaults = {"history": 20, "min_history": 5, "max_z": 6, "min_factor": 2, "lookback_days": 0}

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        if (skip := _needs_date(ctx)) is not None:
            return skip
        s = cls.settings(rule)
        lookback = cls._lookback(s)
        rows = conn.execute(
            f"SELECT business_date, count(*) FROM {ctx.relation} WHERE business_date <= $business_date "
            f"AND business_date >= $business_date - INTERVAL {lookback} DAY GROUP BY 1 ORDER BY 1 DESC",
            ctx.params).fetchall()
        return cls._judge(s, ctx, rows)

    @staticmethod
    def _lookback(s) -> int:
        return int(s["lookback_days"]) or int(s["history"]) * 3 + 14

    @classmethod
    def evaluate_many(cls, rule, ctx, conn, dates):
        """Row counts of every date and its history in one query, then judged date by date."""
        s = cls.settings(rule)
        lookback = cls._lookback(s)
        counts = conn.execute(
            f"SELECT business_date, count(*) FROM {ctx.relation} WHERE business_date <= ? "
            f"AND business_date >= ? - INTERVAL {lookback} DAY GROUP BY 1 ORDER BY 1 DESC",
            [max(dates), min(dates)]).fetchall()
        counts.sort()
        days = [d for d, _ in counts]
        keep = int(s["history"]) + 1
        out = {}
        for day in dates:
            end = bisect.bisect_right(days, day)
            window = [(d, n) for d, n in reversed(counts[max(0, end - keep):end]) if (day - d).days <= lookback]
            out[day] = cls._judge(s, dataclasses.replace(ctx, business_date=day), window)
        return out

    @classmethod
    def _judge(cls, s, ctx, rows):
        lookback = cls._lookback(s)
        today = next((n for d, n in rows if d == ctx.business_date), 0)
        history = [n for d, n in rows if d != ctx.business_date][: int(s["history"])]
        if len(history) < int(s["min_history"]):
            return (True, 0, today, f"{today:,} {ctx.describe_rows()}; only {len(history)} earlier partition(s) in the "
                    f"last {lookback} days, {s['min_history']} needed to judge the volume", [], {})
        median, sigma = _robust_stats([math.log(n + 1) for n in history])
        z = (math.log(today + 1) - median) / sigma if sigma > 0 else (0.0 if math.log(today + 1) == median else math.inf)
        typical = math.exp(median) - 1
        factor = (today + 1) / (typical + 1)
        z = max(min(z, 1e9), -1e9)
        out = abs(z) >= float(s["max_z"]) and (factor >= float(s["min_factor"]) or factor <= 1 / float(s["min_factor"]))
        where = f"{today:,} {ctx.describe_rows()} against a median of {typical:,.0f} over the previous {len(history)} partitions"
        if not out:
            return True, 0, today, where + f" ({_z(z)}, x{factor:.2f})", [], {}
        text = f"{where}: x{factor:.2f}, {_z(z)} (limits {s['max_z']:g} robust sigma and x{s['min_factor']:g})"
        return False, 1, today, text, [{"rows": today, "median": typical, "z": z, "factor": factor}], {}


class QuoteVolumePerSymbol(_MarketRule):
    """``quote_volume_per_symbol: {history: 10, min_history: 5, max_z: 6, min_factor: 5}``: each
    symbol/vendor feed's quote count against its own counts on the previous ``history`` partitions
    (log counts, median and MAD). Feeds with fewer than ``min_history`` earlier days are not judged;
    a feed absent today is ``every_security_quoted``'s business."""

    rule_name = "quote_volume_per_symbol"
    defaults = {"history": 10, "min_history": 5, "max_z": 6, "min_factor": 5, "lookback_days": 0}

    @classmethod
    def evaluate(cls, rule, ctx, conn):
        if (skip := _needs_date(ctx)) is not None:
            return skip
        s = cls.settings(rule)
        lookback = int(s["lookback_days"]) or int(s["history"]) * 3 + 14
        dates = [r[0] for r in conn.execute(
            f"SELECT DISTINCT business_date FROM {ctx.relation} WHERE business_date < $business_date "
            f"AND business_date >= $business_date - INTERVAL {lookback} DAY ORDER BY 1 DESC LIMIT {int(s['history'])}",
            ctx.params).fetchall()]
        feeds = _feeds(ctx)
        (today_feeds,) = conn.execute(f"SELECT count(*) FROM {feeds}", ctx.params).fetchone()
        if len(dates) < int(s["min_history"]):
            return (True, 0, today_feeds, f"{today_feeds:,} symbol/vendor feeds on {ctx.business_date}; only {len(dates)} "
                    f"earlier partition(s), {s['min_history']} needed to judge quote volumes", [], {})
        # The history dates are the partitions just before this one: a range, which DuckDB prunes
        # by its zone maps (an IN-list is read slower).
        query = f"""
            WITH c AS (
                SELECT business_date, vendor, symbol, ln(count(*) + 1) AS lc, count(*) AS n
                FROM {ctx.relation} WHERE business_date >= DATE '{min(dates)}' AND business_date < $business_date GROUP BY ALL
                UNION ALL
                SELECT $business_date::DATE, vendor, symbol, ln(quotes + 1), quotes FROM {feeds}
            ),
            h AS (
                SELECT vendor, symbol, median(lc) AS med, {MAD_TO_SIGMA} * mad(lc) AS sigma, count(*) AS days,
                       median(n) AS typical
                FROM c WHERE business_date <> $business_date GROUP BY ALL
            ),
            j AS (
                SELECT t.vendor, t.symbol, t.n, h.typical, h.days,
                       CASE WHEN h.sigma > 0 THEN (t.lc - h.med) / h.sigma WHEN t.lc = h.med THEN 0 ELSE sign(t.lc - h.med) * 1e9 END AS z,
                       exp(t.lc - h.med) AS factor
                FROM c AS t JOIN h USING (vendor, symbol)
                WHERE t.business_date = $business_date AND h.days >= {int(s['min_history'])}
            )
            SELECT vendor, symbol, n, typical, days, z, factor, (SELECT count(*) FROM j) AS judged FROM j
            WHERE abs(z) >= {float(s['max_z'])} AND (factor >= {float(s['min_factor'])} OR factor <= 1.0 / {float(s['min_factor'])})
            ORDER BY abs(ln(factor)) DESC, symbol, vendor
        """
        rows = conn.execute(query, ctx.params).fetchall()
        if not rows:
            return (True, 0, today_feeds, f"quote counts of {today_feeds:,} symbol/vendor feeds on {ctx.business_date} are "
                    f"within x{s['min_factor']:g} or {s['max_z']:g} robust sigmas of their last {len(dates)} partitions", [], {})
        judged = rows[0][7]
        items = [f"{sym}/{v} {n:,} quotes vs a median of {typ:,.0f} (x{f:.2f}, {_z(z)})" for v, sym, n, typ, d, z, f, _ in rows]
        text = (f"{len(rows):,} of {judged:,} symbol/vendor feeds on {ctx.business_date} have an unusual number of quotes: "
                f"{list_for_sentence(items)}")
        samples = [{"vendor": v, "symbol": sym, "quotes": n, "median_quotes": typ, "history_days": d, "z": round(_zf(z), 2),
                    "factor": round(f, 3)} for v, sym, n, typ, d, z, f, _ in rows[:SAMPLE_LIMIT]]
        return False, len(rows), judged, text, samples, {"symbol": sorted({r[1] for r in rows}), "vendor": sorted({r[0] for r in rows})}


def _zf(z: float) -> float:
    return max(min(z, 1e9), -1e9)


def _z(z: float) -> str:
    return "no variation in history" if abs(z) >= 1e8 else f"{z:+.1f} sigma"


MARKET_RULE_TYPES: dict[str, type[RuleType]] = {
    "stale_feed": StaleFeed,
    "every_security_quoted": EverySecurityQuoted,
    "vendor_agreement": VendorAgreement,
    "price_spike": PriceSpike,
    "eod_matches_last_quote": EodMatchesLastQuote,
    "price_move": PriceMove,
    "fx_cross_consistency": FxCrossConsistency,
    "fx_usd_legs": FxUsdLegs,
    "fx_move": FxMove,
    "every_security_marked": EverySecurityMarked,
    "row_volume": RowVolume,
    "quote_volume_per_symbol": QuoteVolumePerSymbol,
}
