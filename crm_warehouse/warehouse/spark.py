"""The Spark engine (``CRM_ENGINE=spark``) from Python: a Spark Connect session, a SQL connection
through the Thrift server, and tables copied in from DuckDB.

dbt reaches Spark through its Thrift server (the profile
:func:`~crm_warehouse.warehouse.dbt_project.write_profile` writes); Python code opens
a Spark Connect session on the same server, so both see one metastore. :class:`SparkSqlConnection` runs SQL written for DuckDB
(the quality checks') on Spark, translated by sqlglot.
``scripts/spark.sh`` starts such a server locally; on a cluster, point
``CRM_SPARK_THRIFT_HOST``/``CRM_SPARK_THRIFT_PORT`` and ``CRM_SPARK_CONNECT_URL`` at it.

:func:`copy_duckdb_schema` copies tables DuckDB holds into Spark, through Parquet files the
Spark server must be able to read (the tests use it for scored ``analytics`` tables;
ingestion on Spark is :mod:`crm_warehouse.ingest_spark`).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
import sqlglot
from sqlglot import exp

from crm_warehouse.warehouse.sql import qualified_name, quote_identifier, safe_identifier

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


class SparkSqlError(RuntimeError):
    """A statement :class:`SparkSqlConnection` sent failed on the server (Spark's message, and the statement)."""


def spark_sql(sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> str:
    """``sql``, written in DuckDB's dialect with ``$name`` (or ``$1``) parameters, as Spark SQL with literals.

    sqlglot translates the dialect (quoting, ``::`` casts, type names, functions);
    parameters become literals because the Thrift protocol takes none. A parameter
    ``sql`` names but ``params`` lacks is an error, not a null. What sqlglot leaves is
    translated here: ``regexp_full_match`` (an anchored ``rlike``), ``to_days`` and
    ``to_months`` (intervals), ``any_value`` (nulls skipped by its second argument), the
    ``materialized`` hint of a CTE (dropped), temporary
    macros (:func:`_text_function`), and decimal literals, which become doubles:
    DuckDB divides decimals in doubles, Spark at a fixed scale.
    """
    values = {str(i + 1): v for i, v in enumerate(params)} if isinstance(params, Sequence) else dict(params or {})

    def literal(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name:
            if node.name not in values:
                raise KeyError(f"SQL parameter ${node.name} has no value: {sql}")
            return exp.convert(values[node.name])
        return node

    def spark_function(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.RegexpFullMatch) and isinstance(node.expression, exp.Literal):
            # DuckDB's regexp_full_match has no Spark name (sqlglot leaves it): an anchored rlike
            return exp.RegexpLike(this=node.this, expression=exp.Literal.string(f"^(?:{node.expression.this})$"))
        if isinstance(node, exp.ToDays) or (isinstance(node, exp.Anonymous) and node.name.lower() == "to_months"):
            # to_days(n) and to_months(n), which sqlglot leaves: Spark's intervals
            amount = node.this if isinstance(node, exp.ToDays) else node.expressions[0]
            return exp.Interval(this=amount, unit=exp.var("DAY" if isinstance(node, exp.ToDays) else "MONTH"))
        if isinstance(node, exp.Literal) and node.is_number and "." in node.this:
            # 365.0 is a decimal on both engines, but DuckDB divides decimals in doubles and
            # Spark at a fixed scale: a double on Spark gives DuckDB's numbers
            return exp.cast(node, exp.DataType.build("double"))
        if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
            # DuckDB's any_value skips nulls, which sqlglot writes as a suffix Spark cannot parse
            # before a FILTER clause: Spark's any_value(x, true) says the same
            return exp.Anonymous(this="any_value", expressions=[node.this.this, exp.true()])
        if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
            node.set("materialized", None)  # a hint to DuckDB; Spark has no such clause
        return node

    statements = [
        statement.transform(literal).transform(spark_function)
        for statement in sqlglot.parse(sql, read="duckdb")
        if statement
    ]
    return ";\n".join(_text_function(s) if _is_macro(s) else s.sql("spark") for s in statements)


def _is_macro(statement: exp.Expression) -> bool:
    return isinstance(statement, exp.Create) and str(statement.args.get("kind")).upper() == "MACRO"


def _text_function(macro: exp.Create) -> str:
    """DuckDB's ``create temp macro f(a, ...) as <expr>`` as a Spark SQL function of the session.

    Spark's functions are typed and DuckDB's macros are not: the macros the project
    writes take and return text, so every argument and the result are ``string``.
    """
    if not macro.find(exp.TemporaryProperty):
        raise ValueError(f"only temporary macros translate to Spark: {macro.sql('duckdb')}")
    function = macro.this
    arguments = ", ".join(f"{argument.sql('spark')} string" for argument in function.expressions)
    return (
        f"create or replace temporary function {function.this.sql('spark')}({arguments}) "
        f"returns string return {macro.expression.sql('spark')}"
    )


class SparkSqlConnection:
    """The Spark warehouse through its Thrift server, for code written against a DuckDB connection.

    The same Thrift server dbt uses, through PyHive's DB-API (dbt-spark's own driver), so
    what this reads is what dbt wrote. :meth:`execute` takes DuckDB's dialect and
    parameters (:func:`spark_sql`) and returns a DB-API cursor (``fetchone``,
    ``fetchall``, ``description``), as ``duckdb.DuckDBPyConnection.execute`` does.
    Spark has no transactions: callers that need one write a whole partition in one
    statement instead (see :func:`crm_warehouse.quality.results.record_results`).
    """

    dialect = "spark"

    def __init__(self, settings: Settings):
        from pyhive import hive  # loads only where Spark is used

        self._server = f"{settings.spark_thrift_host}:{settings.spark_thrift_port}"
        self._user = settings.spark_thrift_user
        self._exchange_dir = settings.spark_exchange_dir
        try:
            self._connection = hive.connect(
                host=settings.spark_thrift_host, port=settings.spark_thrift_port, username=settings.spark_thrift_user
            )
        except Exception as exc:  # Thrift's transport errors share no base class with PyHive's
            raise SparkSqlError(
                f"cannot reach Spark's Thrift server at {self._server} ({exc}): start a local one with "
                "`make spark`, or set CRM_SPARK_THRIFT_HOST and CRM_SPARK_THRIFT_PORT to your cluster's"
            ) from exc

    def execute(self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> Any:
        """Run ``sql``, written in DuckDB's dialect (:func:`spark_sql`); a DB-API cursor on its result."""
        return self.execute_spark(spark_sql(sql, params))

    def execute_spark(self, statement: str) -> Any:
        """Run ``statement`` as written, in Spark's dialect (DDL that only Spark has)."""
        from pyhive.exc import Error

        cursor = self._connection.cursor()
        try:
            cursor.execute(statement)
        except Error as exc:
            shown = statement if len(statement) <= 1000 else statement[:1000] + " …"
            raise SparkSqlError(f"{_server_message(exc)}\n  in: {shown}") from exc
        return _DatedCursor(cursor)

    @contextmanager
    def temporary_view(self, name: str, write_parquet: Callable[[Path], object]) -> Iterator[str]:
        """Rows from the Python side as the session's temporary view ``name``: ``write_parquet(path)``
        writes them as one Parquet file in ``CRM_SPARK_EXCHANGE_DIR`` (a folder this process writes
        and the server reads), removed with the view on exit. Yields ``name``."""
        safe_identifier(name)
        folder = self._exchange_dir / f"{name}_{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        try:
            write_parquet(folder / "rows.parquet")
            self.execute_spark(
                f"create or replace temporary view {name} using parquet "
                f"options (path {exp.convert(str(folder)).sql('spark')})"
            )
            yield name
        finally:
            self.execute_spark(f"drop view if exists {name}")
            shutil.rmtree(folder, ignore_errors=True)

    def overwrite_partition(self, table: str, partition: Mapping[str, Any], rows: Sequence[Sequence[Any]]) -> None:
        """Replace partition ``partition`` of ``table`` (``schema.name``) with ``rows`` (the other columns, in
        table order), in one statement: readers see the old rows or the new, never a mix."""
        schema, name = table.split(".")
        spec = ", ".join(f"{safe_identifier(k, 'spark')} = {exp.convert(v).sql('spark')}" for k, v in partition.items())
        values = ", ".join(f"({', '.join(exp.convert(v).sql('spark') for v in row)})" for row in rows)
        self.execute_spark(
            f"insert overwrite table {qualified_name(schema, name, 'spark')} partition ({spec}) values {values}"
        )

    def table_exists(self, schema: str, name: str) -> bool:
        if not self.execute_spark(f"show databases like '{_pattern(schema)}'").fetchall():
            return False
        return bool(
            self.execute_spark(f"show tables in {quote_identifier(schema, 'spark')} like '{_pattern(name)}'").fetchall()
        )

    def base_tables(self) -> list[tuple[str, str]]:
        """(database, table) of every table of the session's catalog, views and temporary ones left out."""
        tables = []
        for (database,) in self.execute_spark("show databases").fetchall():
            quoted = quote_identifier(database, "spark")
            views = {row[1] for row in self.execute_spark(f"show views in {quoted}").fetchall()}
            tables += [
                (database, name)
                for _, name, temporary in self.execute_spark(f"show tables in {quoted}").fetchall()
                if not temporary and name not in views
            ]
        return sorted(tables)

    def column_types(self, schema: str, name: str) -> dict[str, str]:
        """Column name -> type as DuckDB names it (``VARCHAR``, ``BIGINT``, ``DECIMAL(18,2)``, ...)."""
        types = {}
        for column, data_type, _ in self.execute_spark(
            f"describe table {qualified_name(schema, name, 'spark')}"
        ).fetchall():
            if not column or column.startswith("#"):
                break  # partition information follows, repeating columns
            types[column] = _DUCKDB_TYPE_NAMES.get(data_type, data_type.upper())
        return types

    def sqlalchemy_url(self, schema: str) -> str:
        """SQLAlchemy URL of this server with ``schema`` as the default database (PyHive's ``hive`` dialect)."""
        safe_identifier(schema)
        user = f"{self._user}@" if self._user else ""
        return f"hive://{user}{self._server}/{schema}"

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> SparkSqlConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# Spark type names whose DuckDB name differs by more than letter case.
_DUCKDB_TYPE_NAMES = {"string": "VARCHAR", "int": "INTEGER", "timestamp_ntz": "TIMESTAMP"}
# DuckDB type names (as the project's Python-written tables declare them) that Spark spells otherwise.
_SPARK_TYPE_NAMES = {"varchar": "string", "json": "string", "integer": "int"}


def spark_type_name(duckdb_type: str) -> str:
    """Spark's name of a simple DuckDB column type (``varchar`` -> ``string``); a TIMESTAMP stays
    ``timestamp``, which holds DuckDB's values in the server's UTC session."""
    return _SPARK_TYPE_NAMES.get(duckdb_type.lower(), duckdb_type)


def _pattern(name: str) -> str:
    """``name`` as a Spark ``like`` pattern of itself (``*`` and ``|`` are Spark's wildcards)."""
    safe_identifier(name)
    return name


def _server_message(error: Exception) -> str:
    """Spark's own message out of a Thrift status (PyHive shows the whole status structure)."""
    status = getattr(error.args[0], "status", None) if error.args else None
    # Spark's parse errors repeat the whole statement after "== SQL ==": shown once, below
    return (getattr(status, "errorMessage", None) or str(error)).split("\n== SQL ==")[0].strip()


class _DatedCursor:
    """A PyHive cursor whose ``DATE`` values are ``datetime.date``, as DuckDB's are (PyHive gives text)."""

    def __init__(self, cursor: Any):
        self._cursor = cursor
        self.description = cursor.description
        self._dates = [i for i, column in enumerate(self.description or ()) if column[1] == "DATE_TYPE"]

    def _row(self, row: Sequence[Any]) -> tuple[Any, ...]:
        values = list(row)
        for i in self._dates:
            if values[i] is not None:
                values[i] = date.fromisoformat(values[i])
        return tuple(values)

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._cursor.fetchone()
        return None if row is None else self._row(row)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [self._row(row) for row in self._cursor.fetchall()]

    def df(self) -> pd.DataFrame:
        """The rows as a pandas frame (a small result: a sample or a summary, not a whole table)."""
        return pd.DataFrame.from_records(self.fetchall(), columns=[column[0] for column in self.description])
