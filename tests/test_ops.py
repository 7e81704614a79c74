"""Schedules and sensors evaluated with Dagster's test utilities, on toy jobs and a tmp landing folder.

The lead's ``daily_pipeline`` and ``retrain_models`` jobs are stood in for by asset jobs
on toy assets; the wiring under test is the same.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from ops_webhook import WebhookServer

from crm_warehouse.landing_watch import SUCCESS_MARKER
from crm_warehouse.preflight import ConfigurationError
from crm_warehouse.settings import Settings, load_settings
from orchestration.ops import build_ops_definitions
from orchestration.ops.schedules import DAILY_SCHEDULE, RETRAIN_SCHEDULE, SCHEDULED_FOR_TAG
from orchestration.ops.sensors import (
    FAILURE_SENSOR,
    LANDING_FILES_TAG,
    LANDING_SENSOR,
    LANDING_SYSTEMS_TAG,
    build_landing_sensor,
    failed_run_alert,
)

SETTLE = 30
T0 = 1_700_000_000.0


@dg.asset(key=["raw", "crm_customers"])
def raw_customers() -> None:
    """Toy ingestion asset."""


@dg.asset(key=["raw", "orders_orders"], deps=[raw_customers])
def raw_orders() -> None:
    """Toy ingestion asset that fails like a vanished landing folder."""
    raise dg.Failure("landing folder /data/landing does not exist")


@dg.asset(key=["marts", "customer_360"], deps=[raw_orders])
def customer_360() -> None:
    """Toy mart downstream of the failure."""


@dg.asset(key=["marts", "kpi_daily"], deps=[raw_customers])
def kpi_daily() -> None:
    """Toy mart with a failing blocking check."""


@dg.asset_check(asset=kpi_daily, blocking=True)
def kpi_not_negative() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="negative revenue on 2024-03-01")


@dg.asset(key=["analytics", "churn_model"], deps=[raw_customers])
def churn_model() -> None:
    """Toy model fit."""
    raise RuntimeError("disk full while saving the model")


daily_pipeline = dg.define_asset_job(
    "daily_pipeline", selection=dg.AssetSelection.all() - dg.AssetSelection.assets(churn_model)
)
retrain_models = dg.define_asset_job("retrain_models", selection=dg.AssetSelection.assets(churn_model))


class Clock:
    """A clock the test moves by hand, so no test sleeps."""

    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = replace(load_settings({}).with_data_dir(tmp_path / "data"), landing_settle_seconds=SETTLE)
    settings.landing_dir.mkdir(parents=True)
    return settings


def land(settings: Settings, relative: str, text: str, mtime: float) -> Path:
    path = settings.landing_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


class LandingHarness:
    """Evaluates the landing sensor tick after tick, carrying the cursor like the daemon does."""

    def __init__(self, settings: Settings):
        self.clock = Clock()
        self.sensor = build_landing_sensor(daily_pipeline, settings, clock=self.clock)
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor: str | None = None

    def tick(self, after_seconds: float = 0) -> dg.SensorExecutionData:
        self.clock.now += after_seconds
        context = dg.build_sensor_context(cursor=self.cursor, instance=self.instance)
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor if data.cursor is not None else self.cursor
        return data


def test_landing_sensor_without_landing_folder_says_what_to_do(settings: Settings) -> None:
    harness = LandingHarness(replace(settings, landing_dir=settings.data_dir / "missing"))
    data = harness.tick()
    assert data.run_requests == []
    assert "does not exist" in data.skip_message and "make data" in data.skip_message


def test_landing_sensor_from_first_file_to_one_run(settings: Settings) -> None:
    harness = LandingHarness(settings)
    assert harness.tick().skip_message == "no new landing files"

    land(settings, "crm/2024-03-01.csv", "customer_id\nC1\n", T0 - 5)
    waiting = harness.tick()
    assert waiting.run_requests == []
    assert waiting.skip_message.startswith("1 new file(s) still being written")

    assert harness.tick(after_seconds=SETTLE - 1).run_requests == []

    settled = harness.tick(after_seconds=1)
    [request] = settled.run_requests
    assert request.run_key.startswith("landing-")
    assert request.tags[LANDING_FILES_TAG] == "1" and request.tags[LANDING_SYSTEMS_TAG] == "crm"
    assert harness.sensor.job_name == "daily_pipeline"

    again = harness.tick(after_seconds=SETTLE)
    assert again.run_requests == [] and again.skip_message == "no new landing files"


def test_landing_sensor_waits_for_a_file_still_growing(settings: Settings) -> None:
    harness = LandingHarness(settings)
    path = land(settings, "crm/2024-03-01.csv", "customer_id\n", T0)
    harness.tick()
    land(settings, "crm/2024-03-01.csv", "customer_id\nC1\n", T0 + SETTLE)  # the writer appended
    assert harness.tick(after_seconds=SETTLE).run_requests == []
    assert len(harness.tick(after_seconds=SETTLE).run_requests) == 1
    assert path.stat().st_size == len("customer_id\nC1\n")


def test_landing_sensor_redelivered_file_triggers_a_new_run(settings: Settings) -> None:
    harness = LandingHarness(settings)
    land(settings, "crm/2024-03-01.csv", "customer_id\nC1\n", T0 - 100)
    harness.tick()
    [first] = harness.tick(after_seconds=SETTLE).run_requests

    land(settings, "crm/2024-03-01.csv", "customer_id\nC1\nC2\n", T0 + 3600)  # corrected export
    assert harness.tick(after_seconds=5).run_requests == []
    [second] = harness.tick(after_seconds=SETTLE).run_requests
    assert second.run_key != first.run_key


def test_landing_sensor_success_marker_releases_files_at_once(settings: Settings) -> None:
    harness = LandingHarness(settings)
    land(settings, "orders/2024-03-01_orders.csv", "order_id\nO1\n", T0 - 10)
    land(settings, "orders/2024-03-01_order_lines.csv", "order_id\nO1\n", T0 - 10)
    land(settings, "orders/2024-03-01_orders.csv.part", "partial", T0)  # ignored: a temporary name
    land(settings, f"orders/{SUCCESS_MARKER}", "", T0 - 5)

    [request] = harness.tick().run_requests
    assert request.tags[LANDING_FILES_TAG] == "2" and request.tags[LANDING_SYSTEMS_TAG] == "orders"


def test_landing_sensor_holds_a_partial_delivery(settings: Settings) -> None:
    harness = LandingHarness(settings)
    land(settings, "orders/2024-03-01_orders.csv", "order_id\nO1\n", T0 - 10)
    harness.tick()
    land(settings, "orders/2024-03-01_order_lines.csv", "order_id\nO1\n", T0 + SETTLE)
    held = harness.tick(after_seconds=SETTLE)
    assert held.run_requests == [] and "1 ready file(s) wait for them" in held.skip_message
    [request] = harness.tick(after_seconds=SETTLE).run_requests
    assert request.tags[LANDING_FILES_TAG] == "2"


def test_landing_sensor_refuses_a_foreign_cursor(settings: Settings) -> None:
    harness = LandingHarness(settings)
    land(settings, "crm/2024-03-01.csv", "customer_id\n", T0)
    harness.cursor = "42"
    with pytest.raises(ValueError, match="not a landing-sensor cursor"):
        harness.tick()


def test_schedules_take_cron_and_timezone_from_the_environment(settings: Settings) -> None:
    env = {"CRM_DAILY_CRON": "30 5 * * 1-5", "CRM_RETRAIN_CRON": "0 2 * * sat", "CRM_TIMEZONE": "Asia/Shanghai"}
    schedules, _ = build_ops_definitions(daily_pipeline, retrain_models, load_settings(env))
    daily, retrain = schedules
    assert (daily.name, daily.job_name, daily.cron_schedule, daily.execution_timezone) == (
        DAILY_SCHEDULE,
        "daily_pipeline",
        "30 5 * * 1-5",
        "Asia/Shanghai",
    )
    assert (retrain.name, retrain.job_name, retrain.cron_schedule, retrain.execution_timezone) == (
        RETRAIN_SCHEDULE,
        "retrain_models",
        "0 2 * * sat",
        "Asia/Shanghai",
    )
    assert daily.default_status == dg.DefaultScheduleStatus.STOPPED


def test_default_schedules_are_daily_at_six_and_sunday_at_three(settings: Settings) -> None:
    daily, retrain = build_ops_definitions(daily_pipeline, retrain_models, settings).schedules
    assert (daily.cron_schedule, retrain.cron_schedule, daily.execution_timezone) == ("0 6 * * *", "0 3 * * 0", "UTC")


@pytest.mark.parametrize("schedule_index", [0, 1])
def test_schedule_tick_requests_one_run_tagged_with_its_time(settings: Settings, schedule_index: int) -> None:
    shanghai = replace(settings, timezone="Asia/Shanghai")
    schedule = build_ops_definitions(daily_pipeline, retrain_models, shanghai).schedules[schedule_index]
    tick = datetime(2026, 3, 1, 6, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    context = dg.build_schedule_context(instance=dg.DagsterInstance.ephemeral(), scheduled_execution_time=tick)
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.tags[SCHEDULED_FOR_TAG] == "2026-03-01T06:00:00+08:00"


def test_schedules_accept_job_names(settings: Settings) -> None:
    daily, retrain = build_ops_definitions("daily_pipeline", "retrain_models", settings).schedules
    assert (daily.job_name, retrain.job_name) == ("daily_pipeline", "retrain_models")


def test_bad_schedule_configuration_fails_with_the_variable_named(settings: Settings) -> None:
    broken = replace(settings, daily_cron="99 * * * *", timezone="Mars/Olympus")
    with pytest.raises(ConfigurationError) as raised:
        build_ops_definitions(daily_pipeline, retrain_models, broken)
    cron, zone = raised.value.problems
    assert cron.startswith("CRM_DAILY_CRON='99 * * * *' is not a valid cron schedule: minute field")
    assert zone.startswith("CRM_TIMEZONE='Mars/Olympus' is not a known timezone")


def test_ops_definitions_load_with_the_jobs(settings: Settings) -> None:
    schedules, sensors = build_ops_definitions(daily_pipeline, retrain_models, settings)
    defs = dg.Definitions(
        assets=[raw_customers, raw_orders, customer_360, kpi_daily, churn_model],
        asset_checks=[kpi_not_negative],
        jobs=[daily_pipeline, retrain_models],
        schedules=schedules,
        sensors=sensors,
    )
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_sensor_def(LANDING_SENSOR).job_name == "daily_pipeline"
    assert defs.resolve_sensor_def(FAILURE_SENSOR).default_status == dg.DefaultSensorStatus.RUNNING
    assert {s.name for s in schedules} == {DAILY_SCHEDULE, RETRAIN_SCHEDULE}


def run_failed(job_name: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(
        assets=[raw_customers, raw_orders, customer_360, kpi_daily, churn_model],
        asset_checks=[kpi_not_negative],
        jobs=[daily_pipeline, retrain_models],
    )
    result = defs.resolve_job_def(job_name).execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return result


def test_failure_sensor_alert_names_assets_checks_and_run(settings: Settings, tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = run_failed("daily_pipeline", instance)
    command_output = tmp_path / "alert.json"
    with WebhookServer() as hook:
        alerting = replace(settings, alert_webhook=hook.url, alert_command=f"cat > '{command_output}'")
        failure_sensor = build_ops_definitions(daily_pipeline, retrain_models, alerting).sensors[1]
        context = dg.build_run_status_sensor_context(
            sensor_name=FAILURE_SENSOR,
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        )
        failure_sensor(context)

    [alert] = hook.bodies
    assert alert["run_id"] == result.run_id and alert["job_name"] == "daily_pipeline"
    assert alert["failed_assets"] == ["raw/orders_orders"]
    assert alert["failed_checks"] == ["marts/kpi_daily:kpi_not_negative"]
    assert alert["not_run_assets"] == ["marts/customer_360"]
    assert "raw__orders_orders: landing folder /data/landing does not exist" in alert["error"]
    assert alert["link"].endswith(f"/runs/{result.run_id}")
    assert result.run_id in alert["text"] and "raw/orders_orders" in alert["text"]
    assert json.loads(command_output.read_text()) == alert


def test_alert_for_an_unexpected_exception_shows_the_exception(settings: Settings) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = run_failed("retrain_models", instance)
    alert = failed_run_alert(instance, result.dagster_run)
    assert alert.failed_assets == ("analytics/churn_model",) and alert.failed_steps == ("analytics__churn_model",)
    assert alert.error == "analytics__churn_model: RuntimeError: disk full while saving the model"
    assert alert.job_name == "retrain_models" and alert.not_run_assets == ()
