"""Operations: schedules, the landing sensor and failure alerts, built from the configuration.

``definitions.py`` adds them to ``Definitions``::

    schedules, sensors = build_ops_definitions(daily_pipeline, retrain_models, settings)
"""

from __future__ import annotations

from typing import NamedTuple

import dagster as dg

from crm_warehouse.settings import Settings
from orchestration.ops.schedules import JobRef, build_schedules
from orchestration.ops.sensors import build_landing_sensor, build_run_failure_sensor
from orchestration.recovery import build_recovery_sensor


class OpsDefinitions(NamedTuple):
    schedules: list[dg.ScheduleDefinition]
    sensors: list[dg.SensorDefinition]


def build_ops_definitions(daily_job: JobRef, retrain_job: JobRef, settings: Settings) -> OpsDefinitions:
    """Schedules and sensors for the daily job and the retraining job (objects or names).

    ``settings``: the configuration the resources are built from.
    """
    return OpsDefinitions(
        schedules=build_schedules(daily_job, retrain_job, settings),
        sensors=[
            build_landing_sensor(daily_job, settings),
            build_run_failure_sensor(settings),
            build_recovery_sensor(settings.serving_path),
        ],
    )
