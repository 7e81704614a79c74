"""Choosing the purchase model per dataset on a time split inside the calibration period.

The calibration period (first purchase to the as-of date) is cut in two: every
candidate is fitted on the customers and purchases up to the cut, predicts each
of those customers' repeat purchases from the cut to the as-of date, and is
scored by the mean absolute error per customer against what they did. The holdout
after the as-of date is never looked at.

Rule: the lowest error wins; candidates within 1 % of it count as tied and the
one with the highest log-likelihood on the earlier window wins among them (the
three models have four parameters each, so likelihoods compare fairly). When the
split is impossible (too short a history) or every candidate fails on the earlier
window, BG/NBD, the baseline, is used and the reason says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from crm_warehouse.analytics.clv.bgnbd import BetaGeoModel, fit_bgnbd
from crm_warehouse.analytics.clv.config import DAYS_PER_UNIT, PURCHASE_MODELS, ClvConfig, FitOptions
from crm_warehouse.analytics.clv.mbgnbd import ModifiedBetaGeoModel, fit_mbgnbd
from crm_warehouse.analytics.clv.mle import ModelFitError
from crm_warehouse.analytics.clv.pareto_nbd import ParetoNBDModel, fit_pareto_nbd

PurchaseModel = BetaGeoModel | ModifiedBetaGeoModel | ParetoNBDModel
BASELINE = "bgnbd"
FITTERS: dict[str, Callable[..., PurchaseModel]] = {
    "bgnbd": fit_bgnbd,
    "mbgnbd": fit_mbgnbd,
    "pareto_nbd": fit_pareto_nbd,
}
LABELS = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD"}
#: Candidates whose error is within this share of the best are tied; log-likelihood breaks the tie.
TIE_TOLERANCE = 0.01
#: Fewest days before and after the cut for a split to be attempted.
_MIN_WINDOW_DAYS = 7


def fit_purchase_model(name: str, summary: pd.DataFrame, options: FitOptions | None = None) -> PurchaseModel:
    """Fit the purchase model ``name`` (one of ``PURCHASE_MODELS``) on a customer summary."""
    if name not in FITTERS:
        raise ValueError(f"model={name!r} is not one of {list(PURCHASE_MODELS)}")
    return FITTERS[name](summary["frequency"], summary["recency"], summary["T"], options=options)


@dataclass(frozen=True)
class CandidateScore:
    """One candidate on the internal split: its error, likelihood and totals, or why it failed."""

    model: str
    mae: float | None = None
    log_likelihood: float | None = None
    predicted: float | None = None
    actual: float | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return LABELS[self.model]


@dataclass(frozen=True)
class ModelSelection:
    """Which purchase model was chosen, on what split, and why."""

    chosen: str
    reason: str
    ranking: tuple[str, ...] = ()
    cut: date | None = None
    validation_days: int = 0
    customers: int = 0
    candidates: tuple[CandidateScore, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "chosen": self.chosen,
            "reason": self.reason,
            "ranking": list(self.ranking),
            "cut": None if self.cut is None else self.cut.isoformat(),
            "validation_days": self.validation_days,
            "customers": self.customers,
            "candidates": [c.__dict__ for c in self.candidates],
        }

    def report(self) -> str:
        """A few lines for people: the candidates' scores and the reason."""
        lines = [f"Model choice: {LABELS[self.chosen]}. {self.reason}"]
        for c in self.candidates:
            if c.error is not None:
                lines.append(f"  {c.label:<11} failed on the earlier window: {c.error}")
            else:
                lines.append(
                    f"  {c.label:<11} MAE {c.mae:.4f}, predicted {c.predicted:,.1f} vs actual {c.actual:,.0f}, "
                    f"log-likelihood {c.log_likelihood:,.2f}"
                )
        return "\n".join(lines)


def selection_cut(first_purchase: date, as_of: date, config: ClvConfig) -> date | None:
    """Where the calibration period is cut: ``selection_share`` of it from the end, at most the horizon.

    ``None`` when either side would be shorter than a week.
    """
    span = (as_of - first_purchase).days
    held_back = int(min(round(span * config.selection_share), round(config.horizon_days)))
    if held_back < _MIN_WINDOW_DAYS or span - held_back < _MIN_WINDOW_DAYS:
        return None
    return as_of - timedelta(days=held_back)


def select_purchase_model(
    earlier: pd.DataFrame,
    later: pd.DataFrame,
    validation_length: float,
    *,
    options: FitOptions | None = None,
    candidates: Sequence[str] = PURCHASE_MODELS,
) -> tuple[tuple[str, ...], str, tuple[CandidateScore, ...]]:
    """Score ``candidates`` fitted on ``earlier`` against the purchases up to ``later``.

    Parameters
    ----------
    earlier, later : pandas.DataFrame
        Customer summaries (frequency, recency, T) at the cut and at the as-of
        date, indexed by customer, in one time unit.
    validation_length : float
        Time from the cut to the as-of date in that unit.

    Returns
    -------
    tuple
        The candidates that fitted, best first (the chosen one, then by error), the
        reason in words, and every candidate's score.
    """
    actual = (later["frequency"].reindex(earlier.index) - earlier["frequency"]).to_numpy(dtype=np.float64)
    scores = []
    for name in candidates:
        try:
            model = fit_purchase_model(name, earlier, options)
            predicted = model.conditional_expected_purchases(
                validation_length, earlier["frequency"], earlier["recency"], earlier["T"]
            )
        except (ModelFitError, ValueError) as exc:
            scores.append(CandidateScore(model=name, error=str(exc)))
            continue
        scores.append(
            CandidateScore(
                model=name,
                mae=float(np.abs(predicted - actual).mean()),
                log_likelihood=model.log_likelihood,
                predicted=float(predicted.sum()),
                actual=float(actual.sum()),
            )
        )
    fitted = [c for c in scores if c.error is None]
    if not fitted:
        return (
            (BASELINE,),
            "Every candidate failed on the earlier window, so the baseline BG/NBD is used.",
            tuple(scores),
        )
    best_mae = min(c.mae for c in fitted)
    tied = [c for c in fitted if c.mae <= best_mae * (1.0 + TIE_TOLERANCE)]
    chosen = max(tied, key=lambda c: c.log_likelihood)
    if len(tied) == 1:
        reason = (
            f"{chosen.label} had the lowest mean absolute error per customer on the internal split ({chosen.mae:.4f})"
        )
    else:
        others = ", ".join(c.label for c in tied if c is not chosen)
        reason = (
            f"{chosen.label} was within {TIE_TOLERANCE:.0%} of the lowest error on the internal split "
            f"({chosen.mae:.4f}, tied with {others}) and had the highest log-likelihood among those"
        )
    baseline = next((c for c in fitted if c.model == BASELINE), None)
    if baseline is not None and chosen.model != BASELINE:
        reason += f"; the baseline BG/NBD had {baseline.mae:.4f}"
    ranking = (chosen.model, *(c.model for c in sorted(fitted, key=lambda c: c.mae) if c is not chosen))
    return ranking, reason + ".", tuple(scores)


def choose_purchase_model(
    summarize: Callable[[date], pd.DataFrame],
    later: pd.DataFrame,
    as_of: date,
    config: ClvConfig,
    options: FitOptions | None = None,
) -> ModelSelection:
    """The model to use on ``later`` (the summary at ``as_of``) according to ``config.model``.

    ``summarize(day)`` gives the customer summary at an earlier day in
    ``config.time_unit``; it is called once, at the cut, when ``config.model`` is ``auto``.
    """
    if config.model != "auto":
        return ModelSelection(
            chosen=config.model, reason=f"{LABELS[config.model]} was asked for.", ranking=(config.model,)
        )
    unit_days = DAYS_PER_UNIT[config.time_unit]
    first_purchase = as_of - timedelta(days=round(float(later["T"].max()) * unit_days))
    cut = selection_cut(first_purchase, as_of, config)
    if cut is None:
        return ModelSelection(
            chosen=BASELINE,
            reason="The history is too short to hold part of it back, so the baseline BG/NBD is used.",
            ranking=(BASELINE,),
        )
    earlier = summarize(cut)
    validation_days = (as_of - cut).days
    ranking, reason, scores = select_purchase_model(earlier, later, validation_days / unit_days, options=options)
    return ModelSelection(
        chosen=ranking[0],
        reason=f"{reason} Split: fitted to {cut.isoformat()}, scored on the {validation_days} days to {as_of}.",
        ranking=ranking,
        cut=cut,
        validation_days=validation_days,
        customers=len(earlier),
        candidates=scores,
    )


def fit_chosen_model(
    selection: ModelSelection, summary: pd.DataFrame, options: FitOptions | None = None
) -> tuple[PurchaseModel, ModelSelection]:
    """Refit the chosen model on the whole calibration period; if that fit fails, the next in the ranking.

    Returns the fitted model and the selection, whose ``chosen`` and ``reason``
    say which model was finally used when it is not the first choice.

    Raises
    ------
    ModelFitError
        When every ranked model fails on the whole period (``model`` is the first choice).
    """
    failures = []
    for name in selection.ranking or (selection.chosen,):
        try:
            model = fit_purchase_model(name, summary, options)
        except ModelFitError as exc:
            failures.append((name, exc))
            continue
        if not failures:
            return model, selection
        failed = "; ".join(f"{LABELS[n]} failed on the whole period ({e})" for n, e in failures)
        return model, ModelSelection(
            chosen=name,
            reason=f"{selection.reason} {failed}, so {LABELS[name]}, next in the ranking, is used.",
            ranking=selection.ranking,
            cut=selection.cut,
            validation_days=selection.validation_days,
            customers=selection.customers,
            candidates=selection.candidates,
        )
    name, first = failures[0]
    others = "".join(f"; {LABELS[n]} failed too ({e})" for n, e in failures[1:])
    raise ModelFitError(f"the {LABELS[name]} fit failed: {first}{others}", model=name) from first
