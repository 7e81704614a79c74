"""Resources, declared once: the DuckDB warehouse and the dbt CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from crm_warehouse.settings import load_settings


class WarehouseResource(dg.ConfigurableResource):
    """The working DuckDB warehouse and the landing folder it is fed from."""

    warehouse_path: str
    landing_dir: str

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
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
    settings = load_settings()
    return WarehouseResource(
        warehouse_path=str(settings.warehouse_path),
        landing_dir=str(settings.landing_dir),
    )
