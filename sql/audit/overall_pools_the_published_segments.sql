-- Check: every overall attribute row is exactly the pooling of the CRO's published segment rows of the
-- attribute (counts, and rating sums as whole numbers), and published segment rows have an overall row.
-- grain: one row per (cro, attribute) where overall and the published segments disagree (none when it passes)
with

sums as (
    select
        segment,
        cro,
        attribute,
        n_ratings,
        round(score * n_ratings)::hugeint as rating_sum,
    from attribute_scores
),

segments as (
    select
        cro,
        attribute,
        sum(n_ratings)::bigint as n_ratings,
        sum(rating_sum)::hugeint as rating_sum,
    from sums
    where segment <> 'overall'
    group by cro, attribute
),

overall as (
    select
        cro,
        attribute,
        n_ratings,
        rating_sum,
    from sums
    where segment = 'overall'
),

final as (
    select
        'overall' as segment,
        coalesce(overall.cro, segments.cro) as cro,
        coalesce(overall.attribute, segments.attribute) as item,
    from overall
    full outer join segments on overall.cro = segments.cro and overall.attribute = segments.attribute
    where
        overall.cro is null
        or segments.cro is null
        or overall.n_ratings <> segments.n_ratings
        or overall.rating_sum <> segments.rating_sum
)

select * from final
