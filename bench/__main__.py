"""Every benchmark, one command: ``.venv/bin/python -m bench [--quick] [--only NAME,...] [--out FILE]``.

Runs the benchmarks one after the other (they measure, so they must not compete with each
other). Each rewrites its own section of ``docs/benchmarks.md`` and its plot, and compares
against its baseline in the same run; this command adds the index at the top of the file and
prints a summary. A benchmark that fails is reported and the others still run; the exit code
is 1 when any failed or missed its target.

The full run takes about half an hour on the 2-core machine the figures come from (the detection
quality over the whole fault catalogue is half of it); ``--quick`` runs every benchmark at a
small size in a few minutes, to see that they work, not to quote.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

from bench.report import machine_info

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks.md"
INDEX_START, INDEX_END = "<!-- index:start -->", "<!-- index:end -->"

# (module, what it answers, arguments of the full run, arguments of --quick)
BENCHMARKS = [
    ("validation", "the quotes rules at 1, 3 and 10 million quotes: CEI against Great Expectations and pandera",
     [], ["--sizes", "200000", "--repeat", "1", "--quiet-wait", "0"]),
    ("validation_executions", "the trade rules at 100 thousand to 1 million fills, against the same baselines",
     [], ["--sizes", "20000", "--repeat", "1", "--quiet-wait", "0"]),
    ("daily_graph", "the daily graph end to end per stage, from Dagster's step timings", [], ["--quick"]),
    ("platform_scale", "Definitions load and the incident sensor's tick at 100 to 10,000 checks, SQLite and PostgreSQL",
     [], ["--quick"]),
    ("incident_writing", "time and tokens per incident report: LLM path against the template", [], ["--quick"]),
    ("detection_latency", "failed check to stored incident to Slack, the sensor in a real daemon", [], ["--quick"]),
    ("detection_quality", "every catalogue fault on several seeds, clean days and the real series: recall, precision",
     [], ["--quick"]),
]


def _outcome(result) -> tuple[bool, str]:
    """(ok, short figures) from what a benchmark's main() returned: an exit code or a summary."""
    if isinstance(result, int):
        return result == 0, "" if result == 0 else f"exit code {result} (a target missed or engines disagreed)"
    if isinstance(result, dict):
        figures = {k: v for k, v in result.items() if isinstance(v, (int, float, str, bool)) and k != "out"}
        ok = not result.get("missed_faults") and not result.get("blocking_false_alarms")
        return ok, json.dumps(figures, default=str)[:400]
    return True, ""


def write_index(out: Path, rows: list[dict], command: str, machine: dict) -> None:
    lines = [
        INDEX_START,
        "Every section below is written by its own benchmark; `" + command + "` runs them all in turn "
        "(about half an hour here; `--quick` in minutes, at sizes not worth quoting) and rewrites this index. "
        "Each compares against its baseline in the same run; absolute times hold for the machine stated "
        "in each section.",
        "",
        f"Last run of this command: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine.get('cpu', '?')}, "
        f"{machine.get('nproc', '?')} cores.",
        "",
        "| benchmark | what it answers | this run | wall s |",
        "| --- | --- | --- | ---: |",
    ]
    for row in rows:
        lines.append(f"| `bench.{row['name']}` | {row['what']} | {'ok' if row['ok'] else '**' + row['note'] + '**'} "
                     f"| {row['seconds']:.0f} |")
    lines.append(INDEX_END)
    index = "\n".join(lines)
    text = out.read_text(encoding="utf-8") if out.is_file() else "# Benchmarks\n"
    if INDEX_START in text and INDEX_END in text:
        text = text[:text.index(INDEX_START)] + index + text[text.index(INDEX_END) + len(INDEX_END):]
    else:  # right under the title
        head, _, rest = text.partition("\n")
        text = f"{head}\n\n{index}\n{rest}"
    out.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark at a small size (minutes)")
    parser.add_argument("--only", default=None, help="comma-separated benchmark names: " +
                        ", ".join(name for name, *_ in BENCHMARKS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the markdown file the sections are written to")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHMARKS if args.only is None or b[0] in args.only.split(",")]
    unknown = set((args.only or "").split(",")) - {b[0] for b in BENCHMARKS} - {""}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

    rows = []
    for number, (name, what, full_args, quick_args) in enumerate(chosen, 1):
        print(f"\n=== [{number}/{len(chosen)}] bench.{name}: {what}", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            # The default file is each benchmark's own default too: left out, the command its
            # section quotes is the one to type, without this machine's paths.
            out_args = [] if args.out.resolve() == DEFAULT_OUT.resolve() else ["--out", str(args.out)]
            ok, note = _outcome(module.main([*(quick_args if args.quick else full_args), *out_args]))
        except SystemExit as stop:  # argparse or a sys.exit inside a benchmark
            ok, note = stop.code in (0, None), f"exited with {stop.code}"
        except Exception as error:  # noqa: BLE001 - report it, run the others
            traceback.print_exc()
            ok, note = False, f"failed: {type(error).__name__}: {error}"[:200]
        rows.append({"name": name, "what": what, "ok": ok, "note": note, "seconds": time.perf_counter() - started})

    command = ".venv/bin/python -m bench" + (" " + " ".join(argv) if argv else "")
    write_index(args.out, rows, command, machine_info())
    print("\n=== summary")
    for row in rows:
        print(f"  {'ok    ' if row['ok'] else 'FAILED'} bench.{row['name']:<22} {row['seconds']:7.0f} s  {row['note']}")
    print(f"report: {args.out}")
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
