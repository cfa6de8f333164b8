-- Attribute scores before suppression: the mean rating of each CRO on each attribute, per segment.
-- Ratings are whole numbers, so their sum is exact in any order: reruns give identical bits.
-- grain: one row per (segment, cro, attribute) with at least one rating
-- key: segment, cro, attribute
-- reads: int_segment_ratings
with

final as (
    select
        segment,
        cro,
        attribute,
        count(*) as n_ratings,
        sum(rating_value) / count(*) as score,
    from int_segment_ratings
    group by segment, cro, attribute
)

select * from final
