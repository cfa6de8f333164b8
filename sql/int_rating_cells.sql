-- The countable-cells rule, decided once: every (segment, CRO, attribute) cell's accepted ratings,
-- counted and summed, and whether the cell is countable (at least min_cell_size ratings). Only the
-- ratings of countable cells count anywhere downstream (int_counted_ratings, int_attribute_scores):
-- a rating in a cell that is not countable enters no published number, so none can be derived from
-- them. Overall is not a cell: it pools a CRO's countable segment cells.
-- grain: one row per (segment, cro, attribute) with at least one accepted rating; segment in big_pharma,
--        small_pharma
-- key: segment, cro, attribute
-- params: $min_cell_size
with

final as (
    select
        segment,
        cro,
        attribute,
        count(*) as n_ratings,
        sum(rating_value) as rating_sum,
        count(*) >= $min_cell_size as is_countable,
    from int_accepted_ratings
    group by segment, cro, attribute
)

select * from final
