-- The awards each reading would name, per segment and category with at least min_cros_for_awards
-- eligible CROs; awards.sql publishes the reading of $award_rule, the report compares the others with it.
-- - official: the leaders (composite equal to the cell's maximum) and the champions (composite at least
--   the threshold weighted_mean + champion_sd_multiplier * weighted_sd, and above the weighted mean),
--   weights being n_evaluations and the standard deviation the population form; p_award is the
--   posterior probability that the award is deserved (p_leader_deserved, p_champion_deserved).
-- - shrunk: the leaders have the highest shrunk composite (none where every composite shrinks to the
--   mean: tau^2 = 0, no difference beyond noise), the champions a p_champion_deserved of at least
--   robust_award_probability; p_award as official.
-- - adjusted: the official rule on the leniency-adjusted composites (composite_adjusted: its leaders
--   and its weighted mean + k weighted SD); p_award from the same empirical Bayes step on them
--   (p_leader_adjusted, p_champion_adjusted).
-- Without resampling (no composite_uncertainty rows) only official names awards, with p_award null.
-- composite, weighted_mean, weighted_sd and threshold are the official figures whatever the reading
-- (the adjusted reading's own are composite_scores.composite_adjusted).
-- Comparisons carry $tolerance. Sums run over lists in a fixed order (by cro): identical bits on rerun.
-- grain: one row per (reading, segment, category, cro, award)
-- key: reading, segment, category, cro, award
-- params: $min_cros_for_awards, $champion_sd_multiplier, $tolerance, $robust_award_probability
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
        composite_uncertainty.composite_adjusted,
        composite_uncertainty.p_leader_adjusted,
        composite_uncertainty.p_champion_adjusted,
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
        list_sum(list(n_evaluations * composite_adjusted order by cro)) / sum(n_evaluations) as adjusted_mean,
        sum(n_evaluations) as total_weight,
        max(composite) as max_composite,
        max(composite_shrunk) as max_shrunk,
        min(composite_shrunk) as min_shrunk,
        max(composite_adjusted) as max_adjusted,
    from eligible
    group by segment, category
    having count(*) >= $min_cros_for_awards
),

spreads as (
    select
        cells.segment,
        cells.category,
        cells.weighted_mean,
        cells.adjusted_mean,
        cells.max_composite,
        cells.max_shrunk,
        cells.min_shrunk,
        cells.max_adjusted,
        sqrt(
            list_sum(
                list(eligible.n_evaluations * (eligible.composite - cells.weighted_mean) ** 2 order by eligible.cro)
            ) / cells.total_weight
        ) as weighted_sd,
        sqrt(
            list_sum(
                list(
                    eligible.n_evaluations * (eligible.composite_adjusted - cells.adjusted_mean) ** 2
                    order by eligible.cro
                )
            ) / cells.total_weight
        ) as adjusted_sd,
    from cells
    inner join eligible on cells.segment = eligible.segment and cells.category = eligible.category
    group by
        cells.segment,
        cells.category,
        cells.weighted_mean,
        cells.adjusted_mean,
        cells.total_weight,
        cells.max_composite,
        cells.max_shrunk,
        cells.min_shrunk,
        cells.max_adjusted
),

candidates as (
    select
        eligible.*,
        spreads.weighted_mean,
        spreads.weighted_sd,
        spreads.weighted_mean + $champion_sd_multiplier * spreads.weighted_sd as threshold,
        spreads.adjusted_mean,
        spreads.adjusted_mean + $champion_sd_multiplier * spreads.adjusted_sd as adjusted_threshold,
        spreads.max_composite,
        spreads.max_shrunk,
        spreads.min_shrunk,
        spreads.max_adjusted,
    from eligible
    inner join spreads on eligible.segment = spreads.segment and eligible.category = spreads.category
),

named as (
    select
        'official' as reading,
        'leader' as award,
        *,
        p_leader_deserved as p_award,
    from candidates
    where composite >= max_composite - $tolerance
    union all
    select
        'official' as reading,
        'champion' as award,
        *,
        p_champion_deserved as p_award,
    from candidates
    where composite >= threshold - $tolerance and composite > weighted_mean + $tolerance
    union all
    -- all shrunk to the mean (tau^2 = 0: no difference beyond noise): no leader
    select
        'shrunk' as reading,
        'leader' as award,
        *,
        p_leader_deserved as p_award,
    from candidates
    where composite_shrunk >= max_shrunk - $tolerance and max_shrunk > min_shrunk + $tolerance
    union all
    select
        'shrunk' as reading,
        'champion' as award,
        *,
        p_champion_deserved as p_award,
    from candidates
    where p_champion_deserved >= $robust_award_probability
    union all
    select
        'adjusted' as reading,
        'leader' as award,
        *,
        p_leader_adjusted as p_award,
    from candidates
    where composite_adjusted >= max_adjusted - $tolerance
    union all
    select
        'adjusted' as reading,
        'champion' as award,
        *,
        p_champion_adjusted as p_award,
    from candidates
    where
        composite_adjusted >= adjusted_threshold - $tolerance
        and composite_adjusted > adjusted_mean + $tolerance
),

final as (
    select
        reading,
        segment,
        category,
        cro,
        award,
        composite,
        weighted_mean,
        weighted_sd,
        threshold,
        p_award,
        p_award >= $robust_award_probability as is_robust,
    from named
)

select * from final
