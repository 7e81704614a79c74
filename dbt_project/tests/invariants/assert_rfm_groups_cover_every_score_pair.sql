-- Every pair of recency and frequency scores 1-5 falls in exactly one RFM group of
-- the seed: returns the pairs in none or in several.
with

rfm_groups as (
    select * from {{ ref('rfm_groups') }}
),

scores as (
    {{ dbt.generate_series(var('rfm_bins')) }}
),

score_pairs as (
    select
        recency.generated_number as recency_score,
        frequency.generated_number as frequency_score
    from scores as recency
    cross join scores as frequency
),

matches as (
    select
        score_pairs.recency_score,
        score_pairs.frequency_score,
        count(rfm_groups.rfm_group_code) as group_matches
    from score_pairs
    left join rfm_groups
        on
            score_pairs.recency_score between rfm_groups.r_score_min and rfm_groups.r_score_max
            and score_pairs.frequency_score between rfm_groups.f_score_min and rfm_groups.f_score_max
    group by score_pairs.recency_score, score_pairs.frequency_score
)

select * from matches
where group_matches <> 1
