"""The pieces of a readable run: dbt progress, dbt failure descriptions, bounded logs and target folders."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from orchestration.console import DbtProgress, run_log_path
from orchestration.dbt_runs import PARTIAL_PARSE_FILE, describe_dbt_failure, prune_target_folders, reuse_parse_state
from orchestration.recovery import process_alive, process_tags


def test_dbt_progress_reports_each_tenth_and_every_failure():
    said: list[str] = []
    progress = DbtProgress(said.append)
    statuses = ["PASS"] * 18 + ["FAIL", "OK"]
    for done, status in enumerate(statuses, start=1):
        # dbt numbers nodes in start order; results come in any order
        progress.line(
            f"12:00:01  {21 - done} of 20 {status} 1 row_count_at_most_kpi_monthly ....... [{status} in 0.1s]"
        )
        progress.line(f"12:00:01  {done} of 20 START sql table model marts.kpi_monthly .......")
    assert said[0] == "    dbt: 1/20 models and tests done"
    assert said[-1] == "    dbt: 20/20 models and tests done"
    assert "    dbt test failed row_count_at_most_kpi_monthly" in said
    assert len(said) == 12
    progress.line("12:00:02  1 of 1 OK hook: crm_warehouse.on-run-end.0 ....... [OK in 0.1s]")
    assert len(said) == 12, "the on-run-end hook is no model or test"
    progress.line("12:00:02  1 of 1 ERROR hook: crm_warehouse.on-run-end.0 ....... [ERROR in 0.1s]")
    assert said[-1] == "    dbt error in crm_warehouse.on-run-end.0"


def test_a_failed_data_test_is_described_and_not_retried():
    run_results = {
        "results": [
            {"unique_id": "model.crm.kpi_monthly", "status": "success", "message": "OK"},
            {
                "unique_id": "test.crm.row_count_at_most_kpi_monthly_ref_int_calendar__months___True.3f",
                "status": "fail",
                "message": "Got 1 result, configured to fail if != 0",
            },
        ]
    }
    description, retry = describe_dbt_failure(
        run_results, ["Failure in test row_count_at_most_kpi_monthly (models/marts/_marts__models.yml)"], None
    )
    assert description.startswith(
        "dbt build failed: test row_count_at_most_kpi_monthly_ref_int_calendar__months___True. Got 1"
    )
    assert "Got 1 result, configured to fail if != 0" in description
    assert retry is False


def test_a_compile_error_is_not_retried_and_a_lock_is():
    description, retry = describe_dbt_failure(
        None, ["Compilation Error in model kpi_monthly (models/marts/kpi_monthly.sql)\n  'since' is undefined"], None
    )
    assert description == (
        "dbt failed before building anything. Compilation Error in model kpi_monthly (models/marts/kpi_monthly.sql)"
    )
    assert retry is False
    lock = 'IO Error: Could not set lock on file "crm.duckdb": Conflicting lock is held in python (PID 7)'
    description, retry = describe_dbt_failure(
        {"results": [{"unique_id": "model.crm.fct_orders", "status": "error", "message": lock}]}, [], Path("/x/dbt.log")
    )
    assert description == f"dbt build failed: error in fct_orders. {lock}. dbt log: /x/dbt.log"
    assert retry is True


def test_a_new_target_folder_starts_with_the_newest_parse_state(tmp_path):
    runs = tmp_path / "runs"
    target = runs / "dbt_scored_models-new"
    target.mkdir(parents=True)
    assert reuse_parse_state(runs, target) is None and not (target / PARTIAL_PARSE_FILE).exists()
    for number, state in enumerate([b"older", b"newest", None]):
        folder = runs / f"dbt_warehouse_models-{number}"
        folder.mkdir()
        if state is not None:
            (folder / PARTIAL_PARSE_FILE).write_bytes(state)
            os.utime(folder / PARTIAL_PARSE_FILE, (1_000_000 + number, 1_000_000 + number))
    assert reuse_parse_state(runs, target) == runs / "dbt_warehouse_models-1" / PARTIAL_PARSE_FILE
    assert (target / PARTIAL_PARSE_FILE).read_bytes() == b"newest"


def test_old_target_folders_and_run_logs_are_pruned(tmp_path):
    runs = tmp_path / "runs"
    for number in range(10):
        folder = runs / f"dbt_warehouse_models-{number}"
        folder.mkdir(parents=True)
        (folder / "dbt.log").write_text("x")
        if number != 2:  # dbt wrote its results: finished
            (folder / "run_results.json").write_text("{}")
        os.utime(folder, (1_000_000 + number, 1_000_000 + number))
    removed = prune_target_folders(runs, keep=6)
    # Folder 2 may still be running (no results yet) and is within reach: kept.
    assert sorted(p.name for p in removed) == [f"dbt_warehouse_models-{n}" for n in (0, 1, 3)]
    assert sorted(p.name for p in runs.iterdir()) == [f"dbt_warehouse_models-{n}" for n in (2, *range(4, 10))]
    for number in range(10, 20):
        (runs / f"dbt_warehouse_models-{number}").mkdir()
        os.utime(runs / f"dbt_warehouse_models-{number}", (1_000_000 + number, 1_000_000 + number))
    prune_target_folders(runs, keep=6)
    assert len(list(runs.iterdir())) <= 2 * 6 + 2, "unfinished folders are bounded too"

    logs = tmp_path / "logs"
    logs.mkdir()
    for number in range(5):
        (logs / f"run-2025010{number}-000000-abc.log").write_text("x")
        os.utime(logs / f"run-2025010{number}-000000-abc.log", (1_000_000 + number, 1_000_000 + number))
    new = run_log_path(logs, "0123456789abcdef", keep=3)
    assert new.name.startswith("run-") and new.name.endswith("-01234567.log")
    assert sorted(p.name for p in logs.iterdir()) == ["run-20250103-000000-abc.log", "run-20250104-000000-abc.log"]


def test_a_process_is_alive_only_while_it_is_the_same_process():
    tags = process_tags()
    assert process_alive(int(tags["crm/pid"]), tags.get("crm/pid_start"))
    if "crm/pid_start" in tags:
        assert not process_alive(int(tags["crm/pid"]), "1"), "a reused process id is not the run's process"


def test_the_run_summary_names_a_postgres_publish_and_a_failure_ends_with_the_log(tmp_path):
    from orchestration.run import _published_to_postgres, failure_lines

    @dg.asset(key=["serving", "postgres_marts"])
    def postgres_marts() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"tables": 16, "rows": 1234})

    @dg.asset(deps=[postgres_marts])
    def broken() -> None:
        raise dg.Failure("the churn model could not be fitted: too few customers\nmore detail", allow_retries=False)

    result = dg.materialize([postgres_marts, broken], raise_on_error=False)
    assert _published_to_postgres(result) == {"tables": 16, "rows": 1234}
    log = tmp_path / "run.log"
    assert failure_lines(result, log) == [
        "Failed step: broken",
        "  error: the churn model could not be fitted: too few customers",
        f"Full log: {log}",
    ]


def test_the_recovery_sensor_fails_a_dead_run_and_frees_its_slot(tmp_path):
    import shutil
    import subprocess

    from pipeline_support import PROJECT_ROOT

    from orchestration.recovery import PID_START_TAG, PID_TAG, build_recovery_sensor

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "config" / "dagster.yaml", home / "dagster.yaml")
    dead = subprocess.Popen(["true"])  # a process that has ended: its id names nobody
    dead.wait()
    serving = tmp_path / "serving" / "crm_serving.duckdb"
    serving.parent.mkdir()

    @dg.asset(pool="duckdb_warehouse")
    def step() -> None:
        """Stands for a warehouse step."""

    job = dg.define_asset_job("daily_pipeline", selection=[step]).resolve(
        asset_graph=dg.Definitions(assets=[step]).resolve_asset_graph()
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        tags = {PID_TAG: str(dead.pid), PID_START_TAG: "0"}
        dead_run = instance.create_run_for_job(job, tags=tags, status=dg.DagsterRunStatus.STARTED)
        alive_run = instance.create_run_for_job(
            job, tags={PID_TAG: str(os.getpid())}, status=dg.DagsterRunStatus.STARTED
        )
        instance.event_log_storage.claim_concurrency_slot("duckdb_warehouse", dead_run.run_id, "step")
        half_written = serving.parent / f".{serving.name}.{dead_run.run_id}.building"
        half_written.write_text("")
        sensor = build_recovery_sensor(serving)
        result = sensor(dg.build_sensor_context(instance=instance))
        assert "marked 1 run(s) whose process died as failed" in str(result.skip_message)
        assert instance.get_run_by_id(dead_run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive_run.run_id).status == dg.DagsterRunStatus.STARTED
        assert instance.event_log_storage.get_concurrency_run_ids() == set()
        assert not half_written.exists()
        again = sensor(dg.build_sensor_context(instance=instance))
        assert again.skip_message == "no dead run holds anything"
