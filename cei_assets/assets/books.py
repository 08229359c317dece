"""The dbt models (staging and the books) as Dagster assets, built one trading date at a time."""


import datetime as dt
import fcntl
import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from asset_checks.gating import enforce_upstream_gate
from cei_assets import ownership, settings
from cei_assets.resources import LandingZoneResource, WarehouseResource
from cei_assets.trading_calendar import previous_trading_day, trading_day_partitions

dbt_project = DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR)


def dbt_executable() -> str:
    return str(Path(sys.executable).with_name("dbt"))


class LocalDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource without its one network call.

    Before each run dagster-dbt asks ``dbt --version`` which dbt it drives, and ``dbt --version``
    asks pypi.org for the latest release (tests/test_no_egress.py caught it). CEI's dbt is the
    dbt-core installed next to this interpreter (``dbt_executable()``), so its version is read
    from the installed package instead.
    """

    @functools.cached_property
    def _cli_version(self):
        from importlib.metadata import version as installed_version

        from packaging import version

        return version.parse(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        # dagster-dbt loads dbt's project and profile in this process and registers an adapter
        # before every build, only to fetch row counts or column metadata afterwards, which CEI
        # does not ask for (its checks count rows themselves): 0.3-1 s of every daily run saved.
        return None


def ensure_dbt_manifest(project: DbtProject = dbt_project) -> Path:
    """Parse the dbt project when its manifest is missing or older than its sources.

    A fresh clone has no manifest; `dagster dev` would build it, but `cei run`, the daemon and
    the tests load the definitions without it, so CEI parses on demand (about two seconds).
    Processes that start together (the daemon, the webserver and a run; parallel test workers)
    parse one at a time, and each manifest appears whole: dbt writes into a folder of its own and
    the files are moved into place.
    """
    manifest = Path(project.manifest_path)
    if _manifest_is_current(project, manifest):
        return manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest.parent / ".cei-parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _manifest_is_current(project, manifest):  # another process parsed meanwhile
            return manifest
        env = {**os.environ, "CEI_WAREHOUSE": str(settings.warehouse_path())}
        env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        with tempfile.TemporaryDirectory(dir=manifest.parent, prefix=".parse-") as parsed:
            completed = subprocess.run(
                [dbt_executable(), "parse", "--quiet", "--project-dir", str(project.project_dir),
                 "--profiles-dir", str(project.profiles_dir), "--target-path", parsed],
                env=env, capture_output=True, text=True, check=False,
            )
            fresh = Path(parsed) / manifest.name
            if completed.returncode != 0 or not fresh.exists():
                raise RuntimeError(f"dbt could not parse {project.project_dir}:\n{completed.stdout}\n{completed.stderr}")
            # dagster-dbt starts each build from the saved parse state next to the manifest.
            for name in ("partial_parse.msgpack", "semantic_manifest.json"):
                if (Path(parsed) / name).exists():
                    os.replace(Path(parsed) / name, manifest.parent / name)
            os.replace(fresh, manifest)
    return manifest


def _manifest_is_current(project: DbtProject, manifest: Path) -> bool:
    sources = [
        p for folder in ("models", "macros", "tests") for p in (project.project_dir / folder).rglob("*") if p.is_file()
    ] + [project.project_dir / "dbt_project.yml", project.project_dir / "profiles.yml"]
    newest = max(p.stat().st_mtime for p in sources)
    return manifest.exists() and manifest.stat().st_mtime >= newest


class BooksTranslator(DagsterDbtTranslator):
    """Model names as asset keys; sources map to the landing assets (see models/sources.yml)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey([dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        return "staging" if "staging" in fqn else "books"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        owner = ownership.owner_of(dbt_resource_props["name"])
        return [owner] if owner else None

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**super().get_metadata(dbt_resource_props), **ownership.metadata_of(dbt_resource_props["name"])}


def dbt_vars_for(business_date: dt.date, first_date: dt.date) -> dict[str, Any]:
    import yaml

    return {
        "business_date": business_date.isoformat(),
        "previous_date": previous_trading_day(business_date).isoformat(),
        "first_date": first_date.isoformat(),
        # Tolerances and blocking choices of the reconciliation; dbt validates them (recon_rules).
        "reconciliation": yaml.safe_load((settings.PROJECT_ROOT / "asset_checks" / "reconciliation.yaml").read_text()),
    }


def _previous_books_present(warehouse: WarehouseResource, previous_date: dt.date) -> bool:
    # Cash rows are carried forward for every account every day, so they mark a built date
    # even when the fund holds no positions.
    with warehouse.read() as conn:
        exists = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'books' AND table_name = 'cash_balances'"
        ).fetchone()[0]
        if not exists:
            return False
        return conn.execute(
            "SELECT count(*) > 0 FROM books.cash_balances WHERE business_date = ?", [previous_date]
        ).fetchone()[0]


# Schemas of the per-date incremental models (see macros/partition.sql).
_DATED_SCHEMAS = ("books", "reconciliation")


def _clear_selected_books(context: dg.AssetExecutionContext, warehouse: WarehouseResource, business_date: dt.date) -> None:
    """Remove the date's rows of every selected book before dbt rebuilds them.

    Each model also clears its date in a pre-hook, but dbt skips a model whose upstream test
    failed, and the pre-hook with it: without this, a rerun that a blocking check now stops
    would leave the previous run's P&L in place as if it were still good. Fail closed.
    """
    selected = {key.path[-1] for key in context.selected_asset_keys if len(key.path) == 1}
    with warehouse.write() as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.columns "
            "WHERE column_name = 'business_date' AND table_schema IN (SELECT unnest(?)) "
            "AND table_name IN (SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE')",
            [list(_DATED_SCHEMAS)],
        ).fetchall()
        for schema, table in tables:
            if table in selected:
                conn.execute(f'DELETE FROM "{schema}"."{table}" WHERE business_date = ?', [business_date])


@dbt_assets(
    manifest=ensure_dbt_manifest(),
    project=dbt_project,
    partitions_def=trading_day_partitions(),
    dagster_dbt_translator=BooksTranslator(),
)
def books_dbt_assets(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    landing: LandingZoneResource,
):
    business_date = dt.date.fromisoformat(context.partition_key)
    enforce_upstream_gate(context)
    first_date = landing.first_date()
    if first_date is None:
        raise dg.Failure(f"the landing root {landing.path} holds no trading-date folders")
    if business_date < first_date:
        raise dg.Failure(
            f"{business_date} is before the landing root's first date {first_date}: there are no books to roll from"
        )
    dbt_vars = dbt_vars_for(business_date, first_date)
    if business_date != first_date and not _previous_books_present(warehouse, dt.date.fromisoformat(dbt_vars["previous_date"])):
        raise dg.Failure(
            f"the books for {dbt_vars['previous_date']} are not in the warehouse; the books roll forward one "
            f"trading date at a time from {first_date}: run `cei run --date {dbt_vars['previous_date']}` first"
        )
    # dbt runs in its own process: point its profile at this warehouse (the duckdb or the
    # postgres target, see dbt_project/profiles.yml) and hold the warehouse exclusively meanwhile.
    os.environ.update(warehouse.dbt_environment())
    with warehouse.lock(exclusive=True):
        _clear_selected_books(context, warehouse, business_date)
        yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream()
