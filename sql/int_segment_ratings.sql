-- The ratings that count: accepted evaluations' valid ratings, once in their segment and once in overall.
-- materialized: view (computed where it is read: the table would hold every rating twice)
-- grain: one row per (segment, accepted evaluation, attribute answered)
-- key: segment, source_row, attribute
-- reads: int_accepted_evaluations, stg_ratings
with

segmented as (
    select
        source_row,
        cro,
        segment,
    from int_accepted_evaluations
    union all
    select
        source_row,
        cro,
        'overall' as segment,
    from int_accepted_evaluations
),

final as (
    select
        segmented.segment,
        segmented.cro,
        segmented.source_row,
        stg_ratings.attribute,
        stg_ratings.rating_value,
    from segmented
    inner join stg_ratings on segmented.source_row = stg_ratings.source_row
)

select * from final
