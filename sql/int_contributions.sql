-- Each accepted evaluation's contribution to what is published: the mask of the attributes whose rating
-- counted (in a countable cell of its segment; bit by int_attribute_bits). A published row's
-- contributing evaluations follow from it: an attribute row's are the evaluations of its segment (either,
-- for overall) and CRO with the attribute's bit set; a composite's, those with any bit of the category's
-- attributes. Composites count their evaluations from it, and each draft keeps it privately for the
-- differencing guard at release. A mask, not a list: one integer OR per rating (a list per evaluation
-- cost ten times as much at 3 million ratings).
-- grain: one row per accepted evaluation with at least one counted rating
-- key: source_row
with

counted as (
    select
        int_counted_ratings.source_row,
        bit_or((1::uhugeint) << int_attribute_bits.attribute_bit) as attribute_mask,
    from int_counted_ratings
    inner join int_attribute_bits on int_counted_ratings.attribute = int_attribute_bits.attribute
    group by int_counted_ratings.source_row
),

final as (
    select
        int_accepted_evaluations.source_row,
        int_accepted_evaluations.respondent_id,
        int_accepted_evaluations.cro,
        int_accepted_evaluations.segment,
        counted.attribute_mask,
    from counted
    inner join int_accepted_evaluations on counted.source_row = int_accepted_evaluations.source_row
)

select * from final
