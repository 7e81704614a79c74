"""Write-audit-publish: copy audited tables from the working warehouse to the serving file.

Runs build and check everything in the working warehouse. Only then are the BI-facing
schemas copied (score tables: each customer's current row only, see
:data:`CURRENT_ROWS_ONLY`) into a NEW DuckDB file, which is renamed over the serving file in one
``os.replace``. A BI session that has the old file open keeps reading the old
snapshot; the next one opens the new file whole. A failure before the rename leaves
the previous serving copy untouched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from crm_warehouse.warehouse.sql import safe_identifier

log = logging.getLogger(__name__)

# Schemas BI tools see. Raw, staging and intermediate hold personal data in clear
# and stay in the working warehouse.
PUBLISHED_SCHEMAS: tuple[str, ...] = ("marts", "analytics")
# Column names that would carry personal data in clear; marts hold masked forms only.
CLEAR_PII_COLUMNS = frozenset({"name_zh", "name_latin", "email", "phone", "national_id", "birth_date"})
PUBLISH_LOG = "publish_log"
# Tables the working warehouse keeps as history (one row per customer per scoring
# run); BI gets each customer's latest row only, by (key column, time column), the
# same rule as the dbt staging models that read them. The history stays in the
# working warehouse.
CURRENT_ROWS_ONLY: dict[tuple[str, str], tuple[str, str]] = {
    ("analytics", "customer_clv"): ("customer_id", "scored_at"),
    ("analytics", "customer_churn_scores"): ("customer_id", "scored_at"),
}


class PublishError(RuntimeError):
    """The serving copy could not be built; the previous one is untouched."""


@dataclass(frozen=True)
class PublishResult:
    serving_path: Path
    run_id: str
    row_counts: dict[str, int]
    checks_passed: int


def _identifier(name: str) -> str:
    try:
        return safe_identifier(name)
    except ValueError:
        raise PublishError(f"refusing to publish an unsafe table name: {name!r}") from None


def publishable_tables(
    con: duckdb.DuckDBPyConnection, schemas: Sequence[str] = PUBLISHED_SCHEMAS
) -> list[tuple[str, str]]:
    """(schema, table) of the tables and views to publish, from the working warehouse."""
    return con.execute(
        """select table_schema, table_name from information_schema.tables
           where table_catalog = current_database() and list_contains($schemas, table_schema)
           order by 1, 2""",
        {"schemas": list(schemas)},
    ).fetchall()


def published_rows_sql(schema: str, table: str) -> str:
    """The query whose rows the serving copy of ``schema.table`` holds."""
    name = f"{_identifier(schema)}.{_identifier(table)}"
    if (schema, table) not in CURRENT_ROWS_ONLY:
        return f"select * from {name}"
    key, at = map(_identifier, CURRENT_ROWS_ONLY[(schema, table)])
    return f"select * from {name} qualify row_number() over (partition by {key} order by {at} desc) = 1"


def _path_literal(path: Path) -> str:
    # ATTACH takes no bound parameters; quote the path as a SQL string literal.
    return "'" + str(path).replace("'", "''") + "'"


def _check_no_clear_pii(con: duckdb.DuckDBPyConnection, tables: list[tuple[str, str]]) -> None:
    found = con.execute(
        """select table_schema || '.' || table_name || '.' || column_name from information_schema.columns
           where table_catalog = current_database()
             and list_contains($schemas, table_schema) and list_contains($names, column_name)""",
        {"schemas": sorted({s for s, _ in tables}), "names": sorted(CLEAR_PII_COLUMNS)},
    ).fetchall()
    if found:
        raise PublishError(
            "personal data in clear would reach BI: "
            + ", ".join(r[0] for r in found)
            + " (publish masked columns only)"
        )


def publish(
    warehouse: duckdb.DuckDBPyConnection,
    serving_path: Path,
    run_id: str,
    checks_passed: int,
    schemas: Sequence[str] = PUBLISHED_SCHEMAS,
) -> PublishResult:
    """Build a new serving file from ``warehouse`` and swap it in atomically.

    ``warehouse`` is an open connection to the working warehouse (the run's single
    writer). The new file also carries ``publish_log``: the history of earlier
    publishes plus one row per published table of this run.
    """
    serving_path = Path(serving_path)
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    tables = publishable_tables(warehouse, schemas)
    if not tables:
        raise PublishError(f"nothing to publish: no tables in schemas {list(schemas)} of the working warehouse")
    _check_no_clear_pii(warehouse, tables)
    staging_path = serving_path.with_name(f".{serving_path.name}.{run_id}.building")
    staging_path.unlink(missing_ok=True)
    row_counts: dict[str, int] = {}
    try:
        warehouse.execute(f"attach {_path_literal(staging_path)} as publish_target")
        try:
            for schema in sorted({s for s, _ in tables}):
                warehouse.execute(f"create schema publish_target.{_identifier(schema)}")
            for schema, table in tables:
                name = f"{_identifier(schema)}.{_identifier(table)}"
                warehouse.execute(f"create table publish_target.{name} as {published_rows_sql(schema, table)}")
                row_counts[f"{schema}.{table}"] = warehouse.execute(
                    f"select count(*) from publish_target.{name}"
                ).fetchone()[0]
            _write_publish_log(warehouse, serving_path, run_id, row_counts, checks_passed)
            # Everything must be in the main file: only that file is renamed.
            warehouse.execute("checkpoint publish_target")
        finally:
            warehouse.execute("detach publish_target")
        os.replace(staging_path, serving_path)
    except BaseException:
        staging_path.unlink(missing_ok=True)
        raise
    log.info("published %d tables to %s", len(row_counts), serving_path)
    return PublishResult(serving_path, run_id, row_counts, checks_passed)


def _write_publish_log(
    warehouse: duckdb.DuckDBPyConnection,
    serving_path: Path,
    run_id: str,
    row_counts: dict[str, int],
    checks_passed: int,
) -> None:
    warehouse.execute(
        f"""create table publish_target.main.{PUBLISH_LOG} (
            run_id varchar not null,
            published_at timestamp not null,
            table_name varchar not null,
            row_count bigint not null,
            checks_passed integer not null
        )"""
    )
    if serving_path.exists():
        # Keep the history: earlier publishes are read from the current serving copy.
        warehouse.execute(f"attach {_path_literal(serving_path)} as publish_previous (read_only)")
        try:
            has_log = warehouse.execute(
                "select count(*) from information_schema.tables "
                "where table_catalog = 'publish_previous' and table_name = $t",
                {"t": PUBLISH_LOG},
            ).fetchone()[0]
            if has_log:
                warehouse.execute(
                    f"insert into publish_target.main.{PUBLISH_LOG} select * from publish_previous.main.{PUBLISH_LOG}"
                )
        finally:
            warehouse.execute("detach publish_previous")
    warehouse.executemany(
        f"insert into publish_target.main.{PUBLISH_LOG} values ($1, now(), $2, $3, $4)",
        [(run_id, table, rows, checks_passed) for table, rows in row_counts.items()],
    )
