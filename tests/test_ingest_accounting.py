"""Every landing file accounted for, the real cause named, runs never poisoned, quarantine limits."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_bad_input_corpus import (
    GBK_CUSTOMERS,
    baseline_files,
    csv_text,
    customer,
    line,
    survey_columns,
)

from crm_warehouse.contracts import (
    CONTRACTS,
    CRM_CUSTOMERS,
    ORDERS_ORDER_LINES,
    ORDERS_ORDERS,
    SURVEYS_RESPONSES,
)
from crm_warehouse.ingest import ingest_table, landing_inventory, quarantine_blocks, source_freshness
from crm_warehouse.report import summarise
from crm_warehouse.settings import load_settings
from orchestration.assets.ingestion import LANDING_FILES_CHECK, QUARANTINE_CHECK, ingestion_assets
from orchestration.resources import WarehouseResource


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    for relative, content in baseline_files().items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(content)
    return root


@pytest.fixture
def con(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        yield connection


def load_all(con, landing: Path, run_id: str = "run"):
    return {c.table: ingest_table(con, c, landing, run_id=run_id) for c in CONTRACTS}


def test_an_impossible_date_is_refused_by_name_and_never_blocks_later_runs(con, landing):
    (landing / "crm" / "2024-02-30.csv").write_text(csv_text(CRM_CUSTOMERS, [customer("C9")]), encoding="utf-8")
    for run in ("first", "second"):
        results = load_all(con, landing, run)
        assert [f.path for f in results["crm_customers"].refused] == ["crm/2024-02-30.csv"]
        assert "day is out of range for month" in results["crm_customers"].refused[0].reason
    assert con.execute("select count(*) from raw.ingestion_ledger where file_path like '%02-30%'").fetchone() == (0,)
    assert source_freshness(con, ORDERS_ORDERS) == (date(2024, 3, 1), date(2024, 3, 1))


def test_a_ledger_entry_with_an_impossible_date_from_an_older_version_is_repaired(con, landing):
    load_all(con, landing)
    # What an older version left behind: a loaded file named 2024-02-30 (its rows, its ledger entry).
    (landing / "crm" / "2024-03-05.csv").write_text(csv_text(CRM_CUSTOMERS, [customer("C9")]), encoding="utf-8")
    ingest_table(con, CRM_CUSTOMERS, landing, run_id="old")
    (landing / "crm" / "2024-03-05.csv").unlink()
    con.execute("update raw.crm_customers set _source_file = 'crm/2024-02-30.csv' where customer_id = 'C9'")
    con.execute(
        "update raw.ingestion_ledger set file_path = 'crm/2024-02-30.csv' where file_path = 'crm/2024-03-05.csv'"
    )

    result = ingest_table(con, CRM_CUSTOMERS, landing, run_id="repair")

    assert result.refused == [] and result.table_rows == 3
    assert con.execute("select source_file, reason from raw.quarantine where run_id = 'repair'").fetchall() == [
        (
            "crm/2024-02-30.csv",
            "loaded by an older version from a file whose name is not a real date; moved to quarantine",
        )
    ]
    assert con.execute(
        "select count(*) from raw.ingestion_ledger where file_path = 'crm/2024-02-30.csv' and superseded_at is null"
    ).fetchone() == (0,)
    assert source_freshness(con, CRM_CUSTOMERS)[0] == date(2024, 3, 1)
    again = ingest_table(con, CRM_CUSTOMERS, landing, run_id="after")
    assert (len(again.files), again.refused, again.skipped_files) == (0, [], 1)


def test_the_bad_file_of_a_batch_is_named_with_duckdbs_reason_and_the_others_load(con, landing):
    load_all(con, landing)
    # The bad file sorts between two good ones, so it is neither first nor last of the batch.
    days = ("2024-03-02", "2024-03-03", "2024-03-04")
    (landing / CRM_CUSTOMERS.file_name(days[0])).write_text(csv_text(CRM_CUSTOMERS, [customer("C10")]))
    (landing / CRM_CUSTOMERS.file_name(days[1])).write_bytes(GBK_CUSTOMERS.encode("gbk"))
    (landing / CRM_CUSTOMERS.file_name(days[2])).write_text(csv_text(CRM_CUSTOMERS, [customer("C12")]))
    pq.write_table(pa.table(survey_columns(["S10"])), landing / SURVEYS_RESPONSES.file_name(days[0]))
    corrupted = landing / SURVEYS_RESPONSES.file_name(days[1])
    write_corrupted_parquet(corrupted)
    pq.write_table(pa.table(survey_columns(["S12"])), landing / SURVEYS_RESPONSES.file_name(days[2]))
    # A column DuckDB cannot unify with the other files' (a struct where a timestamp should be):
    # the batch statement fails, so files are read one by one; this one loads, its row quarantined.
    odd = {**survey_columns(["S13"]), "responded_at": pa.array([{"at": datetime(2024, 3, 1)}])}
    pq.write_table(pa.table(odd), landing / SURVEYS_RESPONSES.file_name("2024-03-05"))

    results = load_all(con, landing, "batch")

    customers, surveys = results["crm_customers"], results["surveys_responses"]
    assert [f.path for f in customers.files] == ["crm/2024-03-02.csv", "crm/2024-03-04.csv"]
    assert [f.message() for f in customers.refused] == [
        f"crm_customers: refused crm/2024-03-03.csv ({len(GBK_CUSTOMERS.encode('gbk'))} bytes): not UTF-8 (invalid byte 0xcd at byte 191); "
        "looks like GBK (GB2312/GB18030): export it as UTF-8, or set the contract's encoding"
    ]
    assert [(f.path, f.rows_loaded, f.rows_quarantined) for f in surveys.files] == [
        ("surveys/2024-03-02.parquet", 1, 0),
        ("surveys/2024-03-04.parquet", 1, 0),
        ("surveys/2024-03-05.parquet", 0, 1),
    ]
    assert [f.message() for f in surveys.refused] == [
        f"surveys_responses: refused surveys/2024-03-03.parquet ({corrupted.stat().st_size} bytes): "
        "DuckDB cannot read it: "
        "don't know what type: \\x0f"
    ]
    assert con.execute("select response_id from raw.surveys_responses order by 1").fetchall() == [
        ("S1",),
        ("S10",),
        ("S12",),
    ]
    assert con.execute(
        "select count(*) from raw.quarantine where source_file = 'surveys/2024-03-03.parquet'"
    ).fetchone() == (0,)


def write_corrupted_parquet(path: Path) -> None:
    """A Parquet file whose footer reads but whose first data page is garbage."""
    pq.write_table(pa.table(survey_columns([f"S{i}" for i in range(50)])), path, use_dictionary=False)
    data = bytearray(path.read_bytes())
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)
    start, size = chunk.data_page_offset, chunk.total_compressed_size
    data[start + 20 : start + size - 2] = b"\xff" * (size - 22)
    path.write_bytes(bytes(data))


def test_a_refused_file_is_retried_and_loads_once_corrected(con, landing):
    load_all(con, landing)
    bad = landing / CRM_CUSTOMERS.file_name("2024-03-02")
    bad.write_bytes(GBK_CUSTOMERS.encode("gbk"))
    assert [f.path for f in ingest_table(con, CRM_CUSTOMERS, landing, run_id="1").refused] == ["crm/2024-03-02.csv"]
    bad.write_text(GBK_CUSTOMERS, encoding="utf-8")
    fixed = ingest_table(con, CRM_CUSTOMERS, landing, run_id="2")
    assert (fixed.refused, [f.rows_loaded for f in fixed.files]) == ([], [2])
    assert con.execute("select count(*) from raw.unloaded_files").fetchone() == (0,)


def test_a_redelivered_parent_file_moves_orphaned_children_and_nothing_else(con, landing):
    load_all(con, landing)
    lines_before = con.execute(
        "select * exclude (_loaded_at, _run_id) from raw.orders_order_lines where order_id = 'O1' order by all"
    ).fetchall()
    (landing / ORDERS_ORDERS.file_name("2024-03-01")).write_text(
        "order_id,customer_id,ordered_at,channel,status\nO1,C1,2024-03-01 12:00:00,store,completed\n"
    )
    results = load_all(con, landing, "redelivery")
    assert results["orders_orders"].rows_moved_to_quarantine == 1
    assert con.execute(
        "select source_file, source_line, reason from raw.quarantine where run_id = 'redelivery'"
    ).fetchall() == [
        (
            "orders/2024-03-01_order_lines.csv",
            4,
            "orphan order_id: not in orders_orders any more (its row was dropped by a re-delivered orders_orders file)",
        )
    ]
    assert (
        con.execute("select * exclude (_loaded_at, _run_id) from raw.orders_order_lines order by all").fetchall()
        == lines_before
    )
    # The lines file's ledger entry still adds up: 3 read = 2 loaded + 1 quarantined.
    assert con.execute(
        "select rows_read, rows_loaded, rows_quarantined from raw.ingestion_ledger "
        "where file_path = 'orders/2024-03-01_order_lines.csv' and superseded_at is null"
    ).fetchone() == (3, 2, 1)
    # A re-delivered lines file replaces its rows and its quarantine as before.
    (landing / ORDERS_ORDER_LINES.file_name("2024-03-01")).write_text(
        csv_text(ORDERS_ORDER_LINES, [line("O1", 1), line("O1", 2)])
    )
    lines = ingest_table(con, ORDERS_ORDER_LINES, landing, run_id="lines")
    assert [(f.rows_read, f.rows_loaded, f.rows_quarantined) for f in lines.files] == [(2, 2, 0)]
    assert con.execute("select count(*) from raw.quarantine").fetchone() == (0,)


def test_every_file_under_the_landing_folder_is_classified(landing):
    for relative in ("crm/2024-03-02.CSV", "crm/notes.txt", "x/2024-03-02.csv", "crm/.hidden", "crm/a.csv.part"):
        (landing / relative).parent.mkdir(parents=True, exist_ok=True)
        (landing / relative).write_text("x")
    (landing / "crm" / "_SUCCESS").write_text("")
    inventory = landing_inventory(landing)
    listed = sum(len(paths) for paths in inventory.relative_files.values())
    every = [p for p in landing.rglob("*") if p.is_file()]
    assert listed + len(inventory.unrecognised) + len(inventory.refused_by_name) + len(inventory.ignored) == len(every)
    assert sorted(inventory.ignored) == ["crm/.hidden", "crm/_SUCCESS", "crm/a.csv.part"]
    assert sorted(f.path for f in inventory.unrecognised) == ["crm/notes.txt", "x/2024-03-02.csv"]


@pytest.mark.parametrize(
    ("read", "quarantined", "blocks"),
    [(9, 1, False), (19, 19, False), (100, 20, True), (1000, 20, False), (1000, 51, True), (400, 20, False)],
)
def test_quarantine_rate_blocks_only_from_the_minimum_count(read, quarantined, blocks):
    assert quarantine_blocks(read, quarantined, max_rate=0.05, min_rows=20) is blocks


def test_quarantine_limits_come_from_the_one_configuration():
    settings = load_settings(
        {
            "CRM_DATA_DIR": "/tmp/x",
            "CRM_MIN_QUARANTINE_ROWS": "5",
            "CRM_MAX_QUARANTINE_RATE": "0.1",
            "CRM_MAX_QUARANTINE_RATE_SURVEYS_RESPONSES": "0.5",
        }
    )
    assert (settings.min_quarantine_rows, settings.max_quarantine_rate) == (5, 0.1)
    assert settings.max_quarantine_rate_per_source == {"surveys_responses": 0.5}
    resource = WarehouseResource.from_settings(settings)
    assert (resource.quarantine_rate_for("surveys_responses"), resource.quarantine_rate_for("crm_customers")) == (
        0.5,
        0.1,
    )
    assert load_settings({"CRM_DATA_DIR": "/tmp/x"}).min_quarantine_rows == 20
    with pytest.raises(ValueError, match="CRM_MAX_QUARANTINE_RATE_SURVEY_RESPONSES: no raw table 'survey_responses'"):
        load_settings({"CRM_MAX_QUARANTINE_RATE_SURVEY_RESPONSES": "0.5"})
    with pytest.raises(ValueError, match="must be a share between 0 and 1"):
        load_settings({"CRM_MAX_QUARANTINE_RATE_CRM_CUSTOMERS": "5"})


def test_ingestion_checks_report_unloaded_files_and_small_batches_pass(tmp_path, landing):
    (landing / "crm" / "customers_2024-03-02.csv").write_text("x")
    (landing / "surveys" / "2024-03-02.parquet").write_text("not parquet")
    # One bad survey out of two rows: 50 %, but a single row is below the minimum count.
    bad = {**survey_columns(["S10", "S11"]), "csat": pa.array([5, 9], pa.int32())}
    pq.write_table(pa.table(bad), landing / "surveys" / "2024-03-03.parquet")
    settings = load_settings(
        {"CRM_DATA_DIR": str(tmp_path), "CRM_LANDING_DIR": str(landing), "CRM_AS_OF_DATE": "2024-03-03"}
    )
    warehouse = WarehouseResource.from_settings(settings)
    result = dg.materialize(ingestion_assets, resources={"warehouse": warehouse}, raise_on_error=False)
    assert result.success
    checks = {
        (c.asset_key.path[-1], c.check_name): c
        for c in (
            e.event_specific_data
            for e in result.all_events
            if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
    }
    crm = checks[("crm_customers", LANDING_FILES_CHECK)]
    assert (crm.passed, crm.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert "not recognised crm/customers_2024-03-02.csv (1 bytes): name does not match" in crm.description
    surveys = checks[("surveys_responses", LANDING_FILES_CHECK)]
    assert (surveys.passed, surveys.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert "refused surveys/2024-03-02.parquet" in surveys.description
    assert checks[("orders_orders", LANDING_FILES_CHECK)].passed
    rate = checks[("surveys_responses", QUARANTINE_CHECK)]
    assert rate.passed and rate.metadata["rows_quarantined"].value == 1
    summary = summarise(settings, result.run_id)
    assert "quarantined in this run:\n    surveys_responses: 1 rows\n             1  csat outside 1-5" in summary
    assert "refused: surveys/2024-03-02.parquet: cannot be read as Parquet" in summary
    assert "not recognised: crm/customers_2024-03-02.csv: name does not match crm/YYYY-MM-DD.csv" in summary


def test_the_landing_sensor_sees_upper_case_extensions_too(landing):
    from crm_warehouse.landing_watch import scan_landing

    (landing / "crm" / "2024-03-02.CSV").write_text(csv_text(CRM_CUSTOMERS, [customer("C10")]))
    assert "crm/2024-03-02.CSV" in {f.path for f in scan_landing(landing).files}


def test_unloaded_files_show_the_latest_state(con, landing):
    stray = [landing / "2024-03-02.csv", landing / "crm" / "notes.txt"]
    for path in stray:
        path.write_text("x")
    load_all(con, landing)
    assert con.execute("select distinct file_path, outcome from raw.unloaded_files order by 1").fetchall() == [
        ("2024-03-02.csv", "not_recognised"),
        ("crm/notes.txt", "not_recognised"),
    ]
    for path in stray:
        path.unlink()
    load_all(con, landing, "later")
    assert con.execute("select count(*) from raw.unloaded_files").fetchone() == (0,)


def test_a_refused_redelivery_leaves_the_loaded_version_in_place(con, landing):
    load_all(con, landing)
    before = con.execute("select * exclude (_loaded_at, _run_id) from raw.crm_customers order by all").fetchall()
    (landing / CRM_CUSTOMERS.file_name("2024-03-01")).write_bytes(GBK_CUSTOMERS.encode("gbk"))
    result = ingest_table(con, CRM_CUSTOMERS, landing, run_id="redelivered")
    assert [f.path for f in result.refused] == ["crm/2024-03-01.csv"]
    assert (
        con.execute("select * exclude (_loaded_at, _run_id) from raw.crm_customers order by all").fetchall() == before
    )
    assert con.execute(
        "select rows_loaded from raw.ingestion_ledger where file_path = 'crm/2024-03-01.csv' and superseded_at is null"
    ).fetchall() == [(3,)]


def test_the_command_line_exits_1_when_a_file_is_refused_and_lists_it(tmp_path, landing, capsys):
    from crm_warehouse.ingest import main

    (landing / "crm" / "2024-02-30.csv").write_text(csv_text(CRM_CUSTOMERS, [customer("C9")]))
    assert main(["--landing", str(landing), "--warehouse", str(tmp_path / "cli.duckdb")]) == 1
    out = capsys.readouterr().out
    assert "crm_customers: refused crm/2024-02-30.csv" in out
    assert main(["--landing", str(landing), "--warehouse", str(tmp_path / "cli.duckdb")]) == 1
    (landing / "crm" / "2024-02-30.csv").unlink()
    assert main(["--landing", str(landing), "--warehouse", str(tmp_path / "cli.duckdb")]) == 0


def test_the_encoding_is_guessed_from_the_text_around_the_first_bad_byte(con, landing):
    ascii_rows = [customer(f"C{n}", name_zh="", city="Beijing") for n in range(100, 1200)]
    gbk_row = customer("C99", name_zh="王芳", city="上海")
    text = csv_text(CRM_CUSTOMERS, [*ascii_rows, gbk_row])
    assert len(text) > 1 << 17
    (landing / CRM_CUSTOMERS.file_name("2024-03-02")).write_bytes(text.encode("gbk"))
    (refused,) = ingest_table(con, CRM_CUSTOMERS, landing, run_id="r").refused
    assert "looks like GBK" in refused.reason


def test_freshness_has_no_as_of_date_before_any_order_is_loaded(con, landing):
    ingest_table(con, CRM_CUSTOMERS, landing, run_id="r")
    assert source_freshness(con, CRM_CUSTOMERS) == (date(2024, 3, 1), None)
