with

source as (
    select * from {{ source('catalog', 'catalog_products') }}
),

known_by_as_of as (
    select *
    from source
    where updated_at < {{ as_of_cutoff() }}
),

ranked_versions as (
    select
        *,
        row_number() over (
            partition by product_id
            order by updated_at desc
        ) as version_rank
    from known_by_as_of
),

latest_version as (
    select * from ranked_versions
    where version_rank = 1
),

final as (
    select
        trim(product_id) as product_id,
        product_name,
        lower(trim(category)) as category,
        list_price,
        unit_cost,
        updated_at as version_updated_at,
        _loaded_at as loaded_at
    from latest_version
)

select * from final
