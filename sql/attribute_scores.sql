-- Published attribute scores: every countable cell's score, and overall pooling a CRO's countable
-- segment cells (int_attribute_scores: a cell rated by fewer than min_cell_size respondents counts
-- nowhere, so it has no row and enters no other). cro is the CRO's id; the labels people read
-- (cro_name, attribute_label: the year's YAML) come last.
-- grain: one row per (segment, cro, attribute) with a countable cell (overall: in either segment), so
--        every row has at least min_cell_size ratings
-- key: segment, cro, attribute
with

final as (
    select
        int_attribute_scores.segment,
        int_attribute_scores.cro,
        int_attribute_scores.attribute,
        int_attribute_scores.n_ratings,
        int_attribute_scores.score,
        cro_labels.cro_name,
        attribute_labels.attribute_label,
    from int_attribute_scores
    left join cro_labels on int_attribute_scores.cro = cro_labels.cro
    left join attribute_labels on int_attribute_scores.attribute = attribute_labels.attribute
)

select * from final
