-- The ratings that count, keyed by respondent for the bootstrap (tasks/bootstrap.py): respondent_id is
-- unique per CRO among accepted evaluations, so ordering by it makes the resampling independent of
-- the export's row order.
-- grain: one row per (segment, cro, respondent_id, attribute)
-- key: segment, cro, respondent_id, attribute
-- reads: int_segment_ratings, stg_evaluations
with

final as (
    select
        int_segment_ratings.segment,
        int_segment_ratings.cro,
        stg_evaluations.respondent_id,
        int_segment_ratings.attribute,
        int_segment_ratings.rating_value,
    from int_segment_ratings
    inner join stg_evaluations on int_segment_ratings.source_row = stg_evaluations.source_row
)

select * from final
