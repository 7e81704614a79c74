"""The warehouse on Spark (CRM_ENGINE=spark) gives DuckDB's answers.

A local Spark (scripts/spark.sh) gets the raw and analytics tables of the DuckDB test
company and builds the whole dbt project with its data tests; every table of the
intermediate, marts and reference schemas is compared with DuckDB's (row counts and
keys exact, numbers within 1e-9 relative), built whole and incrementally. On the same
build: the quality suites and the Dagster checks, ingestion's contract rules, and the
Dagster publish step to PostgreSQL, each against DuckDB's answers.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import duckdb
import pandas as pd
import psycopg
import pytest
from dbt_company import Company, run_dbt
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from serving import READER_PASSWORD
from spark_engine import ABS_TOLERANCE, REL_TOLERANCE, LocalSpark, raw_differences, table_differences
from sqlglot import exp
from test_marts import EARLIER_AS_OF, INCREMENTAL_TABLES
from test_quality import ITEMS_SUITE, checked_items_pipeline

from crm_warehouse.analytics.churn.config import ChurnConfig
from crm_warehouse.analytics.churn.features import churn_features, evaluation_dates, sample_training_rows
from crm_warehouse.analytics.churn.model import SCORE_COLUMNS, ChurnModel, score_churn
from crm_warehouse.analytics.clv.warehouse import CLV_SCORE_COLUMNS, clv_models, score_clv
from crm_warehouse.analytics.model_runs import retrain_churn
from crm_warehouse.analytics.model_store import latest_model_path, load_model
from crm_warehouse.contracts import CONTRACTS, SourceContract
from crm_warehouse.ingest import PARSED_COLUMNS, export_date, ingest_table, judge_sql, show_macro
from crm_warehouse.ingest_spark import spark_raw_store
from crm_warehouse.publish import PUBLISHED_SCHEMAS
from crm_warehouse.publish_postgres import READER_ROLE, duckdb_with_postgres_extension
from crm_warehouse.quality.results import to_json
from crm_warehouse.quality.run import validate_and_record, validate_suite
from crm_warehouse.quality.suites import Suite, load_suites
from crm_warehouse.settings import EXPECTATIONS_DIR
from crm_warehouse.warehouse.as_of import resolve_as_of
from crm_warehouse.warehouse.catalog import column_types
from crm_warehouse.warehouse.spark import SparkSqlConnection, copy_duckdb_schema, spark_session
from crm_warehouse.warehouse.sql import qualified_name
from orchestration.assets.analytics import churn_model, clv_model, customer_churn_scores, customer_clv
from orchestration.assets.publish import build_publish_asset
from orchestration.resources import WarehouseResource

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.slow, pytest.mark.spark]

COMPARED_SCHEMAS = ("intermediate", "marts", "reference")
#: Parquet cannot update rows: the one incremental model whose changed rows are not whole
#: partitions is rebuilt on Spark (macros/incremental.sql: incremental_config).
REBUILT_ON_PARQUET = "intermediate.int_customer_categories__first_purchases"


@dataclass
class SparkBuild:
    """The test company built on a local Spark, and how dbt went."""

    spark: LocalSpark
    env: dict[str, str]
    results: list[dict]
    seconds: float

    def dbt(self, args: list[str]) -> tuple[int, str]:
        process, _ = run_dbt([*args, "--target", "spark"], self.env)
        return process.returncode, process.stdout


@pytest.fixture(scope="module")
def spark_build(company: Company, local_spark_server: LocalSpark, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("spark_build")
    settings = local_spark_server.settings
    started = time.monotonic()
    with spark_raw_store(settings) as store:
        # Another test's raw tables (the Spark ingestion test's) may be there: this build starts from none.
        store.sql.execute_spark("drop database if exists raw cascade")
        for contract in CONTRACTS:
            ingest_table(store, contract, company.landing, run_id="spark_build")
    print(f"ingestion on Spark: {time.monotonic() - started:.0f} s")
    with company.connect() as con:
        copy_duckdb_schema(con, "analytics", spark_session(settings), root / "exchange")
    env = {
        **local_spark_server.env,
        "DBT_TARGET_PATH": str(root / "dbt_target"),
        "DBT_LOG_PATH": str(root / "dbt_logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    started = time.monotonic()
    process, results = run_dbt(["build", "--target", "spark"], env)
    build = SparkBuild(spark=local_spark_server, env=env, results=results, seconds=time.monotonic() - started)
    print(f"dbt build on Spark: {len(results)} nodes in {build.seconds:.0f} s")
    assert results, process.stdout[-3000:]
    return build


def _spark_table_names(session: SparkSession, schema: str) -> list[str]:
    return sorted(t.name for t in session.catalog.listTables(schema) if t.tableType != "VIEW" and not t.isTemporary)


def _spark_table(session: SparkSession, schema: str, name: str) -> pd.DataFrame:
    return session.table(qualified_name(schema, name, "spark")).toArrow().to_pandas()


def _duckdb_table_names(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    query = (
        "select table_name from information_schema.tables where table_schema = $schema and table_type = 'BASE TABLE'"
    )
    return sorted(row[0] for row in con.execute(query, {"schema": schema}).fetchall())


def _duckdb_table(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> pd.DataFrame:
    return con.execute(f"select * from {qualified_name(schema, name)}").fetch_arrow_table().to_pandas()


def test_dbt_build_on_spark_passes_every_model_and_test(spark_build: SparkBuild) -> None:
    built = {r["unique_id"]: r["status"] for r in spark_build.results if not r["unique_id"].startswith("exposure.")}
    failed = {node: status for node, status in built.items() if status not in ("success", "pass")}
    assert not failed, failed
    assert sum(node.startswith("test.") for node in built) > 400


def test_every_table_on_spark_equals_duckdbs(spark_build: SparkBuild, company: Company) -> None:
    session = spark_session(spark_build.spark.settings)
    differences = {}
    with company.connect() as con:
        for schema in COMPARED_SCHEMAS:
            names = _duckdb_table_names(con, schema)
            assert _spark_table_names(session, schema) == names, schema
            for name in names:
                expected = _duckdb_table(con, schema, name)
                assert len(expected) > 0, f"{schema}.{name} is empty on DuckDB: the comparison would prove nothing"
                problems = table_differences(expected, _spark_table(session, schema, name))
                if problems:
                    differences[f"{schema}.{name}"] = problems
    assert not differences, differences


def test_ingestion_on_spark_loads_what_duckdb_loaded(spark_build: SparkBuild, company: Company) -> None:
    """The build's raw tables were ingested on Spark from the company's landing files: the same rows,
    quarantine, ledger and unloaded files as DuckDB's ingestion of the same files."""
    with company.connect() as duck, SparkSqlConnection(spark_build.spark.settings) as spark:
        assert raw_differences(duck, spark) == {}
        files = spark.execute("select count(*) from raw.ingestion_ledger where superseded_at is null").fetchone()[0]
    assert files == sum(1 for c in CONTRACTS for _ in company.landing.glob(c.file_glob))


def test_the_publish_step_on_spark_publishes_to_postgres_what_duckdb_built(
    spark_build: SparkBuild, company: Company, loader_dsn: str
) -> None:
    """The Dagster publish step on CRM_ENGINE=spark: Spark's executors write the published schemas
    into PostgreSQL's staging schemas over JDBC, the same atomic swap puts them in place, and
    every published table equals DuckDB's; bi_reader reads the marts."""
    settings = replace(spark_build.spark.settings, postgres_dsn=loader_dsn, postgres_bi_password=READER_PASSWORD)
    step = build_publish_asset([], engine="spark")
    # Dagster's run id is new each time: the server and its publish_log outlive test runs.
    result = dg.materialize([step], resources={"warehouse": WarehouseResource.from_settings(settings)})
    (materialization,) = result.asset_materializations_for_node(step.op.name)
    run_id = result.run_id
    with company.connect() as con:
        expected = {
            f"{schema}.{name}": _duckdb_table(con, schema, name)
            for schema in PUBLISHED_SCHEMAS
            for name in _duckdb_table_names(con, schema)
        }
    assert materialization.metadata["target"].value == "postgres"
    assert materialization.metadata["row_counts"].value == {name: len(frame) for name, frame in expected.items()}
    differences = {}
    with duckdb_with_postgres_extension(spark_build.spark.settings) as reader:
        reader.execute(f"attach '{loader_dsn}' as pg (type postgres, read_only)")
        for name, frame in expected.items():
            published = reader.execute(f"select * from pg.{name}").fetch_arrow_table().to_pandas()
            problems = table_differences(frame, published)
            if problems:
                differences[name] = problems
    assert not differences, differences
    as_reader = make_conninfo(**{**conninfo_to_dict(loader_dsn), "user": READER_ROLE, "password": READER_PASSWORD})
    with psycopg.connect(as_reader) as bi:
        customers = bi.execute("select count(*) from marts.dim_customers").fetchone()[0]
    assert customers == len(expected["marts.dim_customers"])
    with psycopg.connect(loader_dsn) as pg:
        logged = pg.execute("select count(*) from public.publish_log where run_id = %s", (run_id,)).fetchone()[0]
    assert logged == len(expected)


def test_incremental_runs_on_spark_match_duckdbs_full_build(spark_build: SparkBuild, company: Company) -> None:
    """As on DuckDB (test_marts): a build as of an earlier date, then an incremental run up to
    the latest date, gives the full build's incremental tables (DuckDB's)."""
    selection = ["--select", "+config.materialized:incremental"]
    earlier = ["--vars", f"{{as_of_date: '{EARLIER_AS_OF}'}}"]
    code, output = spark_build.dbt(["run", "--full-refresh", *selection, *earlier])
    assert code == 0, output[-3000:]
    code, output = spark_build.dbt(["run", *selection])
    assert code == 0, output[-3000:]
    manifest = json.loads((Path(spark_build.env["DBT_TARGET_PATH"]) / "manifest.json").read_text())
    configured = {
        f"{node['schema']}.{node['alias']}"
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] == "incremental"
    }
    assert configured == set(INCREMENTAL_TABLES) - {REBUILT_ON_PARQUET}
    session = spark_session(spark_build.spark.settings)
    differences = {}
    with company.connect() as con:
        for table in INCREMENTAL_TABLES:
            schema, name = table.split(".")
            problems = table_differences(_duckdb_table(con, schema, name), _spark_table(session, schema, name))
            if problems:
                differences[table] = problems
    assert not differences, differences


def _same_observed(expected: Any, actual: Any) -> bool:
    """Observed values alike: the same JSON, numbers within the comparison's relative tolerance."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(_same_observed(expected[k], actual[k]) for k in expected)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(map(_same_observed, expected, actual))
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(actual, numbers) and not isinstance(expected, bool):
        return math.isclose(expected, actual, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)
    return expected == actual


def _suites_covering_every_kind(con: duckdb.DuckDBPyConnection) -> tuple[list[Suite], set[tuple]]:
    """The fewest suites (greedy) that hold every (expectation type, type of its column) pair of
    all suites, and those pairs: what could differ by engine is how an expectation compiles for
    a column type, not which table it reads."""
    suites = load_suites(EXPECTATIONS_DIR)
    types = {suite.name: column_types(con, suite.schema, suite.table) for suite in suites}
    kinds = {suite.name: {(e.type, types[suite.name].get(e.column)) for e in suite.expectations} for suite in suites}
    every_kind = set().union(*kinds.values())
    chosen, covered = [], set()
    while covered != every_kind:
        name = max(sorted(kinds), key=lambda n: len(kinds[n] - covered))
        chosen.append(name)
        covered |= kinds[name]
    return [suite for suite in suites if suite.name in chosen], every_kind


def test_every_kind_of_expectation_gives_duckdbs_answers_on_spark(spark_build: SparkBuild, company: Company) -> None:
    """The suites that hold every kind of expectation on every column type (10 of the 22, about
    half the time of all), validated on Spark (GX through PyHive's SQLAlchemy dialect, our SQL
    checks translated by sqlglot): each expectation passes or fails as on DuckDB, with the same
    observed value."""
    differences = {}
    with company.connect() as duck, SparkSqlConnection(spark_build.spark.settings) as spark:
        suites, every_kind = _suites_covering_every_kind(duck)
        assert len(every_kind) > 40 and len(suites) < len(list(EXPECTATIONS_DIR.glob("*.json")))
        for suite in suites:
            expected, actual = validate_suite(duck, suite, "same-answers"), validate_suite(spark, suite, "same-answers")
            assert {r.engine for r in actual.results} <= {"gx", "spark"}
            for mine, theirs in zip(expected.results, actual.results, strict=True):
                label = f"{suite.name}: {mine.expectation}({mine.column})"
                assert theirs.note is None or "could not run" not in theirs.note, f"{label}: {theirs.note}"
                observed = [json.loads(to_json(r.observed_value)) for r in (mine, theirs)]
                if mine.success != theirs.success or not _same_observed(*observed):
                    differences[label] = (mine.success, theirs.success, *observed)
    assert not differences, differences


def test_spark_keeps_the_results_history_one_partition_per_run_and_suite(spark_build: SparkBuild) -> None:
    """audit.dq_results on Spark: a re-run of a run replaces its rows, and the next run's drift
    checks read their baseline from it."""
    (suite,) = [s for s in load_suites(EXPECTATIONS_DIR) if s.name == "raw.surveys_responses"]
    first, second = (f"history-{uuid.uuid4().hex[:8]}" for _ in range(2))
    with SparkSqlConnection(spark_build.spark.settings) as spark:
        for run_id in (first, first, second):
            result = validate_and_record(spark, suite, run_id, "raw/surveys_responses", "test")
        counts = spark.execute(
            "select run_id, count(*) from audit.dq_results where run_id in ($first, $second) group by run_id",
            {"first": first, "second": second},
        ).fetchall()
    assert dict(counts) == {first: len(suite.expectations), second: len(suite.expectations)}
    drift = [r for r in result.results if r.expectation == "expect_column_mean_to_stay_near_previous_run"]
    assert drift and all(r.success and r.note.startswith("baseline ") for r in drift), drift


def test_a_failing_blocking_check_on_spark_stops_what_is_downstream(
    local_spark_server: LocalSpark, tmp_path: Path
) -> None:
    """The Dagster check of a suite, on CRM_ENGINE=spark: a duplicate key fails it with ERROR and a
    sample, the downstream asset does not run, and the results are in Spark's audit.dq_results."""
    definitions, warehouse = checked_items_pipeline(
        tmp_path, "('I1', 5.0), ('I1', 7.0)", ITEMS_SUITE, settings=local_spark_server.settings
    )
    result = dg.materialize(definitions, resources={"warehouse": warehouse}, raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert '"item_id": "I1"' in evaluation.metadata["failing_samples"].value
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {dg.AssetKey(["raw", "items"])}
    with SparkSqlConnection(local_spark_server.settings) as spark:
        rows = spark.execute("select count(*) from audit.dq_results where run_id = $run", {"run": result.run_id})
        assert rows.fetchone() == (len(ITEMS_SUITE["expectations"]),)


#: Texts put into one field of a valid row at a time: missing, wrong types, numbers out of
#: range or with too many decimals, impossible, loose and future dates, invisible
#: characters, padding, unknown codes.
FIELD_MUTATIONS = (
    None, "x!", "-1", "0", "1.5", "1.123", "99999999999", "1e3", "NaN", "true", "zzz", "中文",
    "2999-01-01 00:00:00", "2024-02-30", "2024-1-2", "2024-03-01", "2024-03-01T10:00:00",
    " 12", "12 ", "\u00a0pad", "a\u200bb", "tab\tx",
)  # fmt: skip


def _parsed_view(con: duckdb.DuckDBPyConnection, contract: SourceContract) -> str:
    """``create temp view _parsed`` (DuckDB's dialect) of hand-made rows that break every kind of rule:
    a row already loaded, a new row twice (a duplicate), and a new row per field and mutation."""
    names = list(contract.column_names)
    loaded = con.execute(
        f"select {', '.join(f'cast({n} as varchar)' for n in names)} from raw.{contract.table} limit 3"
    ).fetchall()
    # the key made new on every row but the first: one that is not a reference, so no row is an orphan by it
    new_key = next(k for k in contract.unique_key if k not in {fk.column for fk in contract.foreign_keys})

    def with_new_key(values: tuple, n: int) -> list:
        return [f"{v}9{n}" if name == new_key else v for name, v in zip(names, values, strict=True)]

    rows = [list(loaded[0]), with_new_key(loaded[1], 0), with_new_key(loaded[1], 0)]
    for i, name in enumerate(names):
        for text in FIELD_MUTATIONS:
            values = with_new_key(loaded[2], len(rows)) if name != new_key else list(loaded[2])
            values[i] = text
            rows.append(values)
    # a file name whose export date is after the data's, so only the mutations break rules
    file_name = f"{contract.table}/2029-12-31.csv"
    records = [(file_name, line, f"row {line}", None, export_date(file_name), *v) for line, v in enumerate(rows, 2)]
    columns = [c.split()[0] for c in PARSED_COLUMNS.split(", ")] + ["_export_date"] + [f"f_{n}" for n in names]
    types = [c.split()[1] for c in PARSED_COLUMNS.split(", ")] + ["date"] + ["varchar"] * len(names)
    values = ", ".join(f"({', '.join(exp.convert(v).sql('duckdb') for v in record)})" for record in records)
    casts = ", ".join(f"cast({c} as {t}) as {c}" for c, t in zip(columns, types, strict=True))
    return f"create or replace temp view _parsed as select {casts} from (values {values}) as t({', '.join(columns)})"


def _comparable(value: Any) -> Any:
    """A judged value as both drivers can give it: numbers as floats (NaN as text, so equal to
    itself: ``'NaN'`` is a double on both engines), dates and times as text."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return "NaN" if math.isnan(value) else float(value)
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def test_the_contract_rules_judge_rows_on_spark_as_on_duckdb(spark_build: SparkBuild, company: Company) -> None:
    """Ingestion's contract rules are written once (``judge_sql``, DuckDB's dialect). Translated
    for Spark they give every row DuckDB's reason and typed values, over 1,495 rows that break
    every kind of rule, against the same raw tables (duplicates, keys already loaded, orphans)."""
    judged, differences = 0, {}
    with company.connect() as duck, SparkSqlConnection(spark_build.spark.settings) as spark:
        for con in (duck, spark):
            con.execute(show_macro())
        for contract in CONTRACTS:
            view = _parsed_view(duck, contract)
            results = []
            for con in (duck, spark):
                con.execute(view)
                cursor = con.execute(f"select * from ({judge_sql(contract)}) as judged order by _source_line")
                names = [d[0] for d in cursor.description]
                results.append([dict(zip(names, map(_comparable, row), strict=True)) for row in cursor.fetchall()])
            expected, actual = results
            assert [list(r) for r in actual] == [list(r) for r in expected], contract.table
            judged += len(expected)
            reasons = {r["reason"] for r in expected}
            assert None in reasons and len(reasons) > 10, f"{contract.table}: the rows must load and break rules"
            for mine, theirs in zip(expected, actual, strict=True):
                if mine != theirs:
                    differences[f"{contract.table} line {mine['_source_line']}"] = (mine, theirs)
    assert judged == 1495
    assert not differences, list(differences.items())[:5]


def test_churn_features_and_the_training_sample_come_from_spark_as_from_duckdb(
    spark_build: SparkBuild, company: Company
) -> None:
    """The churn features and the stratified training sample, computed by Spark from the models
    dbt built there (the same SQL, translated): DuckDB's rows and numbers. Only the sample
    leaves the engine for the fit."""
    with company.connect() as duck, SparkSqlConnection(spark_build.spark.settings) as spark:
        days = evaluation_dates(duck)
        assert evaluation_dates(spark) == days
        cutoff, training_cutoffs = days[-5], days[-12:-3]
        features = [churn_features(con, cutoff, 90) for con in (duck, spark)]
        samples = [sample_training_rows(con, training_cutoffs, 90, sample_rows=2000, seed=7) for con in (duck, spark)]
    assert len(features[0]) > 400 and len(samples[0]) == 2000
    assert table_differences(*features) == []
    assert table_differences(*samples) == []


def test_the_local_servers_workers_run_the_projects_python(local_spark_server: LocalSpark) -> None:
    """mapInPandas on the local server runs in the project's venv (scripts/spark.sh sets
    PYSPARK_PYTHON): what scoring on Spark will need."""

    def project_python(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # sent by value (a local function): the worker imports only the project and its libraries
        import crm_warehouse  # noqa: F401

        for batch in batches:
            yield batch.assign(doubled=batch["id"] * 2)

    session = spark_session(local_spark_server.settings)
    rows = session.range(4).mapInPandas(project_python, "id long, doubled long").collect()
    assert sorted((r.id, r.doubled) for r in rows) == [(0, 0), (1, 2), (2, 4), (3, 6)]


def test_the_analytics_steps_on_spark_fit_and_score_as_on_duckdb(
    spark_build: SparkBuild, company: Company, tmp_path: Path
) -> None:
    """The four analytics steps on CRM_ENGINE=spark (last in this module: they append to Spark's
    analytics tables, which the publish test compares with DuckDB's). The fits read the summary and the
    training sample Spark computes; churn and CLV scoring run on Spark's workers. The same models applied
    on DuckDB give the same scores and run figures, and the fits equal DuckDB's fits of the same data."""
    settings = replace(spark_build.spark.settings, models_dir=tmp_path / "models")
    steps = [clv_model, churn_model, customer_clv, customer_churn_scores]
    result = dg.materialize(steps, resources={"warehouse": WarehouseResource.from_settings(settings)})
    assert result.success
    churn = load_model(latest_model_path(settings.models_dir, "churn"))
    clv_payload = load_model(latest_model_path(settings.models_dir, "clv"))
    fit, clv_config = clv_models(clv_payload)
    with company.connect() as duck, SparkSqlConnection(settings) as spark:
        as_of = resolve_as_of(duck, None)
        assert resolve_as_of(spark, None) == as_of
        on_duckdb = {
            "churn": score_churn(duck, ChurnModel.from_dict(churn), as_of, ChurnConfig(**churn["config"])),
            "clv": score_clv(duck, fit, clv_config, as_of),
        }
        on_spark = {
            "churn": spark.execute(
                f"select {', '.join(SCORE_COLUMNS)} from analytics.customer_churn_scores where model_id = $id",
                {"id": churn["model_id"]},
            ).df(),
            "clv": spark.execute(
                f"select {', '.join(CLV_SCORE_COLUMNS)} from analytics.customer_clv where model_id = $id",
                {"id": clv_payload["model_id"]},
            ).df(),
        }
        refit = retrain_churn(duck, tmp_path / "duckdb_models", as_of, datetime(2026, 1, 1, tzinfo=UTC), settings.churn)
    assert len(on_spark["churn"]) > 400 and on_spark["churn"]["churn_probability"].notna().sum() > 200
    assert table_differences(on_duckdb["churn"], on_spark["churn"]) == []
    assert table_differences(on_duckdb["clv"], on_spark["clv"]) == []
    (clv_run,) = [e for e in result.get_asset_materialization_events() if e.asset_key == customer_clv.key]
    figures = {name: value.value for name, value in clv_run.materialization.metadata.items()}
    clv = on_duckdb["clv"]["clv"]
    assert figures["dagster/row_count"] == len(clv)
    assert figures["customers_with_clv"] == (clv > 0).sum()
    assert figures["median_positive_clv"] == pytest.approx(clv[clv > 0].median(), rel=1e-9)
    assert figures["mean_p_alive"] == pytest.approx(on_duckdb["clv"]["p_alive"].mean(), rel=1e-9)
    # LightGBM on the same sample, and isotonic calibration: the same validation figures.
    assert churn["validation"]["model"] == pytest.approx(refit.fit.validation.model.as_dict(), rel=1e-9)
