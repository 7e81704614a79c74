"""What the Dagster UI shows for dbt nodes, made true to the warehouse.

- **Column types**: dagster-dbt takes column schemas from the manifest, where a column
  without a declared ``data_type`` shows as ``?``. :func:`relation_metadata` reads the
  real types of the built relations from ``information_schema`` (one query after the
  dbt step, on the connection the row counts use).
- **Storage name**: the manifest names the catalog of the file ``dbt parse`` ran on
  (``crm_parse``); :func:`relation_metadata` gives ``dagster/table_name`` with the
  catalog of the warehouse the run built.
- **Lineage**: dbt models downstream of the Python scores (``source:analytics+``)
  form their own group, :data:`SCORED_GROUP`, so groups read staging → intermediate →
  marts → analytics → scored, without a group-level cycle (:func:`scored_nodes`).
- **Checks**: a dbt generic test has no description of its own; :func:`test_description`
  says what it tests (``unique`` on ``customer_id``, a relationship to another model, …).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg

from crm_warehouse.warehouse.catalog import WarehouseSql, column_types
from crm_warehouse.warehouse.spark import SparkSqlConnection

SCORED_GROUP = "scored"
ANALYTICS_SOURCE_PREFIX = "source.crm_warehouse.analytics."


@cache
def scored_nodes(manifest_path: Path) -> frozenset[str]:
    """Unique ids of the dbt nodes downstream of the ``analytics`` sources (the Python scores)."""
    manifest = json.loads(Path(manifest_path).read_text())
    children: dict[str, list[str]] = manifest.get("child_map", {})
    seen: set[str] = set()
    todo = [uid for uid in children if uid.startswith(ANALYTICS_SOURCE_PREFIX)]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return frozenset(uid for uid in seen if uid.split(".")[0] in ("model", "seed", "snapshot"))


def test_description(test: Mapping[str, Any]) -> str | None:
    """A sentence for a dbt test node: its own description, else what its generic test checks."""
    own = (test.get("description") or "").strip()
    if own:
        return own
    metadata = test.get("test_metadata") or {}
    name = metadata.get("name")
    if not name:
        return None
    kwargs = {k: v for k, v in (metadata.get("kwargs") or {}).items() if k != "model" and v is not None}
    column = kwargs.pop("column_name", None) or test.get("column_name")
    where = f" on column {column}" if column else ""
    details = ", ".join(f"{key}={value}" for key, value in kwargs.items() if not isinstance(value, (dict, list)))
    return f"dbt test {name}{where}" + (f" ({details})" if details else "")


def relation_metadata(con: WarehouseSql, nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per dbt unique id: ``dagster/table_name`` and ``dagster/column_schema`` of its built relation."""
    wanted = {f"{node['schema']}.{node['alias']}": uid for uid, node in nodes.items()}
    if not wanted:
        return {}
    if isinstance(con, SparkSqlConnection):
        # No information_schema on Spark: one description per relation, in the session's catalog.
        rows = [
            ("spark_catalog", node["schema"], node["alias"], column, data_type)
            for node in nodes.values()
            for column, data_type in column_types(con, node["schema"], node["alias"]).items()
        ]
    else:
        rows = con.execute(
            """select table_catalog, table_schema, table_name, column_name, data_type
               from information_schema.columns
               where table_catalog = current_database() and list_contains($names, table_schema || '.' || table_name)
               order by table_schema, table_name, ordinal_position""",
            {"names": list(wanted)},
        ).fetchall()
    columns: dict[str, list[tuple[str, str]]] = {}
    catalogs: dict[str, str] = {}
    for catalog, schema, table, column, data_type in rows:
        uid = wanted[f"{schema}.{table}"]
        catalogs[uid] = f"{catalog}.{schema}.{table}"
        columns.setdefault(uid, []).append((column, data_type))
    metadata = {}
    for uid, table_columns in columns.items():
        described = nodes[uid].get("columns") or {}
        schema = dg.TableSchema(
            columns=[
                dg.TableColumn(
                    name=name, type=data_type.lower(), description=described.get(name, {}).get("description")
                )
                for name, data_type in table_columns
            ]
        )
        metadata[uid] = {
            "dagster/table_name": catalogs[uid],
            "dagster/column_schema": dg.MetadataValue.table_schema(schema),
        }
    return metadata


def with_relation_metadata(events: Iterable[Any], metadata: Mapping[str, Mapping[str, Any]], node_of) -> list[Any]:
    """``events`` with each materialisation's relation metadata added (``node_of(event)`` names its node)."""
    out = []
    for event in events:
        node = node_of(event)
        if node in metadata:
            event = event.with_metadata({**event.metadata, **metadata[node]})
        out.append(event)
    return out
