"""Shared fixtures: one small simulated company per test session, built at most once."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import psycopg
import pytest

from crm_simulator import SimulationConfig, simulate_company
from crm_warehouse.contracts import CONTRACTS
from crm_warehouse.ingest import export_date
from crm_warehouse.settings import PROJECT_ROOT

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


# The PostgreSQL tests publish into their own database so a developer's `crm` copy is left alone.
POSTGRES_TEST_DATABASE = "crm_test"


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"no PostgreSQL server: {reason} (run `bash scripts/postgres.sh` as root or set CRM_POSTGRES_DSN)")


@pytest.fixture(scope="session")
def loader_dsn() -> str:
    """The PostgreSQL loader DSN: CRM_POSTGRES_DSN, else the server scripts/postgres.sh starts."""
    dsn = os.environ.get("CRM_POSTGRES_DSN")
    if not dsn:
        script = subprocess.run(
            ["bash", str(PROJECT_ROOT / "scripts" / "postgres.sh")],
            env={**os.environ, "CRM_POSTGRES_DB": POSTGRES_TEST_DATABASE},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if script.returncode != 0:
            _postgres_unavailable(f"scripts/postgres.sh failed: {script.stderr.strip()[-500:]}")
        dsn = script.stdout.strip().splitlines()[-1]
    try:
        psycopg.connect(dsn, connect_timeout=10).close()
    except psycopg.OperationalError as exc:
        _postgres_unavailable(f"cannot connect: {exc}")
    return dsn
