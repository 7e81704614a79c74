"""Schedules: the daily pipeline and the weekly retraining of the models.

Times and timezone come from the configuration (``CRM_DAILY_CRON``,
``CRM_RETRAIN_CRON``, ``CRM_TIMEZONE``); a bad value stops the code location from
loading with a message naming the variable, instead of a schedule that never fires.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import dagster as dg

from crm_warehouse.preflight import ConfigurationError, schedule_problems
from crm_warehouse.settings import Settings

if TYPE_CHECKING:
    # What define_asset_job returns; Dagster does not export the class.
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

JobRef: TypeAlias = "str | dg.JobDefinition | UnresolvedAssetJobDefinition"

DAILY_SCHEDULE = "daily_pipeline_schedule"
RETRAIN_SCHEDULE = "retrain_models_schedule"
SCHEDULED_FOR_TAG = "crm/scheduled_for"


def job_target(job: JobRef) -> dict[str, JobRef]:
    """Keyword arguments naming ``job`` for a schedule or sensor: by object or by name."""
    return {"job_name": job} if isinstance(job, str) else {"job": job}


def _scheduled_for(context: dg.ScheduleEvaluationContext) -> dict[str, str]:
    # The tick's own time, in the schedule's timezone, so a late or back-filled run says which day it is for.
    tick = context.scheduled_execution_time
    return {SCHEDULED_FOR_TAG: tick.isoformat()} if tick else {}


def build_schedules(daily_job: JobRef, retrain_job: JobRef, settings: Settings) -> list[dg.ScheduleDefinition]:
    """The daily full-pipeline schedule and the weekly retraining schedule.

    Both start stopped: turn them on in the UI (Automation) or with
    ``dagster schedule start``; the state is kept in ``DAGSTER_HOME``.

    Raises
    ------
    ConfigurationError
        When a cron string or the timezone is invalid.
    """
    problems = schedule_problems(settings)
    if problems:
        raise ConfigurationError(problems)
    return [
        dg.ScheduleDefinition(
            name=DAILY_SCHEDULE,
            cron_schedule=settings.daily_cron,
            execution_timezone=settings.timezone,
            tags_fn=_scheduled_for,
            description=(
                f"Ingest, dbt, analytics scoring, checks and publish at `{settings.daily_cron}` "
                f"({settings.timezone}); set by CRM_DAILY_CRON and CRM_TIMEZONE."
            ),
            **job_target(daily_job),
        ),
        dg.ScheduleDefinition(
            name=RETRAIN_SCHEDULE,
            cron_schedule=settings.retrain_cron,
            execution_timezone=settings.timezone,
            tags_fn=_scheduled_for,
            description=(
                f"Refit the churn and CLV models at `{settings.retrain_cron}` ({settings.timezone}); "
                "set by CRM_RETRAIN_CRON and CRM_TIMEZONE. Daily runs score with the latest fitted models."
            ),
            **job_target(retrain_job),
        ),
    ]
