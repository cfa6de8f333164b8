-- The ratings that count, for the bootstrap (tasks/bootstrap.py): each accepted evaluation's valid
-- ratings once, with its segment and its respondent's rank in respondent_id order (respondent_id is
-- unique per CRO among accepted evaluations, so resampling in that order does not depend on the
-- export's row order). The bootstrap derives overall from the two segments itself.
-- materialized: view (read once, by the bootstrap)
-- grain: one row per (accepted evaluation, attribute answered)
-- key: cro, respondent_rank, attribute
-- reads: int_accepted_evaluations, stg_ratings
with

final as (
    select
        int_accepted_evaluations.cro,
        int_accepted_evaluations.segment,
        int_accepted_evaluations.respondent_rank,
        stg_ratings.attribute,
        stg_ratings.rating_value,
    from int_accepted_evaluations
    inner join stg_ratings on int_accepted_evaluations.source_row = stg_ratings.source_row
)

select * from final
