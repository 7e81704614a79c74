"""The analytics assets materialised in-process on a copy of the simulated company's warehouse."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
import yaml
from analytics_warehouse import SimulatedWarehouse, simulated_warehouse

from crm_warehouse.analytics.clv import ClvConfig
from crm_warehouse.analytics.clv.warehouse import fit_clv, score_clv
from crm_warehouse.analytics.metrics import auc
from crm_warehouse.analytics.model_store import latest_model_path, new_model_id, save_model
from crm_warehouse.settings import DBT_PROJECT_DIR, Settings, load_settings
from crm_warehouse.warehouse.analytics_tables import TABLE_COLUMNS
from orchestration.assets.analytics import (
    CHURN_INPUTS,
    CHURN_MODEL_KEY,
    CHURN_SCORES_KEY,
    CLV_INPUTS,
    CLV_MODEL_KEY,
    CUSTOMER_CLV_KEY,
    analytics_assets,
    customer_churn_scores,
    customer_clv,
    model_assets,
    scoring_assets,
)
from orchestration.resources import WarehouseResource

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> SimulatedWarehouse:
    return simulated_warehouse(tmp_path_factory)


def _settings(folder: Path) -> Settings:
    """Every path under ``folder``, nothing from the environment."""
    return load_settings({}).with_data_dir(folder)


def _resource(company: SimulatedWarehouse, folder: Path) -> WarehouseResource:
    """A private copy of the warehouse (same file name: dbt's views name their catalog after it)."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / company.warehouse_path.name
    shutil.copyfile(company.warehouse_path, copy)
    return WarehouseResource.from_settings(replace(_settings(folder), warehouse_path=copy))


@pytest.fixture(scope="module")
def materialised(company: SimulatedWarehouse, tmp_path_factory: pytest.TempPathFactory):
    """All four analytics assets materialised once; returns (resource, result)."""
    resource = _resource(company, tmp_path_factory.mktemp("analytics_assets"))
    result = dg.materialize(analytics_assets, resources={"warehouse": resource})
    return resource, result


def _metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {name: value.value for name, value in event.materialization.metadata.items()}


def test_asset_definitions() -> None:
    specs = {spec.key: spec for assets in analytics_assets for spec in assets.specs}
    assert set(specs) == {CLV_MODEL_KEY, CHURN_MODEL_KEY, CUSTOMER_CLV_KEY, CHURN_SCORES_KEY}
    for spec in specs.values():
        assert spec.group_name == "analytics"
        assert spec.kinds == {"python", "duckdb"}
        assert spec.description and "\n" not in spec.description
    for assets in analytics_assets:
        assert assets.op.pool == "duckdb_warehouse"
    deps = {key: {dep.asset_key for dep in spec.deps} for key, spec in specs.items()}
    assert deps[CLV_MODEL_KEY] == set(CLV_INPUTS)
    assert deps[CUSTOMER_CLV_KEY] == {CLV_MODEL_KEY, *CLV_INPUTS}
    assert deps[CHURN_MODEL_KEY] == set(CHURN_INPUTS)
    assert deps[CHURN_SCORES_KEY] == {CHURN_MODEL_KEY, *CHURN_INPUTS}
    assert dg.AssetKey(["marts", "fct_orders"]) in deps[CLV_MODEL_KEY]
    assert [a.key for a in model_assets] == [CLV_MODEL_KEY, CHURN_MODEL_KEY]
    assert [a.key for a in scoring_assets] == [CUSTOMER_CLV_KEY, CHURN_SCORES_KEY]
    # The upstream dbt models are external here; the definitions still load.
    unused = WarehouseResource.from_settings(_settings(Path("unused")))
    dg.Definitions(assets=analytics_assets, resources={"warehouse": unused}).resolve_asset_graph()


def test_scoring_without_a_model_fails_clearly(company: SimulatedWarehouse, tmp_path: Path) -> None:
    resource = _resource(company, tmp_path)
    for assets in (customer_clv, customer_churn_scores):
        result = dg.materialize([assets], resources={"warehouse": resource}, raise_on_error=False)
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        message = failure.event_specific_data.error.message
        assert "No saved" in message and "retraining job" in message and "make run" in message


def test_models_are_saved_by_id_and_registered(materialised) -> None:
    resource, result = materialised
    models_dir = Path(resource.models_dir)
    with duckdb.connect(resource.warehouse_path, read_only=True) as con:
        runs = con.execute("select * from analytics.model_runs order by model_type").df()
    assert runs["model_type"].tolist() == ["churn", "clv"]
    for run in runs.itertuples():
        assert Path(run.model_path) == models_dir / f"{run.model_id}.json"
        assert Path(run.model_path).is_file()
        assert run.model_id.startswith(f"{run.model_type}-")
    churn = runs.set_index("model_type").loc["churn"]
    assert churn["validation_auc"] > churn["baseline_auc"]
    assert churn["calibration_error"] <= 0.05 and churn["top_decile_lift"] > 2
    # The saved model is refitted after validation, on labels up to the as-of date.
    assert pd.Timestamp(churn["validation_cutoff"]) < pd.Timestamp(churn["training_end"])
    meta = _metadata(result, CHURN_MODEL_KEY)
    assert meta["validation_auc"] == pytest.approx(churn["validation_auc"])
    for name in ("brier_score", "expected_calibration_error", "top_decile_lift", "baseline_bgnbd_auc", "parameters"):
        assert name in meta
    assert meta["calibration_plot"].startswith("![churn calibration](data:image/png;base64,iVBORw0KGgo")
    clv_meta = _metadata(result, CLV_MODEL_KEY)
    assert clv_meta["purchase_model"] in {"BG/NBD", "MBG/NBD", "Pareto/NBD"}
    assert "on the internal split" in clv_meta["model_choice"]
    assert len(clv_meta["purchase_model_parameters"]) == 4
    assert set(clv_meta["gamma_gamma_standard_errors"]) == {"p", "q", "gamma"}


def test_customer_clv_has_one_row_per_crm_customer(materialised) -> None:
    resource, result = materialised
    with duckdb.connect(resource.warehouse_path, read_only=True) as con:
        clv = con.execute("select * from analytics.customer_clv").df()
        types = {row[0]: row[1] for row in con.execute("describe analytics.customer_clv").fetchall()}
        customers = con.execute("select customer_id, closed_date from staging.stg_crm__customers").df()
        buyers = set(
            con.execute("select distinct customer_id from marts.fct_orders where is_completed").df()["customer_id"]
        )
    assert types == {name: kind.upper() for name, kind in TABLE_COLUMNS["customer_clv"].items()}
    assert clv["customer_id"].is_unique and set(clv["customer_id"]) == set(customers["customer_id"])
    prospects = clv[~clv["customer_id"].isin(buyers)]
    assert not prospects.empty
    assert (prospects[["frequency", "clv", "expected_purchases"]] == 0).all().all()
    closed = clv["customer_id"].isin(customers.loc[customers["closed_date"].notna(), "customer_id"])
    assert (clv.loc[closed, "clv"] == 0).all()
    assert (clv.loc[~closed & clv["customer_id"].isin(buyers), "clv"] > 0).all()
    assert clv["p_alive"].dropna().between(0, 1).all()
    # Intervals hold the estimate; churn probability: 1 for closed accounts, missing for prospects only.
    for column in ("expected_purchases", "clv"):
        assert (clv[f"{column}_low"] <= clv[column]).all() and (clv[column] <= clv[f"{column}_high"]).all()
    assert (clv.loc[closed, "churn_probability"] == 1).all()
    assert clv["churn_probability"].isna().eq(~clv["customer_id"].isin(buyers)).all()
    assert clv["churn_probability"].dropna().between(0, 1).all()
    assert clv["purchase_model"].nunique() == 1
    assert clv["model_id"].nunique() == 1 and clv["horizon_months"].eq(12).all()
    meta = _metadata(result, CUSTOMER_CLV_KEY)
    assert meta["dagster/row_count"] == len(customers)
    assert meta["clv_distribution"].startswith("![CLV distribution](data:image/png;base64,iVBORw0KGgo")


def test_churn_scores_cover_every_open_account(materialised) -> None:
    resource, result = materialised
    with duckdb.connect(resource.warehouse_path, read_only=True) as con:
        scores = con.execute("select * from analytics.customer_churn_scores").df()
        kinds = {row[0]: row[1] for row in con.execute("describe analytics.customer_churn_scores").fetchall()}
        open_accounts = con.execute("select customer_id from staging.stg_crm__customers where closed_date is null").df()
        model_id = con.execute("select model_id from analytics.model_runs where model_type = 'churn'").fetchone()[0]
    assert kinds == {name: kind.upper() for name, kind in TABLE_COLUMNS["customer_churn_scores"].items()}
    assert scores["customer_id"].is_unique and set(scores["customer_id"]) == set(open_accounts["customer_id"])
    scored = scores.dropna(subset=["churn_probability"])
    assert set(scored["risk_band"]) == {"low", "medium", "high"}
    assert (scored["top_drivers"] == scored["driver_1"] + "; " + scored["driver_2"] + "; " + scored["driver_3"]).all()
    assert (scores["model_id"] == model_id).all()
    assert pd.api.types.is_datetime64_any_dtype(scores["scored_at"])
    meta = _metadata(result, CHURN_SCORES_KEY)
    assert meta["dagster/row_count"] == len(scores)
    assert meta["validation_auc"] > meta["baseline_bgnbd_auc"]


def test_scoring_uses_the_newest_model(company: SimulatedWarehouse, materialised, tmp_path: Path) -> None:
    trained, _ = materialised
    resource = _resource(company, tmp_path / "rescore")
    shutil.copytree(trained.models_dir, resource.models_dir)
    newest = latest_model_path(Path(resource.models_dir), "churn")
    older_id = new_model_id("churn", pd.Timestamp("2020-01-01", tz="UTC").to_pydatetime())
    save_model(Path(resource.models_dir), older_id, {"model_type": "churn"})
    assert latest_model_path(Path(resource.models_dir), "churn") == newest
    result = dg.materialize([customer_churn_scores], resources={"warehouse": resource})
    assert _metadata(result, CHURN_SCORES_KEY)["model_id"] == newest.stem


def _value_levels(clv: pd.Series, high_share: float) -> pd.Series:
    """current_value_level as int_customers__value_scored assigns it: the top share of all customers, if positive."""
    order = (
        clv.rename("clv")
        .rename_axis("customer_id")
        .reset_index()
        .sort_values(["clv", "customer_id"], ascending=[False, True])
    )
    rank = pd.Series(range(1, len(order) + 1), index=order["customer_id"])
    high = (clv > 0) & (rank.reindex(clv.index) <= high_share * len(clv))
    return high.map({True: "high", False: "low"})


def test_value_classes_with_the_chosen_model_against_bgnbd(company: SimulatedWarehouse, materialised) -> None:
    """How many customers change current-value class when the CLV comes from the chosen model instead of BG/NBD."""
    resource, _ = materialised
    with duckdb.connect(resource.warehouse_path, read_only=True) as con:
        as_of = con.execute("select as_of_date from analytics.model_runs where model_type = 'clv'").fetchone()[0]
        scores = {}
        for name, config in (("baseline", ClvConfig(model="bgnbd")), ("chosen", ClvConfig())):
            fit = fit_clv(con, as_of, config)
            scores[name] = score_clv(con, fit, config, as_of).set_index("customer_id")
            scores[name + "_model"] = fit.transaction_model.label
    high_share = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["value_high_share"]
    before, after = (_value_levels(scores[k]["clv"], high_share) for k in ("baseline", "chosen"))
    moved_up = int(((before == "low") & (after == "high")).sum())
    moved_down = int(((before == "high") & (after == "low")).sum())
    truth = pd.read_parquet(company.truth_dir / "customers.parquet").set_index("customer_id")
    # The simulator's latent dropout, among buyers whose account is open (closures are known and scored 0).
    open_buyers = scores["chosen"].index[
        scores["chosen"]["p_alive"].gt(0) & ~(truth["closed_at"] < pd.Timestamp(as_of)).reindex(scores["chosen"].index)
    ]
    alive = (truth["dropout_at"].isna() | (truth["dropout_at"] >= pd.Timestamp(as_of))).reindex(open_buyers)
    figures = {
        "chosen": scores["chosen_model"],
        "moved_up": moved_up,
        "moved_down": moved_down,
        "high_but_gone_bgnbd": int(((before == "high") & ~alive.reindex(before.index, fill_value=True)).sum()),
        "high_but_gone_chosen": int(((after == "high") & ~alive.reindex(after.index, fill_value=True)).sum()),
        "auc_alive_bgnbd": round(auc(alive, scores["baseline"].loc[open_buyers, "p_alive"]), 3),
        "auc_alive_chosen": round(auc(alive, scores["chosen"].loc[open_buyers, "p_alive"]), 3),
        "auc_gone_churn_probability": round(auc(~alive, scores["chosen"].loc[open_buyers, "churn_probability"]), 3),
    }
    # BG/NBD gives every one-time buyer P(alive) = 1 and ranks the latent dropout worse than chance (AUC 0.42);
    # MBG/NBD, chosen here, ranks it with 0.945. 25 customers swap value class each way, and the high class
    # holds 13 fewer customers who had in truth already dropped out (53 -> 40).
    assert figures == {
        "chosen": "MBG/NBD",
        "moved_up": 25,
        "moved_down": 25,
        "high_but_gone_bgnbd": 53,
        "high_but_gone_chosen": 40,
        "auc_alive_bgnbd": 0.422,
        "auc_alive_chosen": 0.945,
        "auc_gone_churn_probability": 0.945,
    }
