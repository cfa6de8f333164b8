-- Attribute scores before suppression: the mean rating of each CRO on each attribute, per segment.
-- Each segment's ratings are counted and summed once; overall adds the two segments' counts and sums.
-- Ratings are whole numbers, so every sum is exact in any order: reruns give identical bits, and
-- overall is what pooling the ratings would give.
-- grain: one row per (segment, cro, attribute) with at least one rating; segment in big_pharma,
--        small_pharma, overall
-- key: segment, cro, attribute
-- reads: int_accepted_ratings
with

by_segment as (
    select
        segment,
        cro,
        attribute,
        count(*) as n_ratings,
        sum(rating_value) as rating_sum,
    from int_accepted_ratings
    group by segment, cro, attribute
),

overall as (
    select
        'overall' as segment,
        cro,
        attribute,
        sum(n_ratings)::bigint as n_ratings,
        sum(rating_sum) as rating_sum,
    from by_segment
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
        select * from by_segment
        union all
        select * from overall
    )
)

select * from final
