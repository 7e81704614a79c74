"""Resources, declared once: the warehouse configuration and the dbt CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from crm_warehouse.settings import Settings, load_settings


class WarehouseResource(dg.ConfigurableResource):
    """Where the run reads and writes: landing files, working warehouse, serving file, models.

    Built from :func:`crm_warehouse.settings.load_settings`, so ``make run``,
    ``dagster dev`` and schedules share one configuration; tests build their own.
    """

    warehouse_path: str
    landing_dir: str
    serving_path: str
    models_dir: str
    as_of_date: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WarehouseResource:
        return cls(
            warehouse_path=str(settings.warehouse_path),
            landing_dir=str(settings.landing_dir),
            serving_path=str(settings.serving_path),
            models_dir=str(settings.models_dir),
            as_of_date=settings.as_of_date.isoformat() if settings.as_of_date else None,
        )

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
                "Set CRM_WAREHOUSE_PATH (or CRM_DATA_DIR) to a writable place."
            ) from exc
        with duckdb.connect(str(path)) as con:
            yield con


def warehouse_from_settings() -> WarehouseResource:
    return WarehouseResource.from_settings(load_settings())
