"""One configuration for the whole warehouse: paths, dates and secrets.

Values come from environment variables (``CRM_*``), which ``make``, ``dagster dev``
and the tests all use, with defaults under the project's ``data/`` folder so a fresh
clone runs with no setup. Business thresholds are not here: they are dbt ``vars``
in ``dbt_project/dbt_project.yml`` and model settings in the analytics package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"

# Used only when CRM_PII_SALT is unset, so the demo runs out of the box; a
# deployment sets its own secret salt (the README says so).
DEMO_PII_SALT = "demo-salt-change-me"


def dbt_project_var(name: str) -> object:
    """A var of ``dbt_project.yml``, for Python code that must agree with the dbt models."""
    import yaml  # a dependency of dbt and Dagster; imported only when a var is read

    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))["vars"][name]


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build it with :func:`load_settings`."""

    data_dir: Path
    landing_dir: Path
    truth_dir: Path
    warehouse_path: Path
    serving_path: Path
    models_dir: Path
    dq_docs_dir: Path
    dagster_home: Path
    as_of_date: date | None
    pii_salt: str
    daily_cron: str = "0 6 * * *"
    retrain_cron: str = "0 3 * * 0"
    timezone: str = "UTC"
    alert_webhook: str | None = None
    alert_command: str | None = None
    landing_settle_seconds: int = 30
    lock_timeout_seconds: int = 600
    max_quarantine_rate: float = 0.05
    postgres_dsn: str | None = None
    postgres_bi_password: str | None = None

    def with_data_dir(self, data_dir: Path) -> Settings:
        """The same settings with every path moved under ``data_dir`` (used by tests)."""
        return replace(self, **_paths_under(data_dir))


def _paths_under(data_dir: Path) -> dict[str, Path]:
    return {
        "data_dir": data_dir,
        "landing_dir": data_dir / "landing",
        "truth_dir": data_dir / "truth",
        "warehouse_path": data_dir / "warehouse" / "crm.duckdb",
        "serving_path": data_dir / "serving" / "crm_serving.duckdb",
        "models_dir": data_dir / "models",
        "dq_docs_dir": data_dir / "dq_docs",
        "dagster_home": data_dir / "dagster_home",
    }


def _env_path(environ: dict[str, str], name: str, default: Path) -> Path:
    value = environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def _parse_date(name: str, value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(
            f"{name}={value!r} is not a date in YYYY-MM-DD form: set e.g. {name}=2025-06-30, "
            "or unset it to use the latest loaded order's date"
        ) from exc


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from ``environ`` (default: the process environment).

    Variables: ``CRM_DATA_DIR`` (root of all defaults, default ``<project>/data``),
    ``CRM_LANDING_DIR``, ``CRM_TRUTH_DIR``, ``CRM_WAREHOUSE_PATH``, ``CRM_SERVING_PATH``,
    ``CRM_MODELS_DIR``, ``CRM_DQ_DOCS_DIR`` (Great Expectations Data Docs), ``DAGSTER_HOME``, ``CRM_AS_OF_DATE`` (YYYY-MM-DD; default the
    latest data date), ``CRM_PII_SALT`` (secret salt for hashing personal data),
    ``CRM_DAILY_CRON`` / ``CRM_RETRAIN_CRON`` / ``CRM_TIMEZONE`` (schedules),
    ``CRM_ALERT_WEBHOOK`` / ``CRM_ALERT_COMMAND`` (where failure alerts go),
    ``CRM_LANDING_SETTLE_SECONDS`` (a landing file must be unchanged this long before
    the sensor picks it up), ``CRM_LOCK_TIMEOUT_SECONDS`` (how long a run waits for
    another run's write lock on the warehouse), ``CRM_MAX_QUARANTINE_RATE`` (share of a
    run's rows of one source that may be quarantined before the run stops; default 0.05),
    ``CRM_POSTGRES_DSN`` (loader DSN of the optional PostgreSQL serving target; unset: no
    PostgreSQL publish), ``CRM_POSTGRES_BI_PASSWORD`` (password of its read-only ``bi_reader``).
    """
    env = dict(os.environ if environ is None else environ)
    data_dir = _env_path(env, "CRM_DATA_DIR", PROJECT_ROOT / "data")
    defaults = _paths_under(data_dir)
    return Settings(
        data_dir=data_dir,
        landing_dir=_env_path(env, "CRM_LANDING_DIR", defaults["landing_dir"]),
        truth_dir=_env_path(env, "CRM_TRUTH_DIR", defaults["truth_dir"]),
        warehouse_path=_env_path(env, "CRM_WAREHOUSE_PATH", defaults["warehouse_path"]),
        serving_path=_env_path(env, "CRM_SERVING_PATH", defaults["serving_path"]),
        models_dir=_env_path(env, "CRM_MODELS_DIR", defaults["models_dir"]),
        dq_docs_dir=_env_path(env, "CRM_DQ_DOCS_DIR", defaults["dq_docs_dir"]),
        dagster_home=_env_path(env, "DAGSTER_HOME", defaults["dagster_home"]),
        as_of_date=_parse_date("CRM_AS_OF_DATE", env.get("CRM_AS_OF_DATE")),
        pii_salt=env.get("CRM_PII_SALT") or DEMO_PII_SALT,
        daily_cron=env.get("CRM_DAILY_CRON") or "0 6 * * *",
        retrain_cron=env.get("CRM_RETRAIN_CRON") or "0 3 * * 0",
        timezone=env.get("CRM_TIMEZONE") or "UTC",
        alert_webhook=env.get("CRM_ALERT_WEBHOOK") or None,
        alert_command=env.get("CRM_ALERT_COMMAND") or None,
        landing_settle_seconds=_parse_int(env, "CRM_LANDING_SETTLE_SECONDS", 30),
        lock_timeout_seconds=_parse_int(env, "CRM_LOCK_TIMEOUT_SECONDS", 600),
        max_quarantine_rate=_parse_rate(env, "CRM_MAX_QUARANTINE_RATE", 0.05),
        postgres_dsn=env.get("CRM_POSTGRES_DSN") or None,
        postgres_bi_password=env.get("CRM_POSTGRES_BI_PASSWORD") or None,
    )


def _parse_rate(environ: dict[str, str], name: str, default: float) -> float:
    value = environ.get(name)
    if not value:
        return default
    try:
        rate = float(value)
    except ValueError as exc:
        raise ValueError(f"{name}={value!r} is not a number: set a share between 0 and 1, e.g. {name}=0.05") from exc
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name}={value!r} must be a share between 0 and 1, e.g. {name}=0.05")
    return rate


def _parse_int(environ: dict[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"{name}={value!r} is not a whole number: set e.g. {name}={default}") from exc
