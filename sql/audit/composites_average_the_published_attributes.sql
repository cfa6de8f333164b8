-- Check: every published composite is the mean of its segment's published attribute scores of the
-- category, and its n_evaluations is possible for them (at least the thickest attribute's count, at most
-- their total); a published attribute of a category has its composite; overall composites count the
-- evaluations of both segments.
-- grain: one row per composite that breaks one of these rules (none when it passes)
-- params: $tolerance
with

from_attributes as (
    select
        attribute_scores.segment,
        attribute_scores.cro,
        category_attributes.category,
        avg(attribute_scores.score) as composite,
        max(attribute_scores.n_ratings) as thickest,
        sum(attribute_scores.n_ratings) as total,
    from attribute_scores
    inner join category_attributes on attribute_scores.attribute = category_attributes.attribute
    group by attribute_scores.segment, attribute_scores.cro, category_attributes.category
),

segment_evaluations as (
    select
        cro,
        category,
        sum(n_evaluations) as n_evaluations,
    from composite_scores
    where segment <> 'overall'
    group by cro, category
),

final as (
    select
        coalesce(composite_scores.segment, from_attributes.segment) as segment,
        coalesce(composite_scores.cro, from_attributes.cro) as cro,
        coalesce(composite_scores.category, from_attributes.category) as item,
    from composite_scores
    full outer join from_attributes
        on composite_scores.segment = from_attributes.segment
        and composite_scores.cro = from_attributes.cro
        and composite_scores.category = from_attributes.category
    left join segment_evaluations
        on composite_scores.segment = 'overall'
        and composite_scores.cro = segment_evaluations.cro
        and composite_scores.category = segment_evaluations.category
    where
        composite_scores.cro is null
        or from_attributes.cro is null
        or abs(composite_scores.composite - from_attributes.composite) > $tolerance
        or composite_scores.n_evaluations < from_attributes.thickest
        or composite_scores.n_evaluations > from_attributes.total
        or composite_scores.n_evaluations <> coalesce(segment_evaluations.n_evaluations, composite_scores.n_evaluations)
)

select * from final
