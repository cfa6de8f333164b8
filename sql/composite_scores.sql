-- Published composite scores: every composite of the countable cells (int_composite_scores: the mean
-- of the segment's published attribute scores of the category). The figures of
-- cro_awards/method/uncertainty.py (the 95% interval, the rank interval, p_leader, p_champion, is_co_leader,
-- the shrunk and the leniency-adjusted composites) are published only on eligible rows, null elsewhere
-- (with few evaluations a resampled bound is one respondent's composite), and null when
-- bootstrap_replicates is 0. cro is the
-- CRO's id; the labels people read (cro_name, category_label) come last.
-- grain: one row per (segment, cro, category) with at least one counted rating in the category
-- key: segment, cro, category
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
        composite_uncertainty.composite_adjusted,
        cro_labels.cro_name,
        category_labels.category_label,
    from int_composite_scores
    left join composite_uncertainty
        on int_composite_scores.segment = composite_uncertainty.segment
        and int_composite_scores.cro = composite_uncertainty.cro
        and int_composite_scores.category = composite_uncertainty.category
        and int_composite_scores.is_eligible
    left join cro_labels on int_composite_scores.cro = cro_labels.cro
    left join category_labels on int_composite_scores.category = category_labels.category
)

select * from final
