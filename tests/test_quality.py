"""Data-quality suites on hand-made DuckDB tables, their history, Data Docs and Dagster checks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from crm_warehouse.ingest import create_raw_tables
from crm_warehouse.quality.gx_sql import gx_suite
from crm_warehouse.quality.results import previous_observed_value
from crm_warehouse.quality.run import main as quality_main
from crm_warehouse.quality.run import validate_and_record, validate_suite
from crm_warehouse.quality.suites import Suite, load_suites, parse_suite
from crm_warehouse.settings import DBT_PROJECT_DIR, EXPECTATIONS_DIR, Settings, load_settings
from crm_warehouse.warehouse.analytics_tables import ensure_table
from crm_warehouse.warehouse.recent_rows import RecentWindow, recent_window
from orchestration.checks.quality import CHECK_NAME, build_quality_checks
from orchestration.resources import RECENT_ROWS, VALIDATED_ROWS_TAG, WarehouseResource


def expect(kind: str, severity: str = "error", **kwargs: Any) -> dict:
    return {"type": kind, "kwargs": kwargs, "meta": {"severity": severity}}


CUSTOMERS = {
    "name": "raw.customers",
    "meta": {"key_columns": ["customer_id"]},
    "expectations": [
        expect("expect_table_columns_to_match_set", column_set=["customer_id", "status", "csat", "wallet"]),
        expect("expect_table_column_types_to_match", column_types={"customer_id": "VARCHAR", "csat": "INTEGER"}),
        expect("expect_column_values_to_not_be_null", column="customer_id"),
        expect("expect_column_values_to_be_unique", column="customer_id"),
        expect("expect_column_values_to_be_in_set", "warn", column="status", value_set=["active", "closed"]),
        expect("expect_column_values_to_be_between", column="csat", min_value=1, max_value=5),
        expect("expect_column_value_shares_to_stay_near_previous_run", "warn", column="status", tolerance=0.1),
        expect("expect_column_mean_to_stay_near_previous_run", "warn", column="wallet", tolerance=0.2),
    ],
}
ORDERS = {
    "name": "raw.orders",
    "meta": {"key_columns": ["order_id"]},
    "expectations": [
        expect("expect_compound_columns_to_be_unique", column_list=["order_id", "line"]),
        expect(
            "expect_column_values_to_exist_in_table",
            column="customer_id",
            other_table="raw.customers",
            other_column="customer_id",
        ),
        expect(
            "expect_column_mean_to_stay_near_previous_run",
            "warn",
            column="line_value",
            expression="quantity * price",
            tolerance=0.25,
        ),
    ],
}
DIM = {
    "name": "marts.dim_customers",
    "expectations": [
        expect(
            "expect_table_row_count_to_match_other_table",
            other_table="raw.customers",
            other_column="customer_id",
            relation="equal",
        ),
    ],
}


@pytest.fixture
def con(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        connection.execute("create schema raw; create schema marts")
        connection.execute(
            """create table raw.customers as select * from (values
                ('C1', 'active', 4, 100.0), ('C2', 'active', 5, 120.0),
                ('C3', 'closed', 2, 80.0), ('C4', 'active', 3, 100.0)
            ) as t(customer_id, status, csat, wallet)"""
        )
        connection.execute("alter table raw.customers alter csat type integer")
        connection.execute("alter table raw.customers alter wallet type double")
        connection.execute(
            """create table raw.orders as select * from (values
                ('O1', 1, 'C1', 2, 10.0), ('O1', 2, 'C1', 1, 5.0), ('O2', 1, 'C3', 4, 2.5)
            ) as t(order_id, line, customer_id, quantity, price)"""
        )
        connection.execute("create table marts.dim_customers as select customer_id from raw.customers")
        yield connection


def suites() -> dict[str, Suite]:
    return {s["name"]: parse_suite(s) for s in (CUSTOMERS, ORDERS, DIM)}


def failures(result) -> dict[str, Any]:
    return {f"{r.expectation}({r.column})": r for r in result.results if not r.success}


def test_good_tables_pass_and_first_run_drift_has_no_baseline(con):
    results = [r for suite in suites().values() for r in validate_suite(con, suite, "run-1").results]
    assert all(r.success for r in results), [r for r in results if not r.success]
    drift = [r for r in results if r.expectation.endswith("_previous_run")]
    assert len(drift) == 3 and all(r.note.startswith("first run") for r in drift)


BREACHES = [
    pytest.param(
        "insert into raw.customers values (null, 'active', 3, 90.0)",
        "raw.customers",
        "expect_column_values_to_not_be_null(customer_id)",
        "error",
        {"customer_id": None},
        id="null-key",
    ),
    pytest.param(
        "insert into raw.customers values ('C2', 'active', 3, 90.0)",
        "raw.customers",
        "expect_column_values_to_be_unique(customer_id)",
        "error",
        {"customer_id": "C2"},
        id="duplicate-key",
    ),
    pytest.param(
        "insert into raw.orders values ('O1', 2, 'C1', 1, 5.0)",
        "raw.orders",
        "expect_compound_columns_to_be_unique(order_id,line)",
        "error",
        {"order_id": "O1", "line": 2},
        id="duplicate-compound-key",
    ),
    pytest.param(
        "update raw.customers set csat = 9 where customer_id = 'C4'",
        "raw.customers",
        "expect_column_values_to_be_between(csat)",
        "error",
        {"customer_id": "C4", "csat": 9},
        id="out-of-range",
    ),
    pytest.param(
        "update raw.customers set status = 'zzz' where customer_id = 'C1'",
        "raw.customers",
        "expect_column_values_to_be_in_set(status)",
        "warn",
        {"customer_id": "C1", "status": "zzz"},
        id="unknown-code",
    ),
    pytest.param(
        "insert into raw.orders values ('O3', 1, 'C99', 1, 5.0)",
        "raw.orders",
        "expect_column_values_to_exist_in_table(customer_id)",
        "error",
        {"customer_id": "C99"},
        id="orphan-reference",
    ),
    pytest.param(
        "insert into marts.dim_customers values ('C1')",
        "marts.dim_customers",
        "expect_table_row_count_to_match_other_table(None)",
        "error",
        {"row_count": 5, "other_count": 4},
        id="row-count-relation",
    ),
    pytest.param(
        "alter table raw.customers alter csat type double",
        "raw.customers",
        "expect_table_column_types_to_match(None)",
        "error",
        {"column": "csat", "expected": "INTEGER", "found": "DOUBLE"},
        id="column-type",
    ),
]


@pytest.mark.parametrize(("breach", "suite_name", "failing", "severity", "sample_item"), BREACHES)
def test_each_breach_fails_with_its_severity_and_a_sample(con, breach, suite_name, failing, severity, sample_item):
    con.execute(breach)
    result = validate_suite(con, suites()[suite_name], "run-1")
    failed = failures(result)
    assert list(failed) == [failing]
    assert failed[failing].severity == severity
    assert sample_item in failed[failing].unexpected_sample
    assert result.passed == (severity == "warn"), "only error-severity failures block"


def test_uniqueness_counts_each_shared_key_once_and_skips_null_keys(con):
    con.execute(
        """insert into raw.customers values ('C2', 'active', 3, 90.0), ('C2', 'active', 3, 90.0),
           ('C3', 'closed', 2, 80.0), (null, 'active', 3, 1.0), (null, 'active', 3, 1.0)"""
    )
    results = validate_suite(con, suites()["raw.customers"], "run-1").results
    unique = next(r for r in results if r.expectation == "expect_column_values_to_be_unique")
    assert (unique.success, unique.observed_value) == (False, 2)
    assert sorted(unique.unexpected_sample, key=str) == [{"customer_id": "C2"}, {"customer_id": "C3"}]


def test_uniqueness_with_an_option_runs_as_gx_s_own_expectation(con):
    con.execute("insert into raw.customers values ('C2', 'active', 3, 90.0)")
    suite = parse_suite(
        {
            "name": "raw.customers",
            "expectations": [expect("expect_column_values_to_be_unique", column="customer_id", mostly=0.5)],
        }
    )
    (unique,) = validate_suite(con, suite, "run-1").results
    # GX counts every row of a shared key (2 of 5), and `mostly` lets 40 % through.
    assert unique.success
    assert (unique.observed_value["element_count"], unique.observed_value["unexpected_count"]) == (5, 2)


def test_gx_runs_each_unexpected_rows_query_once(con, monkeypatch):
    """GX's own UnexpectedRowsExpectation would run it twice: counted, and again for rows it does not report."""
    import duckdb_engine

    executed: list[str] = []
    execute = duckdb_engine.CursorWrapper.execute

    def recording(self, statement, *args, **kwargs):
        executed.append(str(statement))
        return execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(duckdb_engine.CursorWrapper, "execute", recording)
    assert validate_suite(con, suites()["raw.orders"], "run-1").passed
    grouped = [sql for sql in executed if "having count(*) > 1" in sql]
    referenced = [sql for sql in executed if "not in (select" in sql]
    assert (len(grouped), len(referenced)) == (1, 1), executed


def test_drift_compares_with_the_previous_passed_run(con):
    customers = suites()["raw.customers"]
    assert validate_and_record(con, customers, "run-1", "raw/customers", CHECK_NAME).passed

    second = validate_and_record(con, customers, "run-2", "raw/customers", CHECK_NAME)
    second = {r.expectation: r for r in second.results}
    assert second["expect_column_mean_to_stay_near_previous_run"].success
    assert second["expect_column_mean_to_stay_near_previous_run"].note.startswith("baseline 100")

    # Wallets up 50 % (tolerance 20 %) and status shares moved 25 points (tolerance 10): both warn.
    con.execute("update raw.customers set wallet = wallet * 1.5")
    con.execute("update raw.customers set status = 'closed' where customer_id = 'C1'")
    third = validate_and_record(con, customers, "run-3", "raw/customers", CHECK_NAME)
    drift = failures(third)
    mean = drift["expect_column_mean_to_stay_near_previous_run(wallet)"]
    assert (mean.severity, mean.observed_value) == ("warn", pytest.approx(150.0))
    assert mean.unexpected_sample == [
        {"previous": 100.0, "observed": pytest.approx(150.0), "allowed_min": 80.0, "allowed_max": 120.0}
    ]
    shares = drift["expect_column_value_shares_to_stay_near_previous_run(status)"]
    assert {m["value"]: m["change"] for m in shares.unexpected_sample} == {"active": -0.25, "closed": 0.25}
    assert third.passed, "drift is warn severity here"


def test_drift_of_an_append_only_table_compares_latest_batches(con):
    scores = parse_suite(
        {
            "name": "marts.scores",
            "expectations": [
                expect(
                    "expect_column_mean_to_stay_near_previous_run",
                    "warn",
                    column="p",
                    tolerance=0.5,
                    latest_by="scored_at",
                ),
            ],
        }
    )
    con.execute("create table marts.scores as select 0.2 as p, timestamp '2024-01-01' as scored_at from range(3)")
    validate_and_record(con, scores, "run-1", "marts/scores", CHECK_NAME)
    con.execute("insert into marts.scores select 0.8, timestamp '2024-01-02' from range(3)")
    (drift,) = validate_and_record(con, scores, "run-2", "marts/scores", CHECK_NAME).results
    assert not drift.success and drift.observed_value == pytest.approx(0.8), "the latest batch, not the history (0.5)"


def test_a_run_that_failed_an_error_expectation_is_no_baseline(con):
    customers = suites()["raw.customers"]
    validate_and_record(con, customers, "run-1", "raw/customers", CHECK_NAME)
    con.execute("update raw.customers set wallet = 1000, csat = 9")
    assert not validate_and_record(con, customers, "run-2", "raw/customers", CHECK_NAME).passed
    assert previous_observed_value(
        con, "raw.customers", "expect_column_mean_to_stay_near_previous_run", "wallet", "run-3"
    ) == pytest.approx(100.0)


def test_dq_results_gets_one_row_per_expectation_and_reruns_replace(con):
    orders = suites()["raw.orders"]
    con.execute("insert into raw.orders values ('O3', 1, 'C99', 1, 5.0)")
    validate_and_record(con, orders, "run-1", "raw/orders", CHECK_NAME)
    validate_and_record(con, orders, "run-1", "raw/orders", CHECK_NAME)
    rows = con.execute(
        """select run_id, asset, check_name, suite, expectation, column_name, severity, success,
                  observed_value, unexpected_sample, engine
           from audit.dq_results order by expectation"""
    ).fetchall()
    assert len(rows) == len(orders.expectations)
    orphan = next(r for r in rows if r[4] == "expect_column_values_to_exist_in_table")
    assert orphan[:8] == (
        "run-1",
        "raw/orders",
        CHECK_NAME,
        "raw.orders",
        "expect_column_values_to_exist_in_table",
        "customer_id",
        "error",
        False,
    )
    assert json.loads(orphan[8]) == 1
    assert json.loads(orphan[9]) == [{"customer_id": "C99"}]
    assert orphan[10] == "gx"
    assert con.execute("select count(*) from audit.dq_results where validated_at is null").fetchone() == (0,)


def test_data_docs_are_built_with_every_validated_suite(con, tmp_path):
    docs = tmp_path / "dq_docs"
    for suite in suites().values():
        result = validate_suite(con, suite, "run-1", docs_dir=docs)
    assert result.docs_index == (docs / "index.html").as_uri()
    index = (docs / "index.html").read_text(encoding="utf-8")
    assert all(name in index for name in ("raw.customers", "raw.orders", "marts.dim_customers"))
    assert len(list((docs / "validations").rglob("*.html"))) == 3
    validate_suite(con, suites()["raw.orders"], "run-2", docs_dir=docs)
    assert len(list((docs / "validations").rglob("*.html"))) == 3, "docs keep the latest result per suite"


def test_data_docs_views_render_gx_s_own_pages_from_templates_compiled_once(con, tmp_path):
    """Pages of the views that share compiled templates (crm_warehouse/quality/docs_views.py) are
    GX's own view's pages, also when the templates come from the shared cache."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    from crm_warehouse.quality.docs_views import _COMPILED_TEMPLATES, CachedJinjaPageView
    from crm_warehouse.quality.gx_sql import GX_STORES

    docs = tmp_path / "dq_docs"
    con.execute("update raw.customers set status = 'zzz' where customer_id = 'C1'")  # a failure's page
    validate_suite(con, suites()["raw.customers"], "run-1", docs_dir=docs)
    [stored] = (docs / GX_STORES / "validations").rglob("*.json")

    def page(view: type) -> str:
        # Rendering changes its document: a fresh one per page. Element ids are random, links carry the time.
        document = ValidationResultsPageRenderer().render(
            ExpectationSuiteValidationResultSchema().load(json.loads(stored.read_text()))
        )
        html = view().render(document)
        return re.sub(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|\?d=\d{8}T[\d.]+Z", "", html)

    assert _COMPILED_TEMPLATES._compiled, "the validation above compiled GX's templates into the cache"
    gx_page = page(DefaultJinjaPageView)
    assert "zzz" in gx_page
    assert page(CachedJinjaPageView) == gx_page


def test_a_failing_suite_is_validated_again_with_samples_and_docs_keep_that_run(con, tmp_path):
    """Suites run without samples first (no scan for a sample of nothing); a failure
    reruns the suite with them, and Data Docs show that run only, samples included."""
    docs = tmp_path / "dq_docs"
    assert validate_suite(con, suites()["raw.customers"], "run-1", docs_dir=docs).passed
    con.execute("update raw.customers set status = 'zzz' where customer_id = 'C1'")
    result = validate_suite(con, suites()["raw.customers"], "run-2", docs_dir=docs)
    failed = failures(result)
    assert list(failed) == ["expect_column_values_to_be_in_set(status)"]
    assert failed["expect_column_values_to_be_in_set(status)"].observed_value["unexpected_count"] == 1
    assert {"customer_id": "C1", "status": "zzz"} in failed[
        "expect_column_values_to_be_in_set(status)"
    ].unexpected_sample
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 1
    assert "zzz" in pages[0].read_text(encoding="utf-8")


def test_command_line_validates_every_built_table_and_exits_1_on_a_blocking_failure(con, tmp_path, capsys):
    suites_dir = tmp_path / "expectations"
    suites_dir.mkdir()
    for document in (CUSTOMERS, ORDERS, DIM, {**DIM, "name": "marts.not_built"}):
        (suites_dir / f"{document['name']}.json").write_text(json.dumps(document))
    con.execute("insert into raw.orders values ('O3', 1, 'C99', 1, 5.0)")
    # The command line is its own process in use: it opens the file with the configuration's bounds.
    con.close()
    arguments = [
        "--warehouse",
        str(tmp_path / "warehouse.duckdb"),
        "--expectations",
        str(suites_dir),
        "--docs",
        str(tmp_path / "docs"),
    ]
    assert quality_main(arguments) == 1
    printed = capsys.readouterr().out
    assert "marts.not_built" in printed and "skipped: table not built" in printed
    assert "raw.orders                               BLOCKS: 1 errors" in printed
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as reopened:
        assets = reopened.execute("select distinct asset from audit.dq_results order by 1").fetchall()
    assert assets == [("marts/dim_customers",), ("raw/customers",), ("raw/orders",)]


def test_every_suite_file_loads_and_compiles_for_gx():
    loaded = load_suites(EXPECTATIONS_DIR)
    assert loaded, "no suite files"
    for suite in loaded:
        assert suite.path.name == f"{suite.name}.json"
        assert len(gx_suite(suite).expectations) == sum(spec.runs_in_gx for spec in suite.expectations)
        assert all(spec.severity in ("error", "warn") for spec in suite.expectations)


def test_suite_files_reject_mistakes():
    with pytest.raises(ValueError, match="meta.severity"):
        parse_suite({"name": "raw.t", "expectations": [{"type": "expect_column_values_to_be_unique", "kwargs": {}}]})
    with pytest.raises(ValueError, match="misses kwargs"):
        parse_suite(
            {"name": "raw.t", "expectations": [expect("expect_column_mean_to_stay_near_previous_run", column="x")]}
        )
    with pytest.raises(ValueError, match="not a safe SQL identifier"):
        parse_suite(
            {
                "name": "raw.t",
                "expectations": [
                    expect(
                        "expect_column_values_to_exist_in_table",
                        column="x",
                        other_table="raw.t; drop",
                        other_column="y",
                    )
                ],
            }
        )
    with pytest.raises(ValueError, match="expression"):
        parse_suite(
            {
                "name": "raw.t",
                "expectations": [
                    expect("expect_column_mean_to_stay_near_previous_run", column="x", expression="x'", tolerance=0.1)
                ],
            }
        )


# --- every suite against a built (empty) warehouse, so suites do not rot ------------------------


def _columns_named(suite: Suite) -> set[str]:
    """Every column a suite refers to (a drift expression's metric name is no column)."""
    names = set(suite.key_columns)
    for spec in suite.expectations:
        kwargs = spec.kwargs
        if "column" in kwargs and "expression" not in kwargs:
            names.add(kwargs["column"])
        names.update(kwargs.get("column_list", []), kwargs.get("column_set", []), kwargs.get("column_types", {}))
        names.update(kwargs[k] for k in ("column_A", "column_B") if k in kwargs)
    return names


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw tables from the contracts, analytics tables as their writer creates them, dbt models built --empty."""
    tmp = tmp_path_factory.mktemp("built")
    path = tmp / "warehouse.duckdb"
    with duckdb.connect(str(path)) as connection:
        create_raw_tables(connection)
        for table in ("customer_clv", "customer_churn_scores"):
            ensure_table(connection, table)
    dbt = Path(sys.executable).parent / "dbt"
    completed = subprocess.run(
        [
            str(dbt),
            "build",
            "--empty",
            "--quiet",
            "--exclude",
            "resource_type:test",
            "resource_type:unit_test",
            "--profiles-dir",
            ".",
            "--target-path",
            str(tmp / "target"),
            "--log-path",
            str(tmp / "logs"),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, "CRM_WAREHOUSE_PATH": str(path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return path


@pytest.mark.slow
def test_every_suite_table_and_column_exists_in_a_built_warehouse(built_warehouse):
    with duckdb.connect(str(built_warehouse)) as connection:
        for suite in load_suites(EXPECTATIONS_DIR):
            columns = {
                name
                for (name,) in connection.execute(
                    "select column_name from information_schema.columns where table_schema = $s and table_name = $t",
                    {"s": suite.schema, "t": suite.table},
                ).fetchall()
            }
            assert columns, f"{suite.name}: table not built"
            assert _columns_named(suite) <= columns, f"{suite.name}: missing {_columns_named(suite) - columns}"
            result = validate_suite(connection, suite, "empty-run")
            broken = [(r.expectation, r.column, r.note) for r in result.results if r.note and "could not run" in r.note]
            assert not broken, f"{suite.name}: {broken}"
            schema = [
                r
                for r in result.results
                if r.expectation in ("expect_table_columns_to_match_set", "expect_table_column_types_to_match")
            ]
            assert all(r.success for r in schema), f"{suite.name}: {[r.unexpected_sample for r in schema]}"


# --- Dagster: checks evaluate and a blocking failure stops downstream assets -------------------

ITEMS_SUITE = {
    "name": "raw.items",
    "meta": {"key_columns": ["item_id"], "description": "Items for the check tests."},
    "expectations": [
        expect("expect_column_values_to_be_unique", column="item_id"),
        expect("expect_column_values_to_be_between", "warn", column="price", min_value=0, max_value=100),
    ],
}


def checked_items_pipeline(
    tmp_path: Path,
    rows: str,
    suite: dict = ITEMS_SUITE,
    columns: str = "item_id, price",
    settings: Settings | None = None,
) -> tuple[list[dg.AssetsDefinition], WarehouseResource]:
    """raw/items (``rows``), its suite as a Dagster check, and an asset downstream of it.

    ``settings``: the engine (DuckDB under ``tmp_path`` unless given); the SQL runs on either.
    """
    suites_dir = tmp_path / "expectations"
    suites_dir.mkdir(exist_ok=True)
    (suites_dir / "raw.items.json").write_text(json.dumps(suite))
    warehouse = WarehouseResource.from_settings(settings or load_settings({"CRM_DATA_DIR": str(tmp_path)}))

    @dg.asset(key=["raw", "items"])
    def items(warehouse: WarehouseResource) -> None:
        with warehouse.sql() as connection:
            connection.execute("create schema if not exists raw")
            connection.execute("drop table if exists raw.items")
            connection.execute(f"create table raw.items as select * from (values {rows}) t({columns})")

    @dg.asset(key=["marts", "item_report"], deps=[items])
    def item_report() -> None:
        """Downstream of raw/items."""

    checks = build_quality_checks(suites_dir, docs_dir=tmp_path / "dq_docs")
    return [items, item_report, *checks], warehouse


@pytest.mark.parametrize(
    ("rows", "severity", "sample", "downstream_runs"),
    [
        pytest.param("('I1', 5.0), ('I2', 7.0)", None, None, True, id="good"),
        pytest.param("('I1', 5.0), ('I2', 700.0)", dg.AssetCheckSeverity.WARN, '"price": 700.0', True, id="warn-only"),
        pytest.param("('I1', 5.0), ('I1', 7.0)", dg.AssetCheckSeverity.ERROR, '"item_id": "I1"', False, id="blocking"),
    ],
)
def test_dagster_check_blocks_downstream_only_on_error(tmp_path, rows, severity, sample, downstream_runs):
    definitions, warehouse = checked_items_pipeline(tmp_path, rows)
    assert all(spec.blocking for spec in definitions[2].check_specs)
    result = dg.materialize(definitions, resources={"warehouse": warehouse}, raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == CHECK_NAME and evaluation.passed == (severity is None)
    if severity:
        assert evaluation.severity == severity
        assert sample in evaluation.metadata["failing_samples"].value
        assert evaluation.metadata["failed_errors"].value == (severity == dg.AssetCheckSeverity.ERROR)
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert (dg.AssetKey(["marts", "item_report"]) in materialized) == downstream_runs
    with duckdb.connect(warehouse.warehouse_path) as connection:
        assert connection.execute("select count(*) from audit.dq_results").fetchone() == (2,)
    assert (tmp_path / "dq_docs" / "index.html").exists()


def record_window(con: duckdb.DuckDBPyConnection, table: str, column: str, start: str) -> None:
    """What dbt's on-run-end hook (record_recent_windows) writes for a table with a window column."""
    con.execute("create schema if not exists audit")
    con.execute(
        "create table if not exists audit.recent_windows"
        " (relation_name varchar, window_column varchar, window_start date, recorded_at timestamp)"
    )
    con.execute(
        "insert into audit.recent_windows values ($table, $column, cast($start as date), now())",
        {"table": table, "column": column, "start": start},
    )


def test_recent_window_is_what_dbt_recorded_for_the_table(con):
    assert recent_window(con, "marts.fct_orders") is None, "nothing recorded yet"
    record_window(con, "marts.fct_orders", "order_date", "2025-06-28")
    assert recent_window(con, "marts.fct_orders") == RecentWindow("order_date", date(2025, 6, 28))
    assert recent_window(con, "marts.fct_order_lines") is None
    assert RecentWindow("order_date", date(2025, 6, 28)).rows_sql("marts.fct_orders") == (
        """select * from "marts"."fct_orders" where "order_date" >= cast('2025-06-28' as date)"""
    )


def test_dagster_check_of_a_daily_run_validates_the_recent_rows(tmp_path):
    # I1 was sold twice long ago: a whole-table check blocks, the daily run's check does not
    rows = "('I1', 5.0, date '2025-01-01'), ('I1', 6.0, date '2025-01-02'), ('I2', 7.0, date '2025-06-30')"
    definitions, warehouse = checked_items_pipeline(tmp_path, rows, ITEMS_SUITE, columns="item_id, price, sold_on")
    with warehouse.connect() as con:
        record_window(con, "raw.items", "sold_on", "2025-06-27")
    daily = {VALIDATED_ROWS_TAG: RECENT_ROWS}
    for tags, passed, scope in ((daily, True, "rows with sold_on >= 2025-06-27"), ({}, False, "whole table")):
        result = dg.materialize(definitions, resources={"warehouse": warehouse}, raise_on_error=False, tags=tags)
        (evaluation,) = result.get_asset_check_evaluations()
        assert evaluation.passed == passed
        assert scope in evaluation.metadata["validated_rows"].value


def test_repository_checks_target_each_suites_table():
    checks = build_quality_checks()
    keys = {key.asset_key.path[0] + "." + key.asset_key.path[1] for c in checks for key in c.check_keys}
    assert keys == {s.name for s in load_suites(EXPECTATIONS_DIR)}
    assert all(spec.blocking for c in checks for spec in c.check_specs), "every suite has error expectations"


def test_recent_rows_validate_the_latest_days_and_table_level_expectations_the_whole_table(con):
    """A daily run validates the rows of the latest days (window_column); row counts and
    columns still see the whole table."""
    con.execute(
        """create table marts.fct_orders as select * from (values
            ('O1', 'C1', date '2025-01-10'), ('O2', null, date '2025-03-01'),
            ('O3', 'C2', date '2025-06-28'), ('O4', 'C3', date '2025-06-30')
        ) as t(order_id, customer_id, order_date)"""
    )
    suite = parse_suite(
        {
            "name": "marts.fct_orders",
            "meta": {"key_columns": ["order_id"]},
            "expectations": [
                expect("expect_column_values_to_not_be_null", column="customer_id"),
                expect(
                    "expect_column_values_to_exist_in_table",
                    column="customer_id",
                    other_table="raw.customers",
                    other_column="customer_id",
                ),
                expect("expect_table_row_count_to_be_between", min_value=4, max_value=4),
            ],
        }
    )
    window = RecentWindow("order_date", date(2025, 6, 28))
    whole = validate_suite(con, suite, "run-1")
    assert set(failures(whole)) == {"expect_column_values_to_not_be_null(customer_id)"}
    recent = validate_suite(con, suite, "run-2", recent=window)
    assert recent.passed, failures(recent)
    not_null, _, row_count = recent.results
    assert not_null.observed_value["element_count"] == 2, "rows of 2025-06-28 to 06-30 only"
    assert row_count.observed_value == 4, "the row count is the whole table's"
    con.execute("insert into marts.fct_orders values ('O5', 'C9', date '2025-06-30')")
    late = validate_suite(con, suite, "run-3", recent=window)
    broken = failures(late)["expect_column_values_to_exist_in_table(customer_id)"]
    assert broken.unexpected_sample == [{"customer_id": "C9"}]
    assert set(failures(late)) == {
        "expect_column_values_to_exist_in_table(customer_id)",
        "expect_table_row_count_to_be_between(None)",
    }


def test_a_window_column_must_be_an_identifier():
    with pytest.raises(ValueError, match="identifier"):
        RecentWindow("order_date; drop table x", date(2025, 6, 28)).rows_sql("marts.fct_orders")
