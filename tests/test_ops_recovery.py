"""Operating the real pipeline as a user would: kill runs, read failures, look at the disk.

Each test starts ``python -m orchestration.run`` in a subprocess on a copy of the
built test warehouse. Waiting for a run to reach a step polls the run's events; no
test depends on how fast the machine is (time limits only stop a hung test).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from pipeline_support import PROJECT_ROOT, clone_pipeline, pipeline_instance
from serving import latest_publish

from orchestration.dbt_runs import DBT_RUNS_DIR

pytestmark = pytest.mark.slow

HANG_GUARD_SECONDS = 1800


def run_env(root: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") and k != "DAGSTER_HOME"}
    return {**base, "CRM_DATA_DIR": str(root), "DAGSTER_HOME": str(root / "dagster_home")}


def start_run(root: Path, *args: str) -> subprocess.Popen:
    # A session of its own, so the kill takes dbt and every other child with the run.
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration.run", "--job", "daily_pipeline", *args],
        env=run_env(root),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=HANG_GUARD_SECONDS)
    return process.returncode, output


def inside_step(root: Path, step_key: str, dbt_folders_before: set[Path]) -> bool:
    """Whether ``step_key`` of the running run is in the middle of its work, seen on disk.

    The disk, not the run's events: opening the Dagster instance every few milliseconds
    competes with the run for the CPU and misses a step of a few seconds.
    """
    if step_key == "serving__crm_serving":  # the copy being built beside the serving file
        return any((root / "serving").glob(".*.building"))
    if step_key == "dbt_warehouse_models":  # dbt writes the SQL it runs into the invocation's target folder
        folders = (f for f in DBT_RUNS_DIR.glob(f"{step_key}-*") if f not in dbt_folders_before)
        return any((folder / "run").is_dir() for folder in folders)
    raise ValueError(f"no sign on disk for step {step_key}")


def start_and_kill_inside(root: Path, step_key: str) -> str:
    """Start a daily run and SIGKILL it (and its children) inside ``step_key``; returns its run id."""
    dbt_folders_before = set(DBT_RUNS_DIR.glob("*"))
    process = start_run(root)
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not inside_step(root, step_key, dbt_folders_before):
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, f"the run never started {step_key}"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    with pipeline_instance(root) as instance:
        [run] = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    return run.run_id


def step_succeeded(root: Path, run_id: str, step_key: str) -> bool:
    with pipeline_instance(root) as instance:
        return step_key in {e.step_key for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)}


def kill_during(root: Path, step_key: str, attempts: int = 3) -> str:
    """SIGKILL a daily run (and its children) while ``step_key`` runs; returns the killed run's id."""
    for _ in range(attempts):
        run_id = start_and_kill_inside(root, step_key)
        if not step_succeeded(root, run_id, step_key):
            return run_id
        # The step finished between the sign on disk and the kill: recover and try again.
        assert finish(start_run(root))[0] == 0
    raise AssertionError(f"never killed a run inside {step_key}")


@pytest.mark.parametrize("step_key", ["dbt_warehouse_models", "serving__crm_serving"])
def test_a_run_killed_mid_step_never_blocks_the_next_run(built_pipeline, tmp_path, step_key):
    root = clone_pipeline(built_pipeline, tmp_path / "data")
    serving = root / "serving" / "crm_serving.duckdb"
    killed = kill_during(root, step_key)
    with pipeline_instance(root) as instance:
        assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.STARTED, "the dead run holds on"
        assert killed in instance.event_log_storage.get_concurrency_run_ids(), "and keeps its warehouse slot"

    code, output = finish(start_run(root))

    assert code == 0, output[-3000:]
    assert f"marked 1 run(s) whose process died as failed ({killed[:8]})" in output
    with pipeline_instance(root) as instance:
        assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_run_ids() == set()
    assert not list(serving.parent.glob(".*.building")), "no half-written serving file is left"
    published = latest_publish(serving)
    with duckdb.connect(str(serving), read_only=True) as con:
        assert con.execute("select count(*) from marts.dim_customers").fetchone()[0] == published["marts.dim_customers"]


def test_a_failed_dbt_test_ends_the_run_with_what_failed_and_is_not_retried(built_pipeline, tmp_path):
    """The known failure: kpi_monthly holding a month its calendar does not (left by a future as-of date)."""
    root = clone_pipeline(built_pipeline, tmp_path / "data")
    with duckdb.connect(str(root / "warehouse" / "crm.duckdb")) as con:
        con.execute(
            "insert into marts.kpi_monthly select * replace (date '2030-01-01' as month_start) "
            "from marts.kpi_monthly order by month_start desc limit 1"
        )
    serving_before = (root / "serving" / "crm_serving.duckdb").read_bytes()
    dbt_target = PROJECT_ROOT / "dbt_project" / "target"
    target_folders_before = set(dbt_target.iterdir())

    code, output = finish(start_run(root))

    assert code == 1
    lines = output.strip().splitlines()
    assert len(lines) < 120, "progress, not the event log"
    assert not any(" - DEBUG - " in line or "STEP_START" in line for line in lines)
    assert "dbt: " in output and "models and tests done" in output, "dbt's progress is shown"
    tail = "\n".join(lines[-6:])
    assert "Failed step: dbt_warehouse_models" in tail
    assert "error: dbt build failed: test row_count_at_most_kpi_monthly" in tail
    log_line = lines[-1]
    assert log_line.startswith("Full log: ")
    log_path = Path(log_line.removeprefix("Full log: "))
    assert log_path.is_file() and log_path.parent == root / "logs"
    assert "Running dbt command" in log_path.read_text(), "the whole story is in the log"
    assert (root / "serving" / "crm_serving.duckdb").read_bytes() == serving_before
    new_folders = set(dbt_target.iterdir()) - target_folders_before
    assert all(p.name == "runs" for p in new_folders), "dbt's files go to target/runs, which is pruned"
    assert f"dbt log: {DBT_RUNS_DIR}" in output
    with pipeline_instance(root) as instance:
        [record] = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        retries = instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert retries == [], "a failed data test fails the same way again: no retry"


def test_a_warehouse_step_waits_for_the_step_of_another_run_that_holds_the_warehouse(tmp_path):
    """The step-long writer lock beside the warehouse: Dagster's SQLite pool can hand its
    one slot to two steps claiming it in the same instant, this lock cannot."""
    from crm_warehouse.settings import load_settings
    from orchestration.resources import WarehouseResource

    def resource(timeout: int) -> WarehouseResource:
        env = {"CRM_DATA_DIR": str(tmp_path), "CRM_LOCK_TIMEOUT_SECONDS": str(timeout)}
        return WarehouseResource(settings_json=load_settings(env).to_json())

    order: list[str] = []
    with resource(600).writer_turn():
        with pytest.raises(dg.Failure, match="cannot open the warehouse .* for writing"):
            with resource(0).writer_turn():
                pass
        waiting = threading.Thread(target=_enter_and_record, args=(resource(600), order))
        waiting.start()
        order.append("first step out")
    waiting.join()
    assert order == ["first step out", "second step in"]
    with resource(0).writer_turn():  # released: taken at once
        pass


def _enter_and_record(warehouse, order: list[str]) -> None:
    with warehouse.writer_turn():
        order.append("second step in")


def test_a_warehouse_folder_that_cannot_be_made_fails_the_step_with_what_to_set(tmp_path):
    from crm_warehouse.settings import load_settings
    from orchestration.resources import WarehouseResource

    (tmp_path / "a_file").write_text("not a folder")
    env = {"CRM_DATA_DIR": str(tmp_path), "CRM_WAREHOUSE_PATH": str(tmp_path / "a_file" / "crm.duckdb")}
    warehouse = WarehouseResource(settings_json=load_settings(env).to_json())
    for step_part in (warehouse.writer_turn, warehouse.connect):
        with pytest.raises(dg.Failure, match="Set CRM_WAREHOUSE_PATH .* to a writable place"):
            with step_part():
                pass
