"""Write-audit-publish on a hand-made working warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from serving import latest_publish

from crm_warehouse.publish import PublishError, publish


@pytest.fixture
def warehouse(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "work.duckdb")) as con:
        con.execute("create schema marts; create schema analytics; create schema raw")
        con.execute("create table marts.dim_customers as select 'C' || i as customer_id from range(5) t(i)")
        con.execute(
            "create table analytics.customer_clv as "
            "select 'C' || i as customer_id, 1.5::double as clv, timestamp '2025-01-01' as scored_at from range(3) t(i)"
        )
        con.execute("create table raw.crm_customers as select 'C1' as customer_id, 'a@b.c' as email")
        yield con


def serving_tables(path: Path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            f"{s}.{t}"
            for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        }


def test_publish_copies_bi_schemas_only_and_logs_counts(warehouse, tmp_path):
    serving = tmp_path / "serving" / "crm.duckdb"
    result = publish(warehouse, serving, run_id="run-1", checks_passed=7)
    assert result.row_counts == {"analytics.customer_clv": 3, "marts.dim_customers": 5}
    assert serving_tables(serving) == {"analytics.customer_clv", "marts.dim_customers", "main.publish_log"}
    assert latest_publish(serving) == {"analytics.customer_clv": 3, "marts.dim_customers": 5}
    assert not list(serving.parent.glob(".*building*")), "no staging file left behind"


def test_publish_log_keeps_history_and_swaps_content(warehouse, tmp_path):
    serving = tmp_path / "crm.duckdb"
    publish(warehouse, serving, run_id="run-1", checks_passed=7)
    warehouse.execute("insert into marts.dim_customers values ('C9')")
    publish(warehouse, serving, run_id="run-2", checks_passed=8)
    with duckdb.connect(str(serving), read_only=True) as con:
        assert con.execute(
            "select run_id, table_name, row_count, checks_passed from publish_log order by all"
        ).fetchall() == [
            ("run-1", "analytics.customer_clv", 3, 7),
            ("run-1", "marts.dim_customers", 5, 7),
            ("run-2", "analytics.customer_clv", 3, 8),
            ("run-2", "marts.dim_customers", 6, 8),
        ]
        assert con.execute("select count(*) from marts.dim_customers").fetchone() == (6,)


def test_clear_personal_data_is_never_published(warehouse, tmp_path):
    serving = tmp_path / "crm.duckdb"
    publish(warehouse, serving, run_id="run-1", checks_passed=1)
    before = serving.read_bytes()
    warehouse.execute("alter table marts.dim_customers add column email varchar")
    with pytest.raises(PublishError, match="marts.dim_customers.email"):
        publish(warehouse, serving, run_id="run-2", checks_passed=1)
    assert serving.read_bytes() == before


def test_failure_while_copying_leaves_the_serving_copy_untouched(warehouse, tmp_path):
    serving = tmp_path / "crm.duckdb"
    publish(warehouse, serving, run_id="run-1", checks_passed=1)
    before = serving.read_bytes()
    # A view that fails when read stands for any error mid-copy.
    warehouse.execute("create view marts.broken as select cast('x' as integer) as n")
    with pytest.raises(duckdb.Error):
        publish(warehouse, serving, run_id="run-2", checks_passed=1)
    assert serving.read_bytes() == before
    assert latest_publish(serving) == {"analytics.customer_clv": 3, "marts.dim_customers": 5}
    assert not list(tmp_path.glob(".*building*"))


def test_serving_holds_each_customers_current_score_after_five_scoring_runs(warehouse, tmp_path):
    """Scores accumulate in the working warehouse; BI sees one row per customer, the latest."""
    warehouse.execute("delete from analytics.customer_clv")
    serving = tmp_path / "crm.duckdb"
    for run in range(1, 6):
        warehouse.execute(
            "insert into analytics.customer_clv "
            "select 'C' || i, $run * 10.0 + i, timestamp '2025-01-01' + to_days(cast($run as integer)) "
            "from range(5) t(i)",
            {"run": run},
        )
        publish(warehouse, serving, run_id=f"run-{run}", checks_passed=1)
    assert warehouse.execute("select count(*) from analytics.customer_clv").fetchone() == (25,), "history kept"
    with duckdb.connect(str(serving), read_only=True) as con:
        assert con.execute("select count(*), count(distinct customer_id) from analytics.customer_clv").fetchone() == (
            5,
            5,
        )
        assert con.execute("select sum(clv) from analytics.customer_clv").fetchone() == (50.0 * 5 + 10,)
    assert latest_publish(serving)["analytics.customer_clv"] == 5
