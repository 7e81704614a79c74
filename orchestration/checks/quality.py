"""Great Expectations suites as Dagster asset checks, one per suite file.

Each file ``expectations/<schema>.<table>.json`` becomes the check ``gx_suite`` on
the asset ``[<schema>, <table>]`` (raw tables, dbt marts and analytics tables all
follow that key scheme). A suite with any error-severity expectation makes a
blocking check: when one of those fails, nothing downstream materialises in the run.
The work is :mod:`crm_warehouse.quality`; a check only connects, validates and reports.
"""

# No ``from __future__ import annotations``: Dagster reads the ``context`` annotation
# at definition time and does not resolve ``dg.AssetCheckExecutionContext`` from a string.

from pathlib import Path
from typing import Any

import dagster as dg

from crm_warehouse.quality.results import ExpectationResult, SuiteResult, to_json
from crm_warehouse.quality.suites import Suite, load_suites
from crm_warehouse.settings import EXPECTATIONS_DIR
from crm_warehouse.warehouse.recent_rows import recent_window
from orchestration.resources import WarehouseResource, validates_recent_rows

CHECK_NAME = "gx_suite"
_MAX_CELL = 120


def suite_asset_key(suite: Suite) -> dg.AssetKey:
    return dg.AssetKey([suite.schema, suite.table])


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else to_json(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _label(result: ExpectationResult) -> str:
    label = f"{result.expectation}({result.column})" if result.column else result.expectation
    return f"{label}: {result.description}" if result.description else label


def results_markdown(result: SuiteResult) -> str:
    """One row per expectation: outcome, severity, observed value, note."""
    rows = [
        f"| {'pass' if r.success else 'FAIL'} | {r.severity} | {_cell(_label(r))} | "
        f"{_cell(r.observed_value)} | {_cell(r.note or '')} |"
        for r in result.results
    ]
    return "| result | severity | expectation | observed | note |\n|---|---|---|---|---|\n" + "\n".join(rows)


def failures_markdown(result: SuiteResult) -> str:
    """The failing expectations, errors first, each with its sample of failing values."""
    failures = result.failed_errors + result.failed_warnings
    if not failures:
        return "Every expectation passed."
    sections = []
    for r in failures:
        sample = "\n".join(f"- `{_cell(row)}`" for row in r.unexpected_sample) or "- (no sample)"
        note = f"\n\n{r.note}" if r.note else ""
        sections.append(f"**{r.severity}: {_label(r)}**, observed `{_cell(r.observed_value)}`{note}\n\n{sample}")
    return "\n\n".join(sections)


def check_result(result: SuiteResult, scope: str = "whole table") -> dg.AssetCheckResult:
    """The Dagster outcome of a suite: ERROR when an error expectation failed, else WARN.

    ``scope``: which rows were validated, shown with the results.
    """
    failed = result.failed_errors + result.failed_warnings
    metadata: dict[str, Any] = {
        "validated_rows": scope,
        "expectations": len(result.results),
        "failed_errors": len(result.failed_errors),
        "failed_warnings": len(result.failed_warnings),
        "results": dg.MetadataValue.md(results_markdown(result)),
        "failing_samples": dg.MetadataValue.md(failures_markdown(result)),
        "observed_values": dg.MetadataValue.json(
            [
                {"expectation": r.expectation, "column": r.column, "success": r.success, "observed": r.observed_value}
                for r in result.results
            ]
        ),
        "dq_results": dg.MetadataValue.text(
            f"audit.dq_results where run_id = '{result.run_id}' and suite = '{result.suite}'"
        ),
    }
    if result.docs_index:
        metadata["data_docs"] = dg.MetadataValue.url(result.docs_index)
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if result.failed_errors else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=f"{len(failed)} of {len(result.results)} expectations failed" if failed else None,
    )


def _quality_check(suite: Suite, docs_dir: Path | None) -> dg.AssetChecksDefinition:
    key = suite_asset_key(suite)
    errors = sum(e.severity == "error" for e in suite.expectations)

    @dg.asset_check(
        asset=key,
        name=CHECK_NAME,
        blocking=suite.blocking,
        description=(
            f"{suite.description} Great Expectations suite expectations/{suite.name}.json: "
            f"{len(suite.expectations)} expectations, {errors} blocking."
        ),
        metadata={"suite_file": f"expectations/{suite.name}.json"},
    )
    def gx_suite(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        # Importing GX takes seconds: pay it when a check runs, not when the code location loads.
        from crm_warehouse.quality.run import validate_and_record

        docs = docs_dir or Path(warehouse.dq_docs_dir)
        with warehouse.sql() as con:
            # The daily run validates the rows its incremental tables were rewritten
            # with: the window dbt recorded for the table, if it has one.
            recent = recent_window(con, suite.name) if validates_recent_rows(context.run.tags) else None
            try:
                result = validate_and_record(
                    con,
                    suite,
                    context.run.run_id,
                    asset=key.to_user_string(),
                    check_name=CHECK_NAME,
                    docs_dir=docs,
                    recent=recent,
                )
            except ValueError as exc:
                raise dg.Failure(str(exc)) from exc
        scope = (
            f"row-level expectations on the rows with {recent.describe()} (the rows dbt rewrote), "
            "table-level ones on the whole table"
            if recent
            else "whole table"
        )
        context.log.info(
            f"{suite.name} ({scope}): {len(result.failed_errors)} errors, {len(result.failed_warnings)} warnings; "
            f"Data Docs {result.docs_index}"
        )
        return check_result(result, scope)

    return gx_suite


def build_quality_checks(
    expectations_dir: Path = EXPECTATIONS_DIR, docs_dir: Path | None = None
) -> list[dg.AssetChecksDefinition]:
    """One asset check per suite file in ``expectations_dir``.

    ``docs_dir`` defaults to the warehouse resource's ``dq_docs_dir`` (``CRM_DQ_DOCS_DIR``).
    """
    return [_quality_check(suite, docs_dir) for suite in load_suites(expectations_dir)]


quality_checks: list[dg.AssetChecksDefinition] = build_quality_checks()
