-- Published composite scores: small cells (fewer than min_cell_size evaluations) are left out;
-- ci_low and ci_high are the composite's bootstrap 95% interval (null when bootstrap_replicates is 0).
-- grain: one row per (segment, cro, category) with at least min_cell_size evaluations
-- key: segment, cro, category
-- reads: int_composite_scores, composite_intervals (from cro_awards/bootstrap.py)
-- params: $min_cell_size
with

final as (
    select
        int_composite_scores.segment,
        int_composite_scores.cro,
        int_composite_scores.category,
        int_composite_scores.n_evaluations,
        int_composite_scores.composite,
        int_composite_scores.is_eligible,
        int_composite_scores.rank,
        composite_intervals.ci_low,
        composite_intervals.ci_high,
    from int_composite_scores
    left join composite_intervals
        on int_composite_scores.segment = composite_intervals.segment
        and int_composite_scores.cro = composite_intervals.cro
        and int_composite_scores.category = composite_intervals.category
    where int_composite_scores.n_evaluations >= $min_cell_size
)

select * from final
