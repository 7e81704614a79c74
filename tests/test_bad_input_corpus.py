"""A corpus of bad landing files, one test per kind: every file loads, is quarantined row by row,
is refused with a message, is listed as not recognised, or is ignored by rule; never lost.

Each kind is written into ``tmp_path`` at test time (no binary files in git) next to a
warehouse holding a clean baseline. After one ingestion run the test proves, per file:
rows read = loaded + quarantined, counted by Python's own readers (``io`` universal
newlines, ``csv``, ``json``, ``pyarrow``) rather than by the ingestion code; the
message or reason; that a valid file of the same source delivered in the same run
(the *companion*) still loads; and that the baseline rows are untouched.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_ingest import CUSTOMER

from crm_warehouse.contracts import (
    CATALOG_PRODUCTS,
    CONTRACTS,
    CRM_CUSTOMERS,
    MARKETING_TOUCHES,
    ORDERS_ORDER_LINES,
    ORDERS_ORDERS,
    SUPPORT_TICKETS,
    SURVEYS_RESPONSES,
    SourceContract,
)
from crm_warehouse.ingest import ingest_table

BASE_DAY, BAD_DAY, COMPANION_DAY = "2024-03-01", "2024-03-02", "2024-03-03"


def customer(customer_id: str, **changes: str) -> dict[str, str]:
    return {**CUSTOMER, "customer_id": customer_id, **changes}


def order(order_id: str, customer_id: str = "C1", **changes: str) -> dict[str, str]:
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "ordered_at": "2024-03-01 12:00:00",
        "channel": "store",
        "status": "completed",
        **changes,
    }


def line(order_id: str, number: int, **changes: str) -> dict[str, str]:
    return {
        "order_id": order_id,
        "line_number": str(number),
        "product_id": "P1",
        "category": "tea",
        "quantity": "2",
        "unit_price": "10.00",
        "discount_rate": "0.1",
        "unit_cost": "4.00",
        **changes,
    }


def ticket(ticket_id: str, customer_id: str = "C1", **changes: object) -> dict[str, object]:
    return {
        "ticket_id": ticket_id,
        "customer_id": customer_id,
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
        **changes,
    }


def survey_columns(ids: list[str], customers: list[str] | None = None) -> dict[str, pa.Array]:
    n = len(ids)
    return {
        "response_id": pa.array(ids, pa.string()),
        "customer_id": pa.array(customers or ["C1"] * n, pa.string()),
        "responded_at": pa.array([datetime(2024, 3, 1, 10)] * n, pa.timestamp("us")),
        "csat": pa.array([5] * n, pa.int32()),
        "nps": pa.array([9] * n, pa.int32()),
        "expectation_score": pa.array([8.0] * n),
        "perception_score": pa.array([9.0] * n),
        "repurchase_intent": pa.array([4] * n, pa.int32()),
    }


def touch(touch_id: str, customer_id: str = "C1") -> dict[str, str]:
    return {
        "touch_id": touch_id,
        "customer_id": customer_id,
        "campaign_id": "CP1",
        "campaign_name": "Spring",
        "channel": "sms",
        "touch_type": "promotion",
        "sent_at": "2024-03-01 08:00:00",
        "responded": "false",
        "responded_at": "",
    }


PRODUCT = {
    "product_id": "P1",
    "product_name": "Green tea",
    "category": "tea",
    "list_price": "10.00",
    "unit_cost": "4.00",
    "updated_at": "2024-01-01 00:00:00",
}


def csv_text(contract: SourceContract, rows: list[dict[str, str]], columns: list[str] | None = None) -> str:
    columns = columns or list(contract.column_names)
    return "\n".join([",".join(columns), *(",".join(r.get(c, "") for c in columns) for r in rows)]) + "\n"


def jsonl_text(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def parquet_bytes(columns: dict[str, pa.Array]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def utf8(text: str) -> bytes:
    return text.encode("utf-8")


# --- baseline and companions -------------------------------------------------------------------------------


def baseline_files() -> dict[str, bytes]:
    return {
        CATALOG_PRODUCTS.file_name("2024-01-01"): utf8(csv_text(CATALOG_PRODUCTS, [PRODUCT])),
        CRM_CUSTOMERS.file_name(BASE_DAY): utf8(csv_text(CRM_CUSTOMERS, [customer(c) for c in ("C1", "C2", "C3")])),
        ORDERS_ORDERS.file_name(BASE_DAY): utf8(csv_text(ORDERS_ORDERS, [order("O1"), order("O2", "C2")])),
        ORDERS_ORDER_LINES.file_name(BASE_DAY): utf8(
            csv_text(ORDERS_ORDER_LINES, [line("O1", 1), line("O1", 2), line("O2", 1)])
        ),
        SUPPORT_TICKETS.file_name(BASE_DAY): utf8(jsonl_text([ticket("T1"), ticket("T2", "C3")])),
        SURVEYS_RESPONSES.file_name(BASE_DAY): parquet_bytes(survey_columns(["S1"])),
        MARKETING_TOUCHES.file_name(BASE_DAY): utf8(csv_text(MARKETING_TOUCHES, [touch("M1")])),
    }


COMPANIONS: dict[str, tuple[str, bytes]] = {
    CRM_CUSTOMERS.table: (
        CRM_CUSTOMERS.file_name(COMPANION_DAY),
        utf8(csv_text(CRM_CUSTOMERS, [customer("C20")])),
    ),
    ORDERS_ORDERS.table: (ORDERS_ORDERS.file_name(COMPANION_DAY), utf8(csv_text(ORDERS_ORDERS, [order("O20")]))),
    ORDERS_ORDER_LINES.table: (
        ORDERS_ORDER_LINES.file_name(COMPANION_DAY),
        utf8(csv_text(ORDERS_ORDER_LINES, [line("O1", 20)])),
    ),
    SUPPORT_TICKETS.table: (SUPPORT_TICKETS.file_name(COMPANION_DAY), utf8(jsonl_text([ticket("T20")]))),
    SURVEYS_RESPONSES.table: (SURVEYS_RESPONSES.file_name(COMPANION_DAY), parquet_bytes(survey_columns(["S20"]))),
}


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every raw table's rows that came from the baseline files, without load times and run ids."""
    tables = {
        c.table: con.execute(
            f"select * exclude (_loaded_at, _run_id) from raw.{c.table} "
            f"where _source_file like '%{BASE_DAY}%' or _source_file like '%2024-01-01%' order by all"
        ).fetchall()
        for c in CONTRACTS
    }
    tables["quarantine"] = con.execute(
        "select * exclude (quarantined_at, run_id) from raw.quarantine order by all"
    ).fetchall()
    return tables


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, list[tuple]]]:
    root = tmp_path_factory.mktemp("baseline")
    landing = root / "landing"
    for relative, content in baseline_files().items():
        (landing / relative).parent.mkdir(parents=True, exist_ok=True)
        (landing / relative).write_bytes(content)
    warehouse = root / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        for contract in CONTRACTS:
            result = ingest_table(con, contract, landing, run_id="baseline")
            assert result.rows_quarantined == 0 and not result.refused, contract.table
        before = snapshot(con)
    return landing, warehouse, before


# --- the corpus --------------------------------------------------------------------------------------------

LOADS, QUARANTINED, REFUSED, NOT_RECOGNISED, IGNORED = "loads", "quarantined", "refused", "not_recognised", "ignored"


@dataclass(frozen=True)
class Kind:
    """One kind of bad input: the file(s) delivered and what must happen."""

    name: str
    contract: SourceContract
    outcome: str
    content: bytes | Callable[[], bytes]
    path: str | None = None  # default: the contract's file for BAD_DAY
    text: str = ""  # substring of the refusal message / quarantine reason / not-recognised reason
    loaded: int = 0
    quarantined: int = 0
    contract_changes: dict[str, object] = field(default_factory=dict)
    # Baseline rows expected to leave their table for the quarantine: (table, key value) pairs.
    moved: tuple[tuple[str, str], ...] = ()

    @property
    def relative(self) -> str:
        return self.path or self.contract.file_name(BAD_DAY)

    def data(self) -> bytes:
        return self.content() if callable(self.content) else self.content


C = CRM_CUSTOMERS
CUSTOMERS_2 = csv_text(C, [customer("C10"), customer("C11")])
GBK_CUSTOMERS = csv_text(
    C, [customer("C10", name_zh="王芳", city="上海"), customer("C11", name_zh="李娜", city="广州")]
)
LATIN1_CUSTOMERS = csv_text(C, [customer("C10", name_zh="", name_latin="Müller José", city="Zürich")])
TICKETS_2 = [ticket("T10"), ticket("T11")]


def csv_with(contract: SourceContract, rows: list[dict[str, str]], transform: Callable[[str], str]) -> bytes:
    return utf8(transform(csv_text(contract, rows)))


def reordered(contract: SourceContract, rows: list[dict[str, str]]) -> bytes:
    return utf8(csv_text(contract, rows, list(reversed(contract.column_names))))


def survey_bytes(**changes: pa.Array) -> Callable[[], bytes]:
    def build() -> bytes:
        columns = survey_columns(["S10", "S11"])
        for name, value in changes.items():
            if value is None:
                del columns[name]
            else:
                columns[name] = value
        return parquet_bytes(columns)

    return build


def reversed_survey() -> bytes:
    columns = survey_columns(["S10", "S11"])
    return parquet_bytes(dict(reversed(list(columns.items()))))


KINDS: list[Kind] = [
    # File names: recognised, refused by name, not recognised, ignored by rule.
    Kind("upper_case_extension", C, LOADS, utf8(CUSTOMERS_2), path="crm/2024-03-02.CSV", loaded=2),
    Kind(
        "mixed_case_extension",
        ORDERS_ORDERS,
        LOADS,
        utf8(csv_text(ORDERS_ORDERS, [order("O10")])),
        path="orders/2024-03-02_orders.Csv",
        loaded=1,
    ),
    Kind("impossible_date", C, REFUSED, utf8(CUSTOMERS_2), path="crm/2024-02-30.csv", text="is not a real date"),
    Kind("month_13", C, REFUSED, utf8(CUSTOMERS_2), path="crm/2024-13-01.csv", text="is not a real date"),
    Kind(
        "name_with_prefix",
        C,
        NOT_RECOGNISED,
        utf8(CUSTOMERS_2),
        path="crm/customers_2024-03-02.csv",
        text="name does not match crm/YYYY-MM-DD.csv",
    ),
    Kind("file_at_landing_root", C, NOT_RECOGNISED, utf8(CUSTOMERS_2), path="2024-03-02.csv", text="not in a source"),
    Kind("unknown_system_folder", C, NOT_RECOGNISED, utf8(CUSTOMERS_2), path="billing/2024-03-02.csv", text="billing"),
    Kind("sub_folder", C, NOT_RECOGNISED, utf8(CUSTOMERS_2), path="crm/archive/2024-03-02.csv", text="sub-folder"),
    Kind("wrong_extension", C, NOT_RECOGNISED, utf8(CUSTOMERS_2), path="crm/2024-03-02.txt", text="does not match"),
    Kind("compressed", C, NOT_RECOGNISED, b"\x1f\x8b\x08\x00", path="crm/2024-03-02.csv.gz", text="does not match"),
    Kind(
        "unknown_entity_suffix",
        ORDERS_ORDERS,
        NOT_RECOGNISED,
        utf8(CUSTOMERS_2),
        path="orders/2024-03-02_returns.csv",
        text="orders/YYYY-MM-DD_orders.csv or orders/YYYY-MM-DD_order_lines.csv",
    ),
    Kind("partial_upload", C, IGNORED, utf8(CUSTOMERS_2), path="crm/2024-03-02.csv.part"),
    Kind("temporary_file", C, IGNORED, utf8(CUSTOMERS_2), path="crm/2024-03-02.csv.tmp"),
    Kind("editor_backup", C, IGNORED, utf8(CUSTOMERS_2), path="crm/2024-03-02.csv~"),
    Kind("hidden_file", C, IGNORED, utf8(CUSTOMERS_2), path="crm/.2024-03-02.csv"),
    # Line ends, byte-order marks and encodings.
    Kind(
        "crlf_line_ends",
        C,
        LOADS,
        csv_with(C, [customer("C10"), customer("C11")], lambda t: t.replace("\n", "\r\n")),
        loaded=2,
    ),
    Kind(
        "cr_line_ends",
        C,
        LOADS,
        csv_with(C, [customer("C10"), customer("C11")], lambda t: t.replace("\n", "\r")),
        loaded=2,
    ),
    Kind("utf8_bom", C, LOADS, codecs.BOM_UTF8 + utf8(CUSTOMERS_2), loaded=2),
    Kind("utf8_bom_and_crlf", C, LOADS, codecs.BOM_UTF8 + utf8(CUSTOMERS_2.replace("\n", "\r\n")), loaded=2),
    Kind("no_final_line_end", C, LOADS, utf8(CUSTOMERS_2.rstrip("\n")), loaded=2),
    Kind("crlf_json_lines", SUPPORT_TICKETS, LOADS, utf8(jsonl_text(TICKETS_2).replace("\n", "\r\n")), loaded=2),
    Kind("bom_json_lines", SUPPORT_TICKETS, LOADS, codecs.BOM_UTF8 + utf8(jsonl_text(TICKETS_2)), loaded=2),
    Kind("gbk_text", C, REFUSED, GBK_CUSTOMERS.encode("gbk"), text="not UTF-8 (invalid byte 0xcd"),
    Kind("latin1_text", C, REFUSED, LATIN1_CUSTOMERS.encode("latin-1"), text="looks like Latin-1 (ISO-8859-1/cp1252)"),
    Kind("utf16_text", C, REFUSED, CUSTOMERS_2.encode("utf-16"), text="looks like UTF-16"),
    Kind(
        "utf16_converted_by_contract",
        C,
        LOADS,
        (CUSTOMERS_2 + csv_text(C, [customer("C12", name_zh="\u010a\u0a0a")]).split("\n", 1)[1]).encode("utf-16"),
        loaded=3,
        contract_changes={"encoding": "utf-16"},
    ),
    Kind(
        "gbk_json_lines",
        SUPPORT_TICKETS,
        REFUSED,
        jsonl_text([ticket("T10", category="物流")]).encode("gbk"),
        text="looks like GBK",
    ),
    Kind(
        "gbk_converted_by_contract",
        C,
        LOADS,
        GBK_CUSTOMERS.encode("gbk"),
        loaded=2,
        contract_changes={"encoding": "gb18030"},
    ),
    # Values: invisible characters, padding.
    Kind(
        "nul_in_field",
        C,
        QUARANTINED,
        utf8(csv_text(C, [customer("C10", name_latin="Zhang\x00Wei"), customer("C11")])),
        text="name_latin='Zhang\\x00Wei' contains control or invisible characters",
        loaded=1,
        quarantined=1,
    ),
    Kind(
        "tab_in_field",
        C,
        QUARANTINED,
        utf8(csv_text(C, [customer("C10", city="北\t京")])),
        text="city='北\\t京' contains control",
        quarantined=1,
    ),
    Kind(
        "stray_cr_in_field",
        C,
        QUARANTINED,
        utf8(csv_text(C, [customer("C10", name_latin="Zhang\rWei"), customer("C11")])),
        text="name_latin='Zhang\\rWei'",
        loaded=1,
        quarantined=1,
    ),
    Kind(
        "zero_width_space_in_key",
        C,
        QUARANTINED,
        utf8(csv_text(C, [customer("C10\u200b")])),
        text="customer_id='C10\\u200b' contains control or invisible",
        quarantined=1,
    ),
    Kind(
        "padded_key",
        C,
        QUARANTINED,
        utf8(csv_text(C, [customer(" C10 "), customer("C11")])),
        text="customer_id=' C10 ' has leading/trailing spaces",
        loaded=1,
        quarantined=1,
    ),
    Kind(
        "non_breaking_space_key",
        C,
        QUARANTINED,
        utf8(csv_text(C, [customer("C10\u00a0")])),
        text="customer_id='C10\\xa0' has leading/trailing spaces",
        quarantined=1,
    ),
    Kind(
        "ideographic_space_key",
        C,
        QUARANTINED,
        utf8(csv_text(C, [customer("\u3000C10")])),
        text="customer_id='\\u3000C10' has leading/trailing spaces",
        quarantined=1,
    ),
    Kind(
        "padded_foreign_key",
        ORDERS_ORDERS,
        QUARANTINED,
        utf8(csv_text(ORDERS_ORDERS, [order("O10", " C1")])),
        text="customer_id=' C1' has leading/trailing spaces; orphan customer_id",
        quarantined=1,
    ),
    Kind(
        "padded_key_trimmed_by_contract",
        C,
        LOADS,
        utf8(csv_text(C, [customer(" C10 ")])),
        loaded=1,
        contract_changes={"trim_values": True},
    ),
    Kind(
        "nul_escape_in_json",
        SUPPORT_TICKETS,
        QUARANTINED,
        utf8(jsonl_text([ticket("T10", category="deli\u0000very"), ticket("T11")])),
        text="category='deli\\x00very' contains control",
        loaded=1,
        quarantined=1,
    ),
    Kind(
        "nul_in_parquet_string",
        SURVEYS_RESPONSES,
        QUARANTINED,
        survey_bytes(response_id=pa.array(["S10\x00", "S11"])),
        text="response_id='S10\\x00'",
        loaded=1,
        quarantined=1,
    ),
    # Schema drift: the same rule in every format.
    Kind(
        "csv_extra_column",
        C,
        REFUSED,
        utf8(csv_text(C, [customer("C10", vip="y")], [*C.column_names, "vip"])),
        text="column(s) ['vip'] are not in the contract (extra_columns='refuse')",
    ),
    Kind(
        "csv_extra_column_ignored_by_contract",
        C,
        LOADS,
        utf8(csv_text(C, [customer("C10", vip="y")], [*C.column_names, "vip"])),
        loaded=1,
        contract_changes={"extra_columns": "ignore"},
    ),
    Kind(
        "csv_missing_column",
        C,
        REFUSED,
        utf8(csv_text(C, [customer("C10")], list(C.column_names[:-1]))),
        text="column(s) ['updated_at'] of the contract are missing",
    ),
    Kind("csv_reordered_columns", C, LOADS, reordered(C, [customer("C10"), customer("C11")]), loaded=2),
    Kind(
        "csv_duplicated_column",
        C,
        REFUSED,
        utf8(csv_text(C, [customer("C10")], [*C.column_names, "city"])),
        text="column(s) ['city'] appear more than once",
    ),
    Kind(
        "csv_header_in_other_case",
        C,
        REFUSED,
        utf8(csv_text(C, [customer("C10")]).replace("customer_id", "Customer_ID", 1)),
        text="['customer_id'] of the contract are missing",
    ),
    Kind(
        "parquet_extra_column",
        SURVEYS_RESPONSES,
        REFUSED,
        survey_bytes(channel=pa.array(["web", "app"])),
        text="column(s) ['channel'] are not in the contract",
    ),
    Kind(
        "parquet_extra_column_ignored_by_contract",
        SURVEYS_RESPONSES,
        LOADS,
        survey_bytes(channel=pa.array(["web", "app"])),
        loaded=2,
        contract_changes={"extra_columns": "ignore"},
    ),
    Kind(
        "parquet_missing_column",
        SURVEYS_RESPONSES,
        REFUSED,
        survey_bytes(nps=None),
        text="column(s) ['nps'] of the contract are missing",
    ),
    Kind("parquet_reordered_columns", SURVEYS_RESPONSES, LOADS, reversed_survey, loaded=2),
    Kind(
        "parquet_column_of_other_type",
        SURVEYS_RESPONSES,
        QUARANTINED,
        survey_bytes(csat=pa.array(["five", "4"])),
        text="bad type: csat=five is not INTEGER",
        loaded=1,
        quarantined=1,
    ),
    Kind(
        "json_extra_field",
        SUPPORT_TICKETS,
        REFUSED,
        utf8(jsonl_text([ticket("T10", vip=True)])),
        text="field(s) ['vip'] are not in the contract (extra_columns='refuse')",
    ),
    Kind(
        "json_extra_field_ignored_by_contract",
        SUPPORT_TICKETS,
        LOADS,
        utf8(jsonl_text([ticket("T10", vip=True)])),
        loaded=1,
        contract_changes={"extra_columns": "ignore"},
    ),
    Kind(
        "json_missing_field",
        SUPPORT_TICKETS,
        REFUSED,
        utf8(jsonl_text([{k: v for k, v in ticket("T10").items() if k != "escalated"}])),
        text="field(s) ['escalated'] of the contract are missing from every line",
    ),
    Kind(
        "json_reordered_fields",
        SUPPORT_TICKETS,
        LOADS,
        utf8(jsonl_text([dict(reversed(list(t.items()))) for t in TICKETS_2])),
        loaded=2,
    ),
    # Broken files and lines.
    Kind("empty_csv", C, REFUSED, b"", text="empty file: expected the header line"),
    Kind("header_only_csv", C, LOADS, utf8(csv_text(C, [])), loaded=0),
    Kind("empty_json_lines", SUPPORT_TICKETS, LOADS, b"", loaded=0),
    Kind(
        "truncated_parquet",
        SURVEYS_RESPONSES,
        REFUSED,
        lambda: survey_bytes()()[:-100],
        text="cannot be read as Parquet",
    ),
    Kind("csv_named_parquet", SURVEYS_RESPONSES, REFUSED, utf8(CUSTOMERS_2), text="cannot be read as Parquet"),
    Kind(
        "broken_quoting",
        C,
        QUARANTINED,
        utf8(CUSTOMERS_2 + 'C12,"Wang,Li\n'),
        text="malformed CSV line: broken quoting",
        loaded=2,
        quarantined=1,
    ),
    Kind(
        "blank_line_inside",
        C,
        QUARANTINED,
        utf8(CUSTOMERS_2.replace("\nC11", "\n\nC11")),
        text="empty line",
        loaded=2,
        quarantined=1,
    ),
    Kind(
        "malformed_json_line",
        SUPPORT_TICKETS,
        QUARANTINED,
        utf8(jsonl_text(TICKETS_2) + '{"ticket_id": "T12",\n'),
        text="malformed JSON",
        loaded=2,
        quarantined=1,
    ),
    Kind(
        "key_already_loaded",
        C,
        QUARANTINED,
        utf8(csv_text(C, [customer("C1"), customer("C10")])),
        text="duplicate key (customer_id, updated_at): already loaded",
        loaded=1,
        quarantined=1,
    ),
    # Re-delivery: a corrected file drops a parent row; its loaded children move to quarantine.
    Kind(
        "redelivered_orders_drop_an_order",
        ORDERS_ORDERS,
        LOADS,
        utf8(csv_text(ORDERS_ORDERS, [order("O1")])),
        path=ORDERS_ORDERS.file_name(BASE_DAY),
        loaded=1,
        text="orphan order_id: not in orders_orders any more",
        moved=(("orders_order_lines", "O2"),),
    ),
    Kind(
        "redelivered_customers_drop_a_customer",
        C,
        LOADS,
        utf8(csv_text(C, [customer("C1"), customer("C2")])),
        path=C.file_name(BASE_DAY),
        loaded=2,
        text="orphan customer_id: not in crm_customers any more",
        moved=(("support_tickets", "C3"),),
    ),
]


def independent_rows(contract: SourceContract, path: Path, encoding: str = "utf-8-sig") -> int:
    """Records in a file by Python's own reading: lines (minus the header), or the Parquet footer.

    A line ends in LF or CRLF; in a file with no LF at all, in CR (a CR inside a line of
    an LF file is part of the line, as the contract says).
    """
    if contract.format == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    text = path.read_bytes().decode(encoding)
    lines = text.split("\n") if "\n" in text else text.split("\r")
    if lines and lines[-1] == "":
        lines.pop()
    return max(len(lines) - (1 if contract.format == "csv" else 0), 0)


def independent_keys(contract: SourceContract, path: Path, encoding: str = "utf-8-sig") -> list[str]:
    """First key column of every record, parsed by ``csv``, ``json`` or ``pyarrow``."""
    key = contract.primary_key[0]
    if contract.format == "parquet":
        return pq.read_table(path).column(key).to_pylist()
    text = path.read_bytes().decode(encoding)
    if contract.format == "jsonl":
        return [json.loads(line)[key] for line in io.StringIO(text, newline=None) if line.strip()]
    return [row[key] for row in csv.DictReader(io.StringIO(text, newline=""))]


def ledger(con: duckdb.DuckDBPyConnection, path: str) -> tuple[int, int, int] | None:
    return con.execute(
        "select rows_read, rows_loaded, rows_quarantined from raw.ingestion_ledger "
        "where file_path = ? and superseded_at is null",
        [path],
    ).fetchone()


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_bad_input_kind(kind: Kind, baseline, tmp_path):
    base_landing, base_warehouse, before = baseline
    landing = tmp_path / "landing"
    shutil.copytree(base_landing, landing)
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(base_warehouse, warehouse)
    bad = landing / kind.relative
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(kind.data())
    companion_path, companion_bytes = COMPANIONS[kind.contract.table if kind.contract.table in COMPANIONS else C.table]
    contract = replace(kind.contract, **kind.contract_changes)
    if contract.encoding != "utf-8":
        # The companion is written in the encoding the contract declares, as the source would.
        companion_bytes = companion_bytes.decode("utf-8").encode(contract.encoding)
    (landing / companion_path).write_bytes(companion_bytes)

    with duckdb.connect(str(warehouse)) as con:
        results = {
            c.table: ingest_table(con, contract if c.table == contract.table else c, landing, run_id="corpus")
            for c in CONTRACTS
        }
        refused = {f.path: f for r in results.values() for f in r.refused}
        unrecognised = {f.path: f for r in results.values() for f in r.unrecognised}
        unloaded = dict(con.execute("select file_path, outcome || ': ' || reason from raw.unloaded_files").fetchall())
        entry = ledger(con, kind.relative)
        in_table = con.execute(
            f"select count(*) from raw.{contract.table} where _source_file = ?", [kind.relative]
        ).fetchone()[0]
        in_quarantine = con.execute(
            "select count(*) from raw.quarantine where source_table = ? and source_file = ?",
            [contract.table, kind.relative],
        ).fetchone()[0]
        reasons = [
            r
            for (r,) in con.execute("select reason from raw.quarantine where run_id = 'corpus' order by all").fetchall()
        ]
        after = snapshot(con)
        companion = ledger(con, companion_path)
        moved = [
            (table, key)
            for table, key in kind.moved
            for (n,) in [
                con.execute(
                    f"select count(*) from raw.{table} where {'order_id' if table.startswith('orders') else 'customer_id'} = ?",
                    [key],
                ).fetchone()
            ]
            if n == 0
        ]

    # The valid file delivered with it always loads: a bad file never blocks its batch.
    assert companion is not None and companion[1] == 1, (companion, refused)
    if kind.outcome in (LOADS, QUARANTINED):
        encoding = str(kind.contract_changes.get("encoding", "utf-8-sig"))
        rows = independent_rows(contract, bad, encoding)
        assert entry == (rows, kind.loaded, kind.quarantined), (entry, refused)
        assert (in_table, in_quarantine) == (kind.loaded, kind.quarantined)
        assert rows == in_table + in_quarantine
        assert kind.relative not in unloaded
        if kind.outcome == QUARANTINED:
            assert any(kind.text in r for r in reasons), reasons
        else:
            assert all(kind.text in r for r in reasons) if kind.moved else reasons == [], reasons
        if kind.outcome == LOADS and kind.loaded and not kind.contract_changes.get("trim_values"):
            loaded_keys = {
                k
                for (k,) in duckdb.connect(str(warehouse), read_only=True)
                .execute(
                    f"select {contract.primary_key[0]} from raw.{contract.table} where _source_file = ?",
                    [kind.relative],
                )
                .fetchall()
            }
            assert loaded_keys == set(independent_keys(contract, bad, encoding))
    else:
        assert entry is None and in_table == 0 and in_quarantine == 0
        if kind.outcome == REFUSED:
            assert kind.relative in refused, (refused, unrecognised)
            message = refused[kind.relative].message()
            assert kind.text in message and "\n" not in message, message
            assert message.startswith(f"{contract.table}: refused {kind.relative} ({bad.stat().st_size} bytes): ")
            assert unloaded[kind.relative].startswith("refused: ")
        elif kind.outcome == NOT_RECOGNISED:
            assert kind.relative in unrecognised, unrecognised
            assert kind.text in unrecognised[kind.relative].reason
            assert unloaded[kind.relative] == f"not_recognised: {unrecognised[kind.relative].reason}"
        else:
            assert kind.relative not in unloaded and kind.relative not in refused and kind.relative not in unrecognised
    # Earlier data is untouched: only the rows a re-delivery replaced or orphaned differ.
    if kind.moved:
        assert moved == list(kind.moved)
        changed = {contract.table, *(table for table, _ in kind.moved), "quarantine"}
        assert {t: rows for t, rows in after.items() if t not in changed} == {
            t: rows for t, rows in before.items() if t not in changed
        }
    else:
        assert after == {**before, "quarantine": after["quarantine"]}
        assert before["quarantine"] == []


def test_the_corpus_has_at_least_forty_kinds_of_every_outcome():
    outcomes = {k.outcome for k in KINDS}
    assert len(KINDS) >= 40 and len({k.name for k in KINDS}) == len(KINDS)
    assert outcomes == {LOADS, QUARANTINED, REFUSED, NOT_RECOGNISED, IGNORED}
