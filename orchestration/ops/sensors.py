"""Sensors: start the pipeline when landing files arrive; alert when a run fails.

The decisions are plain Python (:mod:`crm_warehouse.landing_watch`,
:mod:`crm_warehouse.alerts`); this module reads Dagster's cursor and event log and
hands back run requests and alerts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg

from crm_warehouse.alerts import Alert, send_alert
from crm_warehouse.landing_watch import LandingCursor, decide, list_paths, scan_landing, systems_of
from crm_warehouse.preflight import landing_problems
from crm_warehouse.settings import Settings
from orchestration.ops.schedules import JobRef, job_target

LANDING_SENSOR = "landing_files_sensor"
FAILURE_SENSOR = "run_failure_alert"
# How often the daemon looks at the landing folder: a file is picked up between the
# settle time and the settle time plus two of these intervals after its last change.
LANDING_SENSOR_INTERVAL_SECONDS = 30
# Where `make dev` serves the UI; alerts link to the failed run there.
DAGSTER_UI_URL = "http://127.0.0.1:3000"
LANDING_FILES_TAG = "crm/landing_files"
LANDING_SYSTEMS_TAG = "crm/landing_systems"

# The events of a failed run an alert is built from.
_ALERT_EVENTS = (
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
)
# "duckdb.duckdb.IOException: ..." reads as "IOException: ...".
_MODULE_PREFIX = re.compile(r"^(?:[A-Za-z_][\w]*\.)+(?=\w+: )")


def build_landing_sensor(
    job: JobRef, settings: Settings, clock: Callable[[], float] = time.time
) -> dg.SensorDefinition:
    """Sensor requesting a run of ``job`` when new landing files are complete.

    ``clock`` gives the current time in epoch seconds; tests pass their own. Starts
    stopped: turn it on in the UI or with ``dagster sensor start landing_files_sensor``.
    """

    @dg.sensor(
        name=LANDING_SENSOR,
        minimum_interval_seconds=LANDING_SENSOR_INTERVAL_SECONDS,
        description=(
            f"Starts the pipeline when new or re-delivered files in {settings.landing_dir} are complete: "
            f"unchanged for {settings.landing_settle_seconds} s (CRM_LANDING_SETTLE_SECONDS) or "
            "covered by a newer _SUCCESS marker in their folder. Each file version triggers once."
        ),
        **job_target(job),
    )
    def landing_files_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        if not settings.landing_dir.is_dir():
            return dg.SensorResult(skip_reason=landing_problems(settings.landing_dir)[0])
        cursor = LandingCursor.from_json(context.cursor)
        decision = decide(scan_landing(settings.landing_dir), cursor, clock(), settings.landing_settle_seconds)
        if not decision.to_run:
            return dg.SensorResult(skip_reason=decision.explain(), cursor=decision.cursor.to_json())
        files = decision.to_run
        context.log.info(f"{len(files)} new landing file(s) complete: {list_paths(files)}")
        request = dg.RunRequest(
            run_key=decision.run_key,
            tags={LANDING_FILES_TAG: str(len(files)), LANDING_SYSTEMS_TAG: ",".join(systems_of(files))},
        )
        return dg.SensorResult(run_requests=[request], cursor=decision.cursor.to_json())

    return landing_files_sensor


def _error_text(event: dg.DagsterEvent) -> str:
    """The user-facing message of a step or run failure, without Dagster's wrapper."""
    data = event.event_specific_data
    user_failure = getattr(data, "user_failure_data", None)
    if user_failure is not None and user_failure.description:
        return user_failure.description
    error = getattr(data, "error", None)
    if error is None:
        return event.message or "no error message recorded"
    while error.cause is not None:
        error = error.cause
    return _MODULE_PREFIX.sub("", error.message.strip())


def _check_label(evaluation: dg.AssetCheckEvaluation) -> str:
    warn = "" if evaluation.severity == dg.AssetCheckSeverity.ERROR else " (warn)"
    return f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}{warn}"


def failed_run_alert(instance: dg.DagsterInstance, run: dg.DagsterRun, ui_url: str = DAGSTER_UI_URL) -> Alert:
    """Build the alert for failed ``run`` from its event log.

    Failed assets are those planned in a failed step and not materialised (for dbt,
    the models the failed build did not reach); failed checks are every check
    evaluation that did not pass, warnings marked ``(warn)``.
    """
    events: dict[dg.DagsterEventType, list[tuple[float, dg.DagsterEvent]]] = {t: [] for t in _ALERT_EVENTS}
    for record in instance.get_records_for_run(run.run_id, of_type=set(_ALERT_EVENTS)).records:
        entry = record.event_log_entry
        if entry.dagster_event is not None:
            events[entry.dagster_event.event_type].append((entry.timestamp, entry.dagster_event))
    step_failures = [e for _, e in events[dg.DagsterEventType.STEP_FAILURE]]
    failed_steps = tuple(dict.fromkeys(e.step_key for e in step_failures if e.step_key))
    planned = {e.asset_key: e.step_key for _, e in events[dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED]}
    done = {e.asset_key for _, e in events[dg.DagsterEventType.ASSET_MATERIALIZATION]}
    missing = sorted((k for k in planned if k not in done), key=lambda k: k.to_user_string())
    checks = [e.event_specific_data for _, e in events[dg.DagsterEventType.ASSET_CHECK_EVALUATION]]
    run_failures = events[dg.DagsterEventType.RUN_FAILURE]
    if step_failures:
        error = "\n".join(f"{e.step_key}: {_error_text(e)}" for e in step_failures)
    elif run_failures:
        error = _error_text(run_failures[-1][1])
    else:
        error = "the run failed without a recorded error; see the run's logs"
    occurred = run_failures[-1][0] if run_failures else time.time()
    return Alert(
        run_id=run.run_id,
        job_name=run.job_name,
        error=error,
        occurred_at=datetime.fromtimestamp(occurred, tz=UTC),
        failed_steps=failed_steps,
        failed_assets=tuple(k.to_user_string() for k in missing if planned[k] in failed_steps),
        failed_checks=tuple(_check_label(c) for c in checks if not c.passed),
        not_run_assets=tuple(k.to_user_string() for k in missing if planned[k] not in failed_steps),
        link=f"{ui_url}/runs/{run.run_id}",
    )


def build_run_failure_sensor(settings: Settings) -> dg.SensorDefinition:
    """Sensor sending an alert (log line, CRM_ALERT_WEBHOOK, CRM_ALERT_COMMAND) for each failed run.

    Watches every job of the code location and starts running, so alerts are on
    from the first ``dagster dev``.
    """

    @dg.run_failure_sensor(
        name=FAILURE_SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Alerts on every failed run, naming the failed assets, checks and the error: a log line, "
            "plus POST to CRM_ALERT_WEBHOOK and/or CRM_ALERT_COMMAND with the alert JSON on stdin."
        ),
    )
    def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
        alert = failed_run_alert(context.instance, context.dagster_run)
        send_alert(alert, settings.alert_webhook, settings.alert_command, logger=context.log)

    return run_failure_alert
