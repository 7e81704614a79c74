"""Run a job once from the command line and summarise it (what ``make run`` calls).

    python -m orchestration.run                       # the whole asset graph (first run: fits models)
    python -m orchestration.run --job daily_pipeline  # what the daily schedule runs
    python -m orchestration.run --backfill 2024-03-01 2024-03-05

Runs against the Dagster instance in ``DAGSTER_HOME``, so the run shows in the UI
(``make dev``) like a scheduled one. The configuration is checked first; a failed
run is alerted like one the daemon saw, and the command exits non-zero.
"""

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import date

import dagster as dg

from crm_warehouse.alerts import send_alert
from crm_warehouse.preflight import ConfigurationError, check_configuration
from crm_warehouse.report import summarise
from crm_warehouse.settings import load_settings
from orchestration.resources import ALL_ROWS, VALIDATED_ROWS_TAG

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


def _print_quality(result: dg.ExecuteInProcessResult) -> None:
    checks = [
        e.event_specific_data for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    failed = [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    warned = [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.WARN]
    print(
        f"\nQuality: {len(checks)} checks run, {len(checks) - len(failed) - len(warned)} passed, "
        f"{len(warned)} warned, {len(failed)} failed"
    )
    for check in failed:
        print(f"  FAILED {check.asset_key.to_user_string()}:{check.check_name}")
    for check in warned:
        print(f"  warned {check.asset_key.to_user_string()}:{check.check_name}")


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
    args = parser.parse_args(argv)

    settings = load_settings()
    try:
        check_configuration(settings)
    except ConfigurationError as exc:
        print(f"Configuration problems, nothing was run:\n{exc}")
        return 2

    from orchestration.definitions import defs
    from orchestration.ops.sensors import failed_run_alert

    job_name = "daily_pipeline" if args.backfill else args.job
    job = defs.resolve_job_def(job_name)
    run_config = backfill_run_config(job, *args.backfill) if args.backfill else {}
    tags = BACKFILL_TAGS if args.backfill else None
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, run_config=run_config, tags=tags, raise_on_error=False)
        seconds = time.perf_counter() - started
        _print_quality(result)
        if not result.success:
            alert = failed_run_alert(instance, result.dagster_run)
            send_alert(alert, settings.alert_webhook, settings.alert_command)
            print(f"\nRun {result.run_id} of {job_name} FAILED after {seconds:.0f} s: {alert.summary()}")
            print("The serving copy was not replaced. Open the run in the Dagster UI (`make dev`) for the logs.")
            return 1
    print(f"\nRun {result.run_id} of {job_name} succeeded in {seconds:.0f} s.")
    print(summarise(settings.warehouse_path, result.run_id))
    if settings.serving_path.exists():
        print(f"Serving file for BI tools (open read-only): {settings.serving_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
