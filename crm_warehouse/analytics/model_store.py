"""Fitted models as JSON files named by their model id, in one folder.

A model id is ``<model type>-<UTC fit time, YYYYMMDDTHHMMSSffffffZ>``, so ids of one
type sort by fit time and the latest model is the last file name.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MODEL_TYPES = ("clv", "churn")


def _check_type(model_type: str) -> None:
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type={model_type!r} is not one of {MODEL_TYPES}")


def new_model_id(model_type: str, fitted_at: datetime) -> str:
    """``<model_type>-<UTC time>``; ``fitted_at`` must carry a timezone."""
    _check_type(model_type)
    if fitted_at.tzinfo is None:
        raise ValueError(f"fitted_at={fitted_at!r} has no timezone")
    return f"{model_type}-{fitted_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def model_path(models_dir: Path, model_id: str) -> Path:
    return Path(models_dir) / f"{model_id}.json"


def save_model(models_dir: Path, model_id: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (JSON-ready) as ``<models_dir>/<model_id>.json``, atomically."""
    path = model_path(models_dir, model_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps({"model_id": model_id, **payload}), encoding="utf-8")
    os.replace(partial, path)
    return path


def latest_model_path(models_dir: Path, model_type: str) -> Path | None:
    """The newest saved model of ``model_type``, or None when there is none."""
    _check_type(model_type)
    folder = Path(models_dir)
    paths = sorted(folder.glob(f"{model_type}-*.json")) if folder.is_dir() else []
    return paths[-1] if paths else None


def load_model(path: Path) -> dict[str, Any]:
    """The payload saved by :func:`save_model` (with its ``model_id``)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a saved model (invalid JSON: {exc})") from exc
