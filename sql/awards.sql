-- Awards: per segment and category with at least min_cros_for_awards eligible CROs. With award_rule
-- official (the default): the leaders (composite equal to the cell's maximum) and the champions
-- (composite at least the threshold weighted_mean + champion_sd_multiplier * weighted_sd, and above the
-- weighted mean), weights being n_evaluations and the standard deviation the population form. With
-- award_rule shrunk: the leaders have the highest shrunk composite (none where every composite shrinks
-- to the mean: tau^2 = 0, no difference beyond noise), the champions a posterior probability of
-- deserving it (p_champion_deserved) of at least robust_award_probability. Either way
-- p_award is the posterior probability that the award is deserved (cro_awards/uncertainty.py; null
-- without resampling) and is_robust says whether it reaches robust_award_probability. cro is the CRO's
-- id; the labels people read (cro_name, category_label) come last.
-- Comparisons carry $tolerance. Sums run over lists in a fixed order (by cro): identical bits on rerun.
-- grain: one row per (segment, category, cro, award)
-- key: segment, category, cro, award
-- reads: int_composite_scores, composite_uncertainty (from cro_awards/uncertainty.py),
--        cro_labels (cro, cro_name), category_labels (category, category_label)
-- params: $min_cros_for_awards, $champion_sd_multiplier, $tolerance, $award_rule, $robust_award_probability
with

eligible as (
    select
        int_composite_scores.segment,
        int_composite_scores.category,
        int_composite_scores.cro,
        int_composite_scores.n_evaluations,
        int_composite_scores.composite,
        composite_uncertainty.composite_shrunk,
        composite_uncertainty.p_leader_deserved,
        composite_uncertainty.p_champion_deserved,
    from int_composite_scores
    left join composite_uncertainty
        on int_composite_scores.segment = composite_uncertainty.segment
        and int_composite_scores.cro = composite_uncertainty.cro
        and int_composite_scores.category = composite_uncertainty.category
    where int_composite_scores.is_eligible
),

cells as (
    select
        segment,
        category,
        list_sum(list(n_evaluations * composite order by cro)) / sum(n_evaluations) as weighted_mean,
        sum(n_evaluations) as total_weight,
        max(composite) as max_composite,
        max(composite_shrunk) as max_shrunk,
        min(composite_shrunk) as min_shrunk,
    from eligible
    group by segment, category
    having count(*) >= $min_cros_for_awards
),

spreads as (
    select
        cells.segment,
        cells.category,
        cells.weighted_mean,
        cells.max_composite,
        cells.max_shrunk,
        cells.min_shrunk,
        sqrt(
            list_sum(
                list(eligible.n_evaluations * (eligible.composite - cells.weighted_mean) ** 2 order by eligible.cro)
            ) / cells.total_weight
        ) as weighted_sd,
    from cells
    inner join eligible on cells.segment = eligible.segment and cells.category = eligible.category
    group by
        cells.segment,
        cells.category,
        cells.weighted_mean,
        cells.total_weight,
        cells.max_composite,
        cells.max_shrunk,
        cells.min_shrunk
),

candidates as (
    select
        eligible.segment,
        eligible.category,
        eligible.cro,
        eligible.composite,
        eligible.composite_shrunk,
        eligible.p_leader_deserved,
        eligible.p_champion_deserved,
        spreads.weighted_mean,
        spreads.weighted_sd,
        spreads.weighted_mean + $champion_sd_multiplier * spreads.weighted_sd as threshold,
        spreads.max_composite,
        spreads.max_shrunk,
        spreads.min_shrunk,
    from eligible
    inner join spreads on eligible.segment = spreads.segment and eligible.category = spreads.category
),

leaders as (
    select
        segment,
        category,
        cro,
        'leader' as award,
        composite,
        weighted_mean,
        weighted_sd,
        threshold,
        p_leader_deserved as p_award,
    from candidates
    where
        case
            -- all shrunk to the mean (tau^2 = 0: no difference beyond noise): no leader
            when $award_rule = 'shrunk'
                then composite_shrunk >= max_shrunk - $tolerance and max_shrunk > min_shrunk + $tolerance
            else composite >= max_composite - $tolerance
        end
),

champions as (
    select
        segment,
        category,
        cro,
        'champion' as award,
        composite,
        weighted_mean,
        weighted_sd,
        threshold,
        p_champion_deserved as p_award,
    from candidates
    where
        case
            when $award_rule = 'shrunk' then p_champion_deserved >= $robust_award_probability
            else composite >= threshold - $tolerance and composite > weighted_mean + $tolerance
        end
),

awarded as (
    select
        *,
        p_award >= $robust_award_probability as is_robust,
    from (
        select * from leaders
        union all
        select * from champions
    )
),

final as (
    select
        awarded.*,
        cro_labels.cro_name,
        category_labels.category_label,
    from awarded
    left join cro_labels on awarded.cro = cro_labels.cro
    left join category_labels on awarded.category = category_labels.category
)

select * from final
