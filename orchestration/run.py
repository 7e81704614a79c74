"""Run a job once from the command line and summarise it (what ``make run`` calls).

    python -m orchestration.run                       # the whole asset graph (first run: fits models)
    python -m orchestration.run --job daily_pipeline  # what the daily schedule runs
    python -m orchestration.run --backfill 2024-03-01 2024-03-05

Runs against the Dagster instance in ``DAGSTER_HOME``, so the run shows in the UI
(``make dev``) like a scheduled one. Before any work: a configuration mistake is one
line saying what to set (exit 2); what a crashed earlier run still holds is released
(:mod:`orchestration.recovery`). ``--demo`` (what ``make run`` passes) simulates the
demo company when the landing folder is the project's default one and holds no
files, never into a folder the user named. While the run goes, the terminal shows
one line per step (and dbt's progress); everything else goes to a log file named at
the start and the end. A failed run ends with the failed step, the failed checks or
dbt nodes, the first error line and the log path; it is alerted like one the daemon
saw, and the command exits 1.
"""

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import dagster as dg
from dagster._core.utils import make_new_run_id

from crm_warehouse.alerts import send_alert
from crm_warehouse.preflight import ConfigurationError, check_configuration, demo_landing_needed
from crm_warehouse.report import short_summary, summarise
from crm_warehouse.settings import Settings, load_settings
from orchestration.console import RunConsole, StepProgress, run_log_path
from orchestration.recovery import process_tags, recover_dead_runs
from orchestration.resources import ALL_ROWS, VALIDATED_ROWS_TAG, WarehouseResource

# A backfill rewrites past dates: its checks validate whole tables, not the latest days.
BACKFILL_TAGS = {VALIDATED_ROWS_TAG: ALL_ROWS}


def backfill_run_config(job: dg.JobDefinition, first: date, last: date) -> dict:
    """Run config that re-processes the landing files exported from ``first`` to ``last``.

    Every ingestion step reloads that range (replacing what those files loaded, so a
    repeated backfill changes nothing) and dbt rebuilds incremental models in full.
    """
    from orchestration.assets.dbt import dbt_scored_models, dbt_warehouse_models
    from orchestration.assets.ingestion import ingestion_assets

    in_job = {node.name for node in job.graph.node_defs}
    reload = {"reload_from": first.isoformat(), "reload_to": last.isoformat()}
    ops = {a.op.name: {"config": reload} for a in ingestion_assets if a.op.name in in_job}
    ops |= {
        a.op.name: {"config": {"full_refresh": True}}
        for a in (dbt_warehouse_models, dbt_scored_models)
        if a.op.name in in_job
    }
    return {"ops": ops}


def _failed_checks(result: dg.ExecuteInProcessResult) -> tuple[list, list, int]:
    checks = [
        e.event_specific_data for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    failed = [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    warned = [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.WARN]
    return failed, warned, len(checks)


def _quality_lines(result: dg.ExecuteInProcessResult) -> list[str]:
    failed, warned, total = _failed_checks(result)
    lines = [
        f"Quality: {total} checks run, {total - len(failed) - len(warned)} passed, {len(warned)} warned, {len(failed)} failed"
    ]
    lines += [f"  FAILED {c.asset_key.to_user_string()}:{c.check_name}" for c in failed]
    lines += [f"  warned {c.asset_key.to_user_string()}:{c.check_name}" for c in warned]
    return lines


def first_error_line(error: object) -> str:
    """The first line of a step's error that says what went wrong (the user's exception, not Dagster's wrapper)."""
    while (
        error is not None
        and getattr(error, "cause", None) is not None
        and (getattr(error, "cls_name", "") in ("DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"))
    ):
        error = error.cause
    if error is None:
        return "no error recorded"
    message = (getattr(error, "message", None) or str(error)).strip()
    for prefix in (
        "dagster._core.definitions.events.Failure: ",
        "dagster._core.errors.DagsterExecutionStepExecutionError: ",
    ):
        message = message.removeprefix(prefix)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else getattr(error, "cls_name", "error")


def failure_lines(result: dg.ExecuteInProcessResult, log_path: Path | None) -> list[str]:
    """How a failed run ends on the terminal: failed step, failed checks or dbt nodes, first error, log."""
    lines = []
    step_failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    for event in step_failures:
        lines.append(f"Failed step: {event.step_key}")
        lines.append(f"  error: {first_error_line(event.event_specific_data.error)}")
    failed, _, _ = _failed_checks(result)
    for check in failed:
        lines.append(f"Failed check: {check.asset_key.to_user_string()}:{check.check_name}")
    if not step_failures and not failed:
        lines.append("The run failed without a failed step (see the log)")
    if log_path is not None:
        lines.append(f"Full log: {log_path}")
    return lines


def _published_to_postgres(result: dg.ExecuteInProcessResult) -> dict | None:
    """What the run published to PostgreSQL: ``postgres_marts`` on DuckDB, the serving step itself on Spark."""
    for event in result.all_events:
        if event.event_type != dg.DagsterEventType.ASSET_MATERIALIZATION:
            continue
        metadata = {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
        if event.asset_key == dg.AssetKey(["serving", "postgres_marts"]) or metadata.get("target") == "postgres":
            return metadata
    return None


def prepare_demo(settings: Settings, customers: int, days: int, seed: int, start: date) -> None:
    """Simulate the demo company into the project's default landing folder when it holds no files."""
    if not demo_landing_needed(settings.landing_dir):
        return
    print(
        f"No landing files in {settings.landing_dir}, the project's demo folder: simulating the DEMO company "
        f"({customers} customers over {days} days, seed {seed}). Its customers are invented; "
        "set CRM_LANDING_DIR to your exports to load real data."
    )
    from crm_simulator import SimulationConfig, simulate_company

    config = SimulationConfig(customers=customers, days=days, seed=seed, start_date=start)
    simulate_company(config, settings.landing_dir, settings.landing_dir.parent / "truth")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="full_pipeline", help="job to run (default: full_pipeline)")
    parser.add_argument(
        "--backfill",
        nargs=2,
        metavar=("FIRST", "LAST"),
        type=date.fromisoformat,
        help="re-process the landing files exported on these dates (inclusive) with the daily job",
    )
    parser.add_argument(
        "--demo",
        nargs=4,
        metavar=("CUSTOMERS", "DAYS", "SEED", "START"),
        help="simulate the demo company first if the landing folder is the default one and empty (make run)",
    )
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except ValueError as exc:
        print(f"Configuration problem, nothing was run: {exc}")
        return 2
    if args.demo:
        customers, days, seed, start = args.demo
        prepare_demo(settings, int(customers), int(days), int(seed), date.fromisoformat(start))
    try:
        check_configuration(settings)
    except ConfigurationError as exc:
        print("Configuration problems, nothing was run:")
        for problem in exc.problems:
            print(f"- {problem}")
        return 2
    try:
        from orchestration.definitions import defs
    except ValueError as exc:
        print(f"Configuration problem, nothing was run: {exc}")
        return 2
    from orchestration.ops.sensors import failed_run_alert

    job_name = "daily_pipeline" if args.backfill else args.job
    job = defs.resolve_job_def(job_name)
    run_config = backfill_run_config(job, *args.backfill) if args.backfill else {}
    tags = {**(BACKFILL_TAGS if args.backfill else {}), **process_tags()}
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    run_id = make_new_run_id()
    log_path = run_log_path(settings.data_dir / "logs", run_id)
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        for line in recover_dead_runs(instance, settings.serving_path).lines():
            print(line)
        print(f"Run {run_id[:8]} of {job_name}: {len(job.graph.nodes)} steps. Full log: {log_path}")
        with RunConsole(log_path) as console:
            progress = StepProgress(instance, run_id, console.say, len(job.graph.nodes))
            progress.start()
            try:
                result = job.execute_in_process(
                    instance=instance, run_config=run_config, tags=tags, run_id=run_id, raise_on_error=False
                )
            finally:
                progress.stop()
        seconds = time.perf_counter() - started
        print("\n".join(_quality_lines(result)))
        if not result.success:
            alert = failed_run_alert(instance, result.dagster_run)
            send_alert(alert, settings.alert_webhook, settings.alert_command)
            print(f"\nRun {result.run_id} of {job_name} FAILED after {seconds:.0f} s.")
            print("The serving copy was not replaced.")
            print("\n".join(failure_lines(result, log_path)))
            return 1
    print(f"\nRun {result.run_id} of {job_name} succeeded in {seconds:.0f} s.")
    # Another run's step may be writing the warehouse now (DuckDB then refuses even a
    # read-only connection): the summary waits for its turn like a warehouse step.
    with WarehouseResource.from_settings(settings).writer_turn():
        summary = summarise(settings, result.run_id)
        short = short_summary(settings, result.run_id)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(summary + "\n")
    print(short)
    if settings.serving_path.exists():
        print(f"Serving file for BI tools (open read-only): {settings.serving_path}")
    postgres = _published_to_postgres(result)
    if postgres is not None:
        print(
            f"PostgreSQL: published {postgres.get('tables')} tables ({postgres.get('rows')} rows) to the database "
            "of CRM_POSTGRES_DSN; BI reads schema marts as bi_reader"
        )
    print(f"Full log (row counts of every table): {log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
