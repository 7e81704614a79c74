"""Fixtures of the dbt tests: one simulated company per session, built in ``tmp_path``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbt_company import Company, build_company, dbt_env
from spark_engine import LocalSpark, local_spark

#: Debian's libpostgresql-jdbc-java, which scripts/spark.sh installs and puts on the server's class path.
POSTGRES_JDBC_JAR = Path("/usr/share/java/postgresql.jar")


@pytest.fixture
def dbt_env_in_tmp(tmp_path: Path) -> dict[str, str]:
    """dbt/sqlfluff environment over an empty warehouse in ``tmp_path``."""
    return dbt_env(tmp_path, tmp_path / "crm.duckdb")


@pytest.fixture(scope="session")
def company(tmp_path_factory: pytest.TempPathFactory) -> Company:
    """About 1,500 simulated customers over two years, ingested and built with dbt."""
    return build_company(tmp_path_factory.mktemp("dbt_company"))


@pytest.fixture(scope="session")
def local_spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSpark]:
    """A local Spark (scripts/spark.sh) for the session; skipped only where Java or the JDBC driver is absent."""
    if shutil.which("java") is None or not POSTGRES_JDBC_JAR.exists():
        message = (
            "Java or PostgreSQL's JDBC driver is absent: the Spark tests need a Java 17 runtime and "
            f"{POSTGRES_JDBC_JAR} (bash scripts/spark.sh --java-only installs both)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs Java first (.ci/run): there the Spark path must run
        pytest.skip(message)
    with local_spark(tmp_path_factory.mktemp("spark")) as spark:
        yield spark
