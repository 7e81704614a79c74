-- The documented schema of the Python analytics tables (empty), so dbt can build
-- against them before the analytics assets have run.
create schema if not exists analytics;

create table if not exists analytics.customer_clv (
    customer_id varchar,
    frequency double,
    recency double,
    t double,
    monetary_value double,
    p_alive double,
    expected_purchases double,
    expected_avg_spend double,
    expected_spend double,
    clv double,
    horizon_months integer,
    model_id varchar,
    scored_at timestamp
);

create table if not exists analytics.customer_churn_scores (
    customer_id varchar,
    churn_probability double,
    risk_band varchar,
    driver_1 varchar,
    driver_2 varchar,
    driver_3 varchar,
    model_id varchar,
    scored_at timestamp
);
