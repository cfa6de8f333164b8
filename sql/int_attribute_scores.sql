-- Attribute scores over the countable cells only: the mean rating of each CRO on each attribute, per
-- segment, from each countable cell's count and sum (int_rating_cells); overall pools the CRO's
-- countable segment cells of the attribute (none countable: no overall row). So every row rests on at
-- least min_cell_size ratings, and no rating of a cell that is not countable enters any of them.
-- Ratings are whole numbers, so every sum is exact in any order: reruns give identical bits, and
-- overall is what pooling the counted ratings would give.
-- grain: one row per (segment, cro, attribute) with a countable cell (overall: in either segment);
--        segment in big_pharma, small_pharma, overall
-- key: segment, cro, attribute
with

countable as (
    select
        segment,
        cro,
        attribute,
        n_ratings,
        rating_sum,
    from int_rating_cells
    where is_countable
),

overall as (
    select
        'overall' as segment,
        cro,
        attribute,
        sum(n_ratings)::bigint as n_ratings,
        sum(rating_sum) as rating_sum,
    from countable
    group by cro, attribute
),

final as (
    select
        segment,
        cro,
        attribute,
        n_ratings,
        rating_sum / n_ratings as score,
    from (
        select * from countable
        union all
        select * from overall
    )
)

select * from final
