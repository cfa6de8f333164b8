-- Published composite scores: small cells (fewer than min_cell_size evaluations) are left out, and so
-- are the rare composites complementary suppression withholds (cro_awards/disclosure.py). The figures of
-- cro_awards/uncertainty.py (the 95% interval, the rank interval, p_leader, p_champion, is_co_leader and
-- the shrunk composite) are published only on eligible rows, null elsewhere (with few evaluations a
-- resampled bound is one respondent's composite), and null when bootstrap_replicates is 0. cro is the
-- CRO's id; the labels people read (cro_name, category_label) come last.
-- grain: one row per (segment, cro, category) with at least min_cell_size evaluations, not withheld
-- key: segment, cro, category
-- reads: int_composite_scores, composite_uncertainty (from cro_awards/uncertainty.py),
--        withheld_composite_scores (from cro_awards/disclosure.py), cro_labels (cro, cro_name),
--        category_labels (category, category_label)
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
        composite_uncertainty.ci_low,
        composite_uncertainty.ci_high,
        composite_uncertainty.composite_shrunk,
        composite_uncertainty.p_leader,
        composite_uncertainty.p_champion,
        composite_uncertainty.rank_low,
        composite_uncertainty.rank_high,
        composite_uncertainty.is_co_leader,
        cro_labels.cro_name,
        category_labels.category_label,
    from int_composite_scores
    left join composite_uncertainty
        on int_composite_scores.segment = composite_uncertainty.segment
        and int_composite_scores.cro = composite_uncertainty.cro
        and int_composite_scores.category = composite_uncertainty.category
        and int_composite_scores.is_eligible
    anti join withheld_composite_scores
        on int_composite_scores.segment = withheld_composite_scores.segment
        and int_composite_scores.cro = withheld_composite_scores.cro
        and int_composite_scores.category = withheld_composite_scores.category
    left join cro_labels on int_composite_scores.cro = cro_labels.cro
    left join category_labels on int_composite_scores.category = category_labels.category
    where int_composite_scores.n_evaluations >= $min_cell_size
)

select * from final
