"""Simulation settings: the run (size, seed, window) and the behaviour defaults.

Every behavioural number of the simulator lives in :class:`Behaviour`, so tuning
happens in one place. Day arithmetic is in days since the window start; a day
``d`` is the calendar date ``start_date + d``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate.

    Parameters
    ----------
    customers
        Number of customers created over the window.
    days
        Length of the export window in days.
    seed
        Seed of every random stream; the same config gives byte-identical files.
    start_date
        First export day.
    dirty_rate
        Fraction of rows of each source that are added as bad records (0 = clean).
    """

    customers: int = 10_000
    days: int = 730
    seed: int = 7
    start_date: date = date(2024, 1, 1)
    dirty_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError(f"customers must be at least 1, got {self.customers}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        if not 0.0 <= self.dirty_rate < 1.0:
            raise ValueError(f"dirty_rate must be in [0, 1), got {self.dirty_rate}")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")


@dataclass(frozen=True)
class Window:
    """The export window: day numbers <-> dates and epoch seconds."""

    start_date: date
    days: int

    @property
    def start_epoch(self) -> int:
        start = datetime(self.start_date.year, self.start_date.month, self.start_date.day, tzinfo=UTC)
        return int(start.timestamp())

    def date_str(self, day: int) -> str:
        return (self.start_date + timedelta(days=int(day))).isoformat()

    def epoch_seconds(self, t_days: np.ndarray) -> np.ndarray:
        """Epoch seconds of fractional day numbers, truncated to whole seconds."""
        return self.start_epoch + np.floor(np.asarray(t_days, dtype=np.float64) * SECONDS_PER_DAY).astype(np.int64)

    def epoch_days(self) -> int:
        """Days since 1970-01-01 of the window's first day (the date32 value of day 0)."""
        return self.start_epoch // SECONDS_PER_DAY


@dataclass(frozen=True)
class Behaviour:
    """Behavioural defaults of the simulated company (rates are per day unless named otherwise)."""

    # Customer mix, in contracts.CUSTOMER_TYPES order: consumer, distributor, key_account, public_body.
    type_share: tuple[float, ...] = (0.86, 0.06, 0.03, 0.05)
    wallet_median: tuple[float, ...] = (30_000.0, 3_000_000.0, 15_000_000.0, 1_200_000.0)
    wallet_sigma: float = 0.6
    # Days from signup to the first order (exponential mean), per type.
    first_order_delay: tuple[float, ...] = (10.0, 25.0, 40.0, 30.0)
    prospect_share: float = 0.21
    # Signup density grows linearly over the window by this fraction (must be > -1).
    signup_growth: float = 0.1

    # Latent purchase rate at the plateau (orders per day), gamma-distributed per type.
    plateau_rate_mean: tuple[float, ...] = (1 / 28, 1 / 18, 1 / 16, 1 / 28)
    plateau_rate_shape: float = 2.0
    plateau_rate_bounds: tuple[float, float] = (1 / 40, 1 / 4)
    # Gamma shape of the gaps between orders in operational time: higher = more regular.
    regularity: tuple[float, ...] = (30.0, 40.0, 45.0, 35.0)
    exploration_rate_share: float = 0.45
    exploration_rate_bounds: tuple[float, float] = (1 / 42, 1 / 20)
    formation_start_share: float = 0.55
    decline_rate_share: float = 0.12

    # Lifecycle phase lengths (days after the first order); the dbt stage rules use the same 90/365.
    exploration_days: int = 90
    formation_days: int = 365
    ramp_end_days: int = 200
    # A silent lapser counts as churned this long after its last completed order.
    lapse_days: int = 365
    # Basket value multipliers by phase (volume: very small -> growing -> highest -> falling).
    value_exploration: float = 0.5
    value_formation_start: float = 0.65
    value_growth_per_year: float = 0.06
    value_decline: float = 0.65
    order_value_sigma: float = 0.08
    # Basket size scales with the time since the previous order relative to the usual gap, within these bounds.
    replenishment_bounds: tuple[float, float] = (0.5, 1.6)
    # Beta parameters of the share of its wallet a customer spends with us.
    share_of_wallet: tuple[float, float] = (2.0, 5.0)

    # Discount on top of the type's base discount: entry prices low, rising later, falling in decline.
    type_discount: tuple[float, ...] = (0.02, 0.08, 0.10, 0.05)
    discount_exploration: float = 0.12
    discount_formation: tuple[float, float] = (0.08, 0.02)
    discount_stability: tuple[float, float] = (0.02, 0.0)
    discount_decline: float = 0.08

    # Lines per order: 1 + Poisson(mean), small baskets in exploration.
    extra_lines_exploration: float = 0.45
    extra_lines: float = 1.3
    extra_lines_decline: float = 1.0
    # Units per line around which a customer shops, per type.
    units_per_line: tuple[float, ...] = (1.5, 20.0, 45.0, 10.0)

    # How relationships end (patterns I-IV), logits driven by satisfaction and purchase rate.
    abort_logit: float = 0.4
    dropout_logit: float = 0.0
    satisfaction_effect: float = 4.0
    rate_effect: float = 1.5
    stability_days_mean: float = 520.0
    exploration_exit_days: tuple[float, float] = (1.0, 75.0)
    decline_days_formation: tuple[float, float] = (45.0, 150.0)
    decline_days_stability: tuple[float, float] = (60.0, 200.0)
    close_delay_exploration: float = 15.0
    close_delay: float = 45.0
    silent_share_exploration: float = 0.08
    silent_share: float = 0.15

    # Order outcomes and service failures (per order), worse for a poor latent service experience.
    cancel_rate: float = 0.02
    delivery_failure: float = 0.025
    quality_failure: float = 0.015
    failure_service_effect: float = 4.0
    refund_after_quality_failure: float = 0.45
    complaint_after_failure: float = 0.65

    # Tickets per 30 days by stage: prospect, exploration, formation, stability, decline.
    inquiry_rate_30d: tuple[float, ...] = (0.15, 0.9, 0.35, 0.12, 0.45)
    inquiry_type_factor: tuple[float, ...] = (1.0, 1.6, 2.0, 1.4)
    other_complaint_rate_30d: float = 0.08
    praise_rate_30d: float = 0.06
    trigger_unresolved: float = 0.75
    # Chance a complaint stays unresolved, from the best to the worst latent service experience.
    complaint_unresolved: tuple[float, float] = (0.01, 0.10)

    # Surveys: who answers, how often.
    survey_share: float = 0.30
    survey_interval_days: float = 120.0

    # Marketing response probability by stage: prospect, exploration, formation, stability, decline, churned.
    response_rate: tuple[float, ...] = (0.03, 0.10, 0.15, 0.20, 0.06, 0.02)

    catalogue_products: int = 400

    def __post_init__(self) -> None:
        if self.signup_growth <= -1.0:
            raise ValueError(f"signup_growth must be greater than -1, got {self.signup_growth}")
        if not self.exploration_days < self.ramp_end_days < self.formation_days:
            raise ValueError(
                "phase lengths must satisfy exploration_days < ramp_end_days < formation_days, got "
                f"{self.exploration_days}, {self.ramp_end_days}, {self.formation_days}"
            )
