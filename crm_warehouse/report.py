"""A short, printable summary of what a warehouse holds."""

from __future__ import annotations

from pathlib import Path

import duckdb

from crm_warehouse.contracts import LEDGER_TABLE, QUARANTINE_TABLE, RAW_SCHEMA


def table_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    """(schema, table, rows) for every base table, in schema order."""
    tables = con.execute(
        """select table_schema, table_name from information_schema.tables
           where table_type = 'BASE TABLE' order by table_schema, table_name"""
    ).fetchall()
    return [
        (schema, name, con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0])
        for schema, name in tables
    ]


def summarise(warehouse_path: Path) -> str:
    """Text summary: rows per table by schema, quarantine by reason, files in the ledger."""
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        counts = table_counts(con)
        quarantine = con.execute(
            f"""select source_table, count(*) from {RAW_SCHEMA}.{QUARANTINE_TABLE}
                group by 1 order by 1"""
        ).fetchall()
        files = con.execute(f"select count(*) from {RAW_SCHEMA}.{LEDGER_TABLE} where superseded_at is null").fetchone()[
            0
        ]
    size_mb = warehouse_path.stat().st_size / 1e6
    lines = [f"Warehouse {warehouse_path} ({size_mb:.1f} MB), {files} landing files loaded"]
    schema = None
    for table_schema, name, rows in counts:
        if table_schema != schema:
            schema = table_schema
            lines.append(f"  {schema}:")
        lines.append(f"    {name:<36} {rows:>12,}")
    if quarantine:
        lines.append("  quarantined rows by source: " + ", ".join(f"{t} {n}" for t, n in quarantine))
    return "\n".join(lines)


def short_summary(warehouse_path: Path) -> str:
    """Two lines for the end of a run: size, customers, orders, files loaded, rows quarantined."""
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        counts = {f"{s}.{t}": n for s, t, n in table_counts(con)}
        quarantined = counts.get(f"{RAW_SCHEMA}.{QUARANTINE_TABLE}", 0)
        files = con.execute(f"select count(*) from {RAW_SCHEMA}.{LEDGER_TABLE} where superseded_at is null").fetchone()[
            0
        ]
    size_mb = warehouse_path.stat().st_size / 1e6
    customers = counts.get("marts.dim_customers", 0)
    orders = counts.get("marts.fct_orders", 0)
    return (
        f"Warehouse {warehouse_path} ({size_mb:.1f} MB): {customers:,} customers, {orders:,} orders, "
        f"{files} landing files loaded, {quarantined:,} rows quarantined"
    )
