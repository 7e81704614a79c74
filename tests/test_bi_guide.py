"""Every SQL example of docs/bi_guide.md runs on a serving file the pipeline built and returns rows."""

from __future__ import annotations

import re

import duckdb
import pytest
from pipeline_support import PROJECT_ROOT

pytestmark = pytest.mark.slow

GUIDE = PROJECT_ROOT / "docs" / "bi_guide.md"
SQL_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.MULTILINE | re.DOTALL)


def guide_queries() -> list[str]:
    return [block.strip() for block in SQL_BLOCK.findall(GUIDE.read_text(encoding="utf-8"))]


def test_the_guide_has_its_examples():
    assert len(guide_queries()) >= 6


@pytest.mark.parametrize("number", range(len(guide_queries())))
def test_guide_query_runs_and_returns_rows(number, built_pipeline):
    query = guide_queries()[number]
    serving = built_pipeline.root / "serving" / "crm_serving.duckdb"
    with duckdb.connect(str(serving), read_only=True) as con:
        rows = con.execute(query).fetchall()
    assert rows, f"query {number + 1} of docs/bi_guide.md returned no rows:\n{query}"
