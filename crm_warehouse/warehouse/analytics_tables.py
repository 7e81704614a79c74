"""The ``analytics`` schema: score tables read back by dbt, and the model registry.

``customer_clv`` and ``customer_churn_scores`` keep every scoring run (the dbt
staging models take each customer's latest row); ``model_runs`` has one row per
fitted model. The column lists match the dbt source ``analytics`` and
``tests/dbt/analytics_schema.sql``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crm_warehouse.warehouse.catalog import WarehouseSql
from crm_warehouse.warehouse.spark import SparkSqlConnection, spark_sql, spark_type_name

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import SparkSession

SCHEMA = "analytics"

TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "customer_clv": {
        "customer_id": "varchar",
        "frequency": "double",
        "recency": "double",
        "t": "double",
        "monetary_value": "double",
        "p_alive": "double",
        "expected_purchases": "double",
        "expected_purchases_low": "double",
        "expected_purchases_high": "double",
        "expected_avg_spend": "double",
        "expected_spend": "double",
        "clv": "double",
        "clv_low": "double",
        "clv_high": "double",
        "churn_probability": "double",
        "purchase_model": "varchar",
        "horizon_months": "integer",
        "model_id": "varchar",
        "scored_at": "timestamp",
    },
    "customer_churn_scores": {
        "customer_id": "varchar",
        "churn_probability": "double",
        "risk_band": "varchar",
        "driver_1": "varchar",
        "driver_2": "varchar",
        "driver_3": "varchar",
        "top_drivers": "varchar",
        "model_id": "varchar",
        "scored_at": "timestamp",
    },
    "model_runs": {
        "model_id": "varchar",
        "model_type": "varchar",
        "fitted_at": "timestamp",
        "as_of_date": "date",
        "model_path": "varchar",
        "parameters": "json",
        "standard_errors": "json",
        "training_start": "date",
        "training_end": "date",
        "validation_cutoff": "date",
        "validation_auc": "double",
        "brier_score": "double",
        "calibration_error": "double",
        "top_decile_lift": "double",
        "baseline_auc": "double",
        "training_rows": "bigint",
        "validation_rows": "bigint",
    },
}


def _check_table(table: str) -> None:
    if table not in TABLE_COLUMNS:
        raise ValueError(f"table={table!r} is not one of {sorted(TABLE_COLUMNS)}")


def ensure_table(con: WarehouseSql, table: str) -> None:
    """Create ``analytics.<table>`` if missing, and add any column an older version lacks (DuckDB)."""
    _check_table(table)
    columns = TABLE_COLUMNS[table]
    con.execute(f"create schema if not exists {SCHEMA}")
    if isinstance(con, SparkSqlConnection):
        definition = ", ".join(f"{name} {spark_type_name(kind)}" for name, kind in columns.items())
        con.execute_spark(f"create table if not exists {SCHEMA}.{table} ({definition}) using parquet")
        return
    definition = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    con.execute(f"create table if not exists {SCHEMA}.{table} ({definition})")
    for name, kind in columns.items():
        con.execute(f"alter table {SCHEMA}.{table} add column if not exists {name} {kind}")


_ARROW_TYPES = {
    "varchar": pa.string(),
    "json": pa.string(),
    "double": pa.float64(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


def append_rows(con: WarehouseSql, table: str, rows: pd.DataFrame) -> int:
    """Insert ``rows`` (exactly the table's columns, by name) into ``analytics.<table>``; returns the count.

    On Spark the rows reach the server as one Parquet file
    (:meth:`~crm_warehouse.warehouse.spark.SparkSqlConnection.temporary_view`) and are
    appended in one statement.

    Raises
    ------
    ValueError
        If ``table`` is unknown or ``rows`` lacks or adds a column.
    """
    _check_table(table)
    expected = list(TABLE_COLUMNS[table])
    if sorted(rows.columns) != sorted(expected):
        missing = sorted(set(expected) - set(rows.columns))
        extra = sorted(set(rows.columns) - set(expected))
        raise ValueError(f"rows for analytics.{table}: missing columns {missing}, unexpected columns {extra}")
    ensure_table(con, table)
    if isinstance(con, SparkSqlConnection):
        casts = ", ".join(
            f"cast({name} as {spark_type_name(kind)}) as {name}" for name, kind in TABLE_COLUMNS[table].items()
        )
        # Typed by the table, not by pandas: a column of missing dates would be Parquet's null type.
        schema = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in TABLE_COLUMNS[table].items()])
        typed = pa.Table.from_pandas(rows[expected], schema=schema, preserve_index=False, safe=False)
        with con.temporary_view("analytics_rows", lambda path: pq.write_table(typed, path)):
            con.execute_spark(f"insert into {SCHEMA}.{table} select {casts} from analytics_rows")
        return len(rows)
    casts = ", ".join(f"cast({name} as {kind}) as {name}" for name, kind in TABLE_COLUMNS[table].items())
    con.register("analytics_rows", rows)
    try:
        con.execute(f"insert into {SCHEMA}.{table} by name select {casts} from analytics_rows")
    finally:
        con.unregister("analytics_rows")
    return len(rows)


def append_batches(
    con: duckdb.DuckDBPyConnection,
    table: str,
    batches: Iterable[pd.DataFrame],
    written: Callable[[pd.DataFrame], None] = lambda rows: None,
) -> int:
    """Append every batch of ``batches`` to ``analytics.<table>`` (:func:`append_rows`) in one DuckDB
    transaction, so a failure while they are computed leaves none of them; returns the rows written.

    ``written`` is called with each batch once it is in the table (e.g. to sum figures of the run).
    """
    count = 0
    con.begin()
    try:
        for rows in batches:
            count += append_rows(con, table, rows)
            written(rows)
    except BaseException:
        con.rollback()
        raise
    con.commit()
    return count


def append_from_workers(
    session: SparkSession,
    con: SparkSqlConnection,
    table: str,
    sql: str,
    parameters: dict[str, object],
    rows_of: Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]],
) -> None:
    """Append to ``analytics.<table>`` on Spark what ``rows_of`` makes of the rows of ``sql`` (DuckDB's
    dialect, translated), batch by batch on Spark's workers (``mapInPandas``): nothing is collected to
    the driver. ``rows_of`` yields frames with the table's columns, in its order."""
    schema = ", ".join(f"{name} {spark_type_name(kind)}" for name, kind in TABLE_COLUMNS[table].items())
    ensure_table(con, table)
    session.sql(spark_sql(sql, parameters)).mapInPandas(rows_of, schema).write.insertInto(f"{SCHEMA}.{table}")


def table_rows(con: WarehouseSql, table: str) -> int:
    """Rows in ``analytics.<table>``."""
    _check_table(table)
    return int(con.execute(f"select count(*) from {SCHEMA}.{table}").fetchone()[0])
