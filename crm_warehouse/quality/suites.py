"""Expectation suites: versioned JSON files in ``expectations/``, one per table.

A suite file is a Great Expectations ``ExpectationSuite`` JSON (``name``, ``meta``,
``expectations`` of ``type``/``kwargs``/``meta``) with three additions:

- ``name`` is the table, ``<schema>.<table>``, and the file is ``<name>.json``;
- every expectation carries ``meta.severity``: ``error`` (a failure blocks everything
  downstream) or ``warn`` (reported only);
- besides any GX expectation type, five types of our own (:data:`CUSTOM_TYPES`):
  referential integrity and row-count relations, which become GX
  ``UnexpectedRowsExpectation`` SQL, and column types and drift against the previous
  successful run, which are computed in DuckDB SQL.

``meta.key_columns`` (optional) names the columns that identify a row; failing
samples then show them next to the bad value. A daily run validates the recent rows
of a table for which dbt recorded a window (:mod:`crm_warehouse.warehouse.recent_rows`);
table-level expectations still see the whole table.

Loading a suite imports no Great Expectations (it is slow to import), so Dagster can
build its checks from the files cheaply; GX type names are resolved when the suite
is compiled for GX (:func:`crm_warehouse.quality.gx_sql.gx_suite`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from crm_warehouse.warehouse.sql import safe_identifier

Severity = Literal["error", "warn"]
SEVERITIES: tuple[Severity, ...] = ("error", "warn")

REFERENCE = "expect_column_values_to_exist_in_table"
ROW_COUNT_RELATION = "expect_table_row_count_to_match_other_table"
COLUMN_TYPES = "expect_table_column_types_to_match"
MEAN_DRIFT = "expect_column_mean_to_stay_near_previous_run"
SHARE_DRIFT = "expect_column_value_shares_to_stay_near_previous_run"
# GX's own SQL expectation; a suite may use it directly for a rule over several columns.
UNEXPECTED_ROWS = "unexpected_rows_expectation"
UNIQUE_VALUES = "expect_column_values_to_be_unique"
UNIQUE_COMBINATION = "expect_compound_columns_to_be_unique"

# Our own expectation types and the kwargs each one requires.
CUSTOM_TYPES: dict[str, tuple[str, ...]] = {
    REFERENCE: ("column", "other_table", "other_column"),
    ROW_COUNT_RELATION: ("other_table", "relation"),
    COLUMN_TYPES: ("column_types",),
    MEAN_DRIFT: ("column", "tolerance"),
    SHARE_DRIFT: ("column", "tolerance"),
}
# Types GX runs (as SQL it validates for us); the others run as our own DuckDB SQL.
GX_COMPILED_TYPES = (REFERENCE, ROW_COUNT_RELATION)
DRIFT_TYPES = (MEAN_DRIFT, SHARE_DRIFT)
ROW_COUNT_RELATIONS = ("equal", "at_most")

# A drift metric may be an arithmetic expression over columns (e.g. a line value);
# no quotes or semicolons, so it cannot smuggle a statement or a string.
_EXPRESSION = re.compile(r"[A-Za-z0-9_ .+\-*/(),]+")


def identifier(name: str) -> str:
    """``name`` quoted for SQL; ValueError unless it is a plain identifier."""
    if not isinstance(name, str):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return safe_identifier(name)


def qualified(table: str) -> str:
    """``schema.table`` quoted for SQL; ValueError unless both parts are identifiers."""
    parts = table.split(".") if isinstance(table, str) else []
    if len(parts) != 2:
        raise ValueError(f"table must be <schema>.<table>, got {table!r}")
    return ".".join(identifier(p) for p in parts)


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a suite: GX ``type`` and ``kwargs`` plus our severity."""

    type: str
    kwargs: Mapping[str, Any]
    severity: Severity
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def column(self) -> str | None:
        """The column (or metric name) the expectation is about, if any."""
        if "column" in self.kwargs:
            return self.kwargs["column"]
        if "column_list" in self.kwargs:
            return ",".join(self.kwargs["column_list"])
        if "column_A" in self.kwargs:
            return f"{self.kwargs['column_A']},{self.kwargs['column_B']}"
        return None

    @property
    def description(self) -> str | None:
        """What the expectation asserts, for Data Docs and check metadata."""
        kwargs = self.kwargs
        if self.type == REFERENCE:
            return f"Every {kwargs['column']} exists in {kwargs['other_table']}.{kwargs['other_column']}."
        if self.type == ROW_COUNT_RELATION:
            other = f"distinct {kwargs['other_column']} values" if "other_column" in kwargs else "rows"
            verb = "equals" if kwargs["relation"] == "equal" else "is at most"
            return f"The row count {verb} the number of {other} in {kwargs['other_table']}."
        if self.is_compiled_for_gx and self.type in (UNIQUE_VALUES, UNIQUE_COMBINATION):
            return f"No two rows share the same {', '.join(self.unique_key)}."
        return kwargs.get("description")

    @property
    def unique_key(self) -> list[str]:
        """The columns a uniqueness expectation keeps unique together."""
        return list(self.kwargs.get("column_list") or [self.kwargs["column"]])

    @property
    def is_custom(self) -> bool:
        return self.type in CUSTOM_TYPES

    @property
    def is_compiled_for_gx(self) -> bool:
        """GX validates it as our SQL, an unexpected-rows query, instead of its own expectation.

        Our referential and row-count types have no GX counterpart. GX's uniqueness
        expectations without options (``mostly``, ``ignore_row_if``) are compiled too:
        GX joins every row to the count of its key, and a ``group by`` of the keys is a
        third to a half of that on the big tables (docs/data_quality.md).
        """
        if self.type in GX_COMPILED_TYPES:
            return True
        return (self.type == UNIQUE_VALUES and set(self.kwargs) == {"column"}) or (
            self.type == UNIQUE_COMBINATION and set(self.kwargs) == {"column_list"}
        )

    @property
    def runs_as_unexpected_rows(self) -> bool:
        """GX validates it by an unexpected-rows query: compiled from our SQL, or written in the suite."""
        return self.is_compiled_for_gx or self.type == UNEXPECTED_ROWS

    @property
    def runs_in_gx(self) -> bool:
        return not self.is_custom or self.type in GX_COMPILED_TYPES

    @property
    def is_table_level(self) -> bool:
        """About the table as a whole (columns, types, row counts): never run on a slice."""
        return self.type.startswith("expect_table_")


@dataclass(frozen=True)
class Suite:
    """An expectation suite for the table ``name`` (``<schema>.<table>``)."""

    name: str
    expectations: tuple[ExpectationSpec, ...]
    key_columns: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def schema(self) -> str:
        return self.name.split(".")[0]

    @property
    def table(self) -> str:
        return self.name.split(".")[1]

    @property
    def blocking(self) -> bool:
        """Whether any expectation has error severity (its check blocks downstream)."""
        return any(e.severity == "error" for e in self.expectations)

    @property
    def description(self) -> str:
        return self.meta.get("description", f"Data-quality suite of {self.name}.")


def _spec(raw: Mapping[str, Any], where: str) -> ExpectationSpec:
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise ValueError(f"{where}: expectation without a 'type'")
    kwargs = raw.get("kwargs", {})
    meta = dict(raw.get("meta", {}))
    severity = meta.pop("severity", None)
    if severity not in SEVERITIES:
        raise ValueError(f"{where}: {kind} has meta.severity={severity!r}; expected one of {SEVERITIES}")
    if kind in CUSTOM_TYPES:
        missing = [k for k in CUSTOM_TYPES[kind] if k not in kwargs]
        if missing:
            raise ValueError(f"{where}: {kind} misses kwargs {missing}")
        _check_custom_kwargs(kind, kwargs, where)
    elif not kind.startswith("expect_") and kind != UNEXPECTED_ROWS:
        raise ValueError(f"{where}: {kind!r} is not an expectation type")
    return ExpectationSpec(type=kind, kwargs=dict(kwargs), severity=severity, meta=meta)


def _check_custom_kwargs(kind: str, kwargs: Mapping[str, Any], where: str) -> None:
    try:
        if "column" in kwargs and "expression" not in kwargs:
            identifier(kwargs["column"])
        if kind == REFERENCE:
            qualified(kwargs["other_table"])
            identifier(kwargs["other_column"])
        if kind == ROW_COUNT_RELATION:
            qualified(kwargs["other_table"])
            if "other_column" in kwargs:
                identifier(kwargs["other_column"])
            if kwargs["relation"] not in ROW_COUNT_RELATIONS:
                raise ValueError(f"relation {kwargs['relation']!r} is not one of {ROW_COUNT_RELATIONS}")
        if kind == COLUMN_TYPES:
            for column in kwargs["column_types"]:
                identifier(column)
        if kind in DRIFT_TYPES:
            tolerance = kwargs["tolerance"]
            if not isinstance(tolerance, (int, float)) or tolerance < 0:
                raise ValueError(f"tolerance must be a number >= 0, got {tolerance!r}")
            if "latest_by" in kwargs:
                identifier(kwargs["latest_by"])
            expression = kwargs.get("expression")
            if expression is not None and not _EXPRESSION.fullmatch(expression):
                raise ValueError(f"expression {expression!r} may use only columns, numbers and + - * / ( ) ,")
    except ValueError as exc:
        raise ValueError(f"{where}: {kind}: {exc}") from exc


def parse_suite(document: Mapping[str, Any], path: Path | None = None) -> Suite:
    """Build a :class:`Suite` from a parsed suite document, checking it thoroughly."""
    where = str(path) if path else "suite"
    name = document.get("name")
    if not isinstance(name, str):
        raise ValueError(f"{where}: suite has no 'name' (<schema>.<table>)")
    qualified(name)
    if path is not None and path.name != f"{name}.json":
        raise ValueError(f"{where}: suite {name!r} must live in {name}.json")
    meta = dict(document.get("meta", {}))
    key_columns = tuple(meta.pop("key_columns", ()))
    for column in key_columns:
        identifier(column)
    raw_expectations = document.get("expectations")
    if not raw_expectations:
        raise ValueError(f"{where}: suite {name} has no expectations")
    specs = tuple(_spec(raw, f"{where} expectation {i}") for i, raw in enumerate(raw_expectations))
    # A drift check finds its baseline by (type, column): two would share one.
    drift = [(s.type, s.column) for s in specs if s.type in DRIFT_TYPES]
    if len(drift) != len(set(drift)):
        raise ValueError(f"{where}: two drift expectations share a type and column: {drift}")
    return Suite(name=name, expectations=specs, key_columns=key_columns, meta=meta, path=path)


def load_suite(path: Path) -> Suite:
    """Read and check one suite file."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    return parse_suite(document, path)


def load_suites(directory: Path) -> list[Suite]:
    """Every ``*.json`` suite in ``directory``, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"expectations folder {directory} does not exist")
    return [load_suite(p) for p in sorted(directory.glob("*.json"))]
