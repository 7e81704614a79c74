"""Defaults of the CLV models, in one place.

``ClvConfig`` is what a business user changes (horizon, discounting, margin, time
unit); ``FitOptions`` holds the numerical thresholds of the maximum-likelihood fits
and of the model checks. Nothing else in the package repeats these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TimeUnit = Literal["days", "weeks"]

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
    horizon_months : int
        Number of future months summed into the CLV.
    monthly_discount_rate : float
        Discount rate per month; month ``m`` is divided by ``(1 + rate) ** m``
        (0.01 a month is about 12.7 % a year, the lifetimes default).
    margin : float
        Share of spend that is profit, in [0, 1]. 1.0 gives a revenue CLV.
    time_unit : {"days", "weeks"}
        Unit of recency, T and of the BG/NBD rate parameter alpha.
    days_per_month : float
        Length of a month when the horizon is converted to model time: the mean
        Gregorian month, 365.25 / 12. (lifetimes and pymc-marketing use 30 days or
        4.345 weeks; set 30.0 or 30.415 here to reproduce their figures exactly.)
    """

    horizon_months: int = 12
    monthly_discount_rate: float = 0.01
    margin: float = 1.0
    time_unit: TimeUnit = "weeks"
    days_per_month: float = 365.25 / 12

    def __post_init__(self) -> None:
        check_time_unit(self.time_unit)
        if int(self.horizon_months) != self.horizon_months or self.horizon_months < 1:
            raise ValueError(f"horizon_months={self.horizon_months!r} must be a whole number >= 1")
        if not 0.0 <= self.monthly_discount_rate < 1.0:
            raise ValueError(f"monthly_discount_rate={self.monthly_discount_rate!r} must be in [0, 1)")
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"margin={self.margin!r} must be in [0, 1]")
        if not self.days_per_month > 0:
            raise ValueError(f"days_per_month={self.days_per_month!r} must be positive")

    @property
    def units_per_month(self) -> float:
        """Length of one month in model time units."""
        return self.days_per_month / DAYS_PER_UNIT[self.time_unit]


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
