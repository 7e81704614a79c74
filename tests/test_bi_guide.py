"""Every SQL example of docs/bi_guide.md runs, as written, on the serving file and on PostgreSQL.

The DuckDB side opens the serving file the pipeline built, read-only, like a BI tool;
the PostgreSQL side publishes that file with the real PostgreSQL publish and runs the
queries as ``bi_reader`` (the log query as the loader, the only role that reads it).
Also here: the project's SQL shell for the serving file (``make sql``).
"""

from __future__ import annotations

import re
import subprocess
import sys

import duckdb
import psycopg
import pytest
from pipeline_support import PROJECT_ROOT
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from serving import READER_PASSWORD

from crm_warehouse.publish_postgres import READER_ROLE, publish_to_postgres
from crm_warehouse.settings import load_settings

pytestmark = pytest.mark.slow

GUIDE = PROJECT_ROOT / "docs" / "bi_guide.md"
SQL_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.MULTILINE | re.DOTALL)


def guide_queries() -> list[str]:
    return [block.strip() for block in SQL_BLOCK.findall(GUIDE.read_text(encoding="utf-8"))]


def test_the_guide_has_its_examples():
    assert len(guide_queries()) >= 6


@pytest.mark.parametrize("number", range(len(guide_queries())))
def test_guide_query_runs_and_returns_rows_on_duckdb(number, built_pipeline):
    query = guide_queries()[number]
    serving = built_pipeline.root / "serving" / "crm_serving.duckdb"
    with duckdb.connect(str(serving), read_only=True) as con:
        rows = con.execute(query).fetchall()
    assert rows, f"query {number + 1} of docs/bi_guide.md returned no rows:\n{query}"


@pytest.fixture(scope="module")
def published_postgres(built_pipeline, loader_dsn: str) -> str:
    """The loader DSN of a PostgreSQL database holding the built pipeline's serving tables."""
    serving = built_pipeline.root / "serving" / "crm_serving.duckdb"
    publish_to_postgres(
        serving,
        loader_dsn,
        READER_PASSWORD,
        f"bi-guide-{built_pipeline.run_id}",
        settings=load_settings({"CRM_DATA_DIR": str(built_pipeline.root)}),
    )
    return loader_dsn


@pytest.mark.parametrize("number", range(len(guide_queries())))
def test_guide_query_runs_and_returns_rows_on_postgres(number, published_postgres):
    query = guide_queries()[number]
    # bi_reader reads marts only; the publish log is the loader's.
    dsn = published_postgres
    if "publish_log" not in query:
        dsn = make_conninfo(**{**conninfo_to_dict(dsn), "user": READER_ROLE, "password": READER_PASSWORD})
    with psycopg.connect(dsn) as con:
        rows = con.execute(query).fetchall()
    assert rows, f"query {number + 1} of docs/bi_guide.md returned no rows on PostgreSQL:\n{query}"


def test_the_sql_shell_reads_the_serving_file_read_only(built_pipeline):
    serving = built_pipeline.root / "serving" / "crm_serving.duckdb"
    completed = subprocess.run(
        [sys.executable, "-m", "crm_warehouse.sql", str(serving)],
        input="select count(*) as customers from marts.dim_customers;\ncreate table marts.x (i integer);\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    with duckdb.connect(str(serving), read_only=True) as con:
        customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
    assert f"{customers}" in completed.stdout and "customers" in completed.stdout
    assert "read-only" in completed.stdout + completed.stderr
    assert completed.returncode == 1, "a failed statement makes the exit status non-zero"
