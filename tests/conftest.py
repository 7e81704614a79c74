"""Shared fixtures: one small simulated company per test session, built at most once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from crm_warehouse.simulate import SimulationConfig, simulate_company

# Small enough for a fast suite, large enough for stable statistics (stage agreement,
# churn AUC); every figure the tests assert is on this seed.
TEST_COMPANY = SimulationConfig(customers=1500, days=730, seed=7)


@dataclass(frozen=True)
class Company:
    root: Path
    landing: Path
    truth: Path
    config: SimulationConfig


@pytest.fixture(scope="session")
def company(tmp_path_factory: pytest.TempPathFactory) -> Company:
    """Landing files and ground truth of the test company (read-only for tests)."""
    root = tmp_path_factory.mktemp("company")
    simulate_company(TEST_COMPANY, root / "landing", root / "truth")
    return Company(root=root, landing=root / "landing", truth=root / "truth", config=TEST_COMPANY)
