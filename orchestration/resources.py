"""Resources, declared once: the warehouse configuration and the dbt CLI."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TypeVar

import dagster as dg
import duckdb

from crm_warehouse.ingest import DuckDBRawStore, RawStore
from crm_warehouse.ingest_spark import spark_raw_store
from crm_warehouse.settings import Settings
from crm_warehouse.warehouse.as_of import AsOfError, resolve_as_of
from crm_warehouse.warehouse.catalog import WarehouseSql
from crm_warehouse.warehouse.duckdb_connection import connect
from crm_warehouse.warehouse.spark import SparkSqlConnection

# Every step that writes the warehouse joins this Dagster concurrency pool; the
# instance limits it to one slot (dagster.yaml), so runs started together queue.
# Such a step also holds WarehouseResource.writer_turn while it runs.
WAREHOUSE_POOL = "duckdb_warehouse"
#: Log lines a warehouse step writes while it holds the warehouse (``writer_turn``).
WAREHOUSE_TAKEN = "took the warehouse for this step:"
WAREHOUSE_RELEASED = "released the warehouse:"

T = TypeVar("T")

# Transient errors (a lock held longer than the wait, a full disk freed, a flaky
# mount) get two more tries with growing pauses; failures that would only repeat
# (a contract breach, bad configuration, a failed audit) are raised with
# allow_retries=False and fail at once.
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=2, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# Runs tagged so (the daily job's) validate the rows their incremental tables were
# rewritten with, not whole tables again: dbt data tests (var data_tests_scope) and
# GX suites with a window_column read the latest incremental_lookback_days days. A
# dbt full refresh tests everything; a backfill tags its run ALL_ROWS.
VALIDATED_ROWS_TAG = "crm/validated_rows"
RECENT_ROWS, ALL_ROWS = "recent", "all"


def validates_recent_rows(run_tags: Mapping[str, str]) -> bool:
    return run_tags.get(VALIDATED_ROWS_TAG) == RECENT_ROWS


class WarehouseResource(dg.ConfigurableResource):
    """The one configuration (:class:`~crm_warehouse.settings.Settings`), carried to every step.

    Built from :func:`crm_warehouse.settings.load_settings`, so ``make run``,
    ``dagster dev`` and schedules share one configuration; tests build their own.
    The settings travel as JSON (Dagster resource config is plain values) and every
    step reads them through :attr:`settings`; the shortcuts below are the ones most
    steps use.
    """

    settings_json: str

    @classmethod
    def from_settings(cls, settings: Settings) -> WarehouseResource:
        return cls(settings_json=settings.to_json())

    @property
    def settings(self) -> Settings:
        return Settings.from_json(self.settings_json)

    @property
    def warehouse_path(self) -> str:
        return str(self.settings.warehouse_path)

    @property
    def landing_dir(self) -> str:
        return str(self.settings.landing_dir)

    @property
    def serving_path(self) -> str:
        return str(self.settings.serving_path)

    @property
    def models_dir(self) -> str:
        return str(self.settings.models_dir)

    @property
    def dq_docs_dir(self) -> str:
        return str(self.settings.dq_docs_dir)

    @property
    def as_of(self) -> date | None:
        """The configured as-of date (None: the latest loaded order's, see :meth:`resolve_as_of`)."""
        return self.settings.as_of_date

    @property
    def max_quarantine_rate(self) -> float:
        return self.settings.max_quarantine_rate

    @property
    def min_quarantine_rows(self) -> int:
        return self.settings.min_quarantine_rows

    def quarantine_rate_for(self, table: str) -> float:
        """The quarantine-rate limit of raw table ``table``: its own, else the general one."""
        return self.settings.max_quarantine_rate_per_source.get(table, self.settings.max_quarantine_rate)

    def resolve_as_of(self, con: WarehouseSql) -> date:
        """The warehouse's as-of date for this run (:func:`crm_warehouse.warehouse.as_of.resolve_as_of`)."""
        try:
            return resolve_as_of(con, self.as_of)
        except AsOfError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from exc

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The run's single read-write connection to the working warehouse."""
        path = self._in_warehouse_folder(Path(self.warehouse_path))
        with self._connect_waiting_for_lock(path) as con:
            yield con

    @contextmanager
    def sql(self) -> Iterator[WarehouseSql]:
        """A SQL connection to the warehouse on the configured engine, for steps that only run SQL
        written in DuckDB's dialect (the quality checks, a dbt step's as-of date and row counts): the
        DuckDB file (:meth:`connect`), or Spark's Thrift server, where sqlglot translates
        (:class:`SparkSqlConnection`)."""
        with SparkSqlConnection(self.settings) if self.settings.engine == "spark" else self.connect() as con:
            yield con

    @contextmanager
    def writer(self) -> Iterator[WarehouseSql]:
        """The connection a step that writes tables from Python uses, on the configured engine: the
        DuckDB file, held for the whole step (:meth:`writer_turn`), or Spark's Thrift server."""
        if self.settings.engine == "spark":
            with SparkSqlConnection(self.settings) as con:
                yield con
        else:
            with self.writer_turn(), self.connect() as con:
                yield con

    @contextmanager
    def raw_store(self) -> Iterator[RawStore]:
        """Where ingestion writes, on the configured engine: the DuckDB file, held for the whole
        step (:meth:`writer_turn`), or Spark's raw database (:func:`spark_raw_store`)."""
        if self.settings.engine == "spark":
            with spark_raw_store(self.settings) as store:
                yield store
        else:
            with self.writer_turn(), self.connect() as con:
                yield DuckDBRawStore(con)

    @staticmethod
    def _in_warehouse_folder(path: Path) -> Path:
        """``path``, once its folder exists (a failure that says what to set, when it cannot)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise dg.Failure(
                f"cannot create the warehouse folder {path.parent}: {exc}. "
                "Set CRM_WAREHOUSE_PATH (or CRM_DATA_DIR) to a writable place.",
                allow_retries=False,
            ) from exc
        return path

    def _connect_waiting_for_lock(self, path: Path) -> duckdb.DuckDBPyConnection:
        # DuckDB allows one writing process; another run holding the file makes this
        # run wait (with backoff) instead of failing.
        return self._waiting_for_lock(
            lambda: connect(self.settings, path),
            duckdb.IOException,
            lambda exc: "lock" in str(exc).lower(),
            f"warehouse {path}",
        )

    @contextmanager
    def writer_turn(self) -> Iterator[None]:
        """Hold the warehouse for a whole step, so warehouse steps of two runs never overlap.

        The Dagster pool (``WAREHOUSE_POOL``) queues them, but with Dagster's SQLite
        storage two steps claiming the one slot in the same instant can both get it:
        the claim reads the free slot, then writes it, with no lock between (seen in
        ``test_two_runs_started_together_queue_on_the_warehouse``). DuckDB's own lock
        lasts one connection, and a dbt step opens several. An exclusive lock on a file
        beside the warehouse, held for the step, makes the second step wait.
        """
        warehouse = Path(self.warehouse_path)
        path = self._in_warehouse_folder(warehouse.with_name(warehouse.name + ".writer.lock"))
        logger = dg.get_dagster_logger()
        with path.open("a") as handle:
            asked = time.monotonic()
            self._waiting_for_lock(
                lambda: fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB),
                BlockingIOError,
                lambda exc: True,
                f"warehouse {self.warehouse_path}",
            )
            # Logged inside the lock: the step's exclusive time on the warehouse, which
            # its STEP_START and STEP_SUCCESS events only bracket.
            logger.info(f"{WAREHOUSE_TAKEN} {self.warehouse_path} (waited {time.monotonic() - asked:.1f} s)")
            try:
                yield
            finally:
                logger.info(f"{WAREHOUSE_RELEASED} {self.warehouse_path}")
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _waiting_for_lock(
        self, attempt: Callable[[], T], error: type[Exception], is_locked: Callable[[Exception], bool], what: str
    ) -> T:
        """``attempt()`` until it does not fail for a lock, with backoff, up to ``lock_timeout_seconds``.

        Only ``error`` is caught: a lock error is retried, any other ``error`` fails the step.
        """
        deadline = time.monotonic() + self.settings.lock_timeout_seconds
        delay = 0.5
        while True:
            try:
                return attempt()
            except error as exc:
                if not is_locked(exc) or time.monotonic() > deadline:
                    raise dg.Failure(f"cannot open the {what} for writing: {exc}") from exc
                dg.get_dagster_logger().info(f"{what} is locked by another run; retrying in {delay:.1f} s")
                time.sleep(delay)
                delay = min(delay * 2, 15.0)
