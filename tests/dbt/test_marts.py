"""The dbt marts on a simulated company, checked against the simulator's ground truth."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from dbt_company import Company
from fingerprints import FINGERPRINTS_FILE, fingerprints

from crm_warehouse.settings import DBT_PROJECT_DIR
from crm_warehouse.warehouse.as_of import resolve_as_of
from crm_warehouse.warehouse.dbt_project import dbt_var_int
from crm_warehouse.warehouse.recent_rows import recent_window

pytestmark = pytest.mark.slow

MIN_STAGE_AGREEMENT = 0.85
MIN_PATTERN_AGREEMENT = 0.90
PYRAMID_SHARES = {"vip": 0.01, "major": 0.04, "ordinary": 0.15, "small": 0.80}
PII_COLUMNS = ("name_zh", "name_latin", "email", "phone", "national_id")
# The salt dbt uses when CRM_PII_SALT is unset (dbt_project/macros/pii.sql): the demo's only.
DEMO_PII_SALT = "demo-salt-change-me"
EARLIER_AS_OF = "2025-06-30"
# Every incremental model of dbt_project.yml, checked against the full build below.
INCREMENTAL_TABLES = {
    "intermediate.int_customer_months__panel": ("customer_id", "month_start"),
    "intermediate.int_customer_months__trailing_revenue": ("customer_id", "month_start"),
    "intermediate.int_customer_months__staged": ("customer_id", "month_start"),
    "intermediate.int_customer_months__activity": ("customer_id", "month_start"),
    "intermediate.int_customer_categories__first_purchases": ("customer_id", "category"),
    "intermediate.int_orders__aggregated": ("order_id",),
    "intermediate.int_order_days__sequenced": ("customer_id", "order_date"),
    "marts.fct_orders": ("order_id",),
    "marts.fct_order_lines": ("order_line_id",),
    "marts.customer_lifecycle_history": ("customer_id", "month_start"),
    "marts.kpi_monthly": ("month_start",),
    "marts.lifecycle_transitions": ("month_start", "from_stage_code", "to_stage_code"),
}


def _mart_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
        ).fetchall()
    ]


def test_dbt_build_passes_with_unit_and_data_tests(company: Company) -> None:
    statuses = {r["unique_id"]: r["status"] for r in company.results}
    # Exposures are documentation: dbt build lists them with status "no-op".
    built = {node: status for node, status in statuses.items() if not node.startswith("exposure.")}
    failed = {node: status for node, status in built.items() if status not in ("success", "pass")}
    assert not failed, failed
    assert sum(node.startswith("exposure.") for node in statuses) == 3
    unit_tests = [node for node in statuses if node.startswith("unit_test.")]
    data_tests = [node for node in statuses if node.startswith("test.")]
    models = [node for node in statuses if node.startswith("model.")]
    print(f"dbt build: {len(models)} models, {len(data_tests)} data tests, {len(unit_tests)} unit tests passed")
    assert len(unit_tests) >= 15
    assert len(data_tests) >= 400


def test_dbt_as_of_default_is_the_python_resolvers(company: Company) -> None:
    """Built without the as_of_date var, dbt's default as-of date is resolve_as_of's."""
    with duckdb.connect(str(company.warehouse), read_only=True) as con:
        (built,) = con.execute("select as_of_date from intermediate.int_calendar__as_of").fetchone()
        assert built == resolve_as_of(con, None)
        assert built == con.execute("select max(order_date) from staging.stg_orders__orders").fetchone()[0]


def test_dbt_records_where_the_recent_rows_of_each_windowed_model_start(company: Company) -> None:
    """dbt's on-run-end hook writes, per model with a window_column, its latest value less the lookback."""
    manifest = json.loads((company.root / "dbt_target" / "manifest.json").read_text())
    windowed = {
        f"{node['schema']}.{node['alias']}": node["config"]["meta"]["window_column"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"].get("meta", {}).get("window_column")
    }
    assert {"marts.fct_orders", "marts.fct_order_lines", "marts.customer_lifecycle_history"} <= set(windowed)
    lookback = dbt_var_int("incremental_lookback_days")
    with duckdb.connect(str(company.warehouse), read_only=True) as con:
        for table, column in windowed.items():
            window = recent_window(con, table)
            assert window is not None and window.column == column, table
            (latest,) = con.execute(f"select cast(max({column}) as date) from {table}").fetchone()
            assert window.start == latest - timedelta(days=lookback), table


def test_stage_rule_agrees_with_simulated_truth(company: Company) -> None:
    with company.connect() as con:
        total, matched, agreeing = con.execute(
            """
            select
                count(*),
                count(history.stage_code),
                sum(case when history.stage_code = truth.true_stage then 1 else 0 end)
            from read_parquet($path) as truth
            left join marts.customer_lifecycle_history as history
                on history.customer_id = truth.customer_id
                and history.month_start = date_trunc('month', truth.month_end)
            """,
            {"path": str(company.truth / "stages_monthly.parquet")},
        ).fetchone()
    agreement = agreeing / total
    print(f"stage agreement with the simulator's truth: {agreement:.1%} of {total} customer-months")
    assert matched == total
    assert agreement >= MIN_STAGE_AGREEMENT


def test_closed_accounts_match_patterns_and_churn_reasons(company: Company) -> None:
    with company.connect() as con:
        crm = dict(
            con.execute(
                """
            select close_reason, count(*) from (
                select * from raw.crm_customers
                qualify row_number() over (partition by customer_id order by updated_at desc) = 1
            )
            where status = 'closed' group by 1
            """
            ).fetchall()
        )
        by_reason = dict(
            con.execute(
                "select reason_code, closed_accounts from marts.churn_by_reason where closed_accounts > 0"
            ).fetchall()
        )
        closed_patterns = con.execute(
            "select count(*) from marts.lifecycle_patterns where ended_by = 'account_closed'"
        ).fetchone()[0]
        truth_closed, same_pattern = con.execute(
            """select count(*), sum(case when patterns.pattern_code = truth.pattern then 1 else 0 end)
               from read_parquet($path) as truth
               left join marts.lifecycle_patterns as patterns using (customer_id)
               where truth.account_closed""",
            {"path": str(company.truth / "customers.parquet")},
        ).fetchone()
    print(f"lifecycle pattern agrees with the simulator's for {same_pattern / truth_closed:.1%} of closed accounts")
    assert by_reason == crm
    assert closed_patterns == sum(crm.values()) == truth_closed
    assert same_pattern / truth_closed >= MIN_PATTERN_AGREEMENT


def test_pyramid_tiers_hold_their_shares(company: Company) -> None:
    with company.connect() as con:
        counts = dict(
            con.execute("select pyramid_tier_code, count(*) from marts.customer_value_segments group by 1").fetchall()
        )
    customers = sum(counts.values())
    for tier, share in PYRAMID_SHARES.items():
        assert abs(counts.get(tier, 0) - share * customers) <= 1, (tier, counts)


def test_every_customer_in_exactly_one_stage_and_segment(company: Company) -> None:
    with company.connect() as con:
        crm = {row[0] for row in con.execute("select distinct customer_id from raw.crm_customers").fetchall()}
        for mart, column in (
            ("customer_lifecycle", "stage_code"),
            ("customer_value_segments", "segment_code"),
            ("customer_value_segments", "value_class_code"),
            ("dim_customers", "stage_code"),
        ):
            rows = con.execute(f"select customer_id, {column} from marts.{mart}").fetchall()
            ids = [customer_id for customer_id, _ in rows]
            assert len(ids) == len(set(ids)) == len(crm), mart
            assert set(ids) == crm, mart
            assert all(code is not None for _, code in rows), (mart, column)


def test_no_personal_data_in_clear_in_any_mart(company: Company) -> None:
    with company.connect() as con:
        con.execute(
            "create temp table pii as "
            + " union ".join(f"select {c} as value from raw.crm_customers where {c} is not null" for c in PII_COLUMNS)
        )
        leaks = []
        for table in _mart_tables(con):
            columns = [
                row[0]
                for row in con.execute(
                    """select column_name from information_schema.columns
                   where table_schema = 'marts' and table_name = $table and data_type = 'VARCHAR'""",
                    {"table": table},
                ).fetchall()
            ]
            if not columns:
                continue
            # every value must differ from the personal data, and no long personal value (e-mail,
            # phone, id, latin name) may hide inside one: search the table's text once per value
            values = " union all ".join(f"select {c} as value from marts.{table}" for c in columns)
            exact, inside = con.execute(
                f"""with mart_values as ({values}),
                    mart_text as (select string_agg(value, chr(10)) as text from mart_values)
                    select
                        (select count(*) from mart_values inner join pii using (value)),
                        (select count(*) from pii cross join mart_text
                         where length(pii.value) >= 6 and contains(mart_text.text, pii.value))"""
            ).fetchone()
            if exact or inside:
                leaks.append(f"{table}: {exact} equal, {inside} inside")
    assert not leaks


def test_pii_hash_is_the_salted_sha256_of_the_normalised_value(company: Company) -> None:
    with company.connect() as con:
        email, email_hash, masked = con.execute(
            """select customers.email, dim.email_hash, dim.email_masked
               from marts.dim_customers as dim
               inner join staging.stg_crm__customers as customers using (customer_id)
               where customers.email is not null limit 1"""
        ).fetchone()
    assert email_hash == hashlib.sha256(f"{DEMO_PII_SALT}|{email.strip().lower()}".encode()).hexdigest()
    local, domain = email.split("@")
    assert masked == f"{local[0]}***@{domain}"


def _rows_differing(con: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...], other: str) -> int:
    """Rows of ``table`` missing from, extra to or different in ``other``.``table``, matched on
    ``key``. Floating-point columns may differ in the last bits (sums in another order)."""
    schema, name = table.split(".")
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_catalog = current_database() and table_schema = $s and table_name = $t",
        {"s": schema, "t": name},
    ).fetchall()
    assert columns, table
    differs = [
        f"abs(mine.{c} - theirs.{c}) > 1e-9 * greatest(1, abs(theirs.{c}))"
        f" or (mine.{c} is null) <> (theirs.{c} is null)"
        if kind in ("DOUBLE", "FLOAT")
        else f"mine.{c} is distinct from theirs.{c}"
        for c, kind in columns
    ]
    return con.execute(
        f"""select count(*) from {table} as mine
            full outer join {other}.{table} as theirs using ({", ".join(key)})
            where {" or ".join(f"({d})" for d in differs)}"""
    ).fetchone()[0]


def test_incremental_runs_match_a_full_build(company: Company, tmp_path: Path) -> None:
    """Rewinding is refused; a build as of an earlier date, then an incremental run up to
    the latest date, gives the same incremental tables as the full build."""
    copy = company.copy_to(tmp_path)
    selection = ["--select", "+config.materialized:incremental"]
    earlier = ["--vars", f"{{as_of_date: '{EARLIER_AS_OF}'}}"]
    refused = copy.dbt(["compile", "--select", "int_customer_months__panel", *earlier])
    assert refused.returncode != 0
    assert "--full-refresh" in refused.stdout
    assert copy.dbt(["run", "--full-refresh", *selection, *earlier]).returncode == 0
    incremental = copy.dbt(["run", *selection])
    assert incremental.returncode == 0, incremental.stdout[-3000:]
    manifest = json.loads((Path(copy.env["DBT_TARGET_PATH"]) / "manifest.json").read_text())
    configured = {
        f"{node['schema']}.{node['alias']}"
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] == "incremental"
    }
    assert configured == set(INCREMENTAL_TABLES)
    with copy.connect() as con:
        con.execute(f"attach '{company.warehouse}' as full_build (read_only)")
        for table, key in INCREMENTAL_TABLES.items():
            assert con.execute(f"select count(*) from {table}").fetchone()[0] > 0, table
            assert _rows_differing(con, table, key, "full_build") == 0, table


def test_recent_scope_tests_the_latest_rows_of_incremental_models_only(company: Company, tmp_path: Path) -> None:
    """With data_tests_scope 'recent' (daily runs) a test of an incremental model reads the
    rows of its latest incremental_lookback_days days; whole-table tests still read all."""
    copy = company.copy_to(tmp_path)
    not_null = ["test", "--select", "fct_order_lines,test_name:not_null_columns"]
    recent = ["--vars", "{data_tests_scope: recent}"]
    exact_count = ["test", "--select", "fct_orders,test_name:row_count_at_most", *recent]

    def lose_customer(order_date_sql: str) -> None:
        with duckdb.connect(str(copy.warehouse)) as con:
            con.execute(
                f"""update marts.fct_order_lines set customer_id = null
                    where order_line_id = (select min(order_line_id) from marts.fct_order_lines
                                           where order_date = ({order_date_sql}))"""
            )

    assert copy.dbt([*not_null, *recent]).returncode == 0
    lose_customer("select min(order_date) from marts.fct_order_lines")  # the first day: old
    assert copy.dbt([*not_null, *recent]).returncode == 0, "an old row is outside the recent window"
    assert copy.dbt(not_null).returncode != 0, "the whole table has the broken row"
    lose_customer("select max(order_date) from marts.fct_order_lines")  # the latest day
    assert copy.dbt([*not_null, *recent]).returncode != 0
    assert copy.dbt(exact_count).returncode == 0
    with duckdb.connect(str(copy.warehouse)) as con:
        con.execute("delete from marts.fct_orders where order_date = (select min(order_date) from marts.fct_orders)")
    assert copy.dbt(exact_count).returncode != 0, "an old lost order fails the whole-table count"


def test_one_pass_not_null_test_fails_on_a_null_in_any_listed_column(company: Company, tmp_path: Path) -> None:
    """not_null_columns checks every column it lists (here the last of fct_order_lines's), like one not_null each."""
    copy = company.copy_to(tmp_path)
    not_null = ["test", "--select", "fct_order_lines,test_name:not_null_columns"]
    assert copy.dbt(not_null).returncode == 0
    with duckdb.connect(str(copy.warehouse)) as con:
        con.execute(
            "update marts.fct_order_lines set line_margin = null "
            "where order_line_id = (select max(order_line_id) from marts.fct_order_lines)"
        )
    failed = copy.dbt(not_null)
    assert failed.returncode != 0
    assert "Got 1 result" in failed.stdout, failed.stdout[-2000:]


def test_rewritten_models_give_the_results_of_the_sql_they_replaced(company: Company) -> None:
    """The models rewritten for speed (tests/dbt/fingerprints.py) hold exactly the rows the
    SQL before the rewrite built on this company: same row count, same value in every cell."""
    expected = json.loads(FINGERPRINTS_FILE.read_text())
    with company.connect() as con:
        built = fingerprints(con)
    changed = {
        table: sorted(c for c, h in fingerprint["columns"].items() if expected[table]["columns"].get(c) != h)
        for table, fingerprint in built.items()
        if fingerprint != expected[table]
    }
    assert not changed, changed


def test_customer_month_tables_are_stored_in_month_order(company: Company) -> None:
    """Incremental runs read the latest months; DuckDB skips the other row groups only when
    the rows are stored in month order (incremental.sql, in_month_order), sorted or inherited."""
    with company.connect() as con:
        for table in (
            "intermediate.int_customer_months__panel",
            "intermediate.int_customer_months__staged",
            "intermediate.int_customer_months__activity",
            "marts.customer_lifecycle_history",
        ):
            (out_of_order,) = con.execute(
                f"""select count(*) from (
                        select month_start, lag(month_start) over (order by rowid) as stored_before from {table}
                    ) where month_start < stored_before"""
            ).fetchone()
            assert out_of_order == 0, table


def test_sqlfluff_lint_is_clean(dbt_env_in_tmp: dict[str, str]) -> None:
    process = subprocess.run(
        [str(Path(sys.executable).parent / "sqlfluff"), "lint", "models", "tests"],
        cwd=DBT_PROJECT_DIR,
        env=dbt_env_in_tmp,
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode == 0, process.stdout[-5000:]
