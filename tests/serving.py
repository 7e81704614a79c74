"""Reading what was published back, as a BI user or a test would."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from crm_warehouse.publish import PUBLISH_LOG

#: The PostgreSQL password of bi_reader the tests publish with (CI's, else a test default).
READER_PASSWORD = os.environ.get("CRM_POSTGRES_BI_PASSWORD") or "bi-reader-test"


def latest_publish(serving_path: Path) -> dict[str, int]:
    """Row counts of the latest publish recorded in a serving file's ``publish_log``."""
    with duckdb.connect(str(serving_path), read_only=True) as con:
        return dict(
            con.execute(
                f"""select table_name, row_count from {PUBLISH_LOG}
                    where run_id = (select run_id from {PUBLISH_LOG} order by published_at desc limit 1)"""
            ).fetchall()
        )
