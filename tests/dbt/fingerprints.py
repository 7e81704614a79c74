"""Fingerprints of built dbt models: what a rewrite of their SQL must leave unchanged.

A fingerprint is the row count and, per column, an order-independent hash of every
cell next to its row's key (so a value moved to another row changes it too).
Floating-point values are rounded to ``FLOAT_DIGITS`` decimals first: a sum taken in
another order may differ in its last bits. ``model_fingerprints.json`` holds the
fingerprints of the test company built with the SQL before the issue-15 rewrite;
print the current ones with

    python tests/dbt/fingerprints.py WAREHOUSE.duckdb
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

FINGERPRINTS_FILE = Path(__file__).with_name("model_fingerprints.json")
FLOAT_DIGITS = 6
# The slowest models (issue 15), whose SQL is rewritten for speed, with the columns that identify a row.
PINNED_MODELS: dict[str, tuple[str, ...]] = {
    "intermediate.int_customer_months__panel": ("customer_id", "month_start"),
    "intermediate.int_customer_months__activity": ("customer_id", "month_start"),
    "intermediate.int_customer_months__staged": ("customer_id", "month_start"),
    "marts.customer_lifecycle_history": ("customer_id", "month_start"),
    "marts.kpi_monthly": ("month_start",),
    "marts.fct_order_lines": ("order_line_id",),
    "intermediate.int_orders__aggregated": ("order_id",),
    "intermediate.int_order_days__sequenced": ("customer_id", "order_date"),
}


def _as_text(column: str, data_type: str) -> str:
    value = f"round({column}, {FLOAT_DIGITS})" if data_type in ("DOUBLE", "FLOAT") else column
    return f"coalesce(cast({value} as varchar), '<null>')"


def fingerprint(con: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...]) -> dict:
    """Row count and one hash per column of ``table`` (``schema.name``), rows identified by ``key``."""
    schema, name = table.split(".")
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_catalog = current_database() and table_schema = $s and table_name = $t order by ordinal_position",
        {"s": schema, "t": name},
    ).fetchall()
    if not columns:
        raise ValueError(f"{table} does not exist")
    row_key = " || '|' || ".join(f"cast({c} as varchar)" for c in key)
    hashes = ", ".join(
        f"cast(sum(md5_number_lower({row_key} || '|' || {_as_text(c, kind)})) as varchar)" for c, kind in columns
    )
    rows, *column_hashes = con.execute(f"select count(*), {hashes} from {table}").fetchone()
    return {"rows": rows, "columns": dict(zip([c for c, _ in columns], column_hashes, strict=True))}


def fingerprints(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """The fingerprint of every model in :data:`PINNED_MODELS`."""
    return {table: fingerprint(con, table, key) for table, key in PINNED_MODELS.items()}


if __name__ == "__main__":
    with duckdb.connect(sys.argv[1], read_only=True) as connection:
        print(json.dumps(fingerprints(connection), indent=2))
