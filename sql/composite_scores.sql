-- Published composite scores: small cells (fewer than min_cell_size evaluations) are left out, and so
-- are the rare composites complementary suppression withholds (cro_awards/disclosure.py). ci_low and
-- ci_high are the composite's bootstrap 95% interval, only on eligible rows (null elsewhere: with few
-- evaluations a bound is one respondent's composite) and null when bootstrap_replicates is 0.
-- grain: one row per (segment, cro, category) with at least min_cell_size evaluations, not withheld
-- key: segment, cro, category
-- reads: int_composite_scores, composite_intervals (from cro_awards/bootstrap.py),
--        withheld_composite_scores (from cro_awards/disclosure.py)
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
        case when int_composite_scores.is_eligible then composite_intervals.ci_low end as ci_low,
        case when int_composite_scores.is_eligible then composite_intervals.ci_high end as ci_high,
    from int_composite_scores
    left join composite_intervals
        on int_composite_scores.segment = composite_intervals.segment
        and int_composite_scores.cro = composite_intervals.cro
        and int_composite_scores.category = composite_intervals.category
    anti join withheld_composite_scores
        on int_composite_scores.segment = withheld_composite_scores.segment
        and int_composite_scores.cro = withheld_composite_scores.cro
        and int_composite_scores.category = withheld_composite_scores.category
    where int_composite_scores.n_evaluations >= $min_cell_size
)

select * from final
