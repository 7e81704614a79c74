"""What the warehouse holds, asked of either engine: DuckDB's ``information_schema``, or
Spark's catalog (which has none) through :class:`~crm_warehouse.warehouse.spark.SparkSqlConnection`."""

from __future__ import annotations

import duckdb

from crm_warehouse.warehouse.spark import SparkSqlConnection, spark_sql

#: A connection to the warehouse on either engine; SQL sent to it is written in DuckDB's dialect.
WarehouseSql = duckdb.DuckDBPyConnection | SparkSqlConnection


def engine_of(con: WarehouseSql) -> str:
    """``"spark"`` or ``"duckdb"``: the engine behind ``con``."""
    return SparkSqlConnection.dialect if isinstance(con, SparkSqlConnection) else "duckdb"


def in_dialect_of(con: WarehouseSql, sql: str) -> str:
    """``sql`` (DuckDB's dialect, no parameters) as ``con``'s engine runs it, for code that hands SQL text on (GX)."""
    return spark_sql(sql) if isinstance(con, SparkSqlConnection) else sql


def table_exists(con: WarehouseSql, schema: str, name: str) -> bool:
    """Whether the warehouse behind ``con`` (DuckDB or Spark) has the table or view ``schema.name``."""
    if isinstance(con, SparkSqlConnection):
        return con.table_exists(schema, name)
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = $schema and table_name = $name",
            {"schema": schema, "name": name},
        ).fetchone()[0]
    )


def column_types(con: WarehouseSql, schema: str, name: str) -> dict[str, str]:
    """Column name -> type, named as DuckDB names types (``VARCHAR``, ``DECIMAL(18,2)``), on either engine."""
    if isinstance(con, SparkSqlConnection):
        return con.column_types(schema, name)
    return dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = $schema and table_name = $name",
            {"schema": schema, "name": name},
        ).fetchall()
    )


def base_tables(con: WarehouseSql) -> list[tuple[str, str]]:
    """(schema, table) of every table (not view) of the warehouse behind ``con``, in name order."""
    if isinstance(con, SparkSqlConnection):
        return con.base_tables()
    return con.execute(
        """select table_schema, table_name from information_schema.tables
           where table_type = 'BASE TABLE' order by table_schema, table_name"""
    ).fetchall()
