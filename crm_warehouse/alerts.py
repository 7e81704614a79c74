"""Failure alerts: one log line, plus an optional webhook and an optional command.

An alert names the run, the job, what failed (steps, assets, blocking checks) and the
error, so the person paged knows where to look before opening the UI. Delivery never
raises: a broken webhook must not hide the failure it reports, so every delivery
problem is logged and returned.

- Webhook (``CRM_ALERT_WEBHOOK``): HTTP POST of the alert as JSON. The payload has a
  ``text`` field with the one-line summary, which chat incoming-webhooks display.
- Command (``CRM_ALERT_COMMAND``): run by ``/bin/sh`` with the alert JSON on stdin,
  e.g. ``cat >> /var/log/crm_alerts.jsonl`` or ``mail -s 'CRM run failed' ops@example.com``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

log = logging.getLogger(__name__)

ALERT_TIMEOUT_SECONDS = 10.0
# Long errors (stack traces, dbt logs) are cut in the payload and the summary line.
MAX_ERROR_CHARS = 2000
SUMMARY_ITEMS = 5
DETAIL_CHARS = 300


@dataclass(frozen=True)
class Alert:
    """A failed run, as told to people.

    ``failed_assets`` are assets whose step failed before materialising them;
    ``failed_checks`` are checks that did not pass, as ``asset:check``;
    ``not_run_assets`` were planned downstream and skipped because of the failure.
    """

    run_id: str
    job_name: str
    error: str
    occurred_at: datetime
    failed_steps: tuple[str, ...] = ()
    failed_assets: tuple[str, ...] = ()
    failed_checks: tuple[str, ...] = ()
    not_run_assets: tuple[str, ...] = ()
    link: str = ""

    def summary(self) -> str:
        """One line: what failed, in which run, the error, where to look."""
        parts = [f"CRM warehouse run {self.run_id} of job {self.job_name} FAILED"]
        if self.failed_assets:
            parts.append(f"failed assets: {_first(self.failed_assets)}")
        if self.failed_checks:
            parts.append(f"failed checks: {_first(self.failed_checks)}")
        if self.failed_steps and not self.failed_assets:
            parts.append(f"failed steps: {_first(self.failed_steps)}")
        if self.not_run_assets:
            parts.append(f"{len(self.not_run_assets)} downstream assets not run")
        parts.append(f"error: {_one_line(self.error)[:DETAIL_CHARS]}")
        if self.link:
            parts.append(f"see {self.link}")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, object]:
        """The JSON payload sent to the webhook and the command."""
        return {
            "text": self.summary(),
            "run_id": self.run_id,
            "job_name": self.job_name,
            "failed_steps": list(self.failed_steps),
            "failed_assets": list(self.failed_assets),
            "failed_checks": list(self.failed_checks),
            "not_run_assets": list(self.not_run_assets),
            "error": self.error[:MAX_ERROR_CHARS],
            "occurred_at": self.occurred_at.isoformat(),
            "link": self.link,
        }


def _first(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SUMMARY_ITEMS])
    more = len(items) - SUMMARY_ITEMS
    return shown + (f" and {more} more" if more > 0 else "")


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Delivery:
    """Outcome of delivering an alert to one target (``log``, ``webhook`` or ``command``)."""

    target: str
    ok: bool
    detail: str


def post_webhook(url: str, payload: dict[str, object], timeout_seconds: float) -> Delivery:
    """POST ``payload`` as JSON to ``url`` (http or https only)."""
    if not url.lower().startswith(("http://", "https://")):
        return Delivery("webhook", False, f"CRM_ALERT_WEBHOOK={url!r} is not an http(s) URL")
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            return Delivery("webhook", True, f"{url} answered HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        return Delivery("webhook", False, f"{url} answered HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Delivery("webhook", False, f"cannot reach {url}: {reason}")


def run_command(command: str, payload: dict[str, object], timeout_seconds: float) -> Delivery:
    """Run ``command`` with ``/bin/sh``, the payload as JSON on stdin.

    The command runs in its own process group, so on timeout the shell and
    everything it started are killed, not only the shell.
    """
    with subprocess.Popen(
        command,
        shell=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            _, stderr = process.communicate(json.dumps(payload), timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return Delivery("command", False, f"{command!r} did not finish within {timeout_seconds:g} s; killed")
    if process.returncode != 0:
        return Delivery(
            "command", False, f"{command!r} exited with {process.returncode}: {_one_line(stderr)[:DETAIL_CHARS]}"
        )
    return Delivery("command", True, f"{command!r} exited with 0")


def send_alert(
    alert: Alert,
    webhook: str | None = None,
    command: str | None = None,
    timeout_seconds: float = ALERT_TIMEOUT_SECONDS,
    logger: logging.Logger | None = None,
) -> list[Delivery]:
    """Log ``alert`` as one error line, then deliver it to the webhook and the command if set.

    Never raises for a delivery problem: each is logged as an error and returned.
    """
    logger = logger or log
    summary = alert.summary()
    logger.error(f"ALERT {summary}")
    deliveries = [Delivery("log", True, summary)]
    payload = alert.as_dict()
    if webhook:
        deliveries.append(post_webhook(webhook, payload, timeout_seconds))
    if command:
        deliveries.append(run_command(command, payload, timeout_seconds))
    for delivery in deliveries[1:]:
        if delivery.ok:
            logger.info(f"alert for run {alert.run_id} sent to {delivery.target}: {delivery.detail}")
        else:
            logger.error(f"alert for run {alert.run_id} NOT delivered to {delivery.target}: {delivery.detail}")
    return deliveries
