"""Scores of a probabilistic classifier: AUC, Brier score, calibration error, lift.

Every function takes the observed outcomes ``y`` (0/1 or booleans) and the
predicted probabilities ``p`` of the same length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import roc_auc_score


def _check(y: ArrayLike, p: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``y`` and ``p`` as float arrays, or ``ValueError`` naming the problem."""
    outcomes = np.asarray(y, dtype=np.float64)
    probabilities = np.asarray(p, dtype=np.float64)
    if outcomes.ndim != 1 or outcomes.shape != probabilities.shape:
        raise ValueError(f"y and p must be 1-D of equal length, got shapes {outcomes.shape} and {probabilities.shape}")
    if outcomes.size == 0:
        raise ValueError("y and p are empty")
    if not np.isin(outcomes, (0.0, 1.0)).all():
        raise ValueError(f"y must be 0/1, got values {np.unique(outcomes[~np.isin(outcomes, (0.0, 1.0))])[:5]}")
    bad = ~np.isfinite(probabilities) | (probabilities < 0) | (probabilities > 1)
    if bad.any():
        raise ValueError(f"p has {int(bad.sum())} values outside [0, 1], e.g. {probabilities[bad][0]}")
    return outcomes, probabilities


def auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the ROC curve; ``ValueError`` if ``y`` has one class only."""
    outcomes, probabilities = _check(y, p)
    if outcomes.min() == outcomes.max():
        raise ValueError(f"AUC needs both outcomes, but every y is {int(outcomes[0])}")
    return float(roc_auc_score(outcomes, probabilities))


def auc_standard_error(auc_value: float, n_positive: int, n_negative: int) -> float:
    """Standard error of an AUC (Hanley & McNeil 1982, equation 2)."""
    if n_positive < 1 or n_negative < 1:
        raise ValueError(f"need positives and negatives, got {n_positive} and {n_negative}")
    a = auc_value
    q1, q2 = a / (2.0 - a), 2.0 * a**2 / (1.0 + a)
    variance = (a * (1 - a) + (n_positive - 1) * (q1 - a**2) + (n_negative - 1) * (q2 - a**2)) / (
        n_positive * n_negative
    )
    return float(np.sqrt(variance))


def brier_score(y: ArrayLike, p: ArrayLike) -> float:
    """Mean squared difference between probability and outcome."""
    outcomes, probabilities = _check(y, p)
    return float(np.mean((probabilities - outcomes) ** 2))


def calibration_bins(y: ArrayLike, p: ArrayLike, bins: int = 10) -> tuple[NDArray, NDArray, NDArray]:
    """Per equal-width probability bin: number of cases, mean probability, observed rate.

    Bin ``k`` holds ``k/bins <= p < (k+1)/bins`` (the last also ``p = 1``). Empty bins
    have count 0 and NaN means.
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins={bins!r} must be a whole number >= 1")
    outcomes, probabilities = _check(y, p)
    index = np.minimum((probabilities * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=probabilities, minlength=bins) / count
        rate = np.bincount(index, weights=outcomes, minlength=bins) / count
    return count, mean_p, rate


def expected_calibration_error(y: ArrayLike, p: ArrayLike, bins: int = 10) -> float:
    """ECE: the case-weighted mean over equal-width bins of ``|observed rate - mean probability|``."""
    count, mean_p, rate = calibration_bins(y, p, bins)
    filled = count > 0
    return float(np.sum(count[filled] * np.abs(rate[filled] - mean_p[filled])) / count.sum())


def top_share_lift(y: ArrayLike, p: ArrayLike, share: float = 0.1) -> float:
    """Outcome rate among the top ``share`` of cases by ``p``, divided by the overall rate.

    The top is the ``ceil(share * n)`` highest probabilities; ties at its edge are
    broken by position (stable sort), so the result is deterministic.
    """
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share={share!r} must be in (0, 1]")
    outcomes, probabilities = _check(y, p)
    if outcomes.sum() == 0:
        raise ValueError("lift is undefined: no positive outcome")
    top = np.argsort(-probabilities, kind="stable")[: int(np.ceil(share * outcomes.size))]
    return float(outcomes[top].mean() / outcomes.mean())


@dataclass(frozen=True)
class ClassifierScores:
    """Validation figures of a probability model on one set of cases."""

    auc: float
    auc_standard_error: float
    brier: float
    calibration_error: float
    lift: float
    rows: int
    positive_rate: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def score_classifier(y: ArrayLike, p: ArrayLike, *, bins: int = 10, lift_share: float = 0.1) -> ClassifierScores:
    """AUC (with its standard error), Brier score, ECE over ``bins`` bins and top-``lift_share`` lift."""
    outcomes, probabilities = _check(y, p)
    value = auc(outcomes, probabilities)
    positives = int(outcomes.sum())
    return ClassifierScores(
        auc=value,
        auc_standard_error=auc_standard_error(value, positives, outcomes.size - positives),
        brier=brier_score(outcomes, probabilities),
        calibration_error=expected_calibration_error(outcomes, probabilities, bins),
        lift=top_share_lift(outcomes, probabilities, lift_share),
        rows=int(outcomes.size),
        positive_rate=float(outcomes.mean()),
    )
