"""A short, printable summary of what a warehouse holds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from crm_warehouse.contracts import LEDGER_TABLE, QUARANTINE_TABLE, RAW_SCHEMA, UNLOADED_FILES_TABLE
from crm_warehouse.warehouse.catalog import WarehouseSql, base_tables, table_exists
from crm_warehouse.warehouse.duckdb_connection import connect
from crm_warehouse.warehouse.spark import SparkSqlConnection
from crm_warehouse.warehouse.sql import qualified_name

if TYPE_CHECKING:
    from crm_warehouse.settings import Settings

# Reasons listed per source in a run's summary; the rest are counted.
REASONS_LISTED = 10


def table_counts(con: WarehouseSql) -> list[tuple[str, str, int]]:
    """(schema, table, rows) for every base table, in schema order."""
    return [
        (schema, name, con.execute(f"select count(*) from {qualified_name(schema, name)}").fetchone()[0])
        for schema, name in base_tables(con)
    ]


def run_quarantine(con: WarehouseSql, run_id: str) -> list[tuple[str, str, int]]:
    """(source table, reason, rows) quarantined by run ``run_id``, biggest first per source."""
    return con.execute(
        f"""select source_table, reason, count(*) from {RAW_SCHEMA}.{QUARANTINE_TABLE}
            where run_id = $run_id group by 1, 2 order by 1, 3 desc, 2""",
        {"run_id": run_id},
    ).fetchall()


def unloaded_files(con: WarehouseSql) -> list[tuple[str, str, str]]:
    """(outcome, file, reason) of the landing files the latest runs did not load."""
    if not table_exists(con, RAW_SCHEMA, UNLOADED_FILES_TABLE):
        return []
    return con.execute(
        f"select distinct outcome, file_path, reason from {RAW_SCHEMA}.{UNLOADED_FILES_TABLE} order by 1 desc, 2"
    ).fetchall()


def _quarantine_lines(rows: list[tuple[str, str, int]]) -> list[str]:
    lines: list[str] = []
    by_table: dict[str, list[tuple[str, int]]] = {}
    for table, reason, count in rows:
        by_table.setdefault(table, []).append((reason, count))
    for table, reasons in by_table.items():
        lines.append(f"    {table}: {sum(n for _, n in reasons):,} rows")
        lines += [f"      {n:>8,}  {reason}" for reason, n in reasons[:REASONS_LISTED]]
        rest = reasons[REASONS_LISTED:]
        if rest:
            lines.append(f"      {sum(n for _, n in rest):>8,}  ({len(rest)} other reasons)")
    return lines


@contextmanager
def _warehouse(settings: Settings) -> Iterator[tuple[WarehouseSql, str]]:
    """A reading connection to the configured warehouse, and how to name it: the DuckDB file with its
    size, or Spark's Thrift server."""
    if settings.engine == "spark":
        with SparkSqlConnection(settings) as con:
            yield con, f"on Spark at {settings.spark_thrift_host}:{settings.spark_thrift_port}"
    else:
        path = settings.warehouse_path
        with connect(settings, path, read_only=True) as con:
            yield con, f"{path} ({path.stat().st_size / 1e6:.1f} MB)"


def summarise(settings: Settings, run_id: str | None = None) -> str:
    """Text summary: rows per table by schema, quarantine by reason, files in the ledger.

    With ``run_id``: also what that run quarantined (rows per reason per source) and
    the landing files not loaded (refused or not recognised).
    """
    with _warehouse(settings) as (con, where):
        counts = table_counts(con)
        quarantine = con.execute(
            f"""select source_table, count(*) from {RAW_SCHEMA}.{QUARANTINE_TABLE}
                group by 1 order by 1"""
        ).fetchall()
        files = con.execute(f"select count(*) from {RAW_SCHEMA}.{LEDGER_TABLE} where superseded_at is null").fetchone()[
            0
        ]
        this_run = _run_lines(con, run_id) if run_id else []
    lines = [f"Warehouse {where}, {files} landing files loaded"]
    schema = None
    for table_schema, name, rows in counts:
        if table_schema != schema:
            schema = table_schema
            lines.append(f"  {schema}:")
        lines.append(f"    {name:<36} {rows:>12,}")
    if quarantine:
        lines.append("  quarantined rows by source: " + ", ".join(f"{t} {n}" for t, n in quarantine))
    return "\n".join(lines + this_run)


def _run_lines(con: WarehouseSql, run_id: str) -> list[str]:
    """What run ``run_id`` quarantined (rows per reason per source) and the landing files not loaded."""
    quarantined = run_quarantine(con, run_id)
    unloaded = unloaded_files(con)
    lines = [
        f"  quarantined in this run: {'none' if not quarantined else ''}".rstrip(),
        *_quarantine_lines(quarantined),
    ]
    if unloaded:
        lines.append(f"  landing files not loaded ({len(unloaded)}; see raw.unloaded_files):")
        lines += [f"    {outcome.replace('_', ' ')}: {path}: {reason}" for outcome, path, reason in unloaded]
    return lines


def short_summary(settings: Settings, run_id: str | None = None) -> str:
    """The end of a run: size, customers, orders, files loaded, rows quarantined; with ``run_id``
    also what that run quarantined and why, and the landing files it did not load."""
    with _warehouse(settings) as (con, where):
        this_run = _run_lines(con, run_id) if run_id else []
        counts = {f"{s}.{t}": n for s, t, n in table_counts(con)}
        quarantined = counts.get(f"{RAW_SCHEMA}.{QUARANTINE_TABLE}", 0)
        files = con.execute(f"select count(*) from {RAW_SCHEMA}.{LEDGER_TABLE} where superseded_at is null").fetchone()[
            0
        ]
    customers = counts.get("marts.dim_customers", 0)
    orders = counts.get("marts.fct_orders", 0)
    headline = (
        f"Warehouse {where}: {customers:,} customers, {orders:,} orders, "
        f"{files} landing files loaded, {quarantined:,} rows quarantined"
    )
    return "\n".join([headline, *this_run])
