-- Published attribute scores: small cells (fewer than min_cell_size ratings) are left out (primary
-- suppression), and so are the rows complementary suppression withholds (cro_awards/disclosure.py), so
-- that no small cell can be derived from the published rows and composites.
-- grain: one row per (segment, cro, attribute) with at least min_cell_size ratings, not withheld
-- key: segment, cro, attribute
-- reads: int_attribute_scores, withheld_attribute_scores (from cro_awards/disclosure.py)
-- params: $min_cell_size
with

final as (
    select
        int_attribute_scores.segment,
        int_attribute_scores.cro,
        int_attribute_scores.attribute,
        int_attribute_scores.n_ratings,
        int_attribute_scores.score,
    from int_attribute_scores
    anti join withheld_attribute_scores
        on int_attribute_scores.segment = withheld_attribute_scores.segment
        and int_attribute_scores.cro = withheld_attribute_scores.cro
        and int_attribute_scores.attribute = withheld_attribute_scores.attribute
    where int_attribute_scores.n_ratings >= $min_cell_size
)

select * from final
