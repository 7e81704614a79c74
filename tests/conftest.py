"""Shared fixtures: one small simulated company per test session, built at most once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from crm_simulator import SimulationConfig, simulate_company
from crm_warehouse.contracts import CONTRACTS
from crm_warehouse.ingest import export_date

if TYPE_CHECKING:
    from pipeline_support import BuiltPipeline, Company

# pipeline_support loads the Dagster definitions, which need the dbt manifest: imported by
# the fixtures that use it, so tests without a pipeline (docs, pure functions) need no build.

# Small enough for a fast suite, large enough for stable statistics (stage agreement,
# churn AUC); every figure the tests assert is on this seed.
TEST_COMPANY = SimulationConfig(customers=1500, days=730, seed=7)


@pytest.fixture(scope="session")
def company(tmp_path_factory: pytest.TempPathFactory) -> Company:
    """Landing files and ground truth of the test company (read-only for tests)."""
    from pipeline_support import Company

    root = tmp_path_factory.mktemp("company")
    simulate_company(TEST_COMPANY, root / "landing", root / "truth")
    return Company(root=root, landing=root / "landing", truth=root / "truth", config=TEST_COMPANY)


@pytest.fixture(scope="session")
def built_pipeline(company: Company, tmp_path_factory: pytest.TempPathFactory) -> BuiltPipeline:
    """The test company through one ``full_pipeline`` run, the last days held back."""
    from pipeline_support import HELD_BACK_DAYS, BuiltPipeline, deliver, run_job

    root = tmp_path_factory.mktemp("pipeline")
    files = sorted(
        path.relative_to(company.landing).as_posix()
        for contract in CONTRACTS
        for path in company.landing.glob(contract.file_glob)
    )
    last_day = max(export_date(f) for f in files).toordinal()
    held_back = tuple(f for f in files if export_date(f).toordinal() > last_day - HELD_BACK_DAYS)
    deliver(company, root, [f for f in files if f not in held_back])
    result = run_job(root, "full_pipeline")
    assert result.success, "the full pipeline failed on the test company"
    return BuiltPipeline(root=root, company=company, held_back=held_back, run_id=result.run_id)
