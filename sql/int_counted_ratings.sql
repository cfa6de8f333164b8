-- The ratings that count: the accepted ratings of the countable cells (int_rating_cells), each in the
-- segment of its evaluation. Everything that computes from single ratings (the attributes each
-- evaluation counts in, the resampling) reads this and never int_accepted_ratings. The few cells that
-- are not countable are taken out (an anti join on a small table: cheaper than matching every rating
-- against every countable cell).
-- materialized: view (computed where it is read: it is every counted rating of the export again)
-- grain: one row per (accepted evaluation, attribute answered) in a countable cell
-- key: source_row, attribute
with

not_countable as (
    select
        segment,
        cro,
        attribute,
    from int_rating_cells
    where not is_countable
),

final as (
    select
        int_accepted_ratings.segment,
        int_accepted_ratings.cro,
        int_accepted_ratings.source_row,
        int_accepted_ratings.attribute,
        int_accepted_ratings.rating_value,
    from int_accepted_ratings
    anti join not_countable
        on int_accepted_ratings.segment = not_countable.segment
        and int_accepted_ratings.cro = not_countable.cro
        and int_accepted_ratings.attribute = not_countable.attribute
)

select * from final
