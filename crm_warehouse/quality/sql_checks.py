"""Checks GX has no fitting expectation for, computed in SQL (DuckDB's dialect; translated on Spark).

- the SQL behind our referential and row-count expectations and GX's uniqueness
  ones, which GX runs as unexpected-rows queries (``{batch}`` is the validated table);
- column types as DuckDB reports them (GX's type check cannot reflect DuckDB tables);
- drift: a mean or the share of each value compared with the previous passed run.

Each check is one aggregate query: nothing but the result and a small sample
leaves DuckDB.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import duckdb

from crm_warehouse.quality.results import SAMPLE_SIZE, ExpectationResult, previous_observed_value
from crm_warehouse.quality.suites import (
    COLUMN_TYPES,
    MEAN_DRIFT,
    REFERENCE,
    ROW_COUNT_RELATION,
    SHARE_DRIFT,
    UNIQUE_COMBINATION,
    UNIQUE_VALUES,
    ExpectationSpec,
    Suite,
    identifier,
    qualified,
)
from crm_warehouse.warehouse.catalog import WarehouseSql, column_types, engine_of
from crm_warehouse.warehouse.spark import SparkSqlError

NULL_LABEL = "(null)"
FIRST_RUN_NOTE = "first run: no baseline yet; this observed value becomes it"


def unexpected_rows_query(spec: ExpectationSpec) -> str:
    """SQL returning the rows that break a referential, row-count or uniqueness expectation."""
    kwargs = spec.kwargs
    if spec.type in (UNIQUE_VALUES, UNIQUE_COMBINATION):
        # One row per key held by more than one row. As in GX, a row whose key columns
        # are all null is skipped.
        keys = [identifier(c) for c in spec.unique_key]
        present = " or ".join(f"{key} is not null" for key in keys)
        listed = ", ".join(keys)
        return f"select {listed} from {{batch}} where {present} group by {listed} having count(*) > 1"
    if spec.type == REFERENCE:
        # GX wraps {batch} in an aliased subquery, so the query must not alias it again.
        column, other_column = identifier(kwargs["column"]), identifier(kwargs["other_column"])
        return (
            f"select distinct {column} from {{batch}} where {column} is not null and {column} not in ("
            f"select {other_column} from {qualified(kwargs['other_table'])} where {other_column} is not null)"
        )
    if spec.type == ROW_COUNT_RELATION:
        other = f"count(distinct {identifier(kwargs['other_column'])})" if "other_column" in kwargs else "count(*)"
        broken = "row_count <> other_count" if kwargs["relation"] == "equal" else "row_count > other_count"
        return (
            "select row_count, other_count from ("
            f"select (select count(*) from {{batch}}) as row_count, "
            f"(select {other} from {qualified(kwargs['other_table'])}) as other_count"
            f") as counts where {broken}"
        )
    raise ValueError(f"{spec.type} is not run as an unexpected-rows query")


def unexpected_rows_sample(
    con: WarehouseSql, suite: Suite, spec: ExpectationSpec, batch_sql: str | None = None
) -> list[dict]:
    """The first rows an unexpected-rows query returns on the suite's table (or on the
    rows ``batch_sql`` selects, when the expectation validated those), for a failure."""
    query = spec.kwargs.get("unexpected_rows_query") or unexpected_rows_query(spec)
    batch = f"({batch_sql}) as recent_rows" if batch_sql else qualified(suite.name)
    sql = query.rstrip("; \n").replace("{batch}", batch)
    cursor = con.execute(f"select * from ({sql}) limit {SAMPLE_SIZE}")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _result(spec: ExpectationSpec, **fields: Any) -> ExpectationResult:
    return ExpectationResult(
        expectation=spec.type,
        column=spec.column,
        kwargs=dict(spec.kwargs),
        severity=spec.severity,
        engine="duckdb",
        description=spec.description,
        **fields,
    )


def _column_types(con: WarehouseSql, suite: Suite, spec: ExpectationSpec) -> ExpectationResult:
    expected = {c: t.upper() for c, t in spec.kwargs["column_types"].items()}
    actual = column_types(con, suite.schema, suite.table)
    mismatches = [
        {"column": column, "expected": wanted, "found": actual.get(column, "(missing)")}
        for column, wanted in expected.items()
        if actual.get(column) != wanted
    ]
    return _result(
        spec,
        success=not mismatches,
        observed_value={column: actual.get(column, "(missing)") for column in expected},
        unexpected_sample=mismatches[:SAMPLE_SIZE],
    )


def _metric_sql(spec: ExpectationSpec) -> str:
    return spec.kwargs.get("expression") or identifier(spec.kwargs["column"])


def _rows_sql(suite: Suite, spec: ExpectationSpec) -> str:
    """FROM clause of a drift metric: the whole table, or its latest batch (``latest_by``)."""
    table = qualified(suite.name)
    if "latest_by" not in spec.kwargs:
        return f"from {table}"
    # Append-only tables (one batch per scoring run) drift between batches, not histories.
    latest = identifier(spec.kwargs["latest_by"])
    return f"from {table} where {latest} = (select max({latest}) from {table})"


def _mean_drift(con: WarehouseSql, suite: Suite, spec: ExpectationSpec, run_id: str) -> ExpectationResult:
    mean = con.execute(f"select avg({_metric_sql(spec)})::double {_rows_sql(suite, spec)}").fetchone()[0]
    baseline = previous_observed_value(con, suite.name, spec.type, spec.column, run_id)
    tolerance = float(spec.kwargs["tolerance"])
    if baseline is None:
        return _result(spec, success=True, observed_value=mean, note=FIRST_RUN_NOTE)
    if mean is None:
        return _result(spec, success=False, observed_value=None, note="the table has no values to average")
    # Relative band around the baseline: tolerance 0.2 allows a 20 % move either way.
    low, high = baseline - tolerance * abs(baseline), baseline + tolerance * abs(baseline)
    success = low <= mean <= high
    sample = [] if success else [{"previous": baseline, "observed": mean, "allowed_min": low, "allowed_max": high}]
    return _result(
        spec,
        success=success,
        observed_value=mean,
        unexpected_sample=sample,
        note=f"baseline {baseline:.6g} from the previous passed run",
    )


def _share_drift(con: WarehouseSql, suite: Suite, spec: ExpectationSpec, run_id: str) -> ExpectationResult:
    column = identifier(spec.kwargs["column"])
    shares = dict(
        con.execute(
            f"""select coalesce(cast({column} as varchar), $null_label) as value,
                       count(*) / sum(count(*)) over () as share
                {_rows_sql(suite, spec)} group by 1 order by 1""",
            {"null_label": NULL_LABEL},
        ).fetchall()
    )
    baseline = previous_observed_value(con, suite.name, spec.type, spec.column, run_id)
    tolerance = float(spec.kwargs["tolerance"])
    if baseline is None:
        return _result(spec, success=True, observed_value=shares, note=FIRST_RUN_NOTE)
    # Share points, absolute: tolerance 0.05 lets a value's share move 5 points.
    moves = [
        {
            "value": value,
            "previous": baseline.get(value, 0.0),
            "observed": shares.get(value, 0.0),
            "change": shares.get(value, 0.0) - baseline.get(value, 0.0),
        }
        for value in sorted(set(shares) | set(baseline))
    ]
    too_far = sorted((m for m in moves if abs(m["change"]) > tolerance), key=lambda m: -abs(m["change"]))
    return _result(
        spec,
        success=not too_far,
        observed_value=shares,
        unexpected_sample=too_far[:SAMPLE_SIZE],
        note="shares compared with the previous passed run",
    )


def run_sql_check(con: WarehouseSql, suite: Suite, spec: ExpectationSpec, run_id: str) -> ExpectationResult:
    """Run one of our SQL-computed expectations (column types or drift) on the warehouse's engine."""
    return dataclasses.replace(_sql_check(con, suite, spec, run_id), engine=engine_of(con))


def _sql_check(con: WarehouseSql, suite: Suite, spec: ExpectationSpec, run_id: str) -> ExpectationResult:
    try:
        if spec.type == COLUMN_TYPES:
            return _column_types(con, suite, spec)
        if spec.type == MEAN_DRIFT:
            return _mean_drift(con, suite, spec, run_id)
        if spec.type == SHARE_DRIFT:
            return _share_drift(con, suite, spec, run_id)
    except (duckdb.Error, SparkSqlError) as exc:
        return _result(spec, success=False, observed_value=None, note=f"check could not run: {exc}")
    raise ValueError(f"{spec.type} is not a SQL-computed expectation")
