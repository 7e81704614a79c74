"""Preflight: each common misconfiguration gets a message that says what to change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from crm_warehouse.preflight import (
    ConfigurationError,
    check_configuration,
    cron_problem,
    dbt_profile_problems,
    find_problems,
    landing_problems,
    main,
    operations_problems,
    schedule_problems,
    timezone_known,
    warehouse_problems,
)
from crm_warehouse.settings import DBT_PROJECT_DIR, load_settings

GOOD_PROFILE = """
crm_warehouse:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('CRM_WAREHOUSE_PATH') }}"
      threads: "{{ env_var('DBT_THREADS', '2') }}"
"""


@pytest.fixture
def settings(tmp_path: Path):
    settings = load_settings({}).with_data_dir(tmp_path / "data")
    customers = settings.landing_dir / "crm" / "2024-03-01.csv"
    customers.parent.mkdir(parents=True)
    customers.write_text("customer_id\n")
    return settings


def dbt_project(tmp_path: Path, profile_text: str | None = GOOD_PROFILE) -> Path:
    project = tmp_path / "dbt"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: crm\nprofile: crm_warehouse\n")
    if profile_text is not None:
        (project / "profiles.yml").write_text(profile_text)
    return project


def test_a_good_configuration_has_no_problems(settings) -> None:
    assert find_problems(settings, environ={}) == []
    check_configuration(settings, environ={})


def test_missing_landing_folder(tmp_path: Path) -> None:
    [message] = landing_problems(tmp_path / "nowhere")
    assert "landing folder" in message and "does not exist" in message
    assert "make data" in message and "CRM_LANDING_DIR" in message


def test_landing_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "landing").write_text("")
    [message] = landing_problems(tmp_path / "landing")
    assert message == f"CRM_LANDING_DIR={tmp_path / 'landing'} is a file, not a folder"


def test_empty_landing_folder(tmp_path: Path) -> None:
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "readme.txt").write_text("")
    [message] = landing_problems(tmp_path)
    assert "has no source files (expected e.g. catalog/YYYY-MM-DD.csv, crm/YYYY-MM-DD.csv" in message


def test_landing_pointing_at_the_data_folder_suggests_the_landing_folder(tmp_path: Path) -> None:
    (tmp_path / "landing" / "crm").mkdir(parents=True)
    [message] = landing_problems(tmp_path)
    assert message.endswith(f"did you mean {tmp_path / 'landing'}?")


def test_landing_pointing_at_one_system_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "orders").mkdir()
    [message] = landing_problems(tmp_path / "orders")
    assert f"must be the landing root ({tmp_path})" in message


def test_warehouse_path_that_is_a_folder(tmp_path: Path) -> None:
    [message] = warehouse_problems(tmp_path)
    assert "is a folder; it must name the DuckDB file" in message and str(tmp_path / "crm.duckdb") in message


def test_warehouse_folder_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    [message] = warehouse_problems(tmp_path / "data" / "warehouse" / "crm.duckdb")
    assert f"cannot be created: {tmp_path / 'data'} is a file" in message
    assert "CRM_WAREHOUSE_PATH" in message


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc, where no one can create files")
def test_unwritable_warehouse_folder() -> None:
    # /proc refuses new files even to root, unlike a chmod-ed folder.
    [message] = warehouse_problems(Path("/proc/crm_warehouse/crm.duckdb"))
    assert "warehouse folder /proc/crm_warehouse is not writable" in message
    assert "Set CRM_WAREHOUSE_PATH" in message


def test_new_warehouse_in_a_writable_place_is_fine(tmp_path: Path) -> None:
    assert warehouse_problems(tmp_path / "a" / "b" / "crm.duckdb") == []


def test_missing_profiles_yml(tmp_path: Path) -> None:
    [message] = dbt_profile_problems(dbt_project(tmp_path, profile_text=None), environ={})
    assert "dbt profiles.yml not found at" in message and "'crm_warehouse'" in message


def test_profile_absent_from_profiles_yml(tmp_path: Path) -> None:
    project = dbt_project(tmp_path, profile_text="other:\n  target: dev\n  outputs: {dev: {type: duckdb}}\n")
    [message] = dbt_profile_problems(project, environ={})
    assert "dbt profile 'crm_warehouse' (named in dbt_project.yml) is not in" in message
    assert "profiles there: other" in message


def test_profile_target_without_output(tmp_path: Path) -> None:
    project = dbt_project(tmp_path, profile_text="crm_warehouse:\n  target: prod\n  outputs: {dev: {type: duckdb}}\n")
    [message] = dbt_profile_problems(project, environ={})
    assert "has target 'prod' but outputs dev" in message


def test_profiles_yml_that_is_not_yaml(tmp_path: Path) -> None:
    [message] = dbt_profile_problems(dbt_project(tmp_path, profile_text="crm_warehouse: [unclosed\n"), environ={})
    assert "is not valid YAML" in message


def test_project_without_profile_name(tmp_path: Path) -> None:
    project = dbt_project(tmp_path)
    (project / "dbt_project.yml").write_text("name: crm\n")
    assert "names no `profile:`" in dbt_profile_problems(project, environ={})[0]


def test_unset_warehouse_env_var_for_dbt(tmp_path: Path) -> None:
    project = dbt_project(tmp_path)
    [message] = dbt_profile_problems(project, environ={})
    assert "reads environment variable CRM_WAREHOUSE_PATH, which is not set" in message
    # DBT_THREADS has a default in the profile, so it is not required
    assert "DBT_THREADS" not in message
    assert dbt_profile_problems(project, environ={"CRM_WAREHOUSE_PATH": "/x.duckdb"}) == []


def test_the_real_dbt_project_needs_only_the_warehouse_path() -> None:
    assert [m.split(",")[0] for m in dbt_profile_problems(DBT_PROJECT_DIR, environ={})] == [
        "dbt profile 'crm_warehouse' reads environment variable CRM_WAREHOUSE_PATH"
    ]
    assert dbt_profile_problems(DBT_PROJECT_DIR, environ={"CRM_WAREHOUSE_PATH": "/tmp/x.duckdb"}) == []


CRONS = [
    "0 6 * * *",
    "@daily",
    "@weekly",
    "*/15 * * * *",
    "5/15 * * * *",
    "1-5/2 * * * *",
    "0,30 6-8 * * 1,3",
    "0 6 * * mon-fri",
    "0 6 * * MON",
    "0 6 1 jan *",
    "0 6 * * fri-mon",
    "0 6 L * *",
    "0 6 * * 5#3",
    "0 6 ? * *",
    "0 6 * * 7",
    "0 24 * * *",
    "60 * * * *",
    "0 6 * * 8",
    "0 6 0 * *",
    "0 6 * 13 *",
    "0 6 * *",
    "0 6 * * * *",
    "a * * * *",
    "0 6 30 2 *",
    "*/0 * * * *",
    "0 6 * * 5L",
    "0 6 LW * *",
    "0 6 * * 1#6",
    "0 6 L * 1",
    "",
]


@pytest.mark.parametrize("expression", CRONS)
def test_cron_check_agrees_with_dagster(expression: str) -> None:
    try:
        dg.ScheduleDefinition(name="probe", cron_schedule=expression, job_name="probe")
        dagster_accepts = True
    except dg.DagsterInvalidDefinitionError:
        dagster_accepts = False
    assert (cron_problem(expression) is None) is dagster_accepts


@pytest.mark.parametrize(
    "name", ["UTC", "utc", "Asia/Shanghai", "US/Eastern", "Etc/GMT-8", "+08:00", "asia/shanghai", "Mars/Olympus"]
)
def test_timezone_check_agrees_with_dagster(name: str) -> None:
    try:
        dg.ScheduleDefinition(name="probe", cron_schedule="0 6 * * *", job_name="probe", execution_timezone=name)
        dagster_accepts = True
    except dg.DagsterInvalidDefinitionError:
        dagster_accepts = False
    assert timezone_known(name) is dagster_accepts


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 6 * *", "has 4 fields; cron needs 5"),
        ("0 25 * * *", "hour field '25': '25' is outside 0-23"),
        ("0 6 * * 8", "'8' is outside 0-7 (or a name)"),
        ("0 6 30 2 *", "day 30 of February never comes"),
    ],
)
def test_cron_problem_says_which_field(expression: str, reason: str) -> None:
    assert reason in cron_problem(expression)


def test_bad_schedule_settings_name_the_variables() -> None:
    settings = load_settings(
        {"CRM_DAILY_CRON": "6 am", "CRM_RETRAIN_CRON": "0 3 * * sunday", "CRM_TIMEZONE": "Europe/Atlantis"}
    )
    daily, retrain, zone = schedule_problems(settings)
    assert daily.startswith("CRM_DAILY_CRON='6 am' is not a valid cron schedule: has 2 fields")
    assert retrain.startswith("CRM_RETRAIN_CRON='0 3 * * sunday' is not a valid cron schedule: day of week field")
    assert zone.startswith("CRM_TIMEZONE='Europe/Atlantis' is not a known timezone")


def test_operations_settings(settings) -> None:
    bad = replace(settings, landing_settle_seconds=-5, alert_webhook="hooks.example.com/x")
    assert operations_problems(bad) == [
        "CRM_LANDING_SETTLE_SECONDS=-5 must be 0 or more",
        "CRM_ALERT_WEBHOOK='hooks.example.com/x' must be an http:// or https:// URL",
    ]


def test_check_configuration_lists_every_problem_at_once(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    settings = replace(
        load_settings({}).with_data_dir(tmp_path / "data"),
        warehouse_path=tmp_path / "file" / "crm.duckdb",
        timezone="Nowhere/Town",
    )
    with pytest.raises(ConfigurationError) as raised:
        check_configuration(settings, environ={})
    assert len(raised.value.problems) == 3
    text = str(raised.value)
    assert text.startswith("3 configuration problem(s)")
    assert "landing folder" in text and "cannot be created" in text and "CRM_TIMEZONE" in text


def test_preflight_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path))
    for name in [
        "CRM_LANDING_DIR",
        "CRM_WAREHOUSE_PATH",
        "CRM_TIMEZONE",
        "CRM_DAILY_CRON",
        "CRM_RETRAIN_CRON",
        "CRM_ALERT_WEBHOOK",
        "CRM_LANDING_SETTLE_SECONDS",
    ]:
        monkeypatch.delenv(name, raising=False)
    assert main() == 1
    assert "1 configuration problem(s)" in capsys.readouterr().out
    (tmp_path / "landing" / "crm").mkdir(parents=True)
    (tmp_path / "landing" / "crm" / "2024-03-01.csv").write_text("customer_id\n")
    assert main() == 0
    assert capsys.readouterr().out.strip() == "configuration OK"
