"""Resources, declared once: the warehouse configuration and the dbt CLI."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from crm_warehouse.settings import Settings, load_settings

# Every step that writes the warehouse joins this Dagster concurrency pool; the
# instance limits it to one slot (dagster.yaml), so runs started together queue.
WAREHOUSE_POOL = "duckdb_warehouse"

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
    """Where the run reads and writes: landing, working warehouse, serving file, models, Data Docs.

    Built from :func:`crm_warehouse.settings.load_settings`, so ``make run``,
    ``dagster dev`` and schedules share one configuration; tests build their own.
    """

    warehouse_path: str
    landing_dir: str
    serving_path: str
    models_dir: str
    dq_docs_dir: str
    as_of_date: str | None = None
    lock_timeout_seconds: int = 600
    max_quarantine_rate: float = 0.05
    min_quarantine_rows: int = 20
    max_quarantine_rate_per_source: dict[str, float] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> WarehouseResource:
        return cls(
            warehouse_path=str(settings.warehouse_path),
            landing_dir=str(settings.landing_dir),
            serving_path=str(settings.serving_path),
            models_dir=str(settings.models_dir),
            dq_docs_dir=str(settings.dq_docs_dir),
            as_of_date=settings.as_of_date.isoformat() if settings.as_of_date else None,
            lock_timeout_seconds=settings.lock_timeout_seconds,
            max_quarantine_rate=settings.max_quarantine_rate,
            min_quarantine_rows=settings.min_quarantine_rows,
            max_quarantine_rate_per_source=dict(settings.max_quarantine_rate_per_source),
        )

    def quarantine_rate_for(self, table: str) -> float:
        """The quarantine-rate limit of raw table ``table``: its own, else the general one."""
        return self.max_quarantine_rate_per_source.get(table, self.max_quarantine_rate)

    @property
    def as_of(self) -> date | None:
        return date.fromisoformat(self.as_of_date) if self.as_of_date else None

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The run's single read-write connection to the working warehouse."""
        path = Path(self.warehouse_path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise dg.Failure(
                f"cannot create the warehouse folder {path.parent}: {exc}. "
                "Set CRM_WAREHOUSE_PATH (or CRM_DATA_DIR) to a writable place.",
                allow_retries=False,
            ) from exc
        with self._connect_waiting_for_lock(path) as con:
            yield con

    def _connect_waiting_for_lock(self, path: Path) -> duckdb.DuckDBPyConnection:
        # DuckDB allows one writing process; another run holding the file makes this
        # run wait (with backoff) instead of failing.
        deadline = time.monotonic() + self.lock_timeout_seconds
        delay = 0.5
        while True:
            try:
                return duckdb.connect(str(path))
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise dg.Failure(f"cannot open the warehouse {path} for writing: {exc}") from exc
                dg.get_dagster_logger().info(f"warehouse {path} is locked by another run; retrying in {delay:.1f} s")
                time.sleep(delay)
                delay = min(delay * 2, 15.0)


def warehouse_from_settings() -> WarehouseResource:
    return WarehouseResource.from_settings(load_settings())
