"""The whole asset graph, materialised in-process by the real definitions on the test company."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from pipeline_support import PROJECT_ROOT, clone_pipeline, deliver, pipeline_definitions, pipeline_instance, run_job
from serving import latest_publish

from crm_warehouse.contracts import CONTRACTS, ORDERS_ORDER_LINES
from crm_warehouse.ingest import export_date
from crm_warehouse.warehouse.dbt_project import dbt_var_int
from orchestration.assets.dbt import DbtBuildConfig, dbt_build_args
from orchestration.checks.quality import CHECK_NAME
from orchestration.dbt_runs import DBT_RUNS_DIR
from orchestration.resources import RECENT_ROWS, VALIDATED_ROWS_TAG, WAREHOUSE_RELEASED, WAREHOUSE_TAKEN
from orchestration.run import BACKFILL_TAGS, backfill_run_config

pytestmark = pytest.mark.slow


def serving_path(root: Path) -> Path:
    return root / "serving" / "crm_serving.duckdb"


def warehouse_path(root: Path) -> Path:
    return root / "warehouse" / "crm.duckdb"


def failed_checks(result: dg.ExecuteInProcessResult) -> set[str]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in (
            event.event_specific_data
            for event in result.all_events
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
        if not e.passed
    }


def test_definitions_load_with_every_asset_described_grouped_and_kinded(tmp_path: Path):
    defs = pipeline_definitions(tmp_path)
    graph = defs.resolve_asset_graph()
    groups = {graph.get(key).group_name for key in graph.materializable_asset_keys}
    assert {"ingestion", "staging", "intermediate", "marts", "reference", "analytics", "publish"} <= groups
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.description, f"{key.to_user_string()} has no description"
        assert node.kinds, f"{key.to_user_string()} has no kinds"
    # Lineage reads sources -> staging -> intermediate -> marts -> analytics -> marts.
    layer = {key: key.path[0] for key in graph.materializable_asset_keys}
    for key, name in layer.items():
        parents = {layer.get(p, "external") for p in graph.get(key).parent_keys}
        if name == "staging":
            assert parents <= {"raw", "analytics", "reference"}, (key, parents)
        if name == "intermediate":
            assert "raw" not in parents, key
    assert {"full_pipeline", "daily_pipeline", "retrain_models"} <= {j.name for j in defs.jobs}


def test_only_the_daily_job_tests_recent_rows_and_never_on_a_full_refresh(tmp_path: Path):
    daily = pipeline_definitions(tmp_path).resolve_job_def("daily_pipeline")
    assert daily.tags[VALIDATED_ROWS_TAG] == RECENT_ROWS
    as_of = {"as_of_date": "2025-06-30"}
    assert dbt_build_args(DbtBuildConfig(), as_of, daily.tags) == [
        "build",
        "--vars",
        json.dumps({**as_of, "data_tests_scope": "recent"}),
    ]
    assert dbt_build_args(DbtBuildConfig(full_refresh=True), {}, daily.tags) == ["build", "--full-refresh"]
    assert dbt_build_args(DbtBuildConfig(), {}, {}) == ["build"]


def _validated_rows(result: dg.ExecuteInProcessResult) -> set[str]:
    """What the run's GX checks of the fact tables with a window column validated."""
    return {
        e.event_specific_data.metadata["validated_rows"].value
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and e.event_specific_data.check_name == CHECK_NAME
        and e.event_specific_data.asset_key.path[-1] in ("fct_orders", "fct_order_lines", "customer_lifecycle_history")
    }


def test_full_pipeline_builds_every_layer_and_publishes(built_pipeline):
    root = built_pipeline.root
    with duckdb.connect(str(warehouse_path(root)), read_only=True) as con:
        crm_customers = con.execute("select count(distinct customer_id) from raw.crm_customers").fetchone()[0]
        raw_rows = {c.table: con.execute(f"select count(*) from raw.{c.table}").fetchone()[0] for c in CONTRACTS}
        dim_customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
        scored = con.execute("select count(*) from analytics.customer_clv").fetchone()[0]
        quality_rows = con.execute(
            "select count(*), count(*) filter (where not success and severity = 'error') from audit.dq_results"
        ).fetchone()
    assert all(rows > 0 for rows in raw_rows.values()), raw_rows
    assert dim_customers == crm_customers == scored
    assert quality_rows[0] > 100 and quality_rows[1] == 0
    published = latest_publish(serving_path(root))
    assert published["marts.dim_customers"] == dim_customers
    assert {
        "marts.customer_lifecycle",
        "marts.customer_value_segments",
        "marts.kpi_monthly",
        "analytics.customer_clv",
        "analytics.customer_churn_scores",
    } <= set(published)
    with duckdb.connect(str(serving_path(root)), read_only=True) as con:
        schemas = {s for (s,) in con.execute("select distinct table_schema from information_schema.tables").fetchall()}
    assert schemas == {"marts", "analytics", "main"}, "raw, staging and intermediate never reach BI"
    with pipeline_instance(root) as instance:

        def materialised(*key: str) -> dict:
            return instance.get_latest_materialization_event(dg.AssetKey(list(key))).asset_materialization.metadata

        assert materialised("marts", "dim_customers")["dagster/row_count"].value == dim_customers
        assert materialised("marts", "customer_value_segments")["dagster/row_count"].value == dim_customers
        assert "dagster/row_count" not in materialised("staging", "stg_orders__orders"), "views are not counted"


def test_rerun_with_no_new_files_loads_nothing_twice(built_pipeline, tmp_path):
    root = clone_pipeline(built_pipeline, tmp_path / "data")
    with duckdb.connect(str(warehouse_path(root)), read_only=True) as con:
        before = {c.table: con.execute(f"select count(*) from raw.{c.table}").fetchone()[0] for c in CONTRACTS}
    result = run_job(root, "daily_pipeline")
    assert result.success
    with duckdb.connect(str(warehouse_path(root)), read_only=True) as con:
        after = {c.table: con.execute(f"select count(*) from raw.{c.table}").fetchone()[0] for c in CONTRACTS}
        new_ledger_rows = con.execute(
            "select count(*) from raw.ingestion_ledger where run_id = ?", [result.run_id]
        ).fetchone()[0]
    assert after == before
    assert new_ledger_rows == 0
    # The run's second dbt step starts from the first one's parse state (same vars, same profile).
    (scored_step,) = DBT_RUNS_DIR.glob(f"dbt_scored_models-{result.run_id[:8]}-*")
    assert "Partial parsing enabled, no changes found, skipping parsing" in (scored_step / "dbt.log").read_text()


def test_daily_run_builds_incrementally_and_tests_the_rows_it_wrote(built_pipeline, tmp_path):
    root = clone_pipeline(built_pipeline, tmp_path / "data")
    deliver(built_pipeline.company, root, built_pipeline.held_back)
    result = run_job(root, "daily_pipeline")
    assert result.success
    with pipeline_instance(root) as instance:
        commands = [
            entry.user_message
            for entry in instance.all_logs(result.run_id)
            if entry.user_message.startswith("Running dbt command")
        ]
    assert len(commands) == 2 and all('"data_tests_scope": "recent"' in c for c in commands), commands
    assert not any("--full-refresh" in c for c in commands)
    newest_day = max(export_date(f) for f in built_pipeline.held_back)
    # the windows dbt recorded: the newest day less incremental_lookback_days
    window_start = newest_day - timedelta(days=dbt_var_int("incremental_lookback_days"))
    assert _validated_rows(result) == {
        f"row-level expectations on the rows with {column} >= {window_start.isoformat()} (the rows dbt rewrote), "
        "table-level ones on the whole table"
        for column in ("order_date", "evaluated_on")
    }
    with duckdb.connect(str(warehouse_path(root)), read_only=True) as con:
        # the incremental models took in the held-back week and lost nothing
        assert con.execute("select max(order_date) from marts.fct_orders").fetchone()[0] == newest_day
        assert (
            con.execute("select count(*) from marts.fct_orders").fetchone()[0]
            == con.execute("select count(*) from staging.stg_orders__orders").fetchone()[0]
        )
        assert con.execute("select max(evaluated_on) from marts.customer_lifecycle_history").fetchone()[0] == newest_day
        stages = con.execute(
            """select count(*), count(distinct customer_id) from marts.customer_lifecycle_history
               where is_as_of_month"""
        ).fetchone()
    assert stages[0] == stages[1] > 0, "one current stage per customer"


# A BI reader in its own process: opens the serving file read-only again and again and
# compares each table's rows with what publish_log says the same publish wrote. It
# writes its report (atomically, so the test never reads half a file) when it first
# reads, whenever it sees a new publish, and when told to stop; it stops on the stop
# file or when the test process is gone. Nothing in it depends on time.
READER = r"""
import json, os, sys, time

path, stop_file, out = sys.argv[1:4]
parent = os.getppid()
queries, failures, snapshots = 0, [], {}


def report():
    tmp = out + ".tmp"
    with open(tmp, "w") as handle:
        json.dump({"queries": queries, "failures": failures[:50], "snapshots": snapshots}, handle)
    os.replace(tmp, out)


import duckdb

while not os.path.exists(stop_file) and os.getppid() == parent:
    try:
        with duckdb.connect(path, read_only=True) as con:
            run_id = con.execute("select run_id from publish_log order by published_at desc limit 1").fetchone()[0]
            logged = dict(con.execute("select table_name, row_count from publish_log where run_id = ?", [run_id]).fetchall())
            counted = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in logged}
        queries += 1
        new = run_id not in snapshots
        snapshots[run_id] = snapshots.get(run_id, 0) + 1
        if counted != logged:
            failures.append(f"snapshot of {run_id} does not match its publish_log")
        if new or queries == 1:
            report()
    except Exception as exc:
        failures.append(repr(exc))
        if len(failures) == 1:
            report()
    # Leave the machine to the runs (each look costs tens of milliseconds of CPU); a look
    # every 0.1 s still falls many times into a publish, which takes seconds.
    time.sleep(0.1)
report()
"""


def _reader_report(report: Path, reader: subprocess.Popen, errors: Path, until) -> dict:
    """The reader's latest report once ``until(report)`` holds; fails at once if the reader died or failed."""
    while True:
        if report.exists():
            seen = json.loads(report.read_text())
            assert seen["failures"] == [], seen["failures"]
            if until(seen):
                return seen
        if reader.poll() is not None:
            raise AssertionError(f"the reader exited with {reader.returncode}: {errors.read_text()[-3000:]}")
        time.sleep(0.05)


def test_bi_readers_always_see_one_complete_publish(built_pipeline, tmp_path):
    root = clone_pipeline(built_pipeline, tmp_path / "data")
    stop_file, report, errors = tmp_path / "stop", tmp_path / "reader.json", tmp_path / "reader.err"
    with errors.open("w") as stderr:
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(serving_path(root)), str(stop_file), str(report)], stderr=stderr
        )
    try:
        # The reader has read the current publish before any run starts, however long it took to start.
        first = _reader_report(report, reader, errors, lambda seen: seen["queries"] > 0)
        published = list(first["snapshots"])
        # Two deliveries, two daily runs: the counts change between publishes.
        days = sorted({export_date(f) for f in built_pipeline.held_back})
        half = len(days) // 2
        for batch in (days[:half], days[half:]):
            deliver(built_pipeline.company, root, [f for f in built_pipeline.held_back if export_date(f) in batch])
            result = run_job(root, "daily_pipeline")
            assert result.success
            published.append(result.run_id)
            # Wait until the reader has read this publish too.
            _reader_report(report, reader, errors, lambda seen, run=result.run_id: run in seen["snapshots"])
    finally:
        stop_file.touch()
        reader.wait(timeout=600)
    assert reader.returncode == 0, errors.read_text()[-3000:]
    seen = json.loads(report.read_text())
    print(f"reader: {seen['queries']} queries, snapshots per publish {seen['snapshots']}")
    assert seen["failures"] == []
    assert list(seen["snapshots"]) == published, "the reader saw every publish, in order"


def test_bad_batch_stops_the_run_at_its_check_and_keeps_the_serving_copy(built_pipeline, tmp_path):
    root = clone_pipeline(built_pipeline, tmp_path / "data")
    first_day = min(export_date(f) for f in built_pipeline.held_back)
    deliver(built_pipeline.company, root, [f for f in built_pipeline.held_back if export_date(f) == first_day])
    lines_file = root / "landing" / ORDERS_ORDER_LINES.file_name(first_day.isoformat())
    good_lines = lines_file.read_text().splitlines()[1:]
    with lines_file.open("a") as handle:
        for number in range(len(good_lines)):
            handle.write(f"O_BAD{number},1,P0001,tea,lots,9.99,0,1.00\n")
    before = serving_path(root).read_bytes()

    result = run_job(root, "daily_pipeline")

    assert not result.success
    assert failed_checks(result) == {"raw/orders_order_lines:quarantine_rate"}
    assert serving_path(root).read_bytes() == before
    assert not any(
        e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        and e.asset_key == dg.AssetKey(["serving", "crm_serving"])
        for e in result.all_events
    )


def _table_snapshot(root: Path) -> dict[str, pd.DataFrame]:
    lineage = ["_loaded_at", "_run_id"]
    with duckdb.connect(str(warehouse_path(root)), read_only=True) as con:
        tables = {
            f"raw.{c.table}": con.execute(
                f"select * exclude ({', '.join(lineage)}) from raw.{c.table} order by all"
            ).df()
            for c in CONTRACTS
        }
        tables["raw.quarantine"] = con.execute(
            "select * exclude (quarantined_at, run_id) from raw.quarantine order by all"
        ).df()
        tables["raw.ingestion_ledger"] = con.execute(
            "select source_table, file_path, content_hash, rows_read, rows_loaded, rows_quarantined "
            "from raw.ingestion_ledger where superseded_at is null order by all"
        ).df()
        for mart in ("fct_orders", "fct_order_lines", "customer_lifecycle_history", "kpi_monthly"):
            tables[f"marts.{mart}"] = con.execute(f"select * from marts.{mart} order by all").df()
    return tables


def test_backfilling_a_date_range_twice_gives_identical_tables(built_pipeline, tmp_path):
    root = clone_pipeline(built_pipeline, tmp_path / "data")
    job = pipeline_definitions(root).resolve_job_def("daily_pipeline")
    config = backfill_run_config(job, date(2025, 11, 1), date(2025, 11, 3))
    assert {"raw__orders_orders", "dbt_warehouse_models"} <= set(config["ops"])
    before = _table_snapshot(root)
    snapshots = []
    for _ in range(2):
        result = run_job(root, "daily_pipeline", config, BACKFILL_TAGS)
        assert result.success
        assert _validated_rows(result) == {"whole table"}
        with duckdb.connect(str(warehouse_path(root)), read_only=True) as con:
            reloaded = con.execute(
                "select count(*) from raw.ingestion_ledger where run_id = ?", [result.run_id]
            ).fetchone()[0]
        assert reloaded > 0, "the backfill re-processed the range"
        snapshots.append(_table_snapshot(root))
    for name, table in before.items():
        pd.testing.assert_frame_equal(snapshots[0][name], table, obj=name)
        pd.testing.assert_frame_equal(snapshots[1][name], table, obj=name)


def test_two_runs_started_together_queue_on_the_warehouse(built_pipeline, tmp_path):
    root = clone_pipeline(built_pipeline, tmp_path / "data")
    env = {
        **os.environ,
        "CRM_DATA_DIR": str(root),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "CRM_LANDING_SETTLE_SECONDS": "0",
    }
    command = [sys.executable, "-m", "orchestration.run", "--job", "retrain_models"]
    runs = [
        subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs

    with pipeline_instance(root) as instance:
        records = instance.get_run_records(dg.RunsFilter(job_name="retrain_models"))
        assert len(records) == 2
        windows = []
        for record in records:
            # Each step's exclusive time: from the line it logs once it holds the warehouse
            # to the line it logs before letting go (STEP_START comes before any waiting).
            messages = [(e.timestamp, e.user_message) for e in instance.all_logs(record.dagster_run.run_id)]
            taken = sorted(t for t, m in messages if m.startswith(WAREHOUSE_TAKEN))
            released = sorted(t for t, m in messages if m.startswith(WAREHOUSE_RELEASED))
            assert taken and len(taken) == len(released), messages
            windows.append(list(zip(taken, released, strict=True)))
    overlapping = [(a, b) for a in windows[0] for b in windows[1] if a[0] < b[1] and b[0] < a[1]]
    assert overlapping == [], "warehouse-writing steps of two runs ran at the same time"


def test_dbt_docs_generate_on_the_built_warehouse(built_pipeline, tmp_path):
    root = clone_pipeline(built_pipeline, tmp_path / "data")
    target = tmp_path / "dbt_target"
    env = {**os.environ, "CRM_WAREHOUSE_PATH": str(warehouse_path(root))}
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "docs",
            "generate",
            "--profiles-dir",
            ".",
            "--target-path",
            str(target),
            "--log-path",
            str(tmp_path / "logs"),
        ],
        cwd=PROJECT_ROOT / "dbt_project",
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    assert "model.crm_warehouse.dim_customers" in catalog["nodes"]
    assert {e["name"] for e in manifest["exposures"].values()} == {
        "customer_lifecycle_dashboard",
        "retention_and_churn_dashboard",
        "value_segments_dashboard",
    }
    undocumented = [
        f"{node['name']}.{column}"
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["path"].startswith("marts/")
        for column, spec in node["columns"].items()
        if not spec.get("description")
    ]
    assert undocumented == []
    assert (target / "index.html").exists()


def test_five_scoring_runs_leave_one_current_score_per_customer_in_serving(built_pipeline, tmp_path):
    """The full run scored once; four more scoring runs publish again. BI sums stay right."""
    from orchestration.assets.analytics import CHURN_SCORES_KEY, CUSTOMER_CLV_KEY
    from orchestration.assets.publish import SERVING_KEY

    root = clone_pipeline(built_pipeline, tmp_path / "data")
    job = pipeline_definitions(root).resolve_job_def("daily_pipeline")
    for _ in range(4):
        with pipeline_instance(root) as instance:
            result = job.execute_in_process(
                instance=instance, asset_selection=[CUSTOMER_CLV_KEY, CHURN_SCORES_KEY, SERVING_KEY]
            )
        assert result.success
    with duckdb.connect(str(warehouse_path(root)), read_only=True) as con:
        customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
        history = con.execute("select count(*), count(distinct scored_at) from analytics.customer_clv").fetchone()
        churn_customers = con.execute(
            "select count(distinct customer_id) from analytics.customer_churn_scores"
        ).fetchone()[0]
    assert history == (5 * customers, 5), "the working warehouse keeps every scoring run"
    with duckdb.connect(str(serving_path(root)), read_only=True) as con:
        assert con.execute("select count(*), count(distinct customer_id) from analytics.customer_clv").fetchone() == (
            customers,
            customers,
        )
        assert con.execute("select count(*) from analytics.customer_churn_scores").fetchone()[0] == churn_customers
        assert (
            con.execute(
                "select count(*) from analytics.customer_clv c join marts.dim_customers d using (customer_id)"
            ).fetchone()[0]
            == customers
        )


def test_groups_form_no_cycle_and_every_check_is_described():
    graph = pipeline_definitions(Path("/nonexistent-data-dir")).resolve_asset_graph()
    group_of = {key: graph.get(key).group_name for key in graph.materializable_asset_keys}
    edges = {
        (group_of[parent], group)
        for key, group in group_of.items()
        for parent in graph.get(key).parent_keys
        if parent in group_of and group_of[parent] != group
    }
    order = ["ingestion", "reference", "staging", "intermediate", "marts", "analytics", "scored", "publish"]
    backwards = [(a, b) for a, b in edges if a in order and b in order and order.index(a) > order.index(b)]
    assert backwards == [], "the lineage reads layer after layer, analytics after the marts it reads"
    undescribed = [key for key in graph.asset_check_keys if not graph.get_check_spec(key).description]
    assert undescribed == []


def test_dbt_assets_show_real_column_types_and_storage_name(built_pipeline):
    with pipeline_instance(built_pipeline.root) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["marts", "dim_customers"]))
    metadata = event.asset_materialization.metadata
    assert metadata["dagster/table_name"].value == "crm.marts.dim_customers", "the warehouse file's catalog"
    columns = {c.name: c for c in metadata["dagster/column_schema"].value.columns}
    assert columns["customer_id"].type == "varchar" and columns["revenue"].type.startswith("decimal")
    assert all(c.type != "?" for c in columns.values())
    assert columns["customer_id"].description
