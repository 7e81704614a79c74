"""``python -m orchestration.run``: materialise the whole asset graph once and summarise.

Runs the ``full_pipeline`` job against the Dagster instance in ``DAGSTER_HOME``, so
the run shows in the UI (``make dev``) like a scheduled one.
"""

from __future__ import annotations

import sys
import time

import dagster as dg

from crm_warehouse.report import summarise
from crm_warehouse.settings import load_settings


def main() -> int:
    from orchestration.definitions import defs

    settings = load_settings()
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = defs.get_job_def("full_pipeline").execute_in_process(
            instance=instance, raise_on_error=False
        )
    seconds = time.perf_counter() - started
    checks = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    failed_checks = [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    warned = [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.WARN]
    print(
        f"\nQuality: {len(checks)} checks run, {len(checks) - len(failed_checks) - len(warned)} passed, "
        f"{len(warned)} warned, {len(failed_checks)} failed"
    )
    for check in failed_checks:
        print(f"  FAILED {check.asset_key.to_user_string()}:{check.check_name}")
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        print(f"\nRun {result.run_id} FAILED after {seconds:.0f} s; failed steps: {', '.join(failed) or 'see logs'}")
        print("Open the run in the Dagster UI (`make dev`) for the logs.")
        return 1
    print(f"\nRun {result.run_id} succeeded in {seconds:.0f} s.")
    print(summarise(settings.warehouse_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
