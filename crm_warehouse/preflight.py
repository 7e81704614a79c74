"""Checks of the configuration that say, in words, what is wrong and how to fix it.

Each ``*_problems`` function returns a list of messages (empty when all is well), so
every problem is reported at once instead of the first one as a stack trace deep in
DuckDB or dbt. :func:`check_configuration` raises one :class:`ConfigurationError`
listing them all; ``python -m crm_warehouse.preflight`` prints them.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import zoneinfo
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import duckdb
import yaml

from crm_warehouse.contracts import CONTRACTS
from crm_warehouse.settings import DBT_PROJECT_DIR, PROJECT_ROOT, Settings, load_settings
from crm_warehouse.warehouse.duckdb_connection import connect

#: The only folder ``make run`` ever simulates the demo company into.
DEMO_LANDING_DIR = PROJECT_ROOT / "data" / "landing"

CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_MONTHS = {m: i for i, m in enumerate(("jan feb mar apr may jun jul aug sep oct nov dec").split(), start=1)}
_WEEKDAYS = {d: i for i, d in enumerate(("sun mon tue wed thu fri sat").split())}
# (name, lowest, highest, names) of the five cron fields, in order.
_CRON_FIELDS: tuple[tuple[str, int, int, Mapping[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)
_CRON_ITEM = re.compile(r"^(?P<base>\*|\?|L|[^-/#]+(?:-[^-/#]+)?|[^-/#]+#[1-5])(?:/(?P<step>\d+))?$")
# Non-numeric cron items (last day, any day, n-th weekday) and the fields that take them.
_SPECIAL_FIELDS = {"?": ("day of month", "day of week"), "L": ("day of month",), "#": ("day of week",)}
# dbt's env_var('NAME') without a default: dbt fails when NAME is unset.
_REQUIRED_ENV_VAR = re.compile(r"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\)""")


class ConfigurationError(ValueError):
    """The configuration cannot work; ``problems`` holds one message per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        listed = "\n".join(f"- {p}" for p in problems)
        super().__init__(f"{len(problems)} configuration problem(s) (see docs/operations.md, Configuration):\n{listed}")


def has_landing_files(landing_dir: Path) -> bool:
    """True when ``landing_dir`` holds at least one file a source contract matches."""
    landing_dir = Path(landing_dir)
    return landing_dir.is_dir() and any(next(landing_dir.glob(c.file_glob), None) for c in CONTRACTS)


def demo_landing_needed(landing_dir: Path) -> bool:
    """Whether ``make run`` simulates the demo company: only into the project's own ``data/landing``, when empty.

    A folder the user named (``CRM_LANDING_DIR``, or ``CRM_DATA_DIR`` elsewhere) is
    never filled with invented customers: a mistyped path fails preflight instead.
    """
    landing_dir = Path(landing_dir).resolve()
    if landing_dir != DEMO_LANDING_DIR.resolve():
        return False
    return not has_landing_files(landing_dir) and not (landing_dir.exists() and not landing_dir.is_dir())


def landing_problems(landing_dir: Path) -> list[str]:
    """The landing folder must exist and hold at least one file a contract matches."""
    landing_dir = Path(landing_dir)
    if not landing_dir.exists():
        return [
            f"landing folder {landing_dir} does not exist: check CRM_LANDING_DIR (or CRM_DATA_DIR) for a typo; "
            "it must be the folder holding one sub-folder per source system (`make data` writes the demo company)"
        ]
    if not landing_dir.is_dir():
        return [f"CRM_LANDING_DIR={landing_dir} is a file, not a folder"]
    if any(next(landing_dir.glob(c.file_glob), None) for c in CONTRACTS):
        return []
    examples = ", ".join(c.file_name("YYYY-MM-DD") for c in CONTRACTS[:3])
    hint = ""
    if (landing_dir / "landing").is_dir():
        hint = f"; did you mean {landing_dir / 'landing'}?"
    elif landing_dir.name in {c.system for c in CONTRACTS}:
        hint = f"; CRM_LANDING_DIR must be the landing root ({landing_dir.parent}), not one system's folder"
    return [f"landing folder {landing_dir} has no source files (expected e.g. {examples}){hint}"]


def _database_file_problems(path: Path, what: str, variable: str, example: str) -> list[str]:
    """``path`` must name a DuckDB file in a folder this process can create and write."""
    path = Path(path)
    if path.is_dir():
        return [f"{variable}={path} is a folder; it must name the DuckDB file, e.g. {path / example}"]
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return [
            f"{what} folder {path.parent} cannot be created: {existing} is a file. "
            f"Set {variable} (or CRM_DATA_DIR) to a writable place"
        ]
    # Creating a file is the only reliable test: permission bits lie to root and on
    # read-only mounts.
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return [
            f"{what} folder {path.parent} is not writable ({exc.strerror} in {existing}). "
            f"Set {variable} (or CRM_DATA_DIR) to a writable place"
        ]
    if path.exists() and not os.access(path, os.W_OK):
        return [f"{what} file {path} is read-only: fix its permissions or set {variable}"]
    return []


def warehouse_problems(warehouse_path: Path) -> list[str]:
    """The warehouse must be a file path in a folder this process can create and write."""
    return _database_file_problems(warehouse_path, "warehouse", "CRM_WAREHOUSE_PATH", "crm.duckdb")


def serving_problems(serving_path: Path) -> list[str]:
    """The serving file is written beside itself and renamed into place: its folder must be writable.

    Checked before the run, so a bad path fails now rather than at publish, after the build.
    """
    return _database_file_problems(serving_path, "serving", "CRM_SERVING_PATH", "crm_serving.duckdb")


def as_of_problems(configured: date | None, first: date | None, latest: date | None) -> list[str]:
    """A configured as-of date must fall within the orders loaded (``first`` .. ``latest``).

    A date after the latest order would build calendars and KPIs into days with no
    data (and months an incremental model keeps); one before the first order has
    nothing to score. ``None`` bounds (nothing loaded yet) are not checked.
    """
    if configured is None or first is None or latest is None:
        return []
    fix = f"set CRM_AS_OF_DATE between {first} and {latest}, or unset it to use the latest order's date ({latest})"
    if configured > latest:
        return [f"CRM_AS_OF_DATE={configured} is after the latest order loaded or landed ({latest}): {fix}"]
    if configured < first:
        return [f"CRM_AS_OF_DATE={configured} is before the first order loaded or landed ({first}): {fix}"]
    return []


def order_date_range(settings: Settings) -> tuple[date | None, date | None]:
    """First and latest order date of the data a run would hold: the warehouse's orders and the landed files.

    Landed order files count by their export date (a run loads them before anything
    reads the as-of date). A warehouse another process holds open for writing is
    skipped: the landing folder still bounds the dates.
    """
    from crm_warehouse.contracts import ORDERS_ORDERS
    from crm_warehouse.warehouse.as_of import first_order_date, latest_order_date

    dates: list[date] = []
    landing_dir, warehouse_path = settings.landing_dir, settings.warehouse_path
    if landing_dir.is_dir():
        for path in landing_dir.glob(ORDERS_ORDERS.file_glob):
            match = re.search(r"(\d{4}-\d{2}-\d{2})", path.name)
            if match:
                try:
                    dates.append(date.fromisoformat(match.group(1)))
                except ValueError:
                    pass
    if Path(warehouse_path).is_file():
        try:
            with connect(settings, warehouse_path, read_only=True) as con:
                dates.extend(d for d in (first_order_date(con), latest_order_date(con)) if d is not None)
        except duckdb.Error:
            pass
    return (min(dates), max(dates)) if dates else (None, None)


def dbt_profile_problems(
    project_dir: Path = DBT_PROJECT_DIR,
    profiles_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """dbt needs ``profiles.yml`` with the profile ``dbt_project.yml`` names, and its env vars.

    ``profiles_dir`` defaults to ``project_dir`` (where dagster-dbt and the Makefile
    point dbt). ``environ`` (default: the process environment) must define every
    variable the profile reads with ``env_var('NAME')`` and no default.
    """
    project_dir = Path(project_dir)
    profiles_file = Path(profiles_dir or project_dir) / "profiles.yml"
    project_file = project_dir / "dbt_project.yml"
    environ = os.environ if environ is None else environ
    if not project_file.is_file():
        return [f"dbt project file {project_file} not found: is the checkout complete?"]
    profile_name = (yaml.safe_load(project_file.read_text(encoding="utf-8")) or {}).get("profile")
    if not profile_name:
        return [f"{project_file} names no `profile:`; dbt needs one (ours is crm_warehouse)"]
    if not profiles_file.is_file():
        return [
            f"dbt profiles.yml not found at {profiles_file}: dbt looks for profile {profile_name!r} "
            "there; restore dbt_project/profiles.yml from the repository"
        ]
    text = profiles_file.read_text(encoding="utf-8")
    try:
        profiles = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        return [f"{profiles_file} is not valid YAML: {exc}"]
    profile = profiles.get(profile_name) if isinstance(profiles, dict) else None
    if not isinstance(profile, dict):
        known = ", ".join(sorted(k for k in profiles if k != "config")) if isinstance(profiles, dict) else ""
        return [
            f"dbt profile {profile_name!r} (named in {project_file.name}) is not in {profiles_file}; "
            f"profiles there: {known or 'none'}"
        ]
    problems = []
    target = profile.get("target")
    outputs = profile.get("outputs") or {}
    if target not in outputs:
        problems.append(
            f"dbt profile {profile_name!r} in {profiles_file} has target {target!r} but outputs "
            f"{', '.join(map(str, outputs)) or 'none'}"
        )
    for name in dict.fromkeys(_REQUIRED_ENV_VAR.findall(text)):
        if not environ.get(name):
            problems.append(
                f"dbt profile {profile_name!r} reads environment variable {name}, which is not set: "
                f"export {name}=... (make run and make dev set it; the Dagster dbt asset sets "
                "CRM_WAREHOUSE_PATH from the configuration)"
            )
    return problems


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a five-field cron schedule Dagster accepts; None if it is."""
    text = expression.strip()
    if text.lower() in CRON_MACROS:
        return None
    fields = text.split()
    if len(fields) != 5:
        return f"has {len(fields)} fields; cron needs 5 (minute hour day-of-month month day-of-week)"
    for value, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in value.split(","):
            problem = _cron_item_problem(item, name, low, high, names)
            if problem:
                return f"{name} field {value!r}: {problem}"
    day, month = fields[2], fields[3].lower()
    if month in {"2", "feb"} and day in {"30", "31"}:
        return f"day {day} of February never comes"
    return None


def _cron_item_problem(item: str, name: str, low: int, high: int, names: Mapping[str, int]) -> str | None:
    match = _CRON_ITEM.match(item)
    if not match:
        return f"{item!r} is not a value, range, list or step"
    base, step = match["base"], match["step"]
    if step is not None and int(step) == 0:
        return "a step of 0"
    special = "#" if "#" in base else base
    if special in _SPECIAL_FIELDS:
        if name not in _SPECIAL_FIELDS[special] or step is not None:
            return f"{item!r} is not allowed in the {name} field"
        if special != "#":
            return None
        base = base.split("#")[0]
    if base == "*":
        return None
    for bound in base.split("-"):
        number = names.get(bound.lower()) if not bound.isdigit() else int(bound)
        if number is None or not low <= number <= high:
            return f"{bound!r} is outside {low}-{high}" + (" (or a name)" if names else "")
    return None


def timezone_known(name: str) -> bool:
    """True for an IANA timezone name, and for ``utc`` in any case (as Dagster allows)."""
    if name.upper() == "UTC":
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def schedule_problems(settings: Settings) -> list[str]:
    """Both schedule crons must parse and the timezone must be a known IANA name."""
    problems = []
    crons = (("CRM_DAILY_CRON", settings.daily_cron), ("CRM_RETRAIN_CRON", settings.retrain_cron))
    for variable, expression in crons:
        problem = cron_problem(expression)
        if problem:
            problems.append(f"{variable}={expression!r} is not a valid cron schedule: {problem}")
    if not timezone_known(settings.timezone):
        problems.append(
            f"CRM_TIMEZONE={settings.timezone!r} is not a known timezone; use an IANA name such as "
            "UTC, Europe/Berlin or Asia/Shanghai"
        )
    return problems


def operations_problems(settings: Settings) -> list[str]:
    """Settle time must not be negative; an alert webhook must be an http(s) URL."""
    problems = []
    if settings.landing_settle_seconds < 0:
        problems.append(f"CRM_LANDING_SETTLE_SECONDS={settings.landing_settle_seconds} must be 0 or more")
    if settings.alert_webhook and not settings.alert_webhook.lower().startswith(("http://", "https://")):
        problems.append(f"CRM_ALERT_WEBHOOK={settings.alert_webhook!r} must be an http:// or https:// URL")
    return problems


def find_problems(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    dbt_project_dir: Path = DBT_PROJECT_DIR,
) -> list[str]:
    """Every problem a pipeline run would hit, as messages.

    The dbt check assumes ``CRM_WAREHOUSE_PATH`` is ``settings.warehouse_path``, as the
    Dagster dbt asset arranges; other variables the profile reads must be in ``environ``.
    """
    environ = dict(os.environ if environ is None else environ)
    environ["CRM_WAREHOUSE_PATH"] = str(settings.warehouse_path)
    return [
        *landing_problems(settings.landing_dir),
        *warehouse_problems(settings.warehouse_path),
        *serving_problems(settings.serving_path),
        *dbt_profile_problems(dbt_project_dir, environ=environ),
        *schedule_problems(settings),
        *operations_problems(settings),
    ]


def built_as_of(settings: Settings) -> date | None:
    """The as-of date the warehouse was last built for (``int_calendar__as_of``), or None."""
    from crm_warehouse.warehouse.relations import INT_CALENDAR_AS_OF

    warehouse_path = settings.warehouse_path
    if not warehouse_path.is_file():
        return None
    try:
        with connect(settings, warehouse_path, read_only=True) as con:
            return con.execute(f"select max(as_of_date) from {INT_CALENDAR_AS_OF.sql()}").fetchone()[0]
    except duckdb.Error:
        return None


def data_problems(settings: Settings) -> list[str]:
    """Problems of the configuration against the data itself: the as-of date and the loaded orders.

    Checked before any work, so a refused date leaves the warehouse as it was.
    """
    configured = settings.as_of_date
    if configured is None:
        return []
    problems = as_of_problems(configured, *order_date_range(settings))
    built = built_as_of(settings)
    if not problems and built is not None and configured < built:
        problems.append(
            f"CRM_AS_OF_DATE={configured} is before the date this warehouse was built for ({built}); its "
            "incremental models cannot go back in time: build a past date into a separate warehouse "
            "(set CRM_WAREHOUSE_PATH to a new file), or unset CRM_AS_OF_DATE"
        )
    return problems


def check_configuration(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    dbt_project_dir: Path = DBT_PROJECT_DIR,
) -> None:
    """Raise :class:`ConfigurationError` listing every problem :func:`find_problems` finds."""
    problems = find_problems(settings, environ, dbt_project_dir)
    if problems:
        raise ConfigurationError(problems)
    problems = data_problems(settings)
    if problems:
        raise ConfigurationError(problems)


def main() -> int:
    """``python -m crm_warehouse.preflight``: print the problems of the current configuration."""
    try:
        settings = load_settings()
    except ValueError as exc:
        print(f"- {exc}")
        print("1 configuration problem(s)")
        return 1
    problems = find_problems(settings) or data_problems(settings)
    for problem in problems:
        print(f"- {problem}")
    print(f"{len(problems)} configuration problem(s)" if problems else "configuration OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
