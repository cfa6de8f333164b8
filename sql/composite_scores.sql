-- Published composite scores: small cells (fewer than min_cell_size evaluations) are left out.
-- grain: one row per (segment, cro, category) with at least min_cell_size evaluations
-- key: segment, cro, category
-- reads: int_composite_scores
-- params: $min_cell_size
with

final as (
    select
        segment,
        cro,
        category,
        n_evaluations,
        composite,
        is_eligible,
        rank,
    from int_composite_scores
    where n_evaluations >= $min_cell_size
)

select * from final
order by segment, cro, category
