"""Optional PostgreSQL serving target: copy the serving file's marts and analytics to PostgreSQL.

Each published schema is loaded into a NEW schema (``marts__new_<run>``) while readers
keep using the current one: from the DuckDB serving file (:func:`publish_to_postgres`),
or, on Spark, from Spark's tables (:func:`publish_spark_to_postgres`). One transaction
then renames the current schema away, renames the new one into place, grants
``bi_reader``, drops the old schema and appends to ``publish_log``. A reader sees the
old tables or the new ones, never a mix.

The swap needs an exclusive lock on every old table; a BI query holding one makes the
swap wait. The swap waits at most ``SWAP_LOCK_TIMEOUT`` at a time (below PostgreSQL's
``deadlock_timeout`` of 1 s, so the publish gives way before a reader is ever killed as
a deadlock victim), rolls back, and retries until ``swap_deadline_seconds``.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from crm_warehouse.publish import PUBLISH_LOG, PUBLISHED_SCHEMAS, PublishError
from crm_warehouse.settings import Settings
from crm_warehouse.warehouse.duckdb_connection import connect
from crm_warehouse.warehouse.sql import qualified_name

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

READER_ROLE = "bi_reader"
# Schemas bi_reader may read; everything else in the database stays closed to it.
READER_SCHEMAS: tuple[str, ...] = ("marts",)
SWAP_LOCK_TIMEOUT = "500ms"
SWAP_DEADLINE_SECONDS = 120.0
# Serialises publishes from several runs or processes against one database.
PUBLISH_LOCK_KEY = "crm_warehouse.publish_postgres"
_STAGING_SCHEMA = re.compile(r"^(?P<schema>[a-z_]+)__(?:new|old)_[a-z0-9_]+$")


@dataclass(frozen=True)
class PostgresPublishResult:
    run_id: str
    row_counts: dict[str, int]
    seconds: float
    swap_attempts: int


def _run_suffix(run_id: str) -> str:
    # Schema names are identifiers of at most 63 bytes: keep the run id's safe characters.
    suffix = re.sub(r"[^a-z0-9]+", "_", run_id.lower()).strip("_")[:40]
    if not suffix:
        raise PublishError(f"run id {run_id!r} has no characters usable in a schema name")
    return suffix


def _sql_literal(value: str) -> str:
    # ATTACH takes no bound parameters; quote the value as a SQL string literal.
    return "'" + value.replace("'", "''") + "'"


@contextmanager
def duckdb_with_postgres_extension(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the postgres extension of the installed wheel loaded.

    Extensions cannot be downloaded at run time here; the PyPI package
    ``duckdb-extension-postgres`` ships the binary. DuckDB derives the entry point from
    the file name, and the extension's internal name is ``postgres_scanner``, so the
    file is linked under that name before ``LOAD``.
    """
    import duckdb_extension_postgres

    package = Path(duckdb_extension_postgres.__file__).parent
    shipped = package / "extensions" / f"v{duckdb.__version__}" / "postgres.duckdb_extension"
    if not shipped.exists():
        raise PublishError(
            f"no postgres extension for DuckDB {duckdb.__version__} at {shipped}: "
            "install duckdb-extension-postgres of the same version as duckdb"
        )
    with tempfile.TemporaryDirectory(prefix="crm_pg_ext_") as folder:
        linked = Path(folder) / "postgres_scanner.duckdb_extension"
        linked.symlink_to(shipped)
        con = connect(settings)
        try:
            con.execute(f"load {_sql_literal(str(linked))}")
            yield con
        finally:
            con.close()


def ensure_reader_role(pg: psycopg.Connection, password: str) -> None:
    """Create or update ``bi_reader``: login with ``password``, read-only, no temporary tables."""
    if not password:
        raise PublishError("CRM_POSTGRES_BI_PASSWORD is empty: set a password for the bi_reader role")
    role = sql.Identifier(READER_ROLE)
    exists = pg.execute("select 1 from pg_roles where rolname = %s", (READER_ROLE,)).fetchone()
    verb = sql.SQL("alter") if exists else sql.SQL("create")
    pg.execute(
        sql.SQL("{} role {} login nocreatedb nocreaterole password {}").format(verb, role, sql.Literal(password))
    )
    pg.execute(sql.SQL("alter role {} set default_transaction_read_only = on").format(role))
    # PUBLIC may create temporary tables by default; BI needs no scratch space here.
    pg.execute(sql.SQL("revoke temporary on database {} from public").format(sql.Identifier(pg.info.dbname)))


def _drop_stray_schemas(pg: psycopg.Connection) -> None:
    # A publish that died between load and swap leaves its new schema behind.
    names = [r[0] for r in pg.execute("select nspname from pg_namespace").fetchall()]
    for name in names:
        match = _STAGING_SCHEMA.match(name)
        if match and match["schema"] in PUBLISHED_SCHEMAS:
            log.info("dropping schema %s left by an earlier publish", name)
            pg.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(name)))


def _load(settings: Settings, serving_path: Path, dsn: str, staging: dict[str, str]) -> dict[str, int]:
    """Copy every published table into its staging schema; row counts by ``schema.table``."""
    row_counts: dict[str, int] = {}
    with duckdb_with_postgres_extension(settings) as con:
        con.execute(f"attach {_sql_literal(str(serving_path))} as serving (read_only)")
        con.execute(f"attach {_sql_literal(dsn)} as pg (type postgres)")
        serving_tables = _tables_of(con)
        if not serving_tables:
            raise PublishError(f"nothing to publish: no tables in schemas {list(staging)} of {serving_path}")
        for schema in staging.values():
            con.execute(f'create schema pg."{schema}"')
        for schema, table in serving_tables:
            _check_identifier(table)
            source = f'serving."{schema}"."{table}"'
            con.execute(f'create table pg."{staging[schema]}"."{table}" as select * from {source}')
            row_counts[f"{schema}.{table}"] = con.execute(f"select count(*) from {source}").fetchone()[0]
    return row_counts


def _tables_of(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(schema, table) of the serving file's published tables."""
    return con.execute(
        """select schema_name, table_name from duckdb_tables()
           where database_name = 'serving' and list_contains($schemas, schema_name) order by 1, 2""",
        {"schemas": list(PUBLISHED_SCHEMAS)},
    ).fetchall()


def _check_identifier(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise PublishError(f"refusing to publish an unsafe table name: {name!r}")


def _serving_checks_passed(settings: Settings, serving_path: Path) -> int:
    with connect(settings, serving_path, read_only=True) as con:
        row = con.execute(f"select checks_passed from {PUBLISH_LOG} order by published_at desc limit 1").fetchone()
    return row[0] if row else 0


def _verify_counts(pg: psycopg.Connection, staging: dict[str, str], row_counts: dict[str, int]) -> None:
    for name, expected in row_counts.items():
        schema, table = name.split(".")
        found = pg.execute(
            sql.SQL("select count(*) from {}.{}").format(sql.Identifier(staging[schema]), sql.Identifier(table))
        ).fetchone()[0]
        if found != expected:
            raise PublishError(f"{name}: {found} rows arrived in PostgreSQL, the serving file has {expected}")


def _swap(
    pg: psycopg.Connection,
    staging: dict[str, str],
    old: dict[str, str],
    rows: list[tuple[str, str, int, int]],
) -> None:
    """One transaction: old schemas away, new ones in place, grants, old dropped, publish_log."""
    with pg.transaction():
        pg.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(SWAP_LOCK_TIMEOUT)))
        for schema, new in staging.items():
            current = pg.execute("select 1 from pg_namespace where nspname = %s", (schema,)).fetchone()
            if current:
                pg.execute(
                    sql.SQL("alter schema {} rename to {}").format(sql.Identifier(schema), sql.Identifier(old[schema]))
                )
            pg.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(new), sql.Identifier(schema)))
        reader = sql.Identifier(READER_ROLE)
        for schema in READER_SCHEMAS:
            pg.execute(sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(schema), reader))
            pg.execute(sql.SQL("grant select on all tables in schema {} to {}").format(sql.Identifier(schema), reader))
        for schema in staging:
            pg.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(old[schema])))
        pg.execute(
            f"""create table if not exists public.{PUBLISH_LOG} (
                run_id text not null,
                published_at timestamptz not null,
                table_name text not null,
                row_count bigint not null,
                checks_passed integer not null
            )"""
        )
        with pg.cursor() as cur:
            cur.executemany(f"insert into public.{PUBLISH_LOG} values (%s, now(), %s, %s, %s)", rows)


def publish_to_postgres(
    serving_path: Path,
    dsn: str,
    reader_password: str,
    run_id: str,
    *,
    settings: Settings,
    swap_deadline_seconds: float = SWAP_DEADLINE_SECONDS,
) -> PostgresPublishResult:
    """Copy the serving file's published schemas to PostgreSQL and swap them in atomically.

    ``dsn`` is the loader role's connection string (it owns the published schemas and
    may create roles); ``reader_password`` is set on ``bi_reader``; ``settings`` bound the
    memory of the DuckDB that reads the serving file. A failure before the
    swap leaves the previous PostgreSQL copy in place and removes the half-loaded one.
    """
    serving_path = Path(serving_path)
    if not serving_path.exists():
        raise PublishError(f"no serving file at {serving_path}: publish the DuckDB serving copy first")
    return _publish(
        dsn,
        reader_password,
        run_id,
        load=lambda staging: _load(settings, serving_path, dsn, staging),
        checks_passed=lambda: _serving_checks_passed(settings, serving_path),
        swap_deadline_seconds=swap_deadline_seconds,
    )


def publish_spark_to_postgres(
    spark: SparkSession,
    dsn: str,
    reader_password: str,
    run_id: str,
    *,
    checks_passed: int,
    swap_deadline_seconds: float = SWAP_DEADLINE_SECONDS,
) -> PostgresPublishResult:
    """Copy Spark's published schemas (their checks passed: ``checks_passed``) to PostgreSQL, with the same swap.

    Spark's executors write each table through PostgreSQL's JDBC driver
    (``scripts/spark.sh`` puts Debian's on the server JVM's class path; on a cluster put
    ``org.postgresql:postgresql`` on the driver's and the executors' class path), a task
    per partition: no row passes through this process, and the count check after the
    load proves every row arrived.
    """
    return _publish(
        dsn,
        reader_password,
        run_id,
        load=lambda staging: _load_from_spark(spark, dsn, staging),
        checks_passed=lambda: checks_passed,
        swap_deadline_seconds=swap_deadline_seconds,
    )


def _publish(
    dsn: str,
    reader_password: str,
    run_id: str,
    *,
    load: Callable[[dict[str, str]], dict[str, int]],
    checks_passed: Callable[[], int],
    swap_deadline_seconds: float,
) -> PostgresPublishResult:
    """Load into staging schemas (``load`` returns row counts by ``schema.table``), verify, swap."""
    started = time.perf_counter()
    suffix = _run_suffix(run_id)
    staging = {schema: f"{schema}__new_{suffix}" for schema in PUBLISHED_SCHEMAS}
    old = {schema: f"{schema}__old_{suffix}" for schema in PUBLISHED_SCHEMAS}
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute("select pg_advisory_lock(hashtext(%s))", (PUBLISH_LOCK_KEY,))
        ensure_reader_role(pg, reader_password)
        _drop_stray_schemas(pg)
        try:
            row_counts = load(staging)
            _verify_counts(pg, staging, row_counts)
            passed = checks_passed()
            rows = [(run_id, name, count, passed) for name, count in row_counts.items()]
            attempts = _swap_until_deadline(pg, staging, old, rows, swap_deadline_seconds)
        except BaseException:
            _drop_stray_schemas(pg)
            raise
    seconds = time.perf_counter() - started
    log.info("published %d tables to PostgreSQL in %.1f s", len(row_counts), seconds)
    return PostgresPublishResult(run_id, row_counts, seconds, attempts)


def _load_from_spark(spark: SparkSession, dsn: str, staging: dict[str, str]) -> dict[str, int]:
    """Write every table of Spark's published schemas into its staging schema; row counts by ``schema.table``."""
    tables = [
        (schema, table.name)
        for schema in staging
        for table in spark.catalog.listTables(schema)
        if table.tableType != "VIEW" and not table.isTemporary
    ]
    if not tables:
        raise PublishError(f"nothing to publish: no tables in Spark's schemas {list(staging)}")
    with psycopg.connect(dsn, autocommit=True) as pg:
        for schema in staging.values():
            pg.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
    url, properties = _jdbc(dsn)
    row_counts: dict[str, int] = {}
    for schema, table in tables:
        _check_identifier(table)
        frame = spark.table(qualified_name(schema, table, "spark"))
        frame.write.jdbc(url, f'"{staging[schema]}"."{table}"', mode="error", properties=properties)
        row_counts[f"{schema}.{table}"] = frame.count()
    return row_counts


def _jdbc(dsn: str) -> tuple[str, dict[str, str]]:
    """The JDBC URL and connection properties of a libpq connection string (URL or key=value)."""
    parts = conninfo_to_dict(dsn)
    url = f"jdbc:postgresql://{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts['dbname']}"
    properties = {"driver": "org.postgresql.Driver", "user": parts["user"]}
    if parts.get("password"):
        properties["password"] = parts["password"]
    return url, properties


def _swap_until_deadline(
    pg: psycopg.Connection,
    staging: dict[str, str],
    old: dict[str, str],
    rows: list[tuple[str, str, int, int]],
    deadline_seconds: float,
) -> int:
    deadline = time.monotonic() + deadline_seconds
    delay = 0.2
    attempt = 0
    while True:
        attempt += 1
        try:
            _swap(pg, staging, old, rows)
            return attempt
        except psycopg.errors.LockNotAvailable as exc:
            if time.monotonic() + delay > deadline:
                raise PublishError(
                    f"readers kept the published tables locked for {deadline_seconds:.0f} s; "
                    "the previous PostgreSQL copy stays"
                ) from exc
            log.info("published tables in use by readers; swap retried in %.1f s", delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
