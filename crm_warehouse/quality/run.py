"""Validate a table against its suite: GX and DuckDB checks, history, Data Docs.

``python -m crm_warehouse.quality`` runs every suite whose table exists in the
warehouse and prints one line per failed expectation.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from crm_warehouse.quality.gx_sql import validate_with_gx
from crm_warehouse.quality.results import SuiteResult, record_results
from crm_warehouse.quality.sql_checks import run_sql_check
from crm_warehouse.quality.suites import Suite, load_suites
from crm_warehouse.settings import EXPECTATIONS_DIR, load_settings
from crm_warehouse.warehouse import catalog
from crm_warehouse.warehouse.catalog import WarehouseSql
from crm_warehouse.warehouse.duckdb_connection import connect
from crm_warehouse.warehouse.recent_rows import RecentWindow
from crm_warehouse.warehouse.spark import SparkSqlConnection


def table_exists(con: WarehouseSql, suite: Suite) -> bool:
    return catalog.table_exists(con, suite.schema, suite.table)


def validate_suite(
    con: WarehouseSql,
    suite: Suite,
    run_id: str,
    docs_dir: Path | None = None,
    recent: RecentWindow | None = None,
) -> SuiteResult:
    """Run every expectation of ``suite`` on its table; results come back in suite order.

    ``recent``: row-level GX expectations validate only the rows of this window (the
    rows the latest incremental dbt run rewrote, :mod:`crm_warehouse.warehouse.recent_rows`).

    Raises ValueError when the table does not exist (a suite for a table that is never
    built has rotted, which is a configuration error, not a data failure).
    """
    if not table_exists(con, suite):
        raise ValueError(f"suite {suite.name}: table {suite.name} does not exist in the warehouse")
    validated_at = datetime.now(UTC).replace(tzinfo=None)
    gx_results, docs_index = validate_with_gx(con, suite, run_id, docs_dir, recent)
    from_gx = iter(gx_results)
    results = tuple(
        next(from_gx) if spec.runs_in_gx else run_sql_check(con, suite, spec, run_id) for spec in suite.expectations
    )
    return SuiteResult(
        suite=suite.name, run_id=run_id, validated_at=validated_at, results=results, docs_index=docs_index
    )


def validate_and_record(
    con: WarehouseSql,
    suite: Suite,
    run_id: str,
    asset: str,
    check_name: str,
    docs_dir: Path | None = None,
    recent: RecentWindow | None = None,
) -> SuiteResult:
    """:func:`validate_suite`, then append the results to ``audit.dq_results``."""
    result = validate_suite(con, suite, run_id, docs_dir, recent)
    record_results(con, result, asset=asset, check_name=check_name)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: validate every suite whose table exists; exit 1 if any blocks."""
    settings = load_settings()
    parser = argparse.ArgumentParser(description="Run the expectation suites against the warehouse.")
    parser.add_argument(
        "--warehouse", type=Path, default=settings.warehouse_path, help="DuckDB file (CRM_ENGINE=spark: unused)"
    )
    parser.add_argument("--expectations", type=Path, default=EXPECTATIONS_DIR, help="folder of suite files")
    parser.add_argument("--docs", type=Path, default=settings.dq_docs_dir, help="Data Docs folder")
    args = parser.parse_args(argv)
    run_id = f"manual-{uuid.uuid4().hex[:12]}"
    blocked = False
    engine = SparkSqlConnection(settings) if settings.engine == "spark" else connect(settings, args.warehouse)
    with engine as con:
        for suite in load_suites(args.expectations):
            if not table_exists(con, suite):
                print(f"{suite.name:<40} skipped: table not built")
                continue
            # Same asset names as the Dagster checks write, so the history reads as one.
            asset = f"{suite.schema}/{suite.table}"
            result = validate_and_record(con, suite, run_id, asset, "cli", args.docs)
            blocked |= not result.passed
            print(
                f"{suite.name:<40} {'passed' if result.passed else 'BLOCKS'}: "
                f"{len(result.failed_errors)} errors, {len(result.failed_warnings)} warnings"
            )
            for failure in result.failed_errors + result.failed_warnings:
                print(f"    {failure.severity:<5} {failure.expectation}({failure.column or ''}) {failure.note or ''}")
    print(f"run {run_id}; Data Docs: {args.docs / 'index.html'}")
    return 1 if blocked else 0
