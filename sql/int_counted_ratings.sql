-- The ratings that count: the accepted ratings of the countable cells (int_rating_cells), each in the
-- segment of its evaluation. Everything that computes from single ratings (the categories an
-- evaluation counts in, the resampling) reads this and never int_accepted_ratings.
-- materialized: view (computed where it is read: it is every counted rating of the export again)
-- grain: one row per (accepted evaluation, attribute answered) in a countable cell
-- key: source_row, attribute
-- reads: int_accepted_ratings, int_rating_cells
with

final as (
    select
        int_accepted_ratings.segment,
        int_accepted_ratings.cro,
        int_accepted_ratings.source_row,
        int_accepted_ratings.attribute,
        int_accepted_ratings.rating_value,
    from int_accepted_ratings
    semi join int_rating_cells
        on int_accepted_ratings.segment = int_rating_cells.segment
        and int_accepted_ratings.cro = int_rating_cells.cro
        and int_accepted_ratings.attribute = int_rating_cells.attribute
        and int_rating_cells.is_countable
)

select * from final
