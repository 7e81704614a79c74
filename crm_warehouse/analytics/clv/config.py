"""Defaults of the CLV models, in one place.

``ClvConfig`` is what a business user changes (horizon, discounting, margin, time
unit); ``FitOptions`` holds the numerical thresholds of the maximum-likelihood fits
and of the model checks. Nothing else in the package repeats these numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

TimeUnit = Literal["days", "weeks"]
HorizonUnit = Literal["days", "weeks", "months"]
#: ``auto`` chooses among the purchase models on a time split inside the calibration period.
PurchaseModelChoice = Literal["auto", "bgnbd", "mbgnbd", "pareto_nbd"]
PURCHASE_MODELS = ("bgnbd", "mbgnbd", "pareto_nbd")

#: Length of one model time unit in days. Purchases are always grouped by calendar
#: day (several orders on one day are one purchase); the unit only scales time.
DAYS_PER_UNIT: dict[str, float] = {"days": 1.0, "weeks": 7.0}


def check_time_unit(time_unit: str) -> float:
    """Return the length of ``time_unit`` in days, or raise ``ValueError`` if unknown."""
    if time_unit not in DAYS_PER_UNIT:
        raise ValueError(f"time_unit={time_unit!r} is not one of {sorted(DAYS_PER_UNIT)}")
    return DAYS_PER_UNIT[time_unit]


@dataclass(frozen=True)
class ClvConfig:
    """Business settings of the customer-lifetime-value calculation.

    Attributes
    ----------
    horizon : float
        Length of the future period summed into the CLV, in ``horizon_unit``; also
        the period of ``expected_purchases`` and of the churn probability.
    horizon_unit : {"days", "weeks", "months"}
        Unit of ``horizon``.
    monthly_discount_rate : float
        Discount rate per month; month ``m`` is divided by ``(1 + rate) ** m``
        (0.01 a month is about 12.7 % a year, the lifetimes default). A horizon
        that is not whole months ends with a part month, discounted as a month.
    margin : float
        Share of spend that is profit, in [0, 1]. 1.0 gives a revenue CLV.
    time_unit : {"days", "weeks"}
        Unit of recency, T and of the rate parameters (alpha, beta).
    days_per_month : float
        Length of a month when the horizon is converted to model time: the mean
        Gregorian month, 365.25 / 12. (lifetimes and pymc-marketing use 30 days or
        4.345 weeks; set 30.0 or 30.415 here to reproduce their figures exactly.)
    model : {"auto", "bgnbd", "mbgnbd", "pareto_nbd"}
        Purchase model. ``auto`` fits each on the calibration period minus its
        last part, keeps the one that predicts that last part best and refits it
        on the whole period (:mod:`crm_warehouse.analytics.clv.selection`).
    selection_share : float
        Share of the observed period (first purchase to as-of date) held back at
        its end to choose the model; the held-back window is never longer than
        the horizon.
    interval_level : float
        Coverage of the intervals of expected purchases and CLV (parameter
        uncertainty, delta method).
    score_batch_rows : int
        Customers scored per batch streamed from DuckDB (memory follows it).
    """

    horizon: float = 12.0
    horizon_unit: HorizonUnit = "months"
    monthly_discount_rate: float = 0.01
    margin: float = 1.0
    time_unit: TimeUnit = "weeks"
    days_per_month: float = 365.25 / 12
    model: PurchaseModelChoice = "auto"
    selection_share: float = 1.0 / 3.0
    interval_level: float = 0.9
    score_batch_rows: int = 100_000

    def __post_init__(self) -> None:
        check_time_unit(self.time_unit)
        if self.horizon_unit not in ("days", "weeks", "months"):
            raise ValueError(f"horizon_unit={self.horizon_unit!r} is not one of ['days', 'months', 'weeks']")
        if not (math.isfinite(self.horizon) and self.horizon > 0):
            raise ValueError(f"horizon={self.horizon!r} must be a positive number of {self.horizon_unit}")
        if not 0.0 <= self.monthly_discount_rate < 1.0:
            raise ValueError(f"monthly_discount_rate={self.monthly_discount_rate!r} must be in [0, 1)")
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"margin={self.margin!r} must be in [0, 1]")
        if not self.days_per_month > 0:
            raise ValueError(f"days_per_month={self.days_per_month!r} must be positive")
        if self.model not in ("auto", *PURCHASE_MODELS):
            raise ValueError(f"model={self.model!r} is not one of {['auto', *PURCHASE_MODELS]}")
        if not 0.0 < self.selection_share < 1.0:
            raise ValueError(f"selection_share={self.selection_share!r} must be in (0, 1)")
        if not 0.0 < self.interval_level < 1.0:
            raise ValueError(f"interval_level={self.interval_level!r} must be in (0, 1)")
        if int(self.score_batch_rows) != self.score_batch_rows or self.score_batch_rows < 1:
            raise ValueError(f"score_batch_rows={self.score_batch_rows!r} must be a whole number >= 1")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ClvConfig:
        """A config from saved settings; ``horizon_months`` (older saved models) means a horizon in months."""
        values = dict(values)
        if "horizon_months" in values:
            values["horizon"] = values.pop("horizon_months")
            values["horizon_unit"] = "months"
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"unknown CLV settings {unknown}")
        return cls(**values)

    @property
    def units_per_month(self) -> float:
        """Length of one month in model time units."""
        return self.days_per_month / DAYS_PER_UNIT[self.time_unit]

    @property
    def horizon_days(self) -> float:
        """The horizon in days."""
        return self.horizon * (
            self.days_per_month if self.horizon_unit == "months" else DAYS_PER_UNIT[self.horizon_unit]
        )

    @property
    def horizon_units(self) -> float:
        """The horizon in model time units."""
        return self.horizon_days / DAYS_PER_UNIT[self.time_unit]

    @property
    def horizon_months(self) -> float:
        """The horizon in months."""
        return self.horizon_days / self.days_per_month

    def describe_horizon(self) -> str:
        """E.g. ``"9 months"``, ``"90 days"``."""
        return f"{self.horizon:g} {self.horizon_unit}"


@dataclass(frozen=True)
class FitOptions:
    """Numerical thresholds of the maximum-likelihood fits and model checks.

    Attributes
    ----------
    gradient_tol : float
        Converged when the norm of the gradient of the mean negative
        log-likelihood with respect to the log-parameters is below this.
    max_iter : int
        Iteration limit of the trust-region optimiser.
    max_polish_steps : int
        Newton steps taken after the trust region stops, to reach the optimum to
        machine precision.
    param_bounds : tuple of float
        Plausible range of every parameter as a multiple of its starting value
        (1, except alpha = max T / 10 and gamma = median spend). A parameter
        leaving it means the likelihood has no interior maximum on these data.
    max_condition : float
        Largest accepted condition number of the Hessian at the optimum; above it
        the Hessian is treated as singular (parameters not identified).
    max_abs_frequency_monetary_corr : float
        Gamma-Gamma assumes spend is independent of frequency; above this
        absolute Pearson correlation among repeat buyers a warning is raised.
    """

    gradient_tol: float = 1e-8
    max_iter: int = 200
    max_polish_steps: int = 5
    param_bounds: tuple[float, float] = (1e-6, 1e6)
    max_condition: float = 1e12
    max_abs_frequency_monetary_corr: float = 0.3
