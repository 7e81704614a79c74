"""Orders and order lines from the latent plan.

Each buyer orders as a renewal process with gamma-distributed gaps in *operational time*
(unit mean, shape = the customer's regularity), mapped to calendar time through the
cumulative purchase intensity of its lifecycle: a constant low rate in exploration, a linear
ramp to the plateau rate during formation, the plateau through stability, and a fraction of
it in decline; nothing after the dropout. Regular gaps are what make the stage rules
(trailing-90-day revenue, gaps between orders) see the lifecycle rather than noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_simulator.catalog import Catalogue
from crm_simulator.config import SECONDS_PER_DAY, Behaviour
from crm_simulator.lifecycle import (
    DECLINE,
    EXPLORATION,
    FORMATION,
    STABILITY,
    Plan,
)
from crm_warehouse.contracts import CUSTOMER_TYPES, ORDER_CHANNELS, ORDER_STATUSES

COMPLETED, CANCELLED, REFUNDED = (ORDER_STATUSES.index(s) for s in ("completed", "cancelled", "refunded"))
_CONSUMER = CUSTOMER_TYPES.index("consumer")

# Hour-of-day profiles: consumers shop into the evening, organisations in office hours.
_HOURS_CONSUMER = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 5, 5, 6, 5, 5, 5, 5, 5, 6, 8, 9, 9, 7, 3], dtype=float
)
_HOURS_OFFICE = np.array([0, 0, 0, 0, 0, 0, 0.2, 1, 5, 9, 10, 9, 5, 7, 9, 9, 8, 5, 2, 1, 0.5, 0.2, 0, 0], dtype=float)


@dataclass(frozen=True)
class Orders:
    """Order headers (sorted by time) and their lines (sorted by order, then line number)."""

    customer: np.ndarray
    time: np.ndarray
    seconds: np.ndarray
    day: np.ndarray
    channel: np.ndarray
    status: np.ndarray
    phase: np.ndarray
    delivery_failure: np.ndarray
    quality_failure: np.ndarray
    line_order: np.ndarray
    line_number: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    unit_price_cents: np.ndarray
    discount_bp: np.ndarray
    unit_cost_cents: np.ndarray

    @property
    def size(self) -> int:
        return len(self.customer)


def time_of_day_seconds(rng: np.random.Generator, consumer: np.ndarray) -> np.ndarray:
    """Seconds after midnight, drawn from the consumer or office hour profile."""
    n = len(consumer)
    cum_consumer = np.cumsum(_HOURS_CONSUMER / _HOURS_CONSUMER.sum())
    cum_office = np.cumsum(_HOURS_OFFICE / _HOURS_OFFICE.sum())
    u = rng.random(n)
    hour = np.where(
        consumer, np.searchsorted(cum_consumer, u, side="right"), np.searchsorted(cum_office, u, side="right")
    )
    return np.minimum(hour, 23) * 3600 + rng.integers(0, 3600, n)


def _segments(
    plan: Plan, who: np.ndarray, days: int, b: Behaviour
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Start, length, start rate and slope of the four intensity segments, shape (n, 4)."""
    first = plan.first_order[who]
    end = np.minimum(plan.dropout[who], float(days))
    decline = plan.decline_start[who]
    rate_e = plan.exploration_rate[who]
    rate_s = plan.plateau_rate[who]
    rate_f0 = np.maximum(rate_e, b.formation_start_share * rate_s)
    ramp_from = first + b.exploration_days
    ramp_to = first + b.ramp_end_days
    start = np.stack([first, ramp_from, ramp_to, np.minimum(decline, 1e12)], axis=1)
    stop = np.stack(
        [
            np.minimum(ramp_from, end),
            np.minimum.reduce([ramp_to, decline, end]),
            np.minimum(decline, end),
            end,
        ],
        axis=1,
    )
    length = np.maximum(stop - start, 0.0)
    slope = np.zeros_like(start)
    slope[:, 1] = (rate_s - rate_f0) / (b.ramp_end_days - b.exploration_days)
    rate0 = np.stack([rate_e, rate_f0, rate_s, b.decline_rate_share * rate_s], axis=1)
    return start, length, rate0, slope


def _order_times(rng: np.random.Generator, plan: Plan, days: int, b: Behaviour) -> tuple[np.ndarray, np.ndarray]:
    """Customer index and fractional order time of every order, grouped by customer in time order."""
    who = np.flatnonzero(plan.first_order < days)
    start, length, rate0, slope = _segments(plan, who, days, b)
    mass = length * rate0 + 0.5 * slope * length**2
    cum = np.cumsum(mass, axis=1)
    total = cum[:, -1]
    shape = plan.regularity[who]
    # Enough gamma steps that their sum passes the total intensity with near certainty.
    steps = np.ceil(total + 6.0 * np.sqrt(total / shape) + 3.0).astype(np.int64)
    owner = np.repeat(np.arange(len(who)), steps)
    group_start = np.concatenate([[0], np.cumsum(steps)[:-1]])
    increment = rng.gamma(shape[owner], 1.0 / shape[owner])
    increment[group_start] = 0.0
    running = np.cumsum(increment)
    u = running - np.repeat(running[group_start], steps)
    is_first = np.zeros(len(u), dtype=bool)
    is_first[group_start] = True
    keep = (u < total[owner]) | is_first
    owner, u, is_first = owner[keep], u[keep], is_first[keep]

    before = np.concatenate([np.zeros((len(who), 1)), cum[:, :-1]], axis=1)
    segment = (u[:, None] >= cum[owner, :3]).sum(axis=1)
    v = u - before[owner, segment]
    r0 = rate0[owner, segment]
    a = slope[owner, segment]
    t = start[owner, segment] + 2.0 * v / (r0 + np.sqrt(np.maximum(r0 * r0 + 2.0 * a * v, 0.0)))
    t = np.where(is_first, plan.first_order[who][owner], t)
    customer = who[owner]
    valid = (t < days) & (t < plan.dropout[customer])
    return customer[valid], t[valid]


def _intensity(
    plan: Plan, customer: np.ndarray, t: np.ndarray, phase: np.ndarray, progress: np.ndarray, b: Behaviour
) -> np.ndarray:
    """Purchase intensity (orders per day) of each customer at time ``t``."""
    rate_e = plan.exploration_rate[customer]
    rate_s = plan.plateau_rate[customer]
    rate_f0 = np.maximum(rate_e, b.formation_start_share * rate_s)
    ramp = rate_f0 + (rate_s - rate_f0) * np.clip(
        (t - plan.first_order[customer] - b.exploration_days) / (b.ramp_end_days - b.exploration_days), 0.0, 1.0
    )
    return np.select(
        [phase == EXPLORATION, phase == FORMATION, phase == STABILITY],
        [rate_e, ramp, rate_s],
        default=b.decline_rate_share * rate_s,
    )


def _phase(plan: Plan, customer: np.ndarray, t: np.ndarray, b: Behaviour) -> tuple[np.ndarray, np.ndarray]:
    """Latent phase of each order and its progress through that phase (0..1, capped)."""
    first = plan.first_order[customer]
    ramp_from = first + b.exploration_days
    ramp_to = first + b.ramp_end_days
    decline = plan.decline_start[customer]
    phase = np.select([t >= decline, t < ramp_from, t < ramp_to], [DECLINE, EXPLORATION, FORMATION], default=STABILITY)
    progress = np.select(
        [phase == FORMATION, phase == STABILITY],
        [(t - ramp_from) / (ramp_to - ramp_from), (t - ramp_to) / 365.0],
        default=0.0,
    )
    return phase.astype(np.int8), np.clip(progress, 0.0, 1.0)


def make_orders(
    rng: np.random.Generator, plan: Plan, catalogue: Catalogue, days: int, start_epoch: int, b: Behaviour
) -> Orders:
    """All orders and lines of the window, with statuses, discounts and service failures."""
    customer, t = _order_times(rng, plan, days, b)
    n = len(customer)
    phase, progress = _phase(plan, customer, t, b)
    ctype = plan.customer_type[customer]

    growth = 1.0 + b.value_growth_per_year * np.clip(
        (t - plan.first_order[customer] - b.ramp_end_days) / 365.0, 0.0, None
    )
    value_mult = np.select(
        [phase == EXPLORATION, phase == FORMATION, phase == STABILITY],
        [b.value_exploration, b.value_formation_start + (1.0 - b.value_formation_start) * progress, growth],
        default=b.value_decline,
    )
    # Replenishment: the longer since the previous order (relative to the usual gap), the bigger the basket.
    new_customer = np.concatenate([[True], customer[1:] != customer[:-1]])
    elapsed = np.where(new_customer, np.nan, t - np.roll(t, 1))
    usual = _intensity(plan, customer, t, phase, progress, b)
    replenish = np.where(new_customer, 1.0, np.clip(elapsed * usual, *b.replenishment_bounds))
    order_value = (
        plan.order_value[customer] * value_mult * replenish * np.exp(b.order_value_sigma * rng.standard_normal(n))
    )
    discount = np.asarray(b.type_discount)[ctype] + np.select(
        [phase == EXPLORATION, phase == FORMATION, phase == STABILITY],
        [
            b.discount_exploration,
            b.discount_formation[0] + (b.discount_formation[1] - b.discount_formation[0]) * progress,
            b.discount_stability[0] + (b.discount_stability[1] - b.discount_stability[0]) * progress,
        ],
        default=b.discount_decline,
    )
    # Discounts come in half-percent steps; stored in units of 1/10000 (the contract's scale).
    discount = np.clip(discount + rng.uniform(-0.01, 0.01, n), 0.0, 0.5)
    discount_bp = (np.round(discount * 200.0) * 50.0).astype(np.int64)

    service_gap = b.failure_service_effect * (1.0 - plan.service[customer])
    delivery_failure = rng.random(n) < b.delivery_failure * (1.0 + service_gap)
    quality_failure = rng.random(n) < b.quality_failure * (1.0 + service_gap)
    status = np.where(
        quality_failure & (rng.random(n) < b.refund_after_quality_failure),
        REFUNDED,
        np.where(rng.random(n) < b.cancel_rate, CANCELLED, COMPLETED),
    )
    # The first two orders are completed: the stage rules need two orders to leave exploration.
    group_start = np.flatnonzero(new_customer)
    rank = np.arange(n) - np.repeat(group_start, np.diff(np.append(group_start, n)))
    status = np.where(rank < 2, COMPLETED, status).astype(np.int8)

    own_channel = rng.random(n) < 0.75
    channel = np.where(own_channel, plan.channel[customer], rng.integers(0, len(ORDER_CHANNELS), n)).astype(np.int8)
    day = np.floor(t).astype(np.int64)
    seconds = start_epoch + day * SECONDS_PER_DAY + time_of_day_seconds(rng, ctype == _CONSUMER)

    extra = np.select(
        [phase == EXPLORATION, phase == DECLINE],
        [b.extra_lines_exploration, b.extra_lines_decline],
        default=b.extra_lines,
    )
    lines_per_order = 1 + rng.poisson(extra)
    lines = _make_lines(rng, plan, catalogue, customer, phase, order_value, discount_bp, lines_per_order, b)

    # Order ids follow time: sort headers by timestamp (stable, customer as tie-breaker).
    by_time = np.lexsort((customer, seconds))
    # Lines follow their orders: each order's block of lines, in the headers' new order.
    first_line = np.concatenate([[0], np.cumsum(lines_per_order)[:-1]])
    count = lines_per_order[by_time]
    block_start = np.repeat(np.cumsum(count) - count, count)
    by_line = np.repeat(first_line[by_time], count) + np.arange(count.sum()) - block_start
    line_order = np.repeat(np.arange(n), count)
    return Orders(
        customer=customer[by_time],
        time=(seconds[by_time] - start_epoch) / SECONDS_PER_DAY,
        seconds=seconds[by_time],
        day=day[by_time],
        channel=channel[by_time],
        status=status[by_time],
        phase=phase[by_time],
        delivery_failure=delivery_failure[by_time],
        quality_failure=quality_failure[by_time],
        line_order=line_order,
        **{k: v[by_line] for k, v in lines.items() if k != "order"},
    )


def _make_lines(
    rng: np.random.Generator,
    plan: Plan,
    catalogue: Catalogue,
    customer: np.ndarray,
    phase: np.ndarray,
    order_value: np.ndarray,
    discount_bp: np.ndarray,
    lines_per_order: np.ndarray,
    b: Behaviour,
) -> dict[str, np.ndarray]:
    """Lines of every order: categories from the customer's preferences, products near the
    unit price its basket implies, quantities that fill the basket value."""
    order = np.repeat(np.arange(len(customer)), lines_per_order)
    m = len(order)
    starts = np.concatenate([[0], np.cumsum(lines_per_order)[:-1]])
    line_number = np.arange(m) - np.repeat(starts, lines_per_order) + 1
    weight = rng.gamma(2.0, 1.0, m)
    share = weight / np.bincount(order, weights=weight)[order]
    line_value = order_value[order] * share

    who = customer[order]
    line_phase = phase[order]
    # Exploration sticks to the favourite category; later stages cross-buy more.
    breadth = np.select([line_phase == EXPLORATION, line_phase == DECLINE], [0.8, 0.6], default=0.45)
    rank = np.minimum(rng.geometric(breadth) - 1, plan.category_rank.shape[1] - 1)
    category = plan.category_rank[who, rank].astype(np.int64)

    ctype = plan.customer_type[who]
    units = np.where(
        ctype == _CONSUMER,
        1.0 + rng.poisson(0.5, m),
        np.asarray(b.units_per_line)[ctype] * np.exp(0.5 * rng.standard_normal(m)),
    )
    net = 1.0 - discount_bp[order] / 10_000.0
    target_price = np.maximum(line_value / units / net, 0.01)
    key = category * 100.0 + np.log(target_price)
    position = np.searchsorted(catalogue.log_price_key(), key) + rng.integers(-1, 1, m)
    position = np.clip(position, catalogue.category_start[category], catalogue.category_start[category + 1] - 1)
    product = catalogue.by_category_price[position]
    price = catalogue.list_price_cents[product]
    unit_net = price * net / 100.0
    quantity = np.maximum(1, np.round(line_value / unit_net)).astype(np.int64)
    # The last line fills the basket up to the order's value, as far as whole units allow.
    last = line_number == lines_per_order[order]
    others = np.bincount(order[~last], weights=(quantity * unit_net)[~last], minlength=len(customer))
    remaining = order_value[order] - others[order]
    quantity = np.where(last, np.maximum(1, np.round(remaining / unit_net)), quantity).astype(np.int64)
    return {
        "order": order,
        "line_number": line_number,
        "product": product,
        "quantity": quantity,
        "unit_price_cents": price,
        "discount_bp": discount_bp[order],
        "unit_cost_cents": catalogue.unit_cost_cents[product],
    }
