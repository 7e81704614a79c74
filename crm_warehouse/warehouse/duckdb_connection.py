"""Every DuckDB connection of the project opens here, with the configuration's memory bounds.

DuckDB's default ``memory_limit`` is 80 % of the machine, and it uses it: at a million
customers dbt's connection alone peaked at 12.9 GiB (docs/performance.md). With
``memory_limit`` and ``temp_directory`` from :class:`~crm_warehouse.settings.Settings`
each connection spills to disk instead, so the whole job fits a small machine.
``allocator_background_threads`` lets DuckDB's allocator (jemalloc) hand freed
memory back to the system while a long statement runs: without it a dbt process
bounded at 2 GiB grew to 3.35 GiB resident at 1M customers, with it to 2.5 GiB
(docs/performance.md, "Memory outside DuckDB's limit").
dbt's own connection gets the same settings through the written profile
(:func:`crm_warehouse.warehouse.dbt_project.write_profile`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from crm_warehouse.settings import Settings


def duckdb_settings(settings: Settings) -> dict[str, str | bool]:
    """The DuckDB configuration of every connection (the temp folder is created)."""
    settings.duckdb_temp_dir.mkdir(parents=True, exist_ok=True)
    return {
        "memory_limit": settings.duckdb_memory_limit,
        "temp_directory": str(settings.duckdb_temp_dir),
        "allocator_background_threads": True,
    }


def connect(
    settings: Settings, path: Path | str | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file ``path`` (None: an in-memory database) within the memory bounds."""
    database = ":memory:" if path is None else str(path)
    config: dict[str, str | bool] = dict(duckdb_settings(settings))
    # In-memory helpers (PostgreSQL publish, BYOD) must not fetch extensions at run time.
    if path is None:
        config |= {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    return duckdb.connect(database, read_only=read_only, config=config)
