"""Validation results and their history in ``audit.dq_results``.

Every run appends one row per expectation; drift checks read their baseline back
from the latest earlier run of the same suite that passed (no failed error-severity
expectation), so a level that tripped a blocking check never becomes the new normal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from crm_warehouse.quality.suites import Severity
from crm_warehouse.warehouse.catalog import WarehouseSql, table_exists
from crm_warehouse.warehouse.spark import SparkSqlConnection, spark_type_name

AUDIT_SCHEMA = "audit"
RESULTS_TABLE = "dq_results"
# Rows of unexpected values kept per failed expectation (metadata, dq_results).
SAMPLE_SIZE = 10


def to_json(value: Any) -> str:
    """JSON text for observed values and samples (decimals, dates and numpy scalars included)."""

    def default(item: Any) -> Any:
        if isinstance(item, Decimal):
            return float(item)
        if isinstance(item, (datetime, date)):
            return item.isoformat()
        if hasattr(item, "item"):
            return item.item()
        return str(item)

    return json.dumps(value, default=default, ensure_ascii=False)


@dataclass(frozen=True)
class ExpectationResult:
    """Outcome of one expectation.

    ``engine`` says who computed it: ``gx`` (Great Expectations on DuckDB SQL) or
    ``duckdb`` (our own SQL). ``note`` explains a pass without baseline or an error.
    """

    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    severity: Severity
    success: bool
    observed_value: Any
    unexpected_sample: list[Any] = field(default_factory=list)
    engine: str = "gx"
    description: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class SuiteResult:
    """Outcome of a suite on one table in one run."""

    suite: str
    run_id: str
    validated_at: datetime
    results: tuple[ExpectationResult, ...]
    docs_index: str | None = None

    @property
    def failed_errors(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success and r.severity == "error"]

    @property
    def failed_warnings(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success and r.severity == "warn"]

    @property
    def passed(self) -> bool:
        """No error-severity expectation failed (warnings do not block)."""
        return not self.failed_errors


# Columns of audit.dq_results and their DuckDB types. ``column_name`` rather than
# ``column``: COLUMN is a reserved word in DuckDB SQL.
_RESULT_COLUMNS = (
    ("run_id", "varchar not null"),
    ("asset", "varchar not null"),
    ("check_name", "varchar not null"),
    ("suite", "varchar not null"),
    ("expectation", "varchar not null"),
    ("column_name", "varchar"),
    ("kwargs", "json"),
    ("severity", "varchar not null"),
    ("success", "boolean not null"),
    ("observed_value", "json"),
    ("unexpected_sample", "json"),
    ("engine", "varchar not null"),
    ("note", "varchar"),
    ("validated_at", "timestamp not null"),
)
# On Spark (no transactions, no delete on Parquet) the table is partitioned by run and
# suite, and a suite's rows of a run are written by overwriting their partition.
_SPARK_PARTITION = ("run_id", "suite")


def create_results_table(con: WarehouseSql) -> None:
    """Create ``audit.dq_results`` if it is missing."""
    table = f"{AUDIT_SCHEMA}.{RESULTS_TABLE}"
    if isinstance(con, SparkSqlConnection):
        columns = [(n, spark_type_name(t.split()[0])) for n, t in _RESULT_COLUMNS if n not in _SPARK_PARTITION]
        columns += [(n, "string") for n in _SPARK_PARTITION]
        con.execute_spark(f"create database if not exists {AUDIT_SCHEMA}")
        con.execute_spark(
            f"create table if not exists {table} ({', '.join(f'{n} {t}' for n, t in columns)}) "
            f"using parquet partitioned by ({', '.join(_SPARK_PARTITION)})"
        )
        return
    con.execute(f"create schema if not exists {AUDIT_SCHEMA}")
    con.execute(f"create table if not exists {table} ({', '.join(f'{n} {t}' for n, t in _RESULT_COLUMNS)})")


def record_results(con: WarehouseSql, result: SuiteResult, asset: str, check_name: str) -> int:
    """Append ``result`` to ``audit.dq_results``; a re-run of the same run replaces its rows.

    Returns the number of rows written.
    """
    create_results_table(con)
    rows = [
        (
            result.run_id,
            asset,
            check_name,
            result.suite,
            r.expectation,
            r.column,
            to_json(r.kwargs),
            r.severity,
            r.success,
            to_json(r.observed_value),
            to_json(r.unexpected_sample),
            r.engine,
            r.note,
            result.validated_at,
        )
        for r in result.results
    ]
    if isinstance(con, SparkSqlConnection):
        con.overwrite_partition(
            f"{AUDIT_SCHEMA}.{RESULTS_TABLE}",
            {"run_id": result.run_id, "suite": result.suite},
            [
                tuple(v for (name, _), v in zip(_RESULT_COLUMNS, row, strict=True) if name not in _SPARK_PARTITION)
                for row in rows
            ],
        )
        return len(rows)
    con.execute("begin transaction")
    try:
        con.execute(
            f"delete from {AUDIT_SCHEMA}.{RESULTS_TABLE} where run_id = $run and suite = $suite",
            {"run": result.run_id, "suite": result.suite},
        )
        con.executemany(
            f"insert into {AUDIT_SCHEMA}.{RESULTS_TABLE} values "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            rows,
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(rows)


def previous_observed_value(
    con: WarehouseSql, suite: str, expectation: str, column: str | None, run_id: str
) -> Any | None:
    """Observed value of ``expectation`` on ``column`` in the latest earlier passed run.

    None when there is no such run (the first run, or every earlier run failed).
    """
    if not table_exists(con, AUDIT_SCHEMA, RESULTS_TABLE):
        return None
    row = con.execute(
        f"""
        with passed_runs as (
            select run_id
            from {AUDIT_SCHEMA}.{RESULTS_TABLE}
            where suite = $suite and run_id <> $run
            group by run_id
            having bool_and(success or severity <> 'error')
        )
        select observed_value
        from {AUDIT_SCHEMA}.{RESULTS_TABLE}
        where suite = $suite
          and expectation = $expectation
          and column_name is not distinct from $column
          and run_id in (select run_id from passed_runs)
          and observed_value is not null and observed_value <> 'null'
        order by validated_at desc
        limit 1
        """,
        {"suite": suite, "run": run_id, "expectation": expectation, "column": column},
    ).fetchone()
    return json.loads(row[0]) if row else None
