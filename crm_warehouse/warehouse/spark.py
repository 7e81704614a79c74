"""The Spark engine (``CRM_ENGINE=spark``) from Python: a Spark Connect session, and tables copied in from DuckDB.

dbt reaches Spark through its Thrift server (the profile
:func:`~crm_warehouse.warehouse.dbt_project.write_profile` writes); Python code opens
a Spark Connect session on the same server, so both see one metastore.
``scripts/spark.sh`` starts such a server locally; on a cluster, point
``CRM_SPARK_THRIFT_HOST``/``CRM_SPARK_THRIFT_PORT`` and ``CRM_SPARK_CONNECT_URL`` at it.

:func:`copy_duckdb_schema` stands in for ingestion on Spark, which does not exist
yet: it copies the tables DuckDB ingested (``raw``) or scored (``analytics``) into
Spark, through Parquet files that the Spark server must be able to read.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from crm_warehouse.warehouse.sql import qualified_name, quote_identifier

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from crm_warehouse.settings import Settings


def spark_session(settings: Settings) -> SparkSession:
    """A Spark Connect session on the configured server (``settings.spark_connect_url``)."""
    from pyspark.sql import SparkSession  # pyspark loads only where Spark is used

    return SparkSession.builder.remote(settings.spark_connect_url).getOrCreate()


def copy_duckdb_schema(
    con: duckdb.DuckDBPyConnection, schema: str, spark: SparkSession, exchange_dir: Path, file_format: str = "parquet"
) -> list[str]:
    """Replace Spark's tables of ``schema`` with copies of DuckDB's; returns the copied table names.

    Each table goes through one Parquet file in ``exchange_dir`` (removed afterwards),
    so types stay what DuckDB wrote (decimals, dates), except timestamps: DuckDB's have
    no time zone and become Spark's ``timestamp`` (the server's session time zone is UTC).
    """
    tables = [
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = $schema and table_type = 'BASE TABLE' order by table_name",
            {"schema": schema},
        ).fetchall()
    ]
    spark.sql(f"create database if not exists {quote_identifier(schema, 'spark')}")
    folder = exchange_dir / schema
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for table in tables:
            path = folder / f"{table}.parquet"
            con.execute(f"copy {qualified_name(schema, table)} to '{path}' (format parquet)")
            name = qualified_name(schema, table, "spark")
            spark.sql(f"drop table if exists {name}")
            frame = spark.read.parquet(str(path))
            frame = frame.select(
                *(
                    frame[field.name].cast("timestamp") if field.dataType.typeName() == "timestamp_ntz" else field.name
                    for field in frame.schema.fields
                )
            )
            frame.write.format(file_format).saveAsTable(name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return tables
