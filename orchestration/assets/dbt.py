"""dbt models, seeds and tests as Dagster assets and asset checks.

Keys and groups come from each node's folder in the manifest (``staging``,
``intermediate``, ``marts``), never from lists of model names. Sources map to the
assets that produce them through ``meta.dagster.asset_key`` in the dbt YAML.
The manifest is produced by ``make manifest`` (``dbt parse``), not at import time.
"""

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from crm_warehouse.settings import Settings
from crm_warehouse.warehouse.dbt_project import DBT_PROJECT_DIR, run_vars, write_profile
from crm_warehouse.warehouse.sql import qualified_name
from orchestration.dbt_metadata import SCORED_GROUP, relation_metadata, scored_nodes, test_description
from orchestration.dbt_runs import dbt_failure, invocation_target_path
from orchestration.resources import TRANSIENT_RETRY, WAREHOUSE_POOL, WarehouseResource, validates_recent_rows

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)

if not dbt_project.manifest_path.exists():
    raise FileNotFoundError(
        f"dbt manifest not found at {dbt_project.manifest_path}. Build it with `make manifest` "
        "(runs `dbt parse`); `make run`, `make dev` and `make test` do this for you."
    )


class CrmDbtTranslator(DagsterDbtTranslator):
    """Asset key ``[layer, name]`` and group ``layer``, both from the node's folder."""

    @staticmethod
    def _layer(props: Mapping[str, Any]) -> str:
        if props["resource_type"] == "seed":
            return "reference"
        fqn = props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "marts"

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey([self._layer(dbt_resource_props), dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            if dbt_resource_props["unique_id"] in scored_nodes(dbt_project.manifest_path):
                return SCORED_GROUP  # after the analytics group it reads: no group-level cycle
            return self._layer(dbt_resource_props)
        return super().get_group_name(dbt_resource_props)

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project):
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        return spec._replace(description=test_description(manifest["nodes"].get(unique_id, {})))

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        owner = dbt_resource_props.get("meta", {}).get("owner")
        return [owner] if owner else ["team:analytics-engineering"]


def dbt_resource(settings: Settings) -> DbtCliResource:
    """The dbt CLI of this environment (found beside the interpreter), with the profile of ``settings``.

    The configuration reaches dbt as a written profile (the project's, with this
    configuration's engine and warehouse) and run-time vars, never through os.environ.
    """
    return DbtCliResource(
        project_dir=dbt_project,
        dbt_executable=str(Path(sys.executable).parent / "dbt"),
        profiles_dir=str(write_profile(settings)),
    )


dbt_translator = CrmDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def exposure_specs(also_downstream_of: list[dg.AssetKey]) -> list[dg.AssetSpec]:
    """The dbt exposures (BI dashboards) as assets after the marts they read.

    dagster-dbt shows no exposures; these specs come from the manifest, like the
    models' keys. ``also_downstream_of`` adds what the dashboards open (the serving file).
    """
    manifest = json.loads(dbt_project.manifest_path.read_text())
    specs = []
    for exposure in manifest["exposures"].values():
        reads = [
            dbt_translator.get_asset_key(manifest["nodes"][node])
            for node in exposure["depends_on"]["nodes"]
            if node in manifest["nodes"]
        ]
        specs.append(
            dg.AssetSpec(
                key=dg.AssetKey(["dashboards", exposure["name"]]),
                deps=[*reads, *also_downstream_of],
                group_name="dashboards",
                kinds={"dashboard"},
                description=exposure["description"].strip(),
                owners=[exposure["owner"]["email"]] if exposure.get("owner", {}).get("email") else None,
                metadata={"label": exposure.get("label") or exposure["name"], "maturity": exposure.get("maturity")},
            )
        )
    return specs


# The Python analytics tables sit in the middle of the dbt graph (marts feed the
# models, the models' scores feed the value segments), so dbt runs in two parts
# split by graph selection: everything not downstream of the analytics sources,
# then everything that is.
ANALYTICS_DOWNSTREAM = "source:analytics+"


class DbtBuildConfig(dg.Config):
    """Run config of the dbt steps. A backfill rebuilds incremental models in full."""

    full_refresh: bool = False


def dbt_build_args(config: DbtBuildConfig, variables: Mapping[str, str], run_tags: Mapping[str, str]) -> list[str]:
    """``dbt build`` arguments of a step: --full-refresh, and the vars (as-of date, test scope)."""
    args = ["build"] + (["--full-refresh"] if config.full_refresh else [])
    if validates_recent_rows(run_tags) and not config.full_refresh:
        variables = {**variables, "data_tests_scope": "recent"}
    return args + (["--vars", json.dumps(variables)] if variables else [])


def _build(
    context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    with warehouse.writer_turn():
        yield from _build_holding_the_warehouse(context, config, dbt, warehouse)


def _build_holding_the_warehouse(
    context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    with warehouse.sql() as con:
        as_of = warehouse.resolve_as_of(con)
    args = dbt_build_args(config, run_vars(as_of), context.run.tags)
    invocation = dbt.cli(args, context=context, target_path=invocation_target_path(context))
    # dbt holds the DuckDB file until it exits, so the events are collected first
    # (dbt's log lines still reach the step's stdout as they come) and the row counts
    # are read afterwards in one query. dagster-dbt's fetch_row_counts() does the same
    # collecting, but polls its thread pool without pause meanwhile, taking one of the
    # machine's cores from dbt; fetch_column_metadata() is not used because every
    # column is documented in the manifest, which dagster-dbt shows already
    # (benchmarks/dbt_step_overhead.py measures both).
    events, failure = [], None
    try:
        events.extend(invocation.stream())
    except Exception as exc:  # the nodes built before the failure are still reported
        failure = exc
    yield from _with_row_counts(events, invocation.manifest, warehouse)
    if failure is not None:
        raise dbt_failure(invocation, failure) from failure


def _materialised_node(event: Any) -> str | None:
    """The dbt unique id of a model or seed materialisation event, else None."""
    if isinstance(event, (dg.Output, dg.AssetMaterialization)) and "unique_id" in event.metadata:
        return event.metadata["unique_id"].text
    return None


def _with_row_counts(events: list[Any], manifest: Mapping[str, Any], warehouse: WarehouseResource) -> Iterator[Any]:
    """The events, each materialised table's with its ``dagster/row_count`` (views are not counted)."""
    # Schema and name only: the catalog is whatever file this run's warehouse is.
    relations = {
        node["unique_id"]: qualified_name(node["schema"], node["alias"])
        for node in (manifest["nodes"][uid] for uid in map(_materialised_node, events) if uid)
        if node["config"]["materialized"] != "view"
    }
    built = {uid: manifest["nodes"][uid] for uid in map(_materialised_node, events) if uid}
    counts: dict[str, int] = {}
    described: dict[str, dict[str, Any]] = {}
    if built:
        with warehouse.sql() as con:
            if relations:
                ids = list(relations)
                query = " union all ".join(f"select {i}, count(*) from {relations[node]}" for i, node in enumerate(ids))
                counts = {ids[i]: rows for i, rows in con.execute(query).fetchall()}
            # real column types and the storage name of this run's warehouse (orchestration/dbt_metadata.py)
            described = relation_metadata(con, built)
    for event in events:
        node = _materialised_node(event)
        extra = {**described.get(node, {}), **({"dagster/row_count": counts[node]} if node in counts else {})}
        yield event.with_metadata({**event.metadata, **extra}) if extra else event


@dbt_assets(
    manifest=dbt_project.manifest_path,
    dagster_dbt_translator=dbt_translator,
    project=dbt_project,
    exclude=ANALYTICS_DOWNSTREAM,
    name="dbt_warehouse_models",
    pool=WAREHOUSE_POOL,
    retry_policy=TRANSIENT_RETRY,
)
def dbt_warehouse_models(
    context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """Build and test staging, intermediate and marts models that do not need model scores."""
    yield from _build(context, config, dbt, warehouse)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    dagster_dbt_translator=dbt_translator,
    project=dbt_project,
    select=ANALYTICS_DOWNSTREAM,
    name="dbt_scored_models",
    pool=WAREHOUSE_POOL,
    retry_policy=TRANSIENT_RETRY,
)
def dbt_scored_models(
    context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """Build and test the models that use CLV and churn scores (value segments, customer 360)."""
    yield from _build(context, config, dbt, warehouse)
