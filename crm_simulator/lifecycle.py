"""The latent customer process: who signs up, how much they buy, and how the relationship ends.

Every customer gets a plan drawn up front (vectorised over all customers): signup time,
type, wallet, a gamma-distributed purchase rate (BG/NBD-like heterogeneity), a latent
service experience and satisfaction, and the lifecycle phase dates measured from the
first order:

- exploration: the first ``exploration_days`` after the first order;
- formation: until ``formation_days`` of tenure (the purchase rate ramps up until ``ramp_end_days``);
- stability: steady high rate until the decline starts;
- decline: rate and price fall, until the dropout (no orders after it);
- churned: the account is closed (most churners), or, for a silent lapser, a year has passed
  since the last completed order.

The pattern (domain.md section 2, patterns I-IV) says in which stage the relationship ends: I in exploration
(no decline phase: the customer simply leaves), II during formation, III after less than a
year of stability, IV after a year or more. Lower satisfaction and a lower purchase rate make
an early end more likely; the close reason follows satisfaction, price sensitivity and value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from crm_simulator.catalog import CATEGORIES
from crm_simulator.config import Behaviour
from crm_warehouse.contracts import CLOSE_REASONS, CUSTOMER_TYPES

STAGES: tuple[str, ...] = ("prospect", "exploration", "formation", "stability", "decline", "churned")
PROSPECT, EXPLORATION, FORMATION, STABILITY, DECLINE, CHURNED = range(len(STAGES))
PATTERNS: tuple[str, ...] = ("I", "II", "III", "IV")
NO_PATTERN = -1
NEVER = np.inf

# Preferred order channel by customer type (rows follow CUSTOMER_TYPES, columns ORDER_CHANNELS).
_CHANNEL_BY_TYPE = np.array(
    [
        [0.30, 0.35, 0.30, 0.03, 0.02],
        [0.05, 0.15, 0.05, 0.35, 0.40],
        [0.05, 0.10, 0.00, 0.55, 0.30],
        [0.10, 0.40, 0.00, 0.40, 0.10],
    ]
)
_REASON = {code: i for i, code in enumerate(CLOSE_REASONS)}


@dataclass(frozen=True)
class Plan:
    """Latent plan of every customer; times are fractional days since the window start."""

    signup: np.ndarray
    customer_type: np.ndarray
    female: np.ndarray
    birth_day: np.ndarray
    wallet: np.ndarray
    buyer: np.ndarray
    first_order: np.ndarray
    plateau_rate: np.ndarray
    exploration_rate: np.ndarray
    regularity: np.ndarray
    order_value: np.ndarray
    service: np.ndarray
    satisfaction: np.ndarray
    price_sensitivity: np.ndarray
    pattern: np.ndarray
    decline_start: np.ndarray
    dropout: np.ndarray
    closes: np.ndarray
    close_at: np.ndarray
    close_reason: np.ndarray
    category_rank: np.ndarray
    channel: np.ndarray

    @property
    def size(self) -> int:
        return len(self.signup)

    @cached_property
    def first_order_day(self) -> np.ndarray:
        return _day(self.first_order)

    @cached_property
    def decline_day(self) -> np.ndarray:
        return _day(self.decline_start)

    @cached_property
    def close_day(self) -> np.ndarray:
        return _day(self.close_at)


# Day numbers for "never" stay far beyond any window, so comparisons need no special case.
NEVER_DAY = np.int64(10**9)


def _day(t: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(t), np.floor(np.where(np.isfinite(t), t, 0.0)), NEVER_DAY).astype(np.int64)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _choose_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One column index per row of ``weights`` (rows need not sum to 1)."""
    cumulative = np.cumsum(weights, axis=1)
    draw = rng.random(len(weights)) * cumulative[:, -1]
    return (cumulative <= draw[:, None]).sum(axis=1).clip(0, weights.shape[1] - 1)


def make_plan(rng: np.random.Generator, n: int, days: int, behaviour: Behaviour) -> Plan:
    """Draw the latent plan of ``n`` customers signing up during a window of ``days`` days."""
    b = behaviour
    # Signups grow linearly over the window: invert the CDF of a density ∝ 1 + g·x.
    g = b.signup_growth
    u = rng.random(n)
    x = (np.sqrt(1.0 + g * (2.0 + g) * u) - 1.0) / g if g != 0 else u
    signup = np.sort(x * days)
    customer_type = rng.choice(len(CUSTOMER_TYPES), size=n, p=np.asarray(b.type_share) / sum(b.type_share))
    female = rng.random(n) < 0.5
    age_years = rng.uniform(22, 68, n)
    birth_day = np.floor(signup - age_years * 365.25).astype(np.int64)
    wallet = np.asarray(b.wallet_median)[customer_type] * np.exp(b.wallet_sigma * rng.standard_normal(n))

    service = rng.beta(6.0, 2.0, n)
    satisfaction = np.clip(0.6 * service + 0.4 * rng.beta(5.0, 2.0, n) + 0.05 * rng.standard_normal(n), 0.02, 0.98)
    price_sensitivity = rng.beta(2.0, 3.0, n)

    buyer = rng.random(n) >= b.prospect_share
    delay = rng.exponential(np.asarray(b.first_order_delay)[customer_type])
    # The first order comes on a later day than the signup, so it never precedes the CRM record.
    first_order = np.where(buyer, np.floor(signup) + 1.0 + delay, NEVER)

    rate_mean = np.asarray(b.plateau_rate_mean)[customer_type]
    plateau_rate = np.clip(rng.gamma(b.plateau_rate_shape, rate_mean / b.plateau_rate_shape), *b.plateau_rate_bounds)
    exploration_rate = np.clip(b.exploration_rate_share * plateau_rate, *b.exploration_rate_bounds)
    regularity = np.asarray(b.regularity)[customer_type]
    share = rng.beta(*b.share_of_wallet, n)
    order_value = wallet * share / (365.0 * plateau_rate)

    # How the relationship ends: sequential exits in exploration, formation, then the stability length.
    risk = b.satisfaction_effect * (0.65 - satisfaction) + b.rate_effect * np.log(rate_mean / plateau_rate)
    aborts = rng.random(n) < _sigmoid(b.abort_logit + risk)
    drops = ~aborts & (rng.random(n) < _sigmoid(b.dropout_logit + risk))
    stability_days = rng.gamma(2.0, b.stability_days_mean * (0.4 + satisfaction) / 2.0)
    pattern = np.select(
        [~buyer, aborts, drops, stability_days < 365.0],
        [NO_PATTERN, 0, 1, 2],
        default=3,
    ).astype(np.int8)

    expl, form = b.exploration_days, b.formation_days
    decline_start = np.select(
        [pattern == 1, pattern >= 2],
        [first_order + expl + rng.uniform(0.0, form - expl, n), first_order + form + stability_days],
        default=NEVER,
    )
    decline_length = np.where(
        pattern == 1, rng.uniform(*b.decline_days_formation, n), rng.uniform(*b.decline_days_stability, n)
    )
    silent_share = np.where(pattern == 0, b.silent_share_exploration, b.silent_share)
    closes = (pattern >= 0) & (rng.random(n) >= silent_share)
    # Early aborters who never close their account are one-time buyers: they leave right after the first order.
    exploration_exit = np.where(closes, rng.uniform(*b.exploration_exit_days, n), b.exploration_exit_days[0])
    dropout = np.select(
        [pattern == 0, pattern >= 1],
        [first_order + exploration_exit, decline_start + decline_length],
        default=NEVER,
    )
    close_delay = np.where(pattern == 0, b.close_delay_exploration, b.close_delay) * rng.random(n)
    # Accounts close at least a day after the last possible order.
    close_at = np.where(closes, dropout + 1.0 + close_delay, NEVER)

    yearly_value = order_value * plateau_rate * 365.0
    low_value = yearly_value < np.quantile(yearly_value, 0.25)
    weights = np.zeros((n, len(CLOSE_REASONS)))
    weights[:, _REASON["company_dropped"]] = np.where(low_value, 1.5, 0.1)
    weights[:, _REASON["dissatisfied"]] = 9.0 * (1.0 - satisfaction) ** 2
    weights[:, _REASON["poached"]] = 1.2 * price_sensitivity
    weights[:, _REASON["attracted"]] = 0.5
    weights[:, _REASON["forced"]] = 0.4
    weights[:, _REASON["other"]] = 0.3
    close_reason = np.where(closes, _choose_rows(rng, weights), -1).astype(np.int8)

    # Categories a customer shops, best first: affordable for its basket, plus taste (Gumbel noise).
    line_price = order_value / (1.0 + b.extra_lines) / np.asarray(b.units_per_line)[customer_type]
    median_price = np.sqrt(np.array([c.min_price * c.max_price for c in CATEGORIES]))
    fit = -0.5 * ((np.log(line_price)[:, None] - np.log(median_price)[None, :]) / 0.7) ** 2
    taste = -np.log(-np.log(rng.random((n, len(CATEGORIES)))))
    category_rank = np.argsort(-(fit + taste), axis=1, kind="stable").astype(np.int8)
    channel = _choose_rows(rng, _CHANNEL_BY_TYPE[customer_type]).astype(np.int8)

    return Plan(
        signup=signup,
        customer_type=customer_type.astype(np.int8),
        female=female,
        birth_day=birth_day,
        wallet=wallet,
        buyer=buyer,
        first_order=first_order,
        plateau_rate=plateau_rate,
        exploration_rate=exploration_rate,
        regularity=regularity,
        order_value=order_value,
        service=service,
        satisfaction=satisfaction,
        price_sensitivity=price_sensitivity,
        pattern=pattern,
        decline_start=decline_start,
        dropout=dropout,
        closes=closes,
        close_at=close_at,
        close_reason=close_reason,
        category_rank=category_rank,
        channel=channel,
    )


def churn_day(plan: Plan, last_completed_day: np.ndarray, behaviour: Behaviour) -> np.ndarray:
    """Day the relationship counts as terminated: account closure, or for a silent lapser
    ``lapse_days`` after the last completed order (the domain's "no order for a year")."""
    silent = (plan.pattern >= 0) & ~plan.closes & (last_completed_day >= 0)
    return np.where(plan.closes, plan.close_day, np.where(silent, last_completed_day + behaviour.lapse_days, NEVER_DAY))


def stage_at(
    plan: Plan, customer: np.ndarray, day: np.ndarray, churned_from: np.ndarray, behaviour: Behaviour
) -> np.ndarray:
    """True stage code (index into :data:`STAGES`) of ``customer`` at the end of ``day``.

    ``churned_from`` is :func:`churn_day` per customer (all customers, indexed by ``customer``).
    """
    first = plan.first_order_day[customer]
    tenure = day - first
    return np.select(
        [
            day < first,
            day >= churned_from[customer],
            (tenure < behaviour.exploration_days) | (plan.pattern[customer] == 0),
            day >= plan.decline_day[customer],
            tenure < behaviour.formation_days,
        ],
        [PROSPECT, CHURNED, EXPLORATION, DECLINE, FORMATION],
        default=STABILITY,
    ).astype(np.int8)
