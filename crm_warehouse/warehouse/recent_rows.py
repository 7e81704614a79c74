"""The recent rows of a table: what the latest incremental dbt run rewrote.

dbt defines the window once (``incremental_start`` in
``dbt_project/macros/incremental.sql``) and its ``on-run-end`` hook records, for
every model whose meta names a ``window_column``, where the window starts, in
:data:`RECENT_WINDOWS`. A daily run's Great Expectations suites read that record,
so Python never writes the window rule again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from crm_warehouse.warehouse.relations import Relation
from crm_warehouse.warehouse.sql import qualified_name, safe_identifier

RECENT_WINDOWS = Relation("audit", "recent_windows")


@dataclass(frozen=True)
class RecentWindow:
    """The rows of a table whose ``column`` is on or after ``start``."""

    column: str
    start: date

    def rows_sql(self, table: str) -> str:
        """``select`` of the recent rows of ``table`` (``<schema>.<table>``)."""
        schema, name = table.split(".")
        return f"select * from {qualified_name(schema, name)} where {safe_identifier(self.column)} >= " + (
            f"cast('{self.start.isoformat()}' as date)"
        )

    def describe(self) -> str:
        return f"{self.column} >= {self.start.isoformat()}"


def recent_window(con: duckdb.DuckDBPyConnection, table: str) -> RecentWindow | None:
    """The window dbt recorded for ``table`` (``<schema>.<table>``), or None (no record: validate it whole)."""
    if not RECENT_WINDOWS.exists(con):
        return None
    row = con.execute(
        # the latest record: on Spark the hook appends instead of replacing
        f"select window_column, window_start from {RECENT_WINDOWS.sql()} where relation_name = $table "
        "order by recorded_at desc limit 1",
        {"table": table},
    ).fetchone()
    return RecentWindow(column=row[0], start=row[1]) if row and row[1] is not None else None
