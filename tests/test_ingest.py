"""Contract-checked ingestion on hand-made landing files."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crm_warehouse import ingest as ingest_module
from crm_warehouse.contracts import (
    CATALOG_PRODUCTS,
    CONTRACTS,
    CRM_CUSTOMERS,
    ORDERS_ORDER_LINES,
    ORDERS_ORDERS,
    SUPPORT_TICKETS,
    SURVEYS_RESPONSES,
)
from crm_warehouse.ingest import IngestionError, ingest_all, ingest_table, source_freshness
from crm_warehouse.settings import load_settings

DAY = "2024-03-01"

CUSTOMER = {
    "customer_id": "C1",
    "name_zh": "张伟",
    "name_latin": "Zhang Wei",
    "gender": "M",
    "birth_date": "1980-01-01",
    "city": "北京",
    "customer_type": "consumer",
    "acquisition_channel": "store",
    "signup_at": "2024-03-01 10:00:00",
    "email": "zw@example.com",
    "phone": "13800000000",
    "national_id": "110101198001010011",
    "estimated_annual_wallet": "5000.00",
    "status": "active",
    "closed_at": "",
    "close_reason": "",
    "updated_at": "2024-03-01 10:00:00",
}
ORDER = {
    "order_id": "O1",
    "customer_id": "C1",
    "ordered_at": "2024-03-01 12:00:00",
    "channel": "store",
    "status": "completed",
}
LINE = {
    "order_id": "O1",
    "line_number": "1",
    "product_id": "P1",
    "category": "tea",
    "quantity": "2",
    "unit_price": "10.00",
    "discount_rate": "0.1",
    "unit_cost": "4.00",
}
PRODUCT = {
    "product_id": "P1",
    "product_name": "Green tea",
    "category": "tea",
    "list_price": "10.00",
    "unit_cost": "4.00",
    "updated_at": "2024-01-01 00:00:00",
}
TICKET = {
    "ticket_id": "T1",
    "customer_id": "C1",
    "opened_at": "2024-03-01 09:00:00",
    "first_response_at": "2024-03-01 09:05:00",
    "resolved_at": None,
    "channel": "phone",
    "ticket_type": "complaint",
    "category": "delivery",
    "fault_party": "company",
    "first_contact_resolved": False,
    "escalated": False,
    "satisfaction_after": None,
    "status": "open",
    "updated_at": "2024-03-01 09:05:00",
}


def csv_line(contract, row: dict[str, str]) -> str:
    return ",".join(row[c] for c in contract.column_names)


def write_csv(landing: Path, contract, lines: list[str], day: str = DAY, header: str | None = None) -> Path:
    path = landing / contract.file_name(day)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join([header or ",".join(contract.column_names), *lines]) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def quarantine(con, table: str) -> list[tuple[int, str]]:
    return con.execute(
        "select source_line, reason from raw.quarantine where source_table = ? order by source_line", [table]
    ).fetchall()


def records(con, table: str) -> dict[int, str]:
    """The quarantined lines of ``table`` as kept (raw_record), by line number."""
    return dict(
        con.execute("select source_line, raw_record from raw.quarantine where source_table = ?", [table]).fetchall()
    )


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    write_csv(path, CATALOG_PRODUCTS, [csv_line(CATALOG_PRODUCTS, PRODUCT)], day="2024-01-01")
    write_csv(path, CRM_CUSTOMERS, [csv_line(CRM_CUSTOMERS, CUSTOMER)])
    return path


@pytest.fixture
def con(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        yield connection


def load(con, landing: Path, *contracts):
    return [ingest_table(con, c, landing, run_id="test-run") for c in contracts]


def test_clean_files_load_typed_rows_with_lineage(con, landing):
    (products, customers) = load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS)
    assert (customers.rows_read, customers.rows_loaded, customers.rows_quarantined) == (1, 1, 0)
    row = con.execute(
        "select customer_id, estimated_annual_wallet, signup_at, _source_file, _source_line from raw.crm_customers"
    ).fetchone()
    assert row[0] == "C1"
    assert float(row[1]) == 5000.0
    assert row[2] == datetime(2024, 3, 1, 10, 0)
    assert row[3:] == (f"crm/{DAY}.csv", 2)
    assert products.table_rows == 1


def test_crm_contract_quarantines_each_breach_with_its_reason(con, landing):
    bad = [
        csv_line(CRM_CUSTOMERS, CUSTOMER),  # line 2: exact duplicate of the fixture's row
        csv_line(CRM_CUSTOMERS, {**CUSTOMER, "customer_id": ""}),  # 3
        csv_line(CRM_CUSTOMERS, {**CUSTOMER, "customer_id": "C2", "customer_type": "alien"}),  # 4
        csv_line(CRM_CUSTOMERS, {**CUSTOMER, "customer_id": "C3", "signup_at": "2024-13-45 00:00:00"}),  # 5
        csv_line(CRM_CUSTOMERS, {**CUSTOMER, "customer_id": "C4", "status": "closed"}),  # 6
        csv_line(CRM_CUSTOMERS, {**CUSTOMER, "customer_id": "C5", "updated_at": "2025-01-01 00:00:00"}),  # 7
        csv_line(CRM_CUSTOMERS, {**CUSTOMER, "customer_id": "C6", "name_latin": '"Wang "Lily" Fang"'}),  # 8
        csv_line(CRM_CUSTOMERS, {**CUSTOMER, "customer_id": "C7", "name_latin": '"Li, Na"'}),  # 9: valid
    ]
    write_csv(landing, CRM_CUSTOMERS, [csv_line(CRM_CUSTOMERS, CUSTOMER), *bad])
    (_, result) = load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS)
    reasons = dict(quarantine(con, "crm_customers"))
    assert reasons == {
        3: "duplicate key (customer_id, updated_at)",
        4: "missing required value: customer_id",
        5: "unknown customer_type",
        6: "bad type: signup_at=2024-13-45 00:00:00 is not TIMESTAMP",
        7: "closed account without closed_at or close_reason",
        8: "future date: updated_at is after the file's export date",
        9: "malformed CSV line: broken quoting or wrong number of fields (expected 17)",
    }
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (9, 2, 7)
    assert con.execute("select name_latin from raw.crm_customers where customer_id = 'C7'").fetchone() == ("Li, Na",)


def test_orders_and_lines_check_types_rules_and_foreign_keys(con, landing):
    write_csv(
        landing,
        ORDERS_ORDERS,
        [
            csv_line(ORDERS_ORDERS, ORDER),
            csv_line(ORDERS_ORDERS, {**ORDER, "order_id": "O2", "customer_id": "C999"}),
            csv_line(ORDERS_ORDERS, {**ORDER, "order_id": "O3", "ordered_at": "2024-03-02 00:00:01"}),
            csv_line(ORDERS_ORDERS, {**ORDER, "order_id": "O4", "channel": "pigeon"}),
        ],
    )
    write_csv(
        landing,
        ORDERS_ORDER_LINES,
        [
            csv_line(ORDERS_ORDER_LINES, LINE),
            csv_line(ORDERS_ORDER_LINES, {**LINE, "line_number": "2", "quantity": "-1"}),
            csv_line(ORDERS_ORDER_LINES, {**LINE, "line_number": "3", "quantity": "abc"}),
            csv_line(ORDERS_ORDER_LINES, {**LINE, "line_number": "4", "quantity": "1.5"}),
            csv_line(ORDERS_ORDER_LINES, {**LINE, "line_number": "5", "unit_price": "10.123"}),
            csv_line(ORDERS_ORDER_LINES, {**LINE, "line_number": "6", "order_id": "O2"}),
            csv_line(ORDERS_ORDER_LINES, {**LINE, "line_number": "7", "product_id": "P404"}),
            csv_line(ORDERS_ORDER_LINES, {**LINE, "line_number": "8", "discount_rate": "1.5"}),
            "O1,9,P1,tea,1,10",
        ],
    )
    results = load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS, ORDERS_ORDERS, ORDERS_ORDER_LINES)
    assert dict(quarantine(con, "orders_orders")) == {
        3: "orphan customer_id: not in crm_customers",
        4: "future date: ordered_at is after the file's export date",
        5: "unknown channel",
    }
    assert dict(quarantine(con, "orders_order_lines")) == {
        3: "non-positive quantity",
        4: "bad type: quantity=abc is not INTEGER",
        5: "bad type: quantity=1.5 is not INTEGER",
        6: "bad type: unit_price=10.123 is not DECIMAL(12,2)",
        7: "orphan order_id: not in orders_orders",
        8: "orphan product_id: not in catalog_products",
        9: "discount_rate outside [0, 1)",
        10: "malformed CSV line: expected 8 fields, found 6",
    }
    lines = results[-1]
    assert (lines.rows_read, lines.rows_loaded, lines.rows_quarantined) == (9, 1, 8)


def test_jsonl_tickets_quarantine_malformed_lines(con, landing):
    path = landing / SUPPORT_TICKETS.file_name(DAY)
    path.parent.mkdir(parents=True)
    lines = [
        json.dumps(TICKET),
        json.dumps({**TICKET, "ticket_id": "T2", "satisfaction_after": 9}),
        '{"ticket_id": "T3", "customer_id": "C1", broken',
        "[1, 2]",
        json.dumps({**TICKET, "ticket_id": "T4", "first_contact_resolved": "maybe"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (*_, tickets) = load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS, SUPPORT_TICKETS)
    assert dict(quarantine(con, "support_tickets")) == {
        2: "satisfaction_after outside 1-5",
        3: "malformed JSON",
        4: "JSON line is not an object",
        5: "bad type: first_contact_resolved=maybe is not BOOLEAN",
    }
    assert (tickets.rows_read, tickets.rows_loaded, tickets.rows_quarantined) == (5, 1, 4)
    assert con.execute("select escalated, resolved_at from raw.support_tickets").fetchone() == (False, None)
    # Each quarantined row keeps its line exactly as it is in the file.
    assert records(con, "support_tickets") == {2: lines[1], 3: lines[2], 4: lines[3], 5: lines[4]}


def test_parquet_surveys_are_checked_row_by_row(con, landing):
    path = landing / SURVEYS_RESPONSES.file_name(DAY)
    path.parent.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "response_id": ["S1", "S2", None],
                "customer_id": ["C1", "C1", "C1"],
                "responded_at": [datetime(2024, 3, 1, 10)] * 3,
                "csat": pa.array([5, 9, 4], pa.int32()),
                "nps": pa.array([10, 3, 7], pa.int32()),
                "expectation_score": [8.0, 7.0, 6.0],
                "perception_score": [9.0, 6.0, 6.0],
                "repurchase_intent": pa.array([5, 2, 3], pa.int32()),
            }
        ),
        path,
    )
    (*_, surveys) = load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS, SURVEYS_RESPONSES)
    assert dict(quarantine(con, "surveys_responses")) == {
        2: "csat outside 1-5",
        3: "missing required value: response_id",
    }
    assert (surveys.rows_read, surveys.rows_loaded, surveys.rows_quarantined) == (3, 1, 2)


def test_unterminated_quote_at_end_of_file_loses_nothing(con, landing):
    # DuckDB's read_csv drops such trailing lines without a reject; we must not.
    write_csv(
        landing,
        ORDERS_ORDERS,
        [
            csv_line(ORDERS_ORDERS, ORDER),
            'O2,"C1,2024-03-01 12:00:00,store,completed',
            csv_line(ORDERS_ORDERS, {**ORDER, "order_id": "O3"}),
        ],
    )
    (*_, orders) = load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS, ORDERS_ORDERS)
    assert (orders.rows_read, orders.rows_loaded, orders.rows_quarantined) == (3, 2, 1)
    assert [line for line, _ in quarantine(con, "orders_orders")] == [3]


def test_duckdb_reader_reads_plain_files_and_the_text_split_takes_a_file_whose_count_does_not_balance(con, landing):
    pigeon = csv_line(ORDERS_ORDERS, {**ORDER, "order_id": "O2", "channel": "pigeon"})
    write_csv(landing, ORDERS_ORDERS, [csv_line(ORDERS_ORDERS, ORDER), pigeon])
    # A line with too few fields: DuckDB's reader skips it, so it returns one row less than the file has lines.
    short = "O4,C1,2024-03-02 12:00:00"
    day2 = [
        csv_line(ORDERS_ORDERS, {**ORDER, "order_id": o, "ordered_at": "2024-03-02 12:00:00"}) for o in ("O3", "O5")
    ]
    write_csv(landing, ORDERS_ORDERS, [day2[0], short, day2[1]], day="2024-03-02")
    write_csv(
        landing,
        ORDERS_ORDERS,
        [csv_line(ORDERS_ORDERS, {**ORDER, "order_id": o}) for o in ("O6", "O7")],
        day="2024-03-03",
    )
    # A quote character: never given to the reader (it parses quoting more leniently than the contract).
    write_csv(
        landing,
        ORDERS_ORDERS,
        [csv_line(ORDERS_ORDERS, {**ORDER, "order_id": "O8", "channel": '"app"'})],
        day="2024-03-04",
    )
    (*_, orders) = load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS, ORDERS_ORDERS)
    assert {f.path: (f.read_by, f.rows_read, f.rows_loaded, f.rows_quarantined) for f in orders.files} == {
        "orders/2024-03-01_orders.csv": ("duckdb reader", 2, 1, 1),
        "orders/2024-03-02_orders.csv": ("text split", 3, 2, 1),
        "orders/2024-03-03_orders.csv": ("duckdb reader", 2, 2, 0),
        "orders/2024-03-04_orders.csv": ("text split", 1, 1, 0),
    }
    assert con.execute(
        "select order_id, _source_file[8:17], _source_line from raw.orders_orders order by 1"
    ).fetchall() == [
        ("O1", "2024-03-01", 2),
        ("O3", "2024-03-02", 2),
        ("O5", "2024-03-02", 4),
        ("O6", "2024-03-03", 2),
        ("O7", "2024-03-03", 3),
        ("O8", "2024-03-04", 2),
    ]
    assert con.execute(
        "select source_file[8:17], source_line, raw_record, reason from raw.quarantine order by 1"
    ).fetchall() == [
        ("2024-03-01", 3, pigeon, "unknown channel"),
        ("2024-03-02", 3, short, "malformed CSV line: expected 5 fields, found 3"),
    ]


def test_duckdb_reader_reads_json_lines_with_an_empty_line_and_crlf(con, landing):
    path = landing / SUPPORT_TICKETS.file_name(DAY)
    path.parent.mkdir(parents=True)
    lines = [json.dumps(TICKET), "", json.dumps({**TICKET, "ticket_id": "T2", "channel": "fax"}), "[1]"]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    (*_, tickets) = load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS, SUPPORT_TICKETS)
    assert [(f.read_by, f.rows_read, f.rows_loaded, f.rows_quarantined) for f in tickets.files] == [
        ("duckdb reader", 4, 1, 3)
    ]
    assert dict(quarantine(con, "support_tickets")) == {
        2: "empty line",
        3: "unknown channel",
        4: "JSON line is not an object",
    }
    assert records(con, "support_tickets") == {2: "", 3: lines[2], 4: "[1]"}


def test_files_are_loaded_exactly_once(con, landing):
    first = load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS)
    again = load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS)
    assert [r.rows_loaded for r in first] == [1, 1]
    assert [(len(r.files), r.skipped_files) for r in again] == [(0, 1), (0, 1)]
    assert con.execute("select count(*) from raw.crm_customers").fetchone() == (1,)
    write_csv(landing, CRM_CUSTOMERS, [csv_line(CRM_CUSTOMERS, {**CUSTOMER, "customer_id": "C2"})], day="2024-03-02")
    (newer,) = load(con, landing, CRM_CUSTOMERS)
    assert (len(newer.files), newer.skipped_files, newer.table_rows) == (1, 1, 2)
    ledger = con.execute(
        "select file_path, rows_read, rows_loaded, rows_quarantined from raw.ingestion_ledger "
        "where source_table = 'crm_customers' order by file_path"
    ).fetchall()
    assert ledger == [("crm/2024-03-01.csv", 1, 1, 0), ("crm/2024-03-02.csv", 1, 1, 0)]


def stamp(path: Path, hour: int) -> None:
    """Set the file's modification time to ``hour`` o'clock on 2024-03-02: old enough to be trusted."""
    then = datetime(2024, 3, 2, hour).timestamp()
    os.utime(path, (then, then))


@pytest.fixture
def scans(monkeypatch) -> list[str]:
    """The landing files ingestion reads (hashes) from here on, in order."""
    read: list[str] = []
    real_scan = ingest_module._scan_file

    def counting_scan(path, landing_dir):
        read.append(path.name)
        return real_scan(path, landing_dir)

    monkeypatch.setattr(ingest_module, "_scan_file", counting_scan)
    return read


def test_batches_hold_consecutive_files_up_to_the_byte_bound_and_a_larger_file_alone(landing):
    files = [ingest_module._scan_file(p, landing) for p in sorted(landing.rglob("*.csv"))]
    sized = [replace(files[0], size=size) for size in (10, 10, 30, 5, 5, 1)]
    batches = ingest_module._batches(sized, batch_bytes=20)
    assert [[f.size for f in batch] for batch in batches] == [[10, 10], [30], [5, 5, 1]]
    assert ingest_module._batches([], batch_bytes=20) == []


def test_batches_are_bounded_by_values_too(landing):
    """Lines x columns: 64 MiB are 177,665 tickets but 1.2 M order lines, and memory follows the values."""
    files = [ingest_module._scan_file(p, landing) for p in sorted(landing.rglob("*.csv"))]
    lined = [replace(files[0], size=1, newlines=lines) for lines in (3, 3, 10, 1, 1, 1)]
    batches = ingest_module._batches(lined, batch_bytes=100, batch_values=12, columns=2)
    assert [[f.newlines for f in batch] for batch in batches] == [[3, 3], [10], [1, 1, 1]]
    # No values bound (Parquet): bytes alone.
    assert len(ingest_module._batches(lined, batch_bytes=100, batch_values=None, columns=2)) == 1
    assert load_settings({"CRM_INGEST_BATCH_VALUES": "5"}).ingest_batch_values == 5
    with pytest.raises(ValueError, match="CRM_INGEST_BATCH_VALUES"):
        load_settings({"CRM_INGEST_BATCH_VALUES": "0"})


def test_batches_commit_in_order_and_each_sees_what_earlier_ones_loaded(con, landing, scans):
    stamp(landing / CRM_CUSTOMERS.file_name(DAY), hour=5)  # loaded and old enough to be skipped unread
    load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS)
    days = ["2024-03-02", "2024-03-03", "2024-03-04"]
    for number, day in enumerate(days, start=2):
        write_csv(landing, CRM_CUSTOMERS, [csv_line(CRM_CUSTOMERS, {**CUSTOMER, "customer_id": f"C{number}"})], day=day)
    # The last file repeats a customer of the first batch: batches see what earlier ones committed.
    write_csv(landing, CRM_CUSTOMERS, [csv_line(CRM_CUSTOMERS, {**CUSTOMER, "customer_id": "C2"})], day="2024-03-05")
    scans.clear()
    progress: list[str] = []
    result = ingest_table(con, CRM_CUSTOMERS, landing, run_id="batched", progress=progress.append, batch_bytes=1)
    assert sorted(scans) == [f"{day}.csv" for day in [*days, "2024-03-05"]]
    assert [m.split(",")[0] for m in progress] == [f"crm_customers: batch {n}/4" for n in range(1, 5)]
    assert [(f.path, f.rows_loaded, f.rows_quarantined) for f in result.files] == [
        ("crm/2024-03-02.csv", 1, 0),
        ("crm/2024-03-03.csv", 1, 0),
        ("crm/2024-03-04.csv", 1, 0),
        ("crm/2024-03-05.csv", 0, 1),
    ]
    assert quarantine(con, "crm_customers") == [(2, "duplicate key (customer_id, updated_at): already loaded")]


def test_ingest_all_batches_by_the_configured_values(tmp_path, landing, monkeypatch):
    """A file of one customer is 2 lines x (17 columns + 4 of judging): 42 values, two files a batch."""
    for number, day in enumerate(["2024-03-02", "2024-03-03", "2024-03-04"], start=2):
        write_csv(landing, CRM_CUSTOMERS, [csv_line(CRM_CUSTOMERS, {**CUSTOMER, "customer_id": f"C{number}"})], day=day)
    settings = load_settings(
        {"CRM_DATA_DIR": str(tmp_path / "data"), "CRM_LANDING_DIR": str(landing), "CRM_INGEST_BATCH_VALUES": "84"}
    )
    assert len(CRM_CUSTOMERS.columns) + ingest_module.JUDGING_COLUMNS == 21
    committed: list[list[str]] = []
    load_batch = ingest_module._load_batch

    def recording(con, contract, batch, *args):
        committed.append([f.relative for f in batch])
        return load_batch(con, contract, batch, *args)

    monkeypatch.setattr(ingest_module, "_load_batch", recording)
    (customers,) = ingest_all(settings, "values", tables=["crm_customers"])
    assert committed == [["crm/2024-03-01.csv", "crm/2024-03-02.csv"], ["crm/2024-03-03.csv", "crm/2024-03-04.csv"]]
    assert customers.rows_loaded == 4


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.table)
def test_judging_joins_by_hash_only(con, contract):
    """Every join of the judging is on equalities alone: a nested loop over the batch and the
    loaded keys took 91 s for 361,127 customers sent again (docs/performance.md)."""
    ingest_module.DuckDBRawStore(con).create_tables()
    fields = ", ".join(f"f_{c} varchar" for c in contract.column_names)
    con.execute(f"create temp table _parsed ({ingest_module.PARSED_COLUMNS}, _export_date date, {fields})")
    plan = "\n".join(row[1] for row in con.execute(f"explain {ingest_module.judge_sql(contract)}").fetchall())
    assert "HASH_JOIN" in plan
    assert not any(kind in plan for kind in ("NESTED_LOOP", "BLOCKWISE_NL", "PIECEWISE_MERGE", "CROSS_PRODUCT")), plan


def test_ingest_all_takes_exactly_the_tables_asked_for(tmp_path, landing):
    settings = load_settings({"CRM_DATA_DIR": str(tmp_path / "data"), "CRM_LANDING_DIR": str(landing)})
    assert ingest_all(settings, "none", tables=[]) == []
    (customers,) = ingest_all(settings, "one", tables=["crm_customers"])
    assert (customers.table, customers.rows_loaded) == ("crm_customers", 1)


def test_unchanged_files_are_skipped_without_being_read(con, landing, scans):
    customers = landing / CRM_CUSTOMERS.file_name(DAY)
    stamp(customers, hour=5)
    load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS)
    scans.clear()
    (again,) = load(con, landing, CRM_CUSTOMERS)
    assert (len(again.files), again.skipped_files, scans) == (0, 1, [])
    # The size-and-time rule (rsync's): content edited in place with both kept is not seen...
    customers.write_text(customers.read_text().replace("北京", "上海"), encoding="utf-8")
    stamp(customers, hour=5)
    (unseen,) = load(con, landing, CRM_CUSTOMERS)
    assert (len(unseen.files), scans) == (0, [])
    # ...and a new modification time makes the run read it and replace its rows.
    stamp(customers, hour=6)
    (edited,) = load(con, landing, CRM_CUSTOMERS)
    assert (len(edited.files), scans) == (1, [customers.name])
    assert con.execute("select city from raw.crm_customers").fetchall() == [("上海",)]


def test_a_touched_file_is_hashed_once_then_skipped_unread(con, landing, scans):
    customers = landing / CRM_CUSTOMERS.file_name(DAY)
    stamp(customers, hour=5)
    load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS)
    stamp(customers, hour=7)
    scans.clear()
    (touched,) = load(con, landing, CRM_CUSTOMERS)
    assert (len(touched.files), touched.skipped_files, scans) == (0, 1, [customers.name])
    scans.clear()
    (again,) = load(con, landing, CRM_CUSTOMERS)
    assert (again.skipped_files, scans) == (1, [])


def test_a_file_modified_just_now_is_hashed_again_next_run(con, landing, scans):
    load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS)
    assert con.execute(
        "select file_modified_ns from raw.ingestion_ledger where source_table = 'crm_customers'"
    ).fetchall() == [(None,)]
    scans.clear()
    (again,) = load(con, landing, CRM_CUSTOMERS)
    assert (len(again.files), again.skipped_files, scans) == (0, 1, [CRM_CUSTOMERS.file_name(DAY).split("/")[-1]])


def test_corrected_file_replaces_what_its_first_version_loaded(con, landing):
    load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS)
    write_csv(
        landing,
        CRM_CUSTOMERS,
        [
            csv_line(CRM_CUSTOMERS, {**CUSTOMER, "city": "上海"}),
            csv_line(CRM_CUSTOMERS, {**CUSTOMER, "customer_id": "C2"}),
        ],
    )
    (result,) = load(con, landing, CRM_CUSTOMERS)
    assert result.rows_loaded == 2
    assert con.execute("select customer_id, city from raw.crm_customers order by 1").fetchall() == [
        ("C1", "上海"),
        ("C2", "北京"),
    ]
    live = con.execute(
        "select count(*) from raw.ingestion_ledger where source_table = 'crm_customers' and superseded_at is null"
    ).fetchone()
    assert live == (1,)


def test_unreadable_file_is_refused_naming_it_and_keeps_earlier_data(con, landing):
    load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS)
    write_csv(landing, CRM_CUSTOMERS, ["C2,x"], day="2024-03-02", header="id,name")
    (result,) = load(con, landing, CRM_CUSTOMERS)
    assert [(f.path, f.outcome) for f in result.refused] == [("crm/2024-03-02.csv", "refused")]
    assert "header 'id,name' does not match the contract" in result.refused[0].message()
    bad_bytes = landing / CRM_CUSTOMERS.file_name("2024-03-02")
    bad_bytes.write_bytes(",".join(CRM_CUSTOMERS.column_names).encode() + b"\n\xff\xfe\x00bad\n")
    (result,) = load(con, landing, CRM_CUSTOMERS)
    assert [f.path for f in result.refused] == ["crm/2024-03-02.csv"]
    assert result.refused[0].reason.startswith("not UTF-8 (invalid byte 0xff at byte 187)")
    assert con.execute("select customer_id from raw.crm_customers").fetchall() == [("C1",)]
    assert con.execute("select count(*) from raw.ingestion_ledger").fetchone() == (2,)
    assert con.execute("select file_path, outcome from raw.unloaded_files").fetchall() == [
        ("crm/2024-03-02.csv", "refused")
    ]


def test_missing_landing_folder_gives_a_clear_error(con, tmp_path):
    with pytest.raises(IngestionError, match="does not exist"):
        ingest_table(con, CRM_CUSTOMERS, tmp_path / "nowhere")


def test_reloading_a_date_range_twice_gives_identical_tables(con, landing):
    write_csv(landing, ORDERS_ORDERS, [csv_line(ORDERS_ORDERS, ORDER), "O2,C1,bad-date,store,completed"])
    write_csv(
        landing,
        ORDERS_ORDERS,
        [csv_line(ORDERS_ORDERS, {**ORDER, "order_id": "O3", "ordered_at": "2024-03-02 08:00:00"})],
        day="2024-03-02",
    )
    load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS, ORDERS_ORDERS)

    def snapshot():
        return (
            con.execute("select order_id, _source_file, _source_line from raw.orders_orders order by 1").fetchall(),
            con.execute("select source_file, source_line, reason from raw.quarantine order by all").fetchall(),
            con.execute(
                "select file_path, rows_read, rows_loaded, rows_quarantined from raw.ingestion_ledger "
                "where superseded_at is null order by all"
            ).fetchall(),
        )

    before = snapshot()
    day = date(2024, 3, 1)
    for _ in range(2):
        result = ingest_table(con, ORDERS_ORDERS, landing, run_id="backfill", reload_dates=(day, day))
        assert ([f.path for f in result.files], result.skipped_files) == (["orders/2024-03-01_orders.csv"], 1)
        assert snapshot() == before


def test_freshness_compares_the_newest_record_with_the_latest_export(con, landing):
    write_csv(landing, ORDERS_ORDERS, [csv_line(ORDERS_ORDERS, ORDER)])
    write_csv(
        landing,
        CRM_CUSTOMERS,
        [
            csv_line(
                CRM_CUSTOMERS,
                {
                    **CUSTOMER,
                    "customer_id": "C2",
                    "signup_at": "2024-03-05 09:00:00",
                    "updated_at": "2024-03-05 09:00:00",
                },
            )
        ],
        day="2024-03-05",
    )
    load(con, landing, CATALOG_PRODUCTS, CRM_CUSTOMERS, ORDERS_ORDERS)
    # By default every source is judged against the warehouse's as-of date, the latest order's.
    assert source_freshness(con, ORDERS_ORDERS) == (date(2024, 3, 1), date(2024, 3, 1))
    assert source_freshness(con, CRM_CUSTOMERS) == (date(2024, 3, 5), date(2024, 3, 1))
    # With CRM_AS_OF_DATE at the CRM's export day, orders that stopped on 03-01 are four days behind.
    assert source_freshness(con, ORDERS_ORDERS, as_of=date(2024, 3, 5)) == (date(2024, 3, 1), date(2024, 3, 5))
    assert CATALOG_PRODUCTS.max_lag_days is None and ORDERS_ORDERS.max_lag_days == 2


def test_every_source_judged_for_freshness_has_a_time_column():
    from crm_warehouse.contracts import CONTRACTS

    assert [c.table for c in CONTRACTS if c.max_lag_days is not None and not c.loaded_at_field] == []


@pytest.mark.parametrize(
    ("straddling", "newlines", "plain_line_ends", "utf8_error"),
    [
        # A character of three bytes split by the 8 MiB read: valid UTF-8.
        ("中".encode(), 1, True, None),
        # CR at the end of one read, LF at the start of the next: one CRLF line end.
        (b"\r\n", 2, True, None),
        # A lone CR inside a line of an LF file, at the boundary: DuckDB's reader would split there.
        (b"\rx", 1, False, None),
        # Two bytes of a three-byte character, then ASCII: not UTF-8, found across the boundary.
        ("中".encode()[:2] + b"x", 1, True, "invalid byte 0xe4 at byte 8388607"),
    ],
)
def test_file_scan_reads_line_ends_and_characters_across_its_reads(
    tmp_path, straddling, newlines, plain_line_ends, utf8_error
):
    # The first 8 MiB read is ASCII up to the last byte, where `straddling` begins.
    chunk = 8 * 1024 * 1024
    data = b"a" * (chunk - 1) + straddling + b"b\n"
    path = tmp_path / "2024-01-01.csv"
    path.write_bytes(data)
    scanned = ingest_module._scan_file(path, tmp_path)
    assert scanned.newlines == newlines
    assert scanned.plain_line_ends is plain_line_ends
    assert scanned.has_quotes is False
    assert scanned.utf8_error == utf8_error
    assert scanned.content_hash == hashlib.sha256(data).hexdigest()
