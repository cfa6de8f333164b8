-- Awards: the awards the year's award_rule names (int_award_readings: official by default, or the
-- shrunk or the leniency-adjusted reading as a what-if), per segment and category with at least
-- min_cros_for_awards eligible CROs. composite, weighted_mean, weighted_sd and threshold are the official
-- figures of the cell; p_award is the posterior probability that the award is deserved (null without
-- resampling) and is_robust says whether it reaches robust_award_probability. cro is the CRO's id; the
-- labels people read (cro_name, category_label) come last.
-- grain: one row per (segment, category, cro, award)
-- key: segment, category, cro, award
-- params: $award_rule
with

chosen as (
    select * from int_award_readings
    where reading = $award_rule
),

final as (
    select
        chosen.segment,
        chosen.category,
        chosen.cro,
        chosen.award,
        chosen.composite,
        chosen.weighted_mean,
        chosen.weighted_sd,
        chosen.threshold,
        chosen.p_award,
        chosen.is_robust,
        cro_labels.cro_name,
        category_labels.category_label,
    from chosen
    left join cro_labels on chosen.cro = cro_labels.cro
    left join category_labels on chosen.category = category_labels.category
)

select * from final
