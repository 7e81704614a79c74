"""Fixtures of the dbt tests: one simulated company per session, built in ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt_company import Company, build_company, dbt_env


@pytest.fixture
def dbt_env_in_tmp(tmp_path: Path) -> dict[str, str]:
    """dbt/sqlfluff environment over an empty warehouse in ``tmp_path``."""
    return dbt_env(tmp_path, tmp_path / "crm.duckdb")


@pytest.fixture(scope="session")
def company(tmp_path_factory: pytest.TempPathFactory) -> Company:
    """About 1,500 simulated customers over two years, ingested and built with dbt."""
    return build_company(tmp_path_factory.mktemp("dbt_company"))
