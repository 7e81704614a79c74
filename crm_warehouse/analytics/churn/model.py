"""Churn model: LightGBM on point-in-time features, cross-fitted isotonic calibration, time-split validation.

Label (see :func:`~crm_warehouse.analytics.churn.features.churn_features`): no
completed order in the ``horizon_days`` after a month-end cutoff, or the account
closed in that window; customers already churned at the cutoff and prospects are
not scored.

Time split. With ``H = horizon_days`` and the warehouse's as-of date ``D``:

* validation cutoff ``v``: the latest panel day with ``v + H <= D`` (its labels are observed);
* training cutoffs: the latest ``training_cutoffs`` month ends ``c`` with ``c + H <= v``,
  so no training label window overlaps the validation window;
* the model that is saved and scores customers is then refitted with the same
  recipe one step later (the latest cutoffs with ``c + H <= D``), so it sees the
  newest behaviour; the validated figures describe that recipe at the same
  distance between training and scoring.

Training rows: a stratified sample (by cutoff and label, ``train_sample_rows``,
drawn in DuckDB) of the customers in a scored stage at the training cutoffs; a
company smaller than the sample trains on all of them.

Calibration: isotonic regression on out-of-fold booster probabilities of the
training rows, folds grouped by customer (a customer's cutoffs stay in one fold,
churners dealt evenly), as scikit-learn's ``CalibratedClassifierCV(ensemble=False)``
does. Two folds by default (``calibration_folds``): one booster per fold on half
the rows, then the booster that scores on all of them. Why cross-fitted: a
separate calibration period would need a third non-overlapping 90-day label
window, and with two years of history (and a company still growing) the oldest
usable cutoffs have few customers; a held-out share of the training customers
leaves fewer rows to both the booster and the map (on the 3,000-customer test
company it raised the calibration error from 0.018-0.020 to 0.025-0.031, see
docs/performance.md, churn model at scale);
cross-fitting uses every training row for both, and the out-of-fold
probabilities are as honest as held-out ones because no row is scored by trees
that saw it. Why isotonic: it assumes only that the booster ranks customers
well, not that its distortion is a sigmoid (Platt); Platt on the same held-out
rows did no better. Validation is on the later cutoff, untouched by either fit. Inside a flat step
of the map the booster's probability breaks ties, so the ranking stays the booster's.

Drivers: per-feature contributions from path attribution
(:mod:`~crm_warehouse.analytics.churn.attribution`), the top three phrased.

Baseline: the BG/NBD model fitted on the purchase days up to the validation
cutoff, scoring ``P(no purchase in (T, T + H] | x, t_x, T) = 1 - P(alive) +
P(alive) ((alpha + T) / (alpha + T + H)) ** (r + x)`` (while alive, a customer
buys as a Poisson process with rate ``lambda ~ Gamma(r + x, alpha + T)``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from typing import Any

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.isotonic import IsotonicRegression

from crm_warehouse.analytics.churn.attribution import PathAttribution
from crm_warehouse.analytics.churn.config import ChurnConfig
from crm_warehouse.analytics.churn.drivers import N_DRIVERS, top_drivers
from crm_warehouse.analytics.churn.features import (
    FEATURES,
    LABEL,
    UNSCORED_REASON,
    evaluation_dates,
    open_account_batches,
    sample_training_rows,
    warehouse_as_of,
)
from crm_warehouse.analytics.clv.bgnbd import BetaGeoModel, check_rfm, fit_bgnbd
from crm_warehouse.analytics.clv.config import DAYS_PER_UNIT, ClvConfig
from crm_warehouse.analytics.clv.summary import summarize_transactions_sql
from crm_warehouse.analytics.metrics import ClassifierScores, score_classifier
from crm_warehouse.warehouse.relations import INT_ORDER_DAYS_SEQUENCED

#: Weight of the booster probability added to the calibrated one (see ``ChurnModel._calibrated``).
_TIE_BREAK = 1e-9

SCORE_COLUMNS = (
    "customer_id",
    "churn_probability",
    "risk_band",
    *(f"driver_{i + 1}" for i in range(N_DRIVERS)),
    "top_drivers",
)


def booster_params(config: ChurnConfig) -> dict[str, Any]:
    """LightGBM parameters of the churn booster (deterministic for a fixed seed and thread count)."""
    return {
        "objective": "binary",
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": config.feature_fraction,
        "bagging_fraction": config.bagging_fraction,
        "bagging_freq": 1,
        "lambda_l2": config.lambda_l2,
        "seed": config.seed,
        "num_threads": config.num_threads,
        "deterministic": True,
        "force_col_wise": True,
        "verbose": -1,
    }


@dataclass(frozen=True, eq=False)
class ChurnModel:
    """A fitted, calibrated churn model.

    Attributes
    ----------
    booster : lightgbm.Booster
        Gradient-boosted trees on :data:`FEATURES` predicting the label.
    calibration_x, calibration_y : numpy.ndarray
        Knots of the isotonic calibration map (booster probability -> calibrated
        probability), interpolated linearly and clipped at the ends.
    horizon_days : int
        Label window after the cutoff.
    training_cutoffs : tuple of datetime.date
        Cutoffs whose customers were the training rows.
    training_rows : int
        Number of training rows.
    training_churn_rate : float
        Share of churners among the training rows.
    params : dict
        LightGBM parameters, with ``num_boost_round``.
    """

    booster: lgb.Booster
    calibration_x: NDArray[np.float64]
    calibration_y: NDArray[np.float64]
    horizon_days: int
    training_cutoffs: tuple[date, ...]
    training_rows: int
    training_churn_rate: float
    params: dict[str, Any]

    def _matrix(self, features: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in FEATURES if c not in features.columns]
        if missing:
            raise ValueError(f"features has no column {missing}")
        return features[list(FEATURES)]

    def _calibrated(self, raw_probability: NDArray[np.float64]) -> NDArray[np.float64]:
        # Inside a flat step of the isotonic map the booster's own order breaks the tie, by a
        # nudge far below any digit reported (1e-9): the ranking, hence the AUC, stays the booster's.
        return np.interp(raw_probability, self.calibration_x, self.calibration_y) + _TIE_BREAK * raw_probability

    def predict(self, features: pd.DataFrame) -> NDArray[np.float64]:
        """Calibrated churn probability per row of ``features`` (columns :data:`FEATURES`)."""
        raw = np.asarray(self.booster.predict(self._matrix(features)), dtype=np.float64)
        return self._calibrated(raw)

    @cached_property
    def _attribution(self) -> PathAttribution:
        return PathAttribution.of(self.booster)

    def predict_with_contributions(self, features: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Calibrated probability and per-feature contributions, from one pass over the trees.

        The contributions are the path attributions of
        :mod:`~crm_warehouse.analytics.churn.attribution` in log-odds, one column per
        feature of :data:`FEATURES` (bias left out); the row's leaves give its
        log-odds too, so the probability needs no second prediction. The
        calibration map is increasing, so a feature that raises the log-odds
        raises the calibrated probability too.
        """
        leaves = self.booster.predict(self._matrix(features), pred_leaf=True)
        log_odds, contributions = self._attribution.explain(leaves)
        return self._calibrated(1.0 / (1.0 + np.exp(-log_odds))), contributions

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the booster as LightGBM's text model)."""
        return {
            "booster": self.booster.model_to_string(),
            "calibration_x": self.calibration_x.tolist(),
            "calibration_y": self.calibration_y.tolist(),
            "horizon_days": self.horizon_days,
            "training_cutoffs": [c.isoformat() for c in self.training_cutoffs],
            "training_rows": self.training_rows,
            "training_churn_rate": self.training_churn_rate,
            "params": self.params,
            "features": list(FEATURES),
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> ChurnModel:
        """Inverse of :meth:`to_dict`; ``ValueError`` if the features differ from this code's."""
        if payload.get("features") != list(FEATURES):
            raise ValueError("the saved churn model was trained on other features than this code computes; retrain it")
        return cls(
            booster=lgb.Booster(model_str=payload["booster"]),
            calibration_x=np.asarray(payload["calibration_x"], dtype=np.float64),
            calibration_y=np.asarray(payload["calibration_y"], dtype=np.float64),
            horizon_days=int(payload["horizon_days"]),
            training_cutoffs=tuple(date.fromisoformat(c) for c in payload["training_cutoffs"]),
            training_rows=int(payload["training_rows"]),
            training_churn_rate=float(payload["training_churn_rate"]),
            params=dict(payload["params"]),
        )


def _labels(frame: pd.DataFrame, what: str) -> NDArray[np.int64]:
    """The label as 0/1, or ``ValueError`` if it is missing or has one class only."""
    missing = [c for c in (*FEATURES, LABEL, "customer_id") if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} has no column {missing}")
    if frame.empty:
        raise ValueError(f"{what} has no rows")
    labels = frame[LABEL]
    if labels.isna().any():
        raise ValueError(
            f"{what}: {int(labels.isna().sum())} rows have no label (their window runs past the as-of date)"
        )
    y = labels.astype(bool).to_numpy().astype(np.int64)
    if y.min() == y.max():
        raise ValueError(
            f"{what}: the label has a single class (every one of {y.size} customers "
            f"{'churned' if y[0] else 'stayed'}); a churn model needs both"
        )
    return y


def _train_booster(features: pd.DataFrame, y: NDArray[np.int64], config: ChurnConfig) -> lgb.Booster:
    dataset = lgb.Dataset(features[list(FEATURES)], label=y, free_raw_data=True)
    return lgb.train(booster_params(config), dataset, num_boost_round=config.num_boost_round)


def customer_folds(customer_ids: ArrayLike, y: ArrayLike, folds: int, seed: int) -> NDArray[np.int64]:
    """Fold (0 .. ``folds - 1``) of every row: all rows of a customer in one fold, churners dealt evenly.

    Customers are ordered by whether any of their rows churned, then at random
    (``seed``), and dealt round-robin, so each fold's customer count and its number
    of customers with a churned row differ from the others' by at most one.
    Linear time (scikit-learn's ``StratifiedGroupKFold`` took 28 s for 200,000 rows).
    """
    if int(folds) != folds or folds < 2:
        raise ValueError(f"folds={folds!r} must be a whole number >= 2")
    customers, row_customer = np.unique(np.asarray(customer_ids), return_inverse=True)
    churned = np.zeros(customers.size, dtype=np.int64)
    np.maximum.at(churned, row_customer, np.asarray(y, dtype=np.int64))
    shuffled = np.random.default_rng(seed).permutation(customers.size)
    dealt = np.lexsort((shuffled, churned))
    fold = np.empty(customers.size, dtype=np.int64)
    fold[dealt] = np.arange(customers.size) % folds
    return fold[row_customer]


def isotonic_map(raw_probability: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Knots ``(x, y)`` of the isotonic map from booster probability to observed churn rate.

    Between knots the map is interpolated linearly, outside them clipped
    (:meth:`ChurnModel.predict`). No finite sample shows certainty: the rates stay
    half a row away from 0 and 1.
    """
    outcomes = np.asarray(y, dtype=np.float64)
    floor = 0.5 / outcomes.size
    isotonic = IsotonicRegression(y_min=floor, y_max=1.0 - floor).fit(raw_probability, outcomes)
    return np.asarray(isotonic.X_thresholds_, dtype=np.float64), np.asarray(isotonic.y_thresholds_, dtype=np.float64)


def fit_churn_model(training: pd.DataFrame, config: ChurnConfig | None = None) -> ChurnModel:
    """Fit the booster and its cross-fitted isotonic calibration on labelled rows.

    Parameters
    ----------
    training : pandas.DataFrame
        Rows of :func:`~crm_warehouse.analytics.churn.features.churn_features`
        (one or more cutoffs): ``customer_id``, ``cutoff``, :data:`FEATURES` and ``churned``.
    config : ChurnConfig, optional
        Defaults to ``ChurnConfig()``.

    Raises
    ------
    ValueError
        For missing columns or labels, a single-class label, or fewer churners
        or stayers (or customers) than calibration folds.
    """
    config = config or ChurnConfig()
    y = _labels(training, "training data")
    smallest = int(min(y.sum(), y.size - y.sum()))
    customers = training["customer_id"].to_numpy()
    if smallest < config.calibration_folds or np.unique(customers).size < config.calibration_folds:
        raise ValueError(
            f"training data: {smallest} rows in the smaller class and {np.unique(customers).size} customers; "
            f"the calibration needs at least calibration_folds={config.calibration_folds} of each"
        )
    features = training[list(FEATURES)].reset_index(drop=True)
    fold = customer_folds(customers, y, config.calibration_folds, config.seed)
    out_of_fold = np.empty(y.size)
    for held in range(config.calibration_folds):
        held_rows = fold == held
        booster = _train_booster(features[~held_rows], y[~held_rows], config)
        out_of_fold[held_rows] = booster.predict(features[held_rows])
    calibration_x, calibration_y = isotonic_map(out_of_fold, y)
    return ChurnModel(
        booster=_train_booster(features, y, config),
        calibration_x=calibration_x,
        calibration_y=calibration_y,
        horizon_days=config.horizon_days,
        training_cutoffs=tuple(sorted(set(training["cutoff"]))),
        training_rows=int(y.size),
        training_churn_rate=float(y.mean()),
        params={**booster_params(config), "num_boost_round": config.num_boost_round},
    )


@dataclass(frozen=True)
class ChurnSplit:
    """Cutoffs of a time split: training cutoffs whose label windows end by the validation cutoff."""

    training: tuple[date, ...]
    validation: date


def _cutoffs_with_window(days: Sequence[date], end: date, horizon_days: int, count: int) -> tuple[date, ...]:
    """The latest ``count`` panel days whose label window ends on or before ``end``."""
    horizon = timedelta(days=horizon_days)
    usable = sorted(d for d in days if d + horizon <= end)
    if not usable:
        span = f"{days[0].isoformat()} .. {days[-1].isoformat()}" if days else "none"
        raise ValueError(
            f"no cutoff has its {horizon_days}-day label window inside the history up to {end.isoformat()} "
            f"(panel days: {span})"
        )
    return tuple(usable[-count:])


def training_cutoffs(days: Sequence[date], end: date, config: ChurnConfig) -> tuple[date, ...]:
    """The latest ``config.training_cutoffs`` panel days whose label window ends on or before ``end``."""
    return _cutoffs_with_window(days, end, config.horizon_days, config.training_cutoffs)


def time_split(days: Sequence[date], as_of: date, config: ChurnConfig) -> ChurnSplit:
    """Validation cutoff: the latest panel day whose label window ends by ``as_of``; training cutoffs before it.

    Raises
    ------
    ValueError
        If the history holds fewer than two non-overlapping label windows.
    """
    (validation,) = _cutoffs_with_window(days, as_of, config.horizon_days, 1)
    try:
        training = training_cutoffs(days, validation, config)
    except ValueError as exc:
        raise ValueError(
            f"the history is too short for a time split: validation cutoff {validation.isoformat()} leaves no "
            f"earlier cutoff with a {config.horizon_days}-day label window before it"
        ) from exc
    return ChurnSplit(training=training, validation=validation)


def no_purchase_probability(
    model: BetaGeoModel, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, t: float
) -> NDArray[np.float64]:
    """BG/NBD probability of no purchase in ``(T, T + t]`` given ``(x, t_x, T)``; times in the model's unit.

    ``1 - P(alive) + P(alive) ((alpha + T) / (alpha + T + t)) ** (r + x)``: a dead
    customer never buys, and an alive one, whose rate given its history is
    ``Gamma(r + x, alpha + T)``, buys nothing in ``t`` with probability ``E[exp(-lambda t)]``.
    """
    x, tx, age = check_rfm(frequency, recency, T)
    if not t >= 0:
        raise ValueError(f"the horizon t={t!r} must be >= 0")
    p_alive = model.probability_alive(x, tx, age)
    log_ratio = np.log(model.alpha + age) - np.log(model.alpha + age + t)
    return np.clip((1.0 - p_alive) + p_alive * np.exp((model.r + x) * log_ratio), 0.0, 1.0)


def bgnbd_no_purchase_probability(
    con: duckdb.DuckDBPyConnection,
    cutoff: date,
    customer_ids: Sequence[str],
    horizon_days: int,
    clv_config: ClvConfig | None = None,
) -> NDArray[np.float64]:
    """BG/NBD forecast that each customer makes no purchase in the ``horizon_days`` after ``cutoff``.

    BG/NBD is fitted on every customer's purchase days up to the cutoff
    (``int_order_days__sequenced``); each of ``customer_ids`` must have one.
    """
    clv_config = clv_config or ClvConfig()
    summary = summarize_transactions_sql(
        con,
        str(INT_ORDER_DAYS_SEQUENCED),
        as_of=cutoff,
        time_unit=clv_config.time_unit,
        date_col="order_date",
        amount_col="revenue_on_day",
    )
    model = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    rows = summary.reindex(pd.Index(customer_ids, name=summary.index.name))
    if rows["frequency"].isna().any():
        raise ValueError(
            f"{int(rows['frequency'].isna().sum())} customers have no purchase on or before {cutoff.isoformat()}, "
            f"e.g. {rows.index[rows['frequency'].isna()][0]!r}"
        )
    horizon = horizon_days / DAYS_PER_UNIT[clv_config.time_unit]
    return no_purchase_probability(model, rows["frequency"], rows["recency"], rows["T"], horizon)


@dataclass(frozen=True)
class ChurnValidation:
    """How the recipe did on the later cutoff.

    Attributes
    ----------
    split : ChurnSplit
    model : ClassifierScores
        Calibrated churn model against the observed label.
    baseline : ClassifierScores
        BG/NBD's P(no purchase in the horizon) against the same label.
    cases : pandas.DataFrame
        ``customer_id``, ``churned`` (observed), ``churn_probability``, ``baseline_probability``.
    """

    split: ChurnSplit
    model: ClassifierScores
    baseline: ClassifierScores
    cases: pd.DataFrame


@dataclass(frozen=True)
class ChurnFit:
    """The model to save (refitted on the latest cutoffs), the validation of its recipe, the last day used."""

    model: ChurnModel
    validation: ChurnValidation
    as_of: date


def _training_sample(con: duckdb.DuckDBPyConnection, cutoffs: Sequence[date], config: ChurnConfig) -> pd.DataFrame:
    return sample_training_rows(
        con,
        cutoffs,
        config.horizon_days,
        sample_rows=config.train_sample_rows,
        seed=config.seed,
        recent_months=config.recent_months,
    )


def train_churn_model(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    config: ChurnConfig | None = None,
    clv_config: ClvConfig | None = None,
) -> ChurnFit:
    """Validate the churn recipe on a time split, then refit it on the latest cutoffs.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse with the models of :mod:`~crm_warehouse.analytics.churn.features`.
    as_of : datetime.date
        Last day whose events may be used: the warehouse's as-of date
        (:func:`crm_warehouse.warehouse.as_of.resolve_as_of`), at most the date the
        dbt models were built for.
    config : ChurnConfig, optional
        Defaults to ``ChurnConfig()``.
    clv_config : ClvConfig, optional
        Time unit of the BG/NBD baseline.

    Raises
    ------
    ValueError
        If the history is too short for the split, a cutoff has no scored
        customer, a label has a single class, or ``as_of`` is after the date the
        dbt models were built for (labels after it are unknown).
    """
    config = config or ChurnConfig()
    built = warehouse_as_of(con)
    if as_of > built:
        raise ValueError(f"as-of {as_of} is after the date the dbt models were built for ({built}): rebuild them first")
    end = as_of
    days = evaluation_dates(con)
    split = time_split(days, end, config)
    recipe = fit_churn_model(_training_sample(con, split.training, config), config)
    validation_rows = sample_training_rows(
        con,
        [split.validation],
        config.horizon_days,
        sample_rows=config.validation_sample_rows,
        seed=config.seed,
        recent_months=config.recent_months,
    )
    y = _labels(validation_rows, f"validation cutoff {split.validation.isoformat()}")
    probability = recipe.predict(validation_rows)
    baseline = bgnbd_no_purchase_probability(
        con, split.validation, validation_rows["customer_id"].tolist(), config.horizon_days, clv_config
    )
    cases = pd.DataFrame(
        {
            "customer_id": validation_rows["customer_id"],
            "churned": y.astype(bool),
            "churn_probability": probability,
            "baseline_probability": baseline,
        }
    )
    validation = ChurnValidation(
        split=split,
        model=score_classifier(y, probability, bins=config.ece_bins, lift_share=config.lift_share),
        baseline=score_classifier(y, baseline, bins=config.ece_bins, lift_share=config.lift_share),
        cases=cases,
    )
    final = fit_churn_model(_training_sample(con, training_cutoffs(days, end, config), config), config)
    return ChurnFit(model=final, validation=validation, as_of=end)


def risk_bands(probability: NDArray[np.float64], config: ChurnConfig) -> NDArray[np.object_]:
    """``low`` / ``medium`` / ``high`` by the thresholds of ``config``."""
    return np.select(
        [probability >= config.high_risk_min, probability >= config.medium_risk_min],
        ["high", "medium"],
        default="low",
    ).astype(object)


def score_rows(batch: pd.DataFrame, model: ChurnModel, config: ChurnConfig) -> pd.DataFrame:
    """Score rows of one batch of :func:`open_account_batches`; unscored rows carry their reason as driver."""
    reason = batch[UNSCORED_REASON].to_numpy(dtype=object)
    scored = pd.isna(reason)
    text = {
        "customer_id": batch["customer_id"].to_numpy(dtype=object),
        "risk_band": np.full(len(batch), None, dtype=object),
        **{f"driver_{i + 1}": np.full(len(batch), None, dtype=object) for i in range(N_DRIVERS)},
        "top_drivers": reason,
    }
    # Text columns stay object (one dtype whether a batch holds scored rows, unscored ones or both).
    result = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in text.items()})
    result.insert(1, "churn_probability", np.nan)
    result.loc[~scored, "driver_1"] = reason[~scored]
    if scored.any():
        features = batch.loc[scored]
        probability, contributions = model.predict_with_contributions(features)
        drivers = top_drivers(features, contributions, N_DRIVERS, config.recent_months)
        result.loc[scored, "churn_probability"] = probability
        result.loc[scored, "risk_band"] = risk_bands(probability, config)
        result.loc[scored, drivers.columns] = drivers.to_numpy()
    return result


def score_churn_batches(
    con: duckdb.DuckDBPyConnection, model: ChurnModel, cutoff: date, config: ChurnConfig | None = None
) -> Iterator[pd.DataFrame]:
    """:func:`score_churn` in batches of at most ``config.score_batch_rows`` customers, in ``customer_id`` order.

    Features stream from DuckDB batch by batch, so memory follows the batch size,
    not the number of customers.
    """
    config = config or ChurnConfig()
    batches = open_account_batches(
        con, cutoff, model.horizon_days, recent_months=config.recent_months, batch_rows=config.score_batch_rows
    )
    for batch in batches:
        yield score_rows(batch, model, config)


def score_churn(
    con: duckdb.DuckDBPyConnection, model: ChurnModel, cutoff: date, config: ChurnConfig | None = None
) -> pd.DataFrame:
    """Churn probability, risk band and drivers of every customer with an open account at ``cutoff``.

    Customers in a scored stage get the model's probability and their top
    :data:`~crm_warehouse.analytics.churn.drivers.N_DRIVERS` drivers. Open accounts
    the model does not score get no probability and no band, and ``driver_1``
    says why: prospects (no completed order yet) and customers already churned
    by inactivity (no order for the stage rule's period, account still open).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SCORE_COLUMNS`, one row per open account, sorted by ``customer_id``.
    """
    batches = list(score_churn_batches(con, model, cutoff, config))
    if not batches:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in SCORE_COLUMNS})
    return pd.concat(batches, ignore_index=True)
