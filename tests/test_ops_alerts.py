"""Alerts: the summary line, a real webhook on 127.0.0.1 and a real shell command."""

from __future__ import annotations

import json
import logging
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ops_webhook import WebhookServer

from crm_warehouse.alerts import Alert, post_webhook, run_command, send_alert

ALERT = Alert(
    run_id="3f2a9c1e-run",
    job_name="daily_pipeline",
    error="raw_crm_customers: landing folder /data/landing does not exist",
    occurred_at=datetime(2026, 3, 2, 6, 5, tzinfo=UTC),
    failed_steps=("raw_crm_customers",),
    failed_assets=("raw/crm_customers",),
    failed_checks=("marts/customer_360:unique_customer_id",),
    not_run_assets=("marts/customer_360", "serving/crm_serving"),
    link="http://127.0.0.1:3000/runs/3f2a9c1e-run",
)


def test_summary_names_run_job_assets_checks_and_error() -> None:
    summary = ALERT.summary()
    assert "\n" not in summary
    for part in [
        "run 3f2a9c1e-run",
        "job daily_pipeline",
        "failed assets: raw/crm_customers",
        "failed checks: marts/customer_360:unique_customer_id",
        "2 downstream assets not run",
        "error: raw_crm_customers: landing folder /data/landing does not exist",
        "see http://127.0.0.1:3000/runs/3f2a9c1e-run",
    ]:
        assert part in summary


def test_summary_shortens_long_lists_and_multi_line_errors() -> None:
    alert = Alert(
        run_id="r",
        job_name="j",
        error="first line\n  second line",
        occurred_at=ALERT.occurred_at,
        failed_steps=("crm_dbt_models",),
        failed_assets=tuple(f"marts/m{i}" for i in range(8)),
    )
    summary = alert.summary()
    assert "marts/m4 and 3 more" in summary and "marts/m5" not in summary
    assert "error: first line second line" in summary
    assert "failed steps" not in summary  # the assets already say where


def test_summary_falls_back_to_steps_when_no_asset_is_known() -> None:
    alert = Alert(run_id="r", job_name="j", error="boom", occurred_at=ALERT.occurred_at, failed_steps=("s1",))
    assert "failed steps: s1" in alert.summary()


def test_payload_is_json_with_every_field() -> None:
    payload = json.loads(json.dumps(ALERT.as_dict()))
    assert payload["run_id"] == "3f2a9c1e-run"
    assert payload["failed_assets"] == ["raw/crm_customers"]
    assert payload["occurred_at"] == "2026-03-02T06:05:00+00:00"
    assert payload["text"] == ALERT.summary()


def test_webhook_receives_the_alert_json() -> None:
    with WebhookServer() as hook:
        delivery = post_webhook(hook.url, ALERT.as_dict(), timeout_seconds=5)
    assert delivery.ok and "HTTP 200" in delivery.detail
    assert hook.bodies == [ALERT.as_dict()]


def test_webhook_error_status_is_reported_not_raised() -> None:
    with WebhookServer(status=500) as hook:
        delivery = post_webhook(hook.url, ALERT.as_dict(), timeout_seconds=5)
    assert not delivery.ok and "HTTP 500" in delivery.detail


def test_unreachable_webhook_is_reported_not_raised() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    delivery = post_webhook(f"http://127.0.0.1:{port}/alerts", ALERT.as_dict(), timeout_seconds=2)
    assert not delivery.ok and "cannot reach" in delivery.detail


def test_slow_webhook_times_out() -> None:
    with WebhookServer(hold_seconds=5) as hook:
        started = time.monotonic()
        delivery = post_webhook(hook.url, ALERT.as_dict(), timeout_seconds=0.3)
        elapsed = time.monotonic() - started
    assert not delivery.ok and elapsed < 2


def test_webhook_must_be_http() -> None:
    delivery = post_webhook("file:///etc/passwd", ALERT.as_dict(), timeout_seconds=1)
    assert not delivery.ok and "not an http(s) URL" in delivery.detail


def test_command_gets_the_alert_json_on_stdin(tmp_path: Path) -> None:
    target = tmp_path / "alerts.jsonl"
    delivery = run_command(f"cat >> '{target}'", ALERT.as_dict(), timeout_seconds=5)
    assert delivery.ok
    assert json.loads(target.read_text()) == ALERT.as_dict()


def test_failing_command_is_reported_with_its_stderr() -> None:
    delivery = run_command("echo 'no mail relay' >&2; exit 3", ALERT.as_dict(), timeout_seconds=5)
    assert not delivery.ok and "exited with 3: no mail relay" in delivery.detail


def test_hanging_command_is_killed_at_the_timeout() -> None:
    started = time.monotonic()
    delivery = run_command("sleep 30; echo never", ALERT.as_dict(), timeout_seconds=0.3)
    assert not delivery.ok and "killed" in delivery.detail
    assert time.monotonic() - started < 5


def test_send_alert_logs_one_line_and_delivers_everywhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "alert.json"
    with caplog.at_level(logging.INFO, logger="crm_warehouse.alerts"), WebhookServer() as hook:
        deliveries = send_alert(ALERT, webhook=hook.url, command=f"cat > '{target}'", timeout_seconds=5)
    assert [(d.target, d.ok) for d in deliveries] == [("log", True), ("webhook", True), ("command", True)]
    assert len(hook.bodies) == 1 and json.loads(target.read_text())["run_id"] == ALERT.run_id
    alert_lines = [r for r in caplog.records if r.message.startswith("ALERT ")]
    assert len(alert_lines) == 1 and alert_lines[0].levelno == logging.ERROR
    assert alert_lines[0].message == f"ALERT {ALERT.summary()}"


def test_send_alert_survives_broken_targets(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="crm_warehouse.alerts"):
        deliveries = send_alert(ALERT, webhook="ftp://nowhere", command="exit 1", timeout_seconds=2)
    assert [d.ok for d in deliveries] == [True, False, False]
    assert sum("NOT delivered" in r.message for r in caplog.records) == 2
