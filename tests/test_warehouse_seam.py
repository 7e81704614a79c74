"""The seam between Python and the warehouse: relations, contracts, as-of date, schema, settings, quoting."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from crm_warehouse.analytics.churn.features import SCORED_STAGES
from crm_warehouse.quality.gx_sql import gx_expectation
from crm_warehouse.quality.suites import load_suites
from crm_warehouse.settings import EXPECTATIONS_DIR, PROJECT_ROOT, Settings, load_settings
from crm_warehouse.warehouse.analytics_tables import TABLE_COLUMNS, append_batches, table_rows
from crm_warehouse.warehouse.as_of import AsOfError, latest_order_date, resolve_as_of
from crm_warehouse.warehouse.dbt_project import (
    DBT_PROJECT_DIR,
    dbt_var_int,
    relationship_stages,
    run_vars,
    write_profile,
)
from crm_warehouse.warehouse.relations import DBT_MODELS_READ, RAW_ORDERS
from crm_warehouse.warehouse.spark import SparkSqlConnection, SparkSqlError, spark_sql
from crm_warehouse.warehouse.sql import qualified_name, quote_identifier, safe_identifier

MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"


def _manifest_models() -> dict[tuple[str, str], dict]:
    manifest = json.loads(MANIFEST.read_text())
    return {
        (node["schema"], node["name"]): node for node in manifest["nodes"].values() if node["resource_type"] == "model"
    }


def test_every_dbt_model_python_reads_has_an_enforced_contract_and_no_other_does():
    models = _manifest_models()
    read = {(relation.schema, relation.name) for relation in DBT_MODELS_READ}
    assert read <= set(models), f"relations Python reads that dbt does not build: {read - set(models)}"
    enforced = {key for key, node in models.items() if node["config"]["contract"]["enforced"]}
    assert enforced == read
    for key in read:
        columns = models[key]["columns"]
        assert columns and all(column["data_type"] for column in columns.values()), key


def test_the_analytics_source_yaml_matches_the_one_schema_in_python():
    sources = yaml.safe_load(
        (DBT_PROJECT_DIR / "models" / "staging" / "analytics" / "_analytics__sources.yml").read_text()
    )["sources"]
    (analytics,) = [source for source in sources if source["name"] == "analytics"]
    for table in analytics["tables"]:
        declared = [(column["name"], column["data_type"]) for column in table["columns"]]
        assert declared == list(TABLE_COLUMNS[table["name"]].items()), table["name"]


def test_score_batches_are_written_in_one_transaction():
    """A scoring run's batches land together or not at all: a failure while they are computed
    (the CLV or churn scorer raising after some batches) leaves none of its rows."""

    def batches(ids: list[str], fail_after: int | None = None):
        for n, customer_id in enumerate(ids):
            if n == fail_after:
                raise ValueError("the scorer failed")
            yield pd.DataFrame({name: [None] for name in TABLE_COLUMNS["customer_clv"]}).assign(
                customer_id=customer_id, clv=float(n)
            )

    con = duckdb.connect()
    seen: list[str] = []
    written = append_batches(con, "customer_clv", batches(["A", "B", "C"]), lambda rows: seen.extend(rows.customer_id))
    assert written == 3 and seen == ["A", "B", "C"] and table_rows(con, "customer_clv") == 3
    with pytest.raises(ValueError, match="the scorer failed"):
        append_batches(con, "customer_clv", batches(["D", "E", "F"], fail_after=2))
    assert con.execute("select list(customer_id order by customer_id) from analytics.customer_clv").fetchone()[0] == [
        "A",
        "B",
        "C",
    ]


def test_relationship_stages_come_from_the_seed_and_are_what_churn_scores():
    assert relationship_stages() == ("exploration", "formation", "stability", "decline")
    assert SCORED_STAGES == relationship_stages()


def test_dbt_vars_are_typed():
    assert dbt_var_int("incremental_lookback_days") > 0
    with pytest.raises(KeyError):
        dbt_var_int("no_such_var")


def test_identifiers_are_quoted_per_engine():
    assert quote_identifier("orders") == '"orders"'
    assert quote_identifier('odd"name') == '"odd""name"'
    assert quote_identifier("orders", "spark") == "`orders`"
    assert quote_identifier("odd`name", "spark") == "`odd``name`"
    assert qualified_name("marts", "fct_orders") == '"marts"."fct_orders"'
    assert safe_identifier("customer_id") == '"customer_id"'
    for unsafe in ("a b", "x;drop table y", "1abc", ""):
        with pytest.raises(ValueError, match="not a safe SQL identifier"):
            safe_identifier(unsafe)
    with pytest.raises(ValueError, match="dialect"):
        quote_identifier("x", "oracle")


def test_as_of_is_the_configured_date_else_the_latest_loaded_order():
    con = duckdb.connect()
    assert latest_order_date(con) is None, "no raw orders table yet"
    with pytest.raises(AsOfError, match="Load the orders first, or set CRM_AS_OF_DATE"):
        resolve_as_of(con, None)
    assert resolve_as_of(con, date(2024, 5, 1)) == date(2024, 5, 1)
    con.execute(f"create schema {RAW_ORDERS.schema}")
    con.execute(f"create table {RAW_ORDERS.sql()} (order_id varchar, ordered_at timestamp)")
    with pytest.raises(AsOfError):
        resolve_as_of(con, None)
    con.execute(
        f"insert into {RAW_ORDERS.sql()} values ('a', '2024-03-01 23:59:59'), ('b', '2024-03-04 00:00:01'),"
        " ('c', '2024-02-01 10:00:00')"
    )
    assert resolve_as_of(con, None) == date(2024, 3, 4)
    assert resolve_as_of(con, date(2024, 3, 2)) == date(2024, 3, 2)
    assert run_vars(date(2024, 3, 4)) == {"as_of_date": "2024-03-04"}


def test_settings_carry_model_settings_and_survive_the_resource_round_trip(tmp_path: Path):
    settings = load_settings(
        {
            "CRM_DATA_DIR": str(tmp_path),
            "CRM_AS_OF_DATE": "2025-06-30",
            "CRM_CLV_HORIZON": "26",
            "CRM_CLV_HORIZON_UNIT": "weeks",
            "CRM_CLV_MODEL": "pareto_nbd",
            "CRM_CLV_MARGIN": "0.3",
            "CRM_CHURN_HORIZON_DAYS": "60",
        }
    )
    assert settings.clv.horizon_days == 182 and settings.clv.margin == 0.3
    assert settings.clv.model == "pareto_nbd"
    assert settings.churn.horizon_days == 60
    assert settings.landing_dir == tmp_path / "landing"
    assert settings.dbt_profiles_dir == tmp_path / "dbt"
    assert Settings.from_json(settings.to_json()) == settings
    with pytest.raises(ValueError, match="CRM_CLV_MARGIN='lots' is not a float"):
        load_settings({"CRM_CLV_MARGIN": "lots"})
    with pytest.raises(ValueError, match="margin=1.5 must be in"):
        load_settings({"CRM_CLV_MARGIN": "1.5"})
    with pytest.raises(ValueError, match="CRM_CLV_HORIZON_MONTHS: not a setting; the CRM_CLV_\\* settings are "):
        load_settings({"CRM_CLV_HORIZON_MONTHS": "24"})


def test_the_settings_command_prints_the_layout_the_makefile_uses(tmp_path: Path):
    def setting(name: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "crm_warehouse.settings", name],
            env={"CRM_DATA_DIR": str(tmp_path), "PATH": ""},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    assert setting("landing_dir") == str(tmp_path / "landing")
    assert setting("warehouse_path") == str(tmp_path / "warehouse" / "crm.duckdb")
    assert setting("dagster_home") == str(tmp_path / "dagster_home")


def test_the_written_dbt_profile_is_the_projects_with_the_configured_warehouse_and_memory(tmp_path: Path):
    settings = load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_DUCKDB_MEMORY_LIMIT": "1500MB"})
    folder = write_profile(settings)
    assert folder == tmp_path / "dbt"
    written = yaml.safe_load((folder / "profiles.yml").read_text())["crm_warehouse"]
    project = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())["crm_warehouse"]
    assert written["target"] == "dev"
    output = written["outputs"]["dev"]
    assert output["path"] == str(tmp_path / "warehouse" / "crm.duckdb")
    # At connect time, never as per-cursor SET (see write_profile).
    assert "settings" not in output
    assert output["config_options"] == {
        "memory_limit": "1500MB",
        "temp_directory": str(tmp_path / "tmp" / "duckdb"),
        "allocator_background_threads": True,
    }
    assert {k: v for k, v in output.items() if k not in ("path", "config_options")} == {
        k: v for k, v in project["outputs"]["dev"].items() if k != "path"
    }


def test_the_spark_engine_writes_a_thrift_target_with_the_configured_server(tmp_path: Path):
    settings = load_settings(
        {
            "CRM_DATA_DIR": str(tmp_path),
            "CRM_ENGINE": "spark",
            "CRM_SPARK_THRIFT_HOST": "spark.example.internal",
            "CRM_SPARK_THRIFT_PORT": "10001",
            "CRM_SPARK_THRIFT_USER": "etl",
        }
    )
    assert settings.spark_warehouse_dir == tmp_path / "spark" / "warehouse"
    written = yaml.safe_load((write_profile(settings) / "profiles.yml").read_text())["crm_warehouse"]
    assert written["target"] == "spark"
    spark = written["outputs"]["spark"]
    assert (spark["type"], spark["method"]) == ("spark", "thrift")
    assert (spark["host"], spark["port"], spark["user"]) == ("spark.example.internal", 10001, "etl")
    assert Settings.from_json(settings.to_json()) == settings
    with pytest.raises(ValueError, match="CRM_ENGINE='trino' is not an engine: set one of duckdb, spark"):
        load_settings({"CRM_ENGINE": "trino"})


def test_the_engine_changes_the_dbt_profile_and_nothing_else_in_the_definitions(tmp_path: Path):
    """Asset keys, groups, lineage and checks are the same on DuckDB and Spark; only dbt's target moves."""
    from orchestration.definitions import build_definitions
    from orchestration.resources import WarehouseResource

    def shape(engine: str) -> tuple[dict, list, str]:
        settings = load_settings({"CRM_DATA_DIR": str(tmp_path / engine), "CRM_ENGINE": engine})
        graph = build_definitions(WarehouseResource.from_settings(settings)).resolve_asset_graph()
        assets = {
            key: (graph.get(key).group_name, sorted(graph.get(key).parent_keys)) for key in graph.get_all_asset_keys()
        }
        profile = yaml.safe_load((settings.dbt_profiles_dir / "profiles.yml").read_text())
        return assets, sorted(graph.asset_check_keys), profile["crm_warehouse"]["target"]

    duckdb_assets, duckdb_checks, duckdb_target = shape("duckdb")
    spark_assets, spark_checks, spark_target = shape("spark")
    assert spark_assets == duckdb_assets and len(duckdb_assets) > 50
    assert spark_checks == duckdb_checks and len(duckdb_checks) > 400
    assert (duckdb_target, spark_target) == ("dev", "spark")


def test_no_step_writes_the_process_environment():
    offenders = [
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("crm_warehouse", "orchestration")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if "os.environ[" in path.read_text()
        or "os.environ.update" in path.read_text()
        or "os.environ.setdefault" in path.read_text()
    ]
    assert offenders == []


def test_loading_the_definitions_imports_no_model_or_plotting_library():
    heavy = ("lightgbm", "sklearn", "scipy", "matplotlib", "great_expectations")
    probe = f"import sys, orchestration.definitions; print([m for m in {heavy!r} if m in sys.modules])"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


def test_sql_written_for_duckdb_runs_on_spark_translated_with_its_parameters_inlined():
    """What SparkSqlConnection sends: sqlglot's Spark SQL, parameters as escaped literals."""
    sql = 'select avg("x")::double from "marts"."t" where a = $run and b is not distinct from $col and d >= $day'
    assert spark_sql(sql, {"run": "it's", "col": None, "day": date(2025, 6, 28)}) == (
        "SELECT CAST(AVG(`x`) AS DOUBLE) FROM `marts`.`t` "
        "WHERE a = 'it\\'s' AND b IS NOT DISTINCT FROM NULL AND d >= CAST('2025-06-28' AS DATE)"
    )
    assert spark_sql("insert into t values ($1, $2)", ["a", True]) == "INSERT INTO t VALUES ('a', TRUE)"
    # what sqlglot leaves in DuckDB's dialect, and DuckDB's decimal literals (it divides them in doubles)
    assert spark_sql(
        "with w as materialized (select regexp_full_match(a, '[0-9]+') as ok, d + to_days($days) as later, "
        "date_trunc('month', d) - to_months(3) as earlier, x * 365.0 as per_year from t) select * from w",
        {"days": 90},
    ) == (
        "WITH w AS (SELECT a RLIKE '^(?:[0-9]+)$' AS ok, d + INTERVAL 90 DAY AS later, "
        "DATE_TRUNC('MONTH', d) - INTERVAL 3 MONTH AS earlier, x * CAST(365.0 AS DOUBLE) AS per_year FROM t) "
        "SELECT * FROM w"
    )
    assert spark_sql("create or replace temp macro bracketed(t) as concat('<', t, '>')") == (
        "create or replace temporary function bracketed(t string) returns string return CONCAT('<', COALESCE(t, ''), '>')"
    )
    with pytest.raises(KeyError, match=r"\$run has no value"):
        spark_sql("select * from t where a = $run", {})


def test_gx_queries_of_every_suite_are_translated_for_spark_keeping_the_batch():
    """The unexpected-rows SQL our suites hand to GX, as GX gets it on Spark: backticks, and GX's
    ``{batch}`` left for GX to fill."""
    translated = [
        gx_expectation(spec, i, "spark").unexpected_rows_query
        for suite in load_suites(EXPECTATIONS_DIR)
        for i, spec in enumerate(suite.expectations)
        if spec.runs_in_gx and hasattr(gx_expectation(spec, i), "unexpected_rows_query")
    ]
    assert len(translated) == 56
    assert all("{batch}" in sql and '"' not in sql for sql in translated)
    assert (
        "SELECT DISTINCT `customer_id` FROM {batch} WHERE NOT `customer_id` IS NULL AND NOT `customer_id` IN "
        "(SELECT `customer_id` FROM `raw`.`crm_customers` WHERE NOT `customer_id` IS NULL)"
    ) in translated
    assert (
        "SELECT `order_id`, `line_number` FROM {batch} WHERE NOT `order_id` IS NULL OR NOT `line_number` IS NULL "
        "GROUP BY `order_id`, `line_number` HAVING COUNT(*) > 1"
    ) in translated


def test_the_publish_step_on_spark_needs_postgres_and_says_what_to_set(tmp_path: Path):
    """On Spark the serving step publishes to PostgreSQL itself (no serving file, so no
    postgres_marts copy of it); without a DSN it fails with the settings to give."""
    import dagster as dg

    from orchestration.assets.postgres import postgres_assets
    from orchestration.assets.publish import build_publish_asset
    from orchestration.resources import WarehouseResource

    settings = load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_ENGINE": "spark"})
    assert postgres_assets(replace(settings, postgres_dsn="postgresql://loader@db/crm")) == []
    step = build_publish_asset([], engine="spark")
    assert step.specs_by_key[step.key].kinds == {"spark", "postgres"}
    result = dg.materialize(
        [step], resources={"warehouse": WarehouseResource.from_settings(settings)}, raise_on_error=False
    )
    (failure,) = result.get_step_failure_events()
    assert "set CRM_POSTGRES_DSN" in failure.step_failure_data.error.message
    assert failure.step_failure_data.user_failure_data is not None  # a dg.Failure: not retried


def test_a_spark_server_that_does_not_answer_is_named_with_what_to_do(tmp_path: Path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_ENGINE": "spark", "CRM_SPARK_THRIFT_PORT": str(port)})
    with pytest.raises(SparkSqlError, match=rf"127\.0\.0\.1:{port} .*make spark"):
        SparkSqlConnection(settings)
