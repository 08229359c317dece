"""`cei run --queue`: the daily job submitted to the instance's run coordinator, as the UI and
the schedule submit it, instead of executed in the calling process.

On the production profile the coordinator is Dagster's QueuedRunCoordinator: the run waits in
the queue (at most ``CEI_MAX_CONCURRENT_RUNS`` at once) until dagster-daemon launches it from
its own code server. Submission follows ``dagster job launch``: the code location is loaded
from the project's workspace.yaml, the run is created from the remote job and submitted. The
caller then follows the run in the instance until it ends.

A queue nobody serves would keep a run queued forever. When a run has stayed queued longer
than the wait allowed and dagster-daemon's queue has not reported a heartbeat recently, the
caller is told the daemon is not running rather than left waiting.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import dagster as dg

from cei_assets import settings
from cei_assets.jobs import DAILY_JOB

WORKSPACE_FILE = settings.PROJECT_ROOT / "workspace.yaml"
LOCATION = "cei"  # workspace.yaml's location_name
QUEUE_DAEMON = "QUEUED_RUN_COORDINATOR"
# The daemon heartbeats every 30 s; two missed beats and some slack mean it is not running.
HEARTBEAT_STALE_SECONDS = 90.0
POLL_SECONDS = 1.0

TERMINAL = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


class DaemonNotRunning(RuntimeError):
    """The run waited in the queue and no dagster-daemon serves it."""


class CodeLocationNotLoaded(RuntimeError):
    """The code location failed to load (a module that does not import, definitions that raise),
    so no run was created. ``cause`` is the error in one line, ``details`` the full report."""

    def __init__(self, cause: str, details: str):
        super().__init__(cause)
        self.cause = cause
        self.details = details


def _load_failure(error) -> CodeLocationNotLoaded:
    """The first line of what made the location fail, from Dagster's report of the code server's
    error (a user error wrapped in DagsterUserCodeLoadError, or the server's own)."""
    report = error.load_error_infos[0] if error.load_error_infos else None
    if report is None:
        return CodeLocationNotLoaded(str(error).splitlines()[0], str(error))
    raised = report.cause or report  # the module's own exception, under DagsterUserCodeLoadError
    lines = [line.strip() for line in raised.message.splitlines() if line.strip()]
    # Python's summary "ValueError: ..."; a SyntaxError's comes after the file, line and source it names.
    headline = next((line for line in lines if line.split(":")[0].endswith(raised.cls_name)),
                    lines[0] if lines else raised.cls_name)
    where = re.match(r'File "(.+)", line (\d+)', lines[0]) if lines else None
    if where and headline != lines[0]:
        headline += f" ({where[1]}, line {where[2]})"
    return CodeLocationNotLoaded(headline, report.to_string())


@dataclass(frozen=True)
class Submitted:
    run_id: str
    status: dg.DagsterRunStatus  # QUEUED on the production profile


@contextlib.contextmanager
def submit_daily_run(instance: dg.DagsterInstance, tags: dict[str, str], landing_root: str,
                     asset_selection: Iterable[dg.AssetKey] | None = None) -> Iterator[Submitted]:
    """Create the daily job's run from the code location and submit it; yield while it is followed.

    The landing root goes with the run (resource config): the daemon that launches it may have
    another ``CEI_LANDING_DIR``, and the run must read the files the operator named.

    The workspace (a code server process) stays open until the caller is done: where the
    coordinator launches at once (the embedded profile), the run is started by that server.
    Raises ``CodeLocationNotLoaded`` when the code location does not load.
    """
    from dagster import __version__
    from dagster._core.definitions.selector import JobSubsetSelector
    from dagster._core.errors import DagsterCodeLocationLoadError
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    run_config = {"resources": {"landing": {"config": {"root": landing_root}}}}
    target = WorkspaceFileTarget(paths=[str(WORKSPACE_FILE)])
    with WorkspaceProcessContext(instance, target, version=__version__) as process_context:
        workspace = process_context.create_request_context()
        try:
            location = workspace.get_code_location(LOCATION)
        except DagsterCodeLocationLoadError as error:
            raise _load_failure(error) from None
        (repository,) = location.get_repositories().values()
        selected = frozenset(asset_selection) if asset_selection else None
        remote_job = location.get_job(JobSubsetSelector(
            location_name=location.name, repository_name=repository.name, job_name=DAILY_JOB,
            op_selection=None, asset_selection=selected,
        ))
        plan = location.get_execution_plan(remote_job, run_config, step_keys_to_execute=None, known_state=None,
                                           instance=instance)
        run = instance.create_run(
            job_name=DAILY_JOB, run_id=None, run_config=run_config, status=None,
            tags={**remote_job.tags, **tags},
            op_selection=None, resolved_op_selection=None,
            asset_selection=selected, asset_check_selection=None,
            step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute,
            root_run_id=None, parent_run_id=None,
            job_snapshot=remote_job.job_snapshot, execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(), job_code_origin=remote_job.get_python_origin(),
            asset_graph=repository.asset_graph,
        )
        submitted = instance.submit_run(run.run_id, workspace)
        yield Submitted(submitted.run_id, submitted.status)


def queue_daemon_alive(instance: dg.DagsterInstance, now: float | None = None) -> bool:
    """Whether dagster-daemon's run queue reported a heartbeat lately (it writes one every 30 s)."""
    beat = instance.get_daemon_heartbeats().get(QUEUE_DAEMON)
    return beat is not None and (now or time.time()) - beat.timestamp <= HEARTBEAT_STALE_SECONDS


def wait_for_run(instance: dg.DagsterInstance, run_id: str, wait_timeout: float) -> dg.DagsterRunStatus:
    """The run's final status; DaemonNotRunning when it stayed queued past ``wait_timeout`` seconds
    with no live daemon (a daemon that is up but busy with other runs is waited for)."""
    queued_since = time.monotonic()
    while True:
        run = instance.get_run_by_id(run_id)
        if run.status in TERMINAL:
            return run.status
        if run.status == dg.DagsterRunStatus.QUEUED:
            if time.monotonic() - queued_since > wait_timeout and not queue_daemon_alive(instance):
                raise DaemonNotRunning(run_id)
        else:
            queued_since = time.monotonic()
        time.sleep(POLL_SECONDS)
