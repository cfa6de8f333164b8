-- The ratings that count, for the bootstrap (tasks/bootstrap.py), with each evaluation numbered
-- 0, 1, ... within its (segment, cro) in respondent_id order: respondent_id is unique per CRO among
-- accepted evaluations, so the numbering, and the resampling, do not depend on the export's row order.
-- materialized: view (read once, by the bootstrap)
-- grain: one row per (segment, cro, evaluation_index, attribute)
-- key: segment, cro, evaluation_index, attribute
-- reads: int_segment_ratings, int_accepted_evaluations
with

final as (
    select
        int_segment_ratings.segment,
        int_segment_ratings.cro,
        dense_rank() over (
            partition by int_segment_ratings.segment, int_segment_ratings.cro
            order by int_accepted_evaluations.respondent_id
        ) - 1 as evaluation_index,
        int_segment_ratings.attribute,
        int_segment_ratings.rating_value,
    from int_segment_ratings
    inner join int_accepted_evaluations on int_segment_ratings.source_row = int_accepted_evaluations.source_row
)

select * from final
