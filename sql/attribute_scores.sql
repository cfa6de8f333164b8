-- Published attribute scores: small cells (fewer than min_cell_size ratings) are left out (primary
-- suppression), and so are the rows complementary suppression withholds (cro_awards/disclosure.py), so
-- that no small cell can be derived from the published rows and composites. cro is the CRO's id; the
-- labels people read (cro_name, attribute_label: the year's YAML) come last.
-- grain: one row per (segment, cro, attribute) with at least min_cell_size ratings, not withheld
-- key: segment, cro, attribute
-- reads: int_attribute_scores, withheld_attribute_scores (from cro_awards/disclosure.py),
--        cro_labels (cro, cro_name), attribute_labels (attribute, attribute_label)
-- params: $min_cell_size
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
    anti join withheld_attribute_scores
        on int_attribute_scores.segment = withheld_attribute_scores.segment
        and int_attribute_scores.cro = withheld_attribute_scores.cro
        and int_attribute_scores.attribute = withheld_attribute_scores.attribute
    left join cro_labels on int_attribute_scores.cro = cro_labels.cro
    left join attribute_labels on int_attribute_scores.attribute = attribute_labels.attribute
    where int_attribute_scores.n_ratings >= $min_cell_size
)

select * from final
