"""One configuration for the whole warehouse: paths, dates, schedules, model settings.

Values come from environment variables (``CRM_*``), which ``make``, ``dagster dev``
and the tests all use, with defaults under the project's ``data/`` folder so a fresh
clone runs with no setup. :func:`load_settings` builds one :class:`Settings`; the
Dagster resource carries it (as JSON) to every step, and nothing else reads the
environment. The stage and segment thresholds are dbt ``vars`` in
``dbt_project/dbt_project.yml`` (read from Python through
:mod:`crm_warehouse.warehouse.dbt_project`).

``python -m crm_warehouse.settings NAME`` prints one resolved setting (the Makefile
asks it for the default folders, so the layout is written only here).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import typing
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from crm_warehouse.analytics.churn.config import ChurnConfig
from crm_warehouse.analytics.clv.config import ClvConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
#: Engines the warehouse runs on (CRM_ENGINE); DuckDB is the embedded default.
ENGINES = ("duckdb", "spark")
#: An ingestion batch (each commits on its own) is consecutive landing files of at most
#: this many bytes and this many values (lines x the columns each row carries while it is
#: judged). DuckDB holds a batch's rows while it judges them; its memory follows the
#: values more than the bytes (a JSON line spells its keys: 350 bytes a ticket, 54 an
#: order line), so the values bound ingestion's memory and the bytes the text of wide lines.
DEFAULT_INGEST_BATCH_BYTES = 256 * 1024**2
DEFAULT_INGEST_BATCH_VALUES = 12_000_000


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
    dbt_profiles_dir: Path
    spark_warehouse_dir: Path
    spark_metastore_dir: Path
    spark_exchange_dir: Path
    duckdb_temp_dir: Path
    as_of_date: date | None
    duckdb_memory_limit: str = "2GiB"
    engine: str = "duckdb"
    spark_thrift_host: str = "127.0.0.1"
    spark_thrift_port: int = 10000
    spark_thrift_user: str | None = None
    spark_connect_url: str = "sc://127.0.0.1:15002"
    daily_cron: str = "0 6 * * *"
    retrain_cron: str = "0 3 * * 0"
    timezone: str = "UTC"
    alert_webhook: str | None = None
    alert_command: str | None = None
    landing_settle_seconds: int = 30
    lock_timeout_seconds: int = 600
    max_quarantine_rate: float = 0.05
    min_quarantine_rows: int = 20
    ingest_batch_bytes: int = DEFAULT_INGEST_BATCH_BYTES
    ingest_batch_values: int = DEFAULT_INGEST_BATCH_VALUES
    max_quarantine_rate_per_source: dict[str, float] = field(default_factory=dict)
    postgres_dsn: str | None = None
    postgres_bi_password: str | None = None
    clv: ClvConfig = field(default_factory=ClvConfig)
    churn: ChurnConfig = field(default_factory=ChurnConfig)

    def with_data_dir(self, data_dir: Path) -> Settings:
        """The same settings with every path moved under ``data_dir`` (used by tests)."""
        return replace(self, **_paths_under(data_dir))

    def to_json(self) -> str:
        """Every setting as JSON (the Dagster resource carries the configuration so)."""
        return json.dumps(dataclasses.asdict(self), default=str, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        """The settings :meth:`to_json` wrote."""
        return _from_dict(cls, json.loads(text))


def _from_dict(kind: type, values: dict[str, typing.Any]) -> typing.Any:
    hints = typing.get_type_hints(kind)
    converted = {}
    for name, value in values.items():
        hint = hints[name]
        if value is None:
            converted[name] = None
        elif dataclasses.is_dataclass(hint):
            converted[name] = _from_dict(hint, value)
        elif Path in typing.get_args(hint) or hint is Path:
            converted[name] = Path(value)
        elif date in typing.get_args(hint) or hint is date:
            converted[name] = date.fromisoformat(value)
        elif isinstance(value, list):
            converted[name] = tuple(value)
        else:
            converted[name] = value
    return kind(**converted)


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
        "dbt_profiles_dir": data_dir / "dbt",
        "spark_warehouse_dir": data_dir / "spark" / "warehouse",
        "spark_metastore_dir": data_dir / "spark" / "metastore",
        "spark_exchange_dir": data_dir / "spark" / "exchange",
        "duckdb_temp_dir": data_dir / "tmp" / "duckdb",
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
    ``CRM_MODELS_DIR``, ``CRM_DQ_DOCS_DIR`` (Great Expectations Data Docs), ``DAGSTER_HOME``,
    ``CRM_DBT_PROFILES_DIR`` (where the dbt profile of this configuration is written),
    ``CRM_DUCKDB_MEMORY_LIMIT`` (the ``memory_limit`` of every DuckDB connection, dbt's
    included, e.g. ``3GiB``; default: a quarter of the machine's memory, between 1 and
    2 GiB, see :func:`default_duckdb_memory_limit`), ``CRM_DUCKDB_TEMP_DIR`` (where DuckDB
    spills what does not fit; default ``<data>/tmp/duckdb``),
    ``CRM_AS_OF_DATE`` (YYYY-MM-DD; default the latest loaded order's date),
    ``CRM_ENGINE`` (``duckdb``, the embedded default, or ``spark``), and for Spark
    ``CRM_SPARK_THRIFT_HOST`` / ``CRM_SPARK_THRIFT_PORT`` / ``CRM_SPARK_THRIFT_USER`` (the
    Thrift server dbt uses), ``CRM_SPARK_CONNECT_URL`` (Spark Connect, for Python), and
    ``CRM_SPARK_WAREHOUSE_DIR`` / ``CRM_SPARK_METASTORE_DIR`` (the tables and the Derby
    metastore of the local Spark that ``scripts/spark.sh`` starts), ``CRM_SPARK_EXCHANGE_DIR``
    (where ingestion stages each parsed batch for Spark to read: a folder both the
    ingestion host and the Spark server see; default ``<data>/spark/exchange``),
    ``CRM_DAILY_CRON`` / ``CRM_RETRAIN_CRON`` / ``CRM_TIMEZONE`` (schedules),
    ``CRM_ALERT_WEBHOOK`` / ``CRM_ALERT_COMMAND`` (where failure alerts go),
    ``CRM_LANDING_SETTLE_SECONDS`` (a landing file must be unchanged this long before
    the sensor picks it up), ``CRM_LOCK_TIMEOUT_SECONDS`` (how long a run waits for
    another run's write lock on the warehouse), ``CRM_MAX_QUARANTINE_RATE`` (share of a
    run's rows of one source that may be quarantined before the run stops; default 0.05),
    ``CRM_MIN_QUARANTINE_ROWS`` (the rate stops a run only from this many quarantined rows
    of one source on; default 20), ``CRM_MAX_QUARANTINE_RATE_<TABLE>`` (the rate for one raw
    table, e.g. ``CRM_MAX_QUARANTINE_RATE_SURVEYS_RESPONSES``), ``CRM_INGEST_BATCH_VALUES``
    and ``CRM_INGEST_BATCH_BYTES`` (an ingestion batch, read and committed as one, is at
    most this many values, lines x (the contract's columns + 4), default 12,000,000, and
    this many landing-file bytes, default 256 MiB: the batch's rows are held while they
    are judged, so smaller batches need less memory and cost more per row; a file over
    either bound is a batch of its own),
    ``CRM_POSTGRES_DSN`` (loader DSN of the optional PostgreSQL serving target; unset: no
    PostgreSQL publish), ``CRM_POSTGRES_BI_PASSWORD`` (password of its read-only ``bi_reader``),
    ``CRM_CLV_<FIELD>`` and ``CRM_CHURN_<FIELD>`` (any field of
    :class:`~crm_warehouse.analytics.clv.config.ClvConfig` or
    :class:`~crm_warehouse.analytics.churn.config.ChurnConfig`, e.g.
    ``CRM_CLV_HORIZON=26`` with ``CRM_CLV_HORIZON_UNIT=weeks``, ``CRM_CLV_MODEL=pareto_nbd``,
    ``CRM_CLV_MARGIN=0.3``, ``CRM_CHURN_HORIZON_DAYS=60``).
    The salt for hashing personal data, ``CRM_PII_SALT``, is read by dbt itself
    (``dbt_project/macros/pii.sql``), so the secret never enters dbt's artifacts.
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
        dbt_profiles_dir=_env_path(env, "CRM_DBT_PROFILES_DIR", defaults["dbt_profiles_dir"]),
        spark_warehouse_dir=_env_path(env, "CRM_SPARK_WAREHOUSE_DIR", defaults["spark_warehouse_dir"]),
        spark_metastore_dir=_env_path(env, "CRM_SPARK_METASTORE_DIR", defaults["spark_metastore_dir"]),
        spark_exchange_dir=_env_path(env, "CRM_SPARK_EXCHANGE_DIR", defaults["spark_exchange_dir"]),
        duckdb_temp_dir=_env_path(env, "CRM_DUCKDB_TEMP_DIR", defaults["duckdb_temp_dir"]),
        duckdb_memory_limit=_parse_memory_limit(env, "CRM_DUCKDB_MEMORY_LIMIT"),
        as_of_date=_parse_date("CRM_AS_OF_DATE", env.get("CRM_AS_OF_DATE")),
        engine=_parse_engine(env),
        spark_thrift_host=env.get("CRM_SPARK_THRIFT_HOST") or "127.0.0.1",
        spark_thrift_port=_parse_int(env, "CRM_SPARK_THRIFT_PORT", 10000),
        spark_thrift_user=env.get("CRM_SPARK_THRIFT_USER") or None,
        spark_connect_url=env.get("CRM_SPARK_CONNECT_URL") or "sc://127.0.0.1:15002",
        daily_cron=env.get("CRM_DAILY_CRON") or "0 6 * * *",
        retrain_cron=env.get("CRM_RETRAIN_CRON") or "0 3 * * 0",
        timezone=env.get("CRM_TIMEZONE") or "UTC",
        alert_webhook=env.get("CRM_ALERT_WEBHOOK") or None,
        alert_command=env.get("CRM_ALERT_COMMAND") or None,
        landing_settle_seconds=_parse_int(env, "CRM_LANDING_SETTLE_SECONDS", 30),
        lock_timeout_seconds=_parse_int(env, "CRM_LOCK_TIMEOUT_SECONDS", 600),
        max_quarantine_rate=_parse_rate(env, "CRM_MAX_QUARANTINE_RATE", 0.05),
        min_quarantine_rows=_parse_int(env, "CRM_MIN_QUARANTINE_ROWS", 20),
        ingest_batch_bytes=_parse_positive_int(env, "CRM_INGEST_BATCH_BYTES", DEFAULT_INGEST_BATCH_BYTES),
        ingest_batch_values=_parse_positive_int(env, "CRM_INGEST_BATCH_VALUES", DEFAULT_INGEST_BATCH_VALUES),
        max_quarantine_rate_per_source=_parse_source_rates(env, "CRM_MAX_QUARANTINE_RATE_"),
        postgres_dsn=env.get("CRM_POSTGRES_DSN") or None,
        postgres_bi_password=env.get("CRM_POSTGRES_BI_PASSWORD") or None,
        clv=_dataclass_from_env(ClvConfig, env, "CRM_CLV_"),
        churn=_dataclass_from_env(ChurnConfig, env, "CRM_CHURN_"),
    )


def _dataclass_from_env(kind: type, environ: dict[str, str], prefix: str) -> typing.Any:
    """``kind()`` with each field ``f`` taken from ``<prefix><F>`` when set (typed as the field's default)."""
    fields = dataclasses.fields(kind)
    known = {prefix + item.name.upper() for item in fields}
    unknown = sorted(name for name in environ if name.startswith(prefix) and name not in known)
    if unknown:
        # A misspelt or renamed setting must not be ignored quietly.
        raise ValueError(f"{', '.join(unknown)}: not a setting; the {prefix}* settings are {', '.join(sorted(known))}")
    values: dict[str, typing.Any] = {}
    for item in fields:
        name = prefix + item.name.upper()
        text = environ.get(name)
        if not text:
            continue
        default = item.default
        try:
            values[item.name] = type(default)(text) if not isinstance(default, bool) else text.lower() == "true"
        except ValueError as exc:
            raise ValueError(f"{name}={text!r} is not a {type(default).__name__}") from exc
    try:
        return kind(**values)
    except ValueError as exc:
        raise ValueError(f"{prefix}*: {exc}") from exc


def _parse_engine(environ: dict[str, str]) -> str:
    engine = (environ.get("CRM_ENGINE") or "duckdb").lower()
    if engine not in ENGINES:
        raise ValueError(f"CRM_ENGINE={environ['CRM_ENGINE']!r} is not an engine: set one of {', '.join(ENGINES)}")
    return engine


_MEMORY_LIMIT = re.compile(r"^\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)
GIB = 1024**3


def machine_memory_bytes() -> int:
    """Physical memory, or the container's cgroup limit when that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="ascii").strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def default_duckdb_memory_limit(memory_bytes: int) -> str:
    """A quarter of ``memory_bytes``, between 1 and 2 GiB.

    One DuckDB instance works at a time (dbt's, or a step's), beside a Dagster process
    of about 0.7 GiB; DuckDB spills to ``temp_directory`` beyond its limit, so a larger
    limit buys little speed (docs/performance.md) and a bigger one would break the 4 GiB
    budget of the whole job on a small machine.
    """
    mib = min(max(memory_bytes // 4, GIB), 2 * GIB) // 1024**2
    return f"{mib}MiB"


def _parse_memory_limit(environ: dict[str, str], name: str) -> str:
    value = environ.get(name)
    if not value:
        return default_duckdb_memory_limit(machine_memory_bytes())
    if not _MEMORY_LIMIT.match(value):
        raise ValueError(f"{name}={value!r} is not an amount of memory: set e.g. {name}=3GiB or {name}=1500MB")
    return value.strip()


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


def _parse_positive_int(environ: dict[str, str], name: str, default: int) -> int:
    value = _parse_int(environ, name, default)
    if value <= 0:
        raise ValueError(f"{name}={value} must be more than 0: set e.g. {name}={default}")
    return value


def _parse_source_rates(environ: dict[str, str], prefix: str) -> dict[str, float]:
    """Per-source rates from ``<prefix><TABLE>`` variables (e.g. ``CRM_MAX_QUARANTINE_RATE_SURVEYS_RESPONSES``)."""
    from crm_warehouse.contracts import CONTRACTS  # no dependencies of its own

    tables = {c.table for c in CONTRACTS}
    rates: dict[str, float] = {}
    for name in sorted(environ):
        if not name.startswith(prefix) or not environ[name]:
            continue
        table = name.removeprefix(prefix).lower()
        if table not in tables:
            raise ValueError(f"{name}: no raw table {table!r}; known tables: {', '.join(sorted(tables))}")
        rates[table] = _parse_rate(environ, name, 0.0)
    return rates


def main(argv: list[str] | None = None) -> int:
    """Print one resolved setting: ``python -m crm_warehouse.settings landing_dir``."""
    args = sys.argv[1:] if argv is None else argv
    names = [f.name for f in dataclasses.fields(Settings)]
    if len(args) != 1 or args[0] not in names:
        print(f"usage: python -m crm_warehouse.settings NAME   (NAME: {', '.join(names)})", file=sys.stderr)
        return 2
    print(getattr(load_settings(), args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
