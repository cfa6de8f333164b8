-- The ratings that count: the valid ratings of the accepted evaluations, each once, in the segment of
-- its evaluation (big_pharma or small_pharma). Overall is not a copy of these rows: the scores derive
-- it by adding the two segments' counts and sums (exact: whole-number sums), so the ratings are
-- aggregated once.
-- materialized: view (computed where it is read: it is every rating of the export again)
-- grain: one row per (accepted evaluation, attribute answered)
-- key: source_row, attribute
with

final as (
    select
        int_accepted_evaluations.segment,
        int_accepted_evaluations.cro,
        int_accepted_evaluations.source_row,
        stg_ratings.attribute,
        stg_ratings.rating_value,
    from int_accepted_evaluations
    inner join stg_ratings on int_accepted_evaluations.source_row = stg_ratings.source_row
)

select * from final
