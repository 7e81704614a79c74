"""Great Expectations 1.x on a warehouse table, through GX's SQL path (nothing loaded into pandas).

On Spark (``CRM_ENGINE=spark``) GX connects to the Thrift server through PyHive's
SQLAlchemy dialect (``hive://``), which needs none of the DuckDB workarounds below;
the SQL our expectations add is translated for Spark.

GX talks to DuckDB through SQLAlchemy and the ``duckdb-engine`` dialect. Out of the
box that fails (every metric ends in ``MetricResolutionError``) for two reasons,
both handled by :class:`_DuckDBConnection`, the DBAPI connection we hand to
SQLAlchemy in place of duckdb-engine's own:

1. GX fetches a query's rows *after* closing the SQLAlchemy connection it ran on;
   closing rolls the connection back, and on a DuckDB connection that discards the
   pending result, so GX reads no row (GX issue #11579). Every cursor here is a
   DuckDB cursor of its own (``con.cursor()``), untouched by that rollback.
2. duckdb-engine reflects columns with PostgreSQL catalog queries that DuckDB cannot
   answer (``pg_collation``); GX then falls back to ``SELECT * FROM <table>`` without
   the schema. Each cursor sets ``search_path`` to the suite's schema, so the
   unqualified name resolves; the table asset is named without schema for the same reason.

GX's column-type, regex and LIKE expectations do not work on this dialect; types are
checked in DuckDB instead (:mod:`crm_warehouse.quality.sql_checks`).

With a ``docs_dir`` the ephemeral context keeps suites and validation results in
files under ``<docs_dir>/_gx_stores`` and a Data Docs site in ``docs_dir``
(``index.html``). Only the latest result per suite is kept: history lives in
``audit.dq_results``, the docs show the current state of every table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import great_expectations as gx
from duckdb_engine import ConnectionWrapper, CursorWrapper
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.expectations.metadata_types import FailureSeverity

from crm_warehouse.quality.docs_views import CachedJinjaIndexPageView, CachedJinjaPageView, view_config
from crm_warehouse.quality.results import SAMPLE_SIZE, ExpectationResult
from crm_warehouse.quality.sql_checks import unexpected_rows_query, unexpected_rows_sample
from crm_warehouse.quality.suites import UNEXPECTED_ROWS, ExpectationSpec, Suite, identifier
from crm_warehouse.warehouse.catalog import WarehouseSql, engine_of, in_dialect_of
from crm_warehouse.warehouse.recent_rows import RecentWindow
from crm_warehouse.warehouse.spark import SparkSqlConnection, spark_sql

DOCS_SITE = "crm_data_quality"
# GX suite (and Data Docs) name of the expectations validated on a table's recent rows.
RECENT_ROWS_SUFFIX = ".recent_rows"
GX_STORES = "_gx_stores"
_GX_SEVERITY = {"error": FailureSeverity.CRITICAL, "warn": FailureSeverity.WARNING}
# Position of an expectation in its suite file, carried through GX to match results back.
_POSITION = "suite_position"
_COUNT_KEYS = ("element_count", "unexpected_count", "unexpected_percent", "missing_count")
# Stands in for GX's ``{batch}`` while a query is translated for Spark.
_BATCH = "gx_validated_batch"


class CountedUnexpectedRowsExpectation(gx.expectations.UnexpectedRowsExpectation):
    """GX's ``UnexpectedRowsExpectation`` that runs its query once, for the count.

    GX's own runs the query twice: once counted and once for the rows, which only a
    ``COMPLETE`` result shows. These suites report ``SUMMARY`` results and take a
    failure's sample rows from :func:`unexpected_rows_sample`, so the second run
    scanned the table for nothing. Rendered in Data Docs as its parent.
    """

    metric_dependencies: ClassVar[tuple[str, ...]] = ("unexpected_rows_query.row_count",)

    def _validate(
        self, metrics: dict, runtime_configuration: dict | None = None, execution_engine: Any = None
    ) -> dict[str, Any]:
        unexpected = metrics["unexpected_rows_query.row_count"]
        return {"success": unexpected == 0, "result": {"observed_value": unexpected}}


# GX's name of the expectation above (its class name in snake case).
_COUNTED_UNEXPECTED_ROWS = "counted_unexpected_rows_expectation"


class _DuckDBConnection(ConnectionWrapper):
    """A DBAPI connection over ``source`` whose every cursor is an independent DuckDB cursor."""

    def __init__(self, source: duckdb.DuckDBPyConnection, schema: str, opened: list[duckdb.DuckDBPyConnection]):
        identifier(schema)
        own = source.cursor()
        opened.append(own)
        super().__init__(own)
        self._source = source
        self._search_path = f"set search_path = '{schema}'"
        self._opened = opened

    def cursor(self) -> CursorWrapper:
        cursor = self._source.cursor()
        self._opened.append(cursor)
        cursor.execute(self._search_path)
        return CursorWrapper(cursor, self)


def _filesystem(folder: Path) -> dict[str, str]:
    return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(folder)}


def _context(docs_dir: Path | None) -> AbstractDataContext:
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    if docs_dir is not None:
        stores = Path(docs_dir) / GX_STORES
        config.stores["expectations_store"] = {
            "class_name": "ExpectationsStore",
            "store_backend": _filesystem(stores / "expectations"),
        }
        config.stores["validation_results_store"] = {
            "class_name": "ValidationResultsStore",
            "store_backend": _filesystem(stores / "validations"),
        }
        config.data_docs_sites = {
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "store_backend": _filesystem(Path(docs_dir)),
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "show_cta_footer": False,
                    "view": view_config(CachedJinjaIndexPageView),
                },
                "site_section_builders": {
                    section: {"view": view_config(CachedJinjaPageView)} for section in ("expectations", "validations")
                },
            }
        }
    return gx.get_context(project_config=config, mode="ephemeral")


def gx_expectation(spec: ExpectationSpec, position: int, dialect: str = "duckdb") -> gx.expectations.Expectation:
    """The GX expectation for ``spec``; our referential and row-count types become SQL.

    Unexpected-rows queries are written in DuckDB's dialect; with ``dialect="spark"``
    they are translated (``{batch}``, GX's name for the validated rows, kept).
    """
    meta = {**spec.meta, "severity": spec.severity, _POSITION: position}
    if spec.is_compiled_for_gx:
        kind = _COUNTED_UNEXPECTED_ROWS
        kwargs = {"unexpected_rows_query": unexpected_rows_query(spec), "description": spec.description}
        meta["crm_expectation"] = {"type": spec.type, "kwargs": dict(spec.kwargs)}
    elif spec.type == UNEXPECTED_ROWS:
        kind, kwargs = _COUNTED_UNEXPECTED_ROWS, dict(spec.kwargs)
    else:
        kind, kwargs = spec.type, dict(spec.kwargs)
    if dialect == "spark" and "unexpected_rows_query" in kwargs:
        kwargs["unexpected_rows_query"] = spark_sql(kwargs["unexpected_rows_query"].replace("{batch}", _BATCH)).replace(
            _BATCH, "{batch}"
        )
    configuration = ExpectationConfiguration(type=kind, kwargs=kwargs, meta=meta, severity=_GX_SEVERITY[spec.severity])
    return configuration.to_domain_obj()


def gx_suite(
    suite: Suite, positions: Iterable[int] | None = None, name: str | None = None, dialect: str = "duckdb"
) -> gx.ExpectationSuite:
    """The GX suite of the expectations GX runs (positions kept for matching results).

    ``positions``: only these expectations of ``suite``; ``name``: the GX suite's name;
    ``dialect``: the engine GX validates on (``duckdb`` or ``spark``).
    """
    chosen = set(positions) if positions is not None else set(range(len(suite.expectations)))
    return gx.ExpectationSuite(
        name=name or suite.name,
        expectations=[
            gx_expectation(spec, i, dialect)
            for i, spec in enumerate(suite.expectations)
            if spec.runs_in_gx and i in chosen
        ],
        meta=dict(suite.meta),
    )


def result_format(suite: Suite, with_samples: bool) -> dict[str, Any]:
    """Summary results (counts), with a sample of failing values and their row keys, if known.

    Without samples GX still counts every expectation's unexpected rows (one
    aggregate query per table, all expectations bundled), but its sample queries
    get ``limit 0``: a sample query of an expectation that passes finds no row, so
    it scans the whole table for nothing (two scans per expectation with row keys).
    """
    fmt: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE if with_samples else 0}
    if suite.key_columns:
        fmt["unexpected_index_column_names"] = list(suite.key_columns)
    return fmt


@contextmanager
def _sql_datasource(context: AbstractDataContext, con: WarehouseSql, suite: Suite) -> Iterator[Any]:
    if isinstance(con, SparkSqlConnection):
        # PyHive's SQLAlchemy dialect, on the Thrift server dbt uses, the suite's schema as default database.
        datasource = context.data_sources.add_sql(name="warehouse", connection_string=con.sqlalchemy_url(suite.schema))
        try:
            yield datasource
        finally:
            datasource.get_engine().dispose()
        return
    opened: list[duckdb.DuckDBPyConnection] = []
    datasource = context.data_sources.add_sql(
        name="warehouse",
        # The URL only picks the dialect; connections come from ``creator``.
        connection_string="duckdb:///:memory:",
        kwargs={"creator": lambda: _DuckDBConnection(con, suite.schema, opened)},
    )
    try:
        yield datasource
    finally:
        datasource.get_engine().dispose()
        for cursor in opened:
            cursor.close()


def _forget_previous_results(context: AbstractDataContext, suite_name: str) -> None:
    store = context.validation_results_store
    for key in store.list_keys():
        if key.expectation_suite_identifier.name == suite_name:
            store.remove_key(key)


def _exception_message(info: dict[str, Any] | None) -> str | None:
    if not info:
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info["raised_exception"] else None
    messages = [m for nested in info.values() if (m := _exception_message(nested))]
    return "; ".join(messages) or None


def _observed(result: dict[str, Any]) -> Any:
    if "observed_value" in result:
        return result["observed_value"]
    return {k: result[k] for k in _COUNT_KEYS if k in result} or None


def _to_result(
    con: WarehouseSql,
    suite: Suite,
    spec: ExpectationSpec,
    validation: Any,
    batch_sql: str | None,
    with_samples: bool,
) -> ExpectationResult:
    result = dict(validation.result or {})
    error = _exception_message(validation.exception_info)
    success = bool(validation.success) and error is None
    sample: list[Any] = []
    if not success and error is None and with_samples:
        if spec.runs_as_unexpected_rows:
            sample = unexpected_rows_sample(con, suite, spec, batch_sql)
        else:
            sample = result.get("partial_unexpected_index_list") or result.get("partial_unexpected_list") or []
    return ExpectationResult(
        expectation=spec.type,
        column=spec.column,
        kwargs=dict(spec.kwargs),
        severity=spec.severity,
        success=success,
        observed_value=_observed(result),
        unexpected_sample=list(sample)[:SAMPLE_SIZE],
        engine="gx",
        description=spec.description,
        note=f"expectation could not run: {error}" if error else None,
    )


def validate_with_gx(
    con: WarehouseSql,
    suite: Suite,
    run_id: str,
    docs_dir: Path | None = None,
    recent: RecentWindow | None = None,
) -> tuple[list[ExpectationResult], str | None]:
    """Run the GX part of ``suite`` on its table through ``con``.

    With ``recent`` (the window dbt recorded for the table), the row-level
    expectations validate only the recent rows (a GX query asset, GX suite
    ``<name>.recent_rows``); table-level ones still validate the whole table.

    The suite runs first without failing samples and, only when an expectation
    fails, again with them: a passing table costs no sample queries, and a failing
    one shows its samples (in the results and Data Docs) as before.

    Returns the results in suite order and the Data Docs index URL (None without
    ``docs_dir``). ``con`` stays usable; nothing of the table is loaded into Python
    beyond the failing samples.
    """
    specs = {i: spec for i, spec in enumerate(suite.expectations) if spec.runs_in_gx}
    if not specs:
        return [], None
    results, docs_index = _validate_once(con, suite, specs, run_id, docs_dir, recent, with_samples=False)
    if not all(result.success for result in results):
        results, docs_index = _validate_once(con, suite, specs, run_id, docs_dir, recent, with_samples=True)
    return results, docs_index


def _validate_once(
    con: WarehouseSql,
    suite: Suite,
    specs: dict[int, ExpectationSpec],
    run_id: str,
    docs_dir: Path | None,
    recent: RecentWindow | None,
    with_samples: bool,
) -> tuple[list[ExpectationResult], str | None]:
    """One GX checkpoint over the expectations ``specs`` (by suite position): results in that order, Data Docs."""
    recent_sql = in_dialect_of(con, recent.rows_sql(suite.name)) if recent else None
    on_recent = {i for i, spec in specs.items() if recent_sql and not spec.is_table_level}
    context = _context(docs_dir)
    with _sql_datasource(context, con, suite) as datasource:
        groups = [
            (suite.name, specs.keys() - on_recent, None),
            (suite.name + RECENT_ROWS_SUFFIX, on_recent, recent_sql),
        ]
        validations, batch_of = [], {}
        for name, positions, batch_sql in groups:
            if not positions:
                continue
            suite_in_gx = context.suites.add_or_update(gx_suite(suite, positions, name, engine_of(con)))
            asset = (
                datasource.add_query_asset(name=name, query=batch_sql)
                if batch_sql
                else datasource.add_table_asset(name=name, table_name=suite.table)
            )
            batch = asset.add_batch_definition_whole_table("whole batch")
            validations.append(
                context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite_in_gx))
            )
            batch_of |= dict.fromkeys(positions, batch_sql)
        actions = []
        if docs_dir is not None:
            # Data Docs show this run's validations of the table, nothing older.
            for name, _, _ in groups:
                _forget_previous_results(context, name)
            actions.append(gx.checkpoint.UpdateDataDocsAction(name="update_data_docs", site_names=[DOCS_SITE]))
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=suite.name,
                validation_definitions=validations,
                actions=actions,
                result_format=result_format(suite, with_samples),
            )
        )
        outcome = checkpoint.run(run_id=RunIdentifier(run_name=run_id))
        by_position = {
            int(r.expectation_config.meta[_POSITION]): r
            for validation_result in outcome.run_results.values()
            for r in validation_result.results
        }
        results = [_to_result(con, suite, spec, by_position[i], batch_of[i], with_samples) for i, spec in specs.items()]
    docs_index = context.get_docs_sites_urls(site_names=[DOCS_SITE])[0]["site_url"] if docs_dir else None
    return results, docs_index
