"""Settings of the churn model, in one place (a field of the one configuration, ``Settings.churn``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChurnConfig:
    """Settings of the churn model (label, time split, booster, risk bands).

    The stage rule that says who has already churned (account closed, or no order
    for ``churn_inactive_days``) and the 90-day trend windows are dbt vars, read
    through ``int_customer_months__staged``; they are not repeated here.

    Attributes
    ----------
    horizon_days : int
        A customer churns when it places no completed order in the ``horizon_days``
        after the cutoff, or its account closes in that window.
    training_cutoffs : int
        Consecutive month-end cutoffs stacked into the training set (more rows for
        the booster; every label window still ends before the validation cutoff).
    train_sample_rows : int
        Customer-cutoff rows the booster and its calibration are fitted on: a
        sample stratified by cutoff and label, drawn in DuckDB (all rows when
        there are fewer). Measured in docs/performance.md (churn model).
    validation_sample_rows : int
        Customers of the validation cutoff the recipe is validated on (AUC, ECE,
        lift, the BG/NBD baseline): a sample stratified by label, drawn in the
        warehouse (all customers when there are fewer), so no process holds every
        customer of a large company (Spark) while the figures stay precise to
        about 0.002 in AUC.
    calibration_folds : int
        Folds (grouped by customer) of the cross-fitted isotonic calibration: a
        booster per fold on the other folds' rows, besides the one that scores.
    score_batch_rows : int
        Customers scored per batch streamed from DuckDB (memory follows it).
    recent_months : int
        Months (the cutoff's and the ones before) over which recent complaints,
        tickets, praise and marketing responses are counted.
    num_boost_round, learning_rate, num_leaves, min_data_in_leaf, feature_fraction,
    bagging_fraction, lambda_l2 : LightGBM settings.
    seed, num_threads : int
        Fixed for reproducible fits.
    medium_risk_min, high_risk_min : float
        Risk bands: low below ``medium_risk_min`` (about the usual 90-day churn rate
        of active customers, 22-25 % on the simulated company), high from
        ``high_risk_min`` (churn more likely than not).
    ece_bins : int
        Equal-width probability bins of the expected calibration error.
    lift_share : float
        Top share of customers by score whose churn rate gives the lift (0.1 = top decile).
    """

    horizon_days: int = 90
    training_cutoffs: int = 3
    train_sample_rows: int = 100_000
    validation_sample_rows: int = 200_000
    calibration_folds: int = 2
    score_batch_rows: int = 100_000
    recent_months: int = 3
    num_boost_round: int = 300
    learning_rate: float = 0.03
    num_leaves: int = 15
    min_data_in_leaf: int = 40
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    seed: int = 7
    num_threads: int = 2
    medium_risk_min: float = 0.2
    high_risk_min: float = 0.5
    ece_bins: int = 10
    lift_share: float = 0.1

    def __post_init__(self) -> None:
        for name in (
            "horizon_days",
            "training_cutoffs",
            "train_sample_rows",
            "validation_sample_rows",
            "score_batch_rows",
            "recent_months",
            "num_boost_round",
            "num_leaves",
            "min_data_in_leaf",
            "num_threads",
            "ece_bins",
        ):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name}={value!r} must be a whole number >= 1")
        if self.calibration_folds < 2:
            raise ValueError(f"calibration_folds={self.calibration_folds!r} must be at least 2")
        for name in ("learning_rate", "feature_fraction", "bagging_fraction", "lift_share"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be in (0, 1]")
        if not 0.0 < self.medium_risk_min < self.high_risk_min < 1.0:
            raise ValueError(
                f"risk bands need 0 < medium_risk_min < high_risk_min < 1, got "
                f"{self.medium_risk_min!r} and {self.high_risk_min!r}"
            )
