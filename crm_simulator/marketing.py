"""Marketing touches: a campaign calendar applied to the customers each campaign targets.

Promotions go to living relationships, care calls to organisations and the most valuable
consumers in formation or stability, win-back calls to lapsing customers (true stage decline,
or silently lapsed), greetings on birthdays and festivals. The chance of a response depends
on the customer's stage when the touch is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from crm_simulator.config import Behaviour, Window
from crm_simulator.lifecycle import (
    CHURNED,
    DECLINE,
    EXPLORATION,
    FORMATION,
    PROSPECT,
    STABILITY,
    Plan,
    stage_at,
)
from crm_warehouse.contracts import CUSTOMER_TYPES, TOUCH_CHANNELS, TOUCH_TYPES

_TYPE = {t: i for i, t in enumerate(TOUCH_TYPES)}
_CHANNEL = {c: i for i, c in enumerate(TOUCH_CHANNELS)}
_CONSUMER = CUSTOMER_TYPES.index("consumer")
_KEY_ACCOUNT = CUSTOMER_TYPES.index("key_account")
HOUR = 1.0 / 24.0

SPRING_FESTIVAL = {
    2020: "01-25",
    2021: "02-12",
    2022: "02-01",
    2023: "01-22",
    2024: "02-10",
    2025: "01-29",
    2026: "02-17",
    2027: "02-06",
    2028: "01-26",
    2029: "02-13",
    2030: "02-03",
}
MID_AUTUMN = {
    2020: "10-01",
    2021: "09-21",
    2022: "09-10",
    2023: "09-29",
    2024: "09-17",
    2025: "10-06",
    2026: "09-25",
    2027: "09-15",
    2028: "10-03",
    2029: "09-22",
    2030: "09-12",
}
ZODIAC = ("Rat", "Ox", "Tiger", "Rabbit", "Dragon", "Snake", "Horse", "Goat", "Monkey", "Rooster", "Dog", "Pig")
# Response propensity by touch type, relative to the stage's base rate.
_TYPE_RESPONSE = {
    "birthday_greeting": 0.8,
    "care_call": 2.0,
    "promotion": 1.0,
    "win_back": 1.0,
    "new_product": 0.8,
    "holiday_greeting": 0.6,
}
_ALIVE = (PROSPECT, EXPLORATION, FORMATION, STABILITY, DECLINE)


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    touch_type: str
    day: int
    share: float
    stages: tuple[int, ...]


@dataclass(frozen=True)
class Touches:
    customer: np.ndarray
    sent: np.ndarray
    campaign: np.ndarray
    touch_type: np.ndarray
    channel: np.ndarray
    responded_at: np.ndarray
    campaign_ids: tuple[str, ...]
    campaign_names: tuple[str, ...]


def campaign_calendar(window: Window) -> list[Campaign]:
    """Campaigns whose send day falls inside the window, in date order."""
    campaigns: list[Campaign] = []
    end = window.start_date + timedelta(days=window.days)
    first_month = date(window.start_date.year, window.start_date.month, 1)
    month = first_month
    while month < end:
        y, m = month.year, month.month
        ym = f"{y}{m:02d}"
        planned = [
            (date(y, m, 10), f"PROMO-{ym}", f"Member Days {y}-{m:02d}", "promotion", 0.15, _ALIVE),
            (date(y, m, 20), f"WINBACK-{ym}", "We miss you, come back", "win_back", 0.5, (DECLINE, CHURNED)),
        ]
        if m == 6:
            planned.append((date(y, 6, 15), f"618-{y}", "618 Mid-Year Sale", "promotion", 0.5, _ALIVE))
        if m == 11:
            planned.append((date(y, 11, 8), f"D11-{y}", "Double 11, Singles' Day Sale", "promotion", 0.5, _ALIVE))
        if m in (3, 9):
            planned.append((date(y, m, 5), f"NEWPROD-{ym}", "New Season Arrivals", "new_product", 0.2, _ALIVE))
        if m in (1, 4, 7, 10):
            planned.append(
                (
                    date(y, m, 15),
                    f"CARE-{y}Q{(m + 2) // 3}",
                    "Quarterly care call",
                    "care_call",
                    0.8,
                    (FORMATION, STABILITY),
                )
            )
        spring = date.fromisoformat(f"{y}-{SPRING_FESTIVAL.get(y, '02-01')}") - timedelta(days=3)
        if spring.month == m:
            name = f"Spring Festival Greetings, Year of the {ZODIAC[(y - 2020) % 12]}"
            planned.append((spring, f"SF-{y}", name, "holiday_greeting", 1.0, (EXPLORATION, FORMATION, STABILITY)))
        autumn = date.fromisoformat(f"{y}-{MID_AUTUMN.get(y, '09-20')}") - timedelta(days=2)
        if autumn.month == m:
            planned.append(
                (autumn, f"MA-{y}", "Mid-Autumn Festival Greetings", "holiday_greeting", 1.0, (FORMATION, STABILITY))
            )
        for when, cid, name, kind, share, stages in planned:
            day = (when - window.start_date).days
            if 0 <= day < window.days:
                campaigns.append(Campaign(cid, name, kind, day, share, stages))
        month = date(y + (m == 12), m % 12 + 1, 1)
    return sorted(campaigns, key=lambda c: (c.day, c.campaign_id))


def _channel(rng: np.random.Generator, touch_type: str, customer_type: np.ndarray) -> np.ndarray:
    n = len(customer_type)
    consumer = customer_type == _CONSUMER
    if touch_type == "care_call":
        return np.full(n, _CHANNEL["call"])
    if touch_type == "birthday_greeting":
        return np.where(customer_type == _KEY_ACCOUNT, _CHANNEL["gift"], _CHANNEL["sms"])
    if touch_type == "holiday_greeting":
        return np.where(consumer, _CHANNEL["sms"], np.where(rng.random(n) < 0.5, _CHANNEL["gift"], _CHANNEL["letter"]))
    if touch_type == "win_back":
        return np.where(consumer, np.where(rng.random(n) < 0.6, _CHANNEL["sms"], _CHANNEL["email"]), _CHANNEL["call"])
    if touch_type == "new_product":
        return np.where(rng.random(n) < 0.7, _CHANNEL["email"], _CHANNEL["letter"])
    return np.where(rng.random(n) < 0.5, _CHANNEL["sms"], _CHANNEL["email"])


def _birthdays(plan: Plan, window: Window, churned_from: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(customer, day) of every birthday inside the window while the relationship lasts."""
    birth = np.datetime64(window.start_date, "D") + plan.birth_day.astype("timedelta64[D]")
    birth_month = birth.astype("datetime64[M]")
    month_of_year = birth_month.astype(np.int64) % 12
    day_of_month = (birth - birth_month.astype("datetime64[D]")).astype(np.int64)
    customers, days = [], []
    last_year = (window.start_date + timedelta(days=window.days - 1)).year
    for year in range(window.start_date.year, last_year + 1):
        month_start = np.datetime64(f"{year}-01", "M") + month_of_year
        month_length = ((month_start + 1).astype("datetime64[D]") - month_start.astype("datetime64[D]")).astype(
            np.int64
        )
        # 29 February birthdays are celebrated on 28 February in other years.
        when = month_start.astype("datetime64[D]") + np.minimum(day_of_month, month_length - 1)
        day = (when - np.datetime64(window.start_date, "D")).astype(np.int64)
        ok = (
            (day >= 0)
            & (day < window.days)
            & (day >= np.ceil(plan.signup))
            & (day < plan.close_day)
            & (day < churned_from)
        )
        customers.append(np.flatnonzero(ok))
        days.append(day[ok])
    return np.concatenate(customers), np.concatenate(days)


def make_touches(
    rng: np.random.Generator, plan: Plan, churned_from: np.ndarray, window: Window, b: Behaviour
) -> Touches:
    """Every touch sent inside the window, with the customer's response."""
    campaigns = campaign_calendar(window)
    signup_day = np.floor(plan.signup).astype(np.int64)
    top_value = plan.order_value * plan.plateau_rate >= np.quantile(plan.order_value * plan.plateau_rate, 0.8)
    parts = []
    for index, campaign in enumerate(campaigns):
        candidate = np.flatnonzero((signup_day <= campaign.day) & (plan.close_day > campaign.day))
        if campaign.touch_type == "care_call":
            candidate = candidate[(plan.customer_type[candidate] != _CONSUMER) | top_value[candidate]]
        stage = stage_at(plan, candidate, np.full(len(candidate), campaign.day), churned_from, b)
        chosen = np.isin(stage, campaign.stages) & (rng.random(len(candidate)) < campaign.share)
        parts.append(
            (candidate[chosen], np.full(chosen.sum(), campaign.day), np.full(chosen.sum(), index), campaign.touch_type)
        )

    who, day = _birthdays(plan, window, churned_from)
    birthday_year = (np.datetime64(window.start_date, "D") + day.astype("timedelta64[D]")).astype(
        "datetime64[Y]"
    ).astype(np.int64) + 1970
    years = np.unique(birthday_year)
    parts.append((who, day, len(campaigns) + np.searchsorted(years, birthday_year), "birthday_greeting"))

    customer = np.concatenate([p[0] for p in parts])
    send_day = np.concatenate([p[1] for p in parts])
    campaign = np.concatenate([p[2] for p in parts])
    touch_type = np.concatenate([np.full(len(p[0]), _TYPE[p[3]]) for p in parts]).astype(np.int8)
    channel = np.concatenate([_channel(rng, p[3], plan.customer_type[p[0]]) for p in parts]).astype(np.int8)
    sent = send_day + rng.uniform(9.0, 20.0, len(customer)) * HOUR

    stage = stage_at(plan, customer, send_day, churned_from, b)
    factor = np.array([_TYPE_RESPONSE[t] for t in TOUCH_TYPES])[touch_type]
    responds = rng.random(len(customer)) < np.minimum(np.asarray(b.response_rate)[stage] * factor, 0.9)
    delay = np.where(
        channel == _CHANNEL["call"], rng.uniform(0.05, 0.5, len(customer)) * HOUR, rng.exponential(1.5, len(customer))
    )
    responded_at = np.where(responds, sent + delay, np.inf)
    responded_at = np.where(responded_at < window.days, responded_at, np.inf)

    ids = tuple(c.campaign_id for c in campaigns) + tuple(f"BDAY-{y}" for y in years)
    names = tuple(c.name for c in campaigns) + ("Birthday greetings",) * len(years)
    return Touches(customer, sent, campaign, touch_type, channel, responded_at, ids, names)
