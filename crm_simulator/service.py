"""Service tickets and satisfaction surveys.

Tickets come from four mechanisms: inquiries at a stage-dependent rate (exploration costs the
most to serve, stability the least, decline more again); complaints after delivery or quality
failures of orders (more frequent for a poor latent service experience) plus a background of
billing/attitude/account complaints; praise from satisfied customers; and, for customers who
leave dissatisfied, the complaint that triggered the exit, which mostly stays unresolved.
Survey scores follow the customer's latent satisfaction, shifted by the current stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_simulator.config import Behaviour
from crm_simulator.lifecycle import (
    DECLINE,
    EXPLORATION,
    FORMATION,
    PROSPECT,
    STABILITY,
    Plan,
    stage_at,
)
from crm_simulator.orders import Orders
from crm_warehouse.contracts import (
    CLOSE_REASONS,
    FAULT_PARTIES,
    TICKET_CATEGORIES,
    TICKET_TYPES,
)

INQUIRY, COMPLAINT, PRAISE = (TICKET_TYPES.index(t) for t in ("inquiry", "complaint", "praise"))
_CATEGORY = {c: i for i, c in enumerate(TICKET_CATEGORIES)}
_FAULT = {f: i for i, f in enumerate(FAULT_PARTIES)}
_DISSATISFIED = CLOSE_REASONS.index("dissatisfied")
HOUR = 1.0 / 24.0

# Ticket channel preference by customer type (rows: CUSTOMER_TYPES; columns: TICKET_CHANNELS).
_CHANNEL_BY_TYPE = np.array(
    [
        [0.30, 0.10, 0.30, 0.10, 0.20],
        [0.55, 0.30, 0.10, 0.05, 0.00],
        [0.60, 0.35, 0.05, 0.00, 0.00],
        [0.45, 0.45, 0.10, 0.00, 0.00],
    ]
)
# Stage shift of how satisfied a customer feels when answering a survey (index: stage code).
_SURVEY_STAGE_SHIFT = np.array([0.0, -0.03, 0.02, 0.06, -0.18, -0.25])
_INTENT_COMMITMENT = np.array([0.5, 0.7, 0.85, 1.0, 0.55, 0.3])


@dataclass(frozen=True)
class Tickets:
    """One row per ticket (not per exported version); times are fractional days."""

    customer: np.ndarray
    opened: np.ndarray
    first_response: np.ndarray
    resolved: np.ndarray
    channel: np.ndarray
    ticket_type: np.ndarray
    category: np.ndarray
    fault_party: np.ndarray
    first_contact_resolved: np.ndarray
    escalated: np.ndarray
    satisfaction_after: np.ndarray


@dataclass(frozen=True)
class Surveys:
    customer: np.ndarray
    responded: np.ndarray
    csat: np.ndarray
    nps: np.ndarray
    expectation: np.ndarray
    perception: np.ndarray
    repurchase_intent: np.ndarray


def events_in_intervals(
    rng: np.random.Generator, customer: np.ndarray, start: np.ndarray, stop: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events at ``rate`` per day in [start, stop) per row; returns (customer, time)."""
    length = np.maximum(np.nan_to_num(stop - start, posinf=0.0, neginf=0.0), 0.0)
    count = rng.poisson(rate * length)
    row = np.repeat(np.arange(len(customer)), count)
    return customer[row], start[row] + rng.random(len(row)) * length[row]


def stage_intervals(plan: Plan, days: int, b: Behaviour) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(stage, customer, start, stop) of each customer's active stages inside the window."""
    everyone = np.arange(plan.size)
    first = plan.first_order
    end = np.minimum(plan.dropout, float(days))
    decline = plan.decline_start
    formation_end = first + b.formation_days
    exploration_end = np.where(plan.pattern == 0, end, first + b.exploration_days)
    return [
        (PROSPECT, everyone, plan.signup, np.minimum(first, float(days))),
        (EXPLORATION, everyone, first, np.minimum(exploration_end, end)),
        (FORMATION, everyone, first + b.exploration_days, np.minimum.reduce([formation_end, decline, end])),
        (STABILITY, everyone, formation_end, np.minimum(decline, end)),
        (DECLINE, everyone, decline, end),
    ]


def _choose(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(probabilities, axis=1)
    draw = rng.random(len(probabilities)) * cumulative[:, -1]
    return (cumulative <= draw[:, None]).sum(axis=1).clip(0, probabilities.shape[1] - 1)


def make_tickets(rng: np.random.Generator, plan: Plan, orders: Orders, days: int, b: Behaviour) -> Tickets:
    """All tickets opened inside the window."""
    parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray]] = []
    type_factor = np.asarray(b.inquiry_type_factor)[plan.customer_type]
    for stage, who, start, stop in stage_intervals(plan, days, b):
        rate = b.inquiry_rate_30d[stage] / 30.0 * type_factor
        customer, t = events_in_intervals(rng, who, start, stop, rate)
        category = rng.choice(
            [_CATEGORY[c] for c in ("product_quality", "delivery", "billing", "account", "other")],
            len(t),
            p=[0.3, 0.25, 0.15, 0.15, 0.15],
        )
        parts.append((customer, t, INQUIRY, category))
        if stage in (FORMATION, STABILITY):
            praise_rate = b.praise_rate_30d / 30.0 * plan.satisfaction[who] ** 2
            customer, t = events_in_intervals(rng, who, start, stop, praise_rate)
            parts.append((customer, t, PRAISE, np.full(len(t), _CATEGORY["service_attitude"])))
        if stage != PROSPECT:
            complaint_rate = b.other_complaint_rate_30d / 30.0 * (1.0 - plan.service[who]) * 2.0
            customer, t = events_in_intervals(rng, who, start, stop, complaint_rate)
            category = rng.choice(
                [_CATEGORY[c] for c in ("billing", "service_attitude", "account", "other")],
                len(t),
                p=[0.4, 0.3, 0.15, 0.15],
            )
            parts.append((customer, t, COMPLAINT, category))

    failed = orders.delivery_failure | orders.quality_failure
    complains = failed & (rng.random(orders.size) < b.complaint_after_failure)
    quality = orders.quality_failure[complains]
    order_time = orders.time[complains]
    delay = np.where(quality, rng.uniform(2.0, 14.0, len(quality)), rng.uniform(1.0, 6.0, len(quality)))
    parts.append(
        (
            orders.customer[complains],
            order_time + delay,
            COMPLAINT,
            np.where(quality, _CATEGORY["product_quality"], _CATEGORY["delivery"]),
        )
    )

    # The complaint that made a dissatisfied customer leave, shortly before the decline (or exit).
    leaver = np.flatnonzero(plan.close_reason == _DISSATISFIED)
    trigger_end = np.where(plan.pattern[leaver] == 0, plan.dropout[leaver], plan.decline_start[leaver])
    trigger = np.maximum(plan.first_order[leaver] + 0.1, trigger_end - rng.uniform(0.0, 15.0, len(leaver)))
    trigger_category = rng.choice(
        [_CATEGORY[c] for c in ("product_quality", "delivery", "service_attitude", "billing")],
        len(leaver),
        p=[0.35, 0.3, 0.2, 0.15],
    )
    trigger_parts = (leaver, trigger, COMPLAINT, trigger_category)

    customer = np.concatenate([p[0] for p in parts] + [trigger_parts[0]])
    opened = np.concatenate([p[1] for p in parts] + [trigger_parts[1]])
    ticket_type = np.concatenate([np.full(len(p[0]), p[2]) for p in parts] + [np.full(len(leaver), COMPLAINT)]).astype(
        np.int8
    )
    category = np.concatenate([p[3] for p in parts] + [trigger_parts[3]]).astype(np.int8)
    is_trigger = np.concatenate([np.zeros(len(customer) - len(leaver), dtype=bool), np.ones(len(leaver), dtype=bool)])
    # Office-hours contact times replace the fractional part of the day.
    opened = np.floor(opened) + rng.uniform(8.0, 21.0, len(opened)) * HOUR
    inside = (opened >= plan.signup[customer]) & (opened < days) & (opened < plan.close_at[customer])
    customer, opened, ticket_type, category, is_trigger = (
        a[inside] for a in (customer, opened, ticket_type, category, is_trigger)
    )
    return _handle(rng, plan, customer, opened, ticket_type, category, is_trigger, b)


def _handle(
    rng: np.random.Generator,
    plan: Plan,
    customer: np.ndarray,
    opened: np.ndarray,
    ticket_type: np.ndarray,
    category: np.ndarray,
    is_trigger: np.ndarray,
    b: Behaviour,
) -> Tickets:
    """How each ticket was handled: response, escalation, resolution, rating."""
    n = len(customer)
    service = plan.service[customer]
    complaint = ticket_type == COMPLAINT
    channel = _choose(rng, _CHANNEL_BY_TYPE[plan.customer_type[customer]]).astype(np.int8)
    response_hours = np.where(complaint, rng.exponential(6.0, n), rng.exponential(0.8, n))
    first_response = opened + np.maximum(response_hours, 0.02) * HOUR
    escalated = np.where(complaint, rng.random(n) < 0.1 + 0.3 * (1.0 - service), rng.random(n) < 0.02)
    fcr_chance = np.select([ticket_type == PRAISE, complaint], [1.0, 0.25 * (1.0 - escalated)], default=0.85)
    first_contact = (rng.random(n) < fcr_chance) & ~escalated
    work_days = np.where(complaint, rng.exponential(2.5, n) * (1.0 + 1.5 * escalated), rng.exponential(0.3, n))
    resolved = np.where(first_contact, first_response, first_response + work_days)
    unresolved_chance = np.where(
        is_trigger,
        b.trigger_unresolved,
        np.where(
            complaint,
            b.complaint_unresolved[0] + (b.complaint_unresolved[1] - b.complaint_unresolved[0]) * (1.0 - service),
            0.0,
        ),
    )
    unresolved = rng.random(n) < unresolved_chance
    resolved = np.where(unresolved, np.inf, resolved)

    fault = np.select(
        [ticket_type != COMPLAINT, category == _CATEGORY["delivery"], category == _CATEGORY["billing"]],
        [
            _FAULT["none"],
            np.where(rng.random(n) < 0.5, _FAULT["third_party"], _FAULT["company"]),
            np.where(rng.random(n) < 0.3, _FAULT["customer"], _FAULT["company"]),
        ],
        default=np.where(rng.random(n) < 0.15, _FAULT["customer"], _FAULT["company"]),
    ).astype(np.int8)
    speed_penalty = np.clip((resolved - opened) / 7.0, 0.0, 1.0)
    mood = np.where(complaint, 0.35 + 0.5 * service - 0.35 * speed_penalty - 0.3 * is_trigger, 0.75 + 0.2 * service)
    rating = np.clip(np.round(1.0 + 4.0 * mood + 0.6 * rng.standard_normal(n)), 1, 5)
    rated = np.isfinite(resolved) & (rng.random(n) < 0.7)
    satisfaction_after = np.where(rated, rating, 0).astype(np.int8)
    return Tickets(
        customer=customer,
        opened=opened,
        first_response=first_response,
        resolved=resolved,
        channel=channel,
        ticket_type=ticket_type,
        category=category,
        fault_party=fault,
        first_contact_resolved=first_contact,
        escalated=escalated,
        satisfaction_after=satisfaction_after,
    )


def make_surveys(rng: np.random.Generator, plan: Plan, churned_from: np.ndarray, days: int, b: Behaviour) -> Surveys:
    """Survey answers from the customers who answer surveys, while the relationship lasts."""
    respondent = np.flatnonzero(plan.buyer & (rng.random(plan.size) < b.survey_share))
    start = plan.first_order[respondent] + 14.0
    stop = np.minimum.reduce(
        [plan.dropout[respondent] + 30.0, plan.close_at[respondent], np.full(len(respondent), float(days))]
    )
    customer, t = events_in_intervals(
        rng, respondent, start, stop, np.full(len(respondent), 1.0 / b.survey_interval_days)
    )
    t = np.floor(t) + rng.uniform(9.0, 22.0, len(t)) * HOUR
    inside = (t < days) & (t < plan.close_at[customer])
    customer, t = customer[inside], t[inside]
    n = len(customer)
    stage = stage_at(plan, customer, np.floor(t).astype(np.int64), churned_from, b)
    feel = np.clip(plan.satisfaction[customer] + _SURVEY_STAGE_SHIFT[stage] + 0.08 * rng.standard_normal(n), 0.0, 1.0)
    expectation = np.clip(
        np.round(7.4 + 0.6 * (plan.customer_type[customer] > 0) + 0.8 * rng.standard_normal(n), 1), 1.0, 10.0
    )
    perception = np.clip(np.round(expectation * (0.65 + 0.5 * feel) + 0.4 * rng.standard_normal(n), 1), 1.0, 10.0)
    csat = np.clip(np.round(0.6 + 4.6 * feel + 0.45 * rng.standard_normal(n)), 1, 5)
    nps = np.clip(np.round(10.5 * feel - 0.3 + rng.standard_normal(n)), 0, 10)
    intent = np.clip(np.round(1.0 + 4.0 * feel * _INTENT_COMMITMENT[stage] + 0.5 * rng.standard_normal(n)), 1, 5)
    # Not every question is answered: a missing score is stored as NaN here, null in the file.
    skipped_scale = rng.random(n) < 0.10
    return Surveys(
        customer=customer,
        responded=t,
        csat=csat,
        nps=np.where(rng.random(n) < 0.05, np.nan, nps),
        expectation=np.where(skipped_scale, np.nan, expectation),
        perception=np.where(skipped_scale, np.nan, perception),
        repurchase_intent=np.where(rng.random(n) < 0.08, np.nan, intent),
    )
