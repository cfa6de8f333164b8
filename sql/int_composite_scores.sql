-- Composite scores over the countable cells only: per segment, CRO and core category, the unweighted
-- mean of the category's attribute scores that exist (int_attribute_scores holds countable cells
-- only); eligibility; and rank among the eligible with a tolerance. An attribute in two categories
-- counts in both (category_attributes lists it twice). n_evaluations counts the evaluations with at
-- least one counted rating in the category (int_contributions); overall adds the two segments (an
-- evaluation is in exactly one). No counted attribute in the category: no row.
-- Means are taken over lists in a fixed order, so parallel aggregation cannot change the last bits.
-- grain: one row per (segment, cro, category) with at least one counted rating in the category
-- key: segment, cro, category
-- params: $min_evaluations, $tolerance
with

category_scores as (
    select
        int_attribute_scores.segment,
        int_attribute_scores.cro,
        category_attributes.category,
        list_avg(list(int_attribute_scores.score order by int_attribute_scores.attribute)) as composite,
    from int_attribute_scores
    inner join category_attributes on int_attribute_scores.attribute = category_attributes.attribute
    group by int_attribute_scores.segment, int_attribute_scores.cro, category_attributes.category
),

category_masks as (
    select
        category_attributes.category,
        bit_or((1::uhugeint) << int_attribute_bits.attribute_bit) as category_mask,
    from category_attributes
    inner join int_attribute_bits on category_attributes.attribute = int_attribute_bits.attribute
    group by category_attributes.category
),

segment_evaluations as (
    select
        int_contributions.segment,
        int_contributions.cro,
        category_masks.category,
        count(*) as n_evaluations,
    from int_contributions
    inner join category_masks on (int_contributions.attribute_mask & category_masks.category_mask) <> 0
    group by int_contributions.segment, int_contributions.cro, category_masks.category
),

category_evaluations as (
    select * from segment_evaluations
    union all
    select
        'overall' as segment,
        cro,
        category,
        sum(n_evaluations)::bigint as n_evaluations,
    from segment_evaluations
    group by cro, category
),

scored as (
    select
        category_scores.segment,
        category_scores.cro,
        category_scores.category,
        category_evaluations.n_evaluations,
        category_scores.composite,
        category_evaluations.n_evaluations >= $min_evaluations as is_eligible,
    from category_scores
    inner join category_evaluations
        on category_scores.segment = category_evaluations.segment
        and category_scores.cro = category_evaluations.cro
        and category_scores.category = category_evaluations.category
),

higher as (
    select
        scored.segment,
        scored.cro,
        scored.category,
        count(rivals.cro) as n_higher,
    from scored
    left join scored as rivals
        on scored.segment = rivals.segment
        and scored.category = rivals.category
        and rivals.is_eligible
        and rivals.composite > scored.composite + $tolerance
    where scored.is_eligible
    group by scored.segment, scored.cro, scored.category
),

final as (
    select
        scored.segment,
        scored.cro,
        scored.category,
        scored.n_evaluations,
        scored.composite,
        scored.is_eligible,
        1 + higher.n_higher as rank,
    from scored
    left join higher
        on scored.segment = higher.segment
        and scored.cro = higher.cro
        and scored.category = higher.category
)

select * from final
