-- Published attribute scores: small cells (fewer than min_cell_size ratings) are left out.
-- grain: one row per (segment, cro, attribute) with at least min_cell_size ratings
-- key: segment, cro, attribute
-- reads: int_attribute_scores
-- params: $min_cell_size
with

final as (
    select
        segment,
        cro,
        attribute,
        n_ratings,
        score,
    from int_attribute_scores
    where n_ratings >= $min_cell_size
)

select * from final
