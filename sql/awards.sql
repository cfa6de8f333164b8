-- Awards: per segment and category with at least min_cros_for_awards eligible CROs, the leaders
-- (composite equal to the cell's maximum) and the champions (composite at least the threshold
-- weighted_mean + champion_sd_multiplier * weighted_sd, and above the weighted mean), weights being
-- n_evaluations and the standard deviation the population form. Comparisons carry $tolerance.
-- Sums run over lists in a fixed order (by cro), so reruns give identical bits.
-- grain: one row per (segment, category, cro, award)
-- key: segment, category, cro, award
-- reads: int_composite_scores
-- params: $min_cros_for_awards, $champion_sd_multiplier, $tolerance
with

eligible as (
    select
        segment,
        category,
        cro,
        n_evaluations,
        composite,
    from int_composite_scores
    where is_eligible
),

cells as (
    select
        segment,
        category,
        list_sum(list(n_evaluations * composite order by cro)) / sum(n_evaluations) as weighted_mean,
        sum(n_evaluations) as total_weight,
        max(composite) as max_composite,
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
        sqrt(
            list_sum(
                list(eligible.n_evaluations * (eligible.composite - cells.weighted_mean) ** 2 order by eligible.cro)
            ) / cells.total_weight
        ) as weighted_sd,
    from cells
    inner join eligible on cells.segment = eligible.segment and cells.category = eligible.category
    group by cells.segment, cells.category, cells.weighted_mean, cells.total_weight, cells.max_composite
),

candidates as (
    select
        eligible.segment,
        eligible.category,
        eligible.cro,
        eligible.composite,
        spreads.weighted_mean,
        spreads.weighted_sd,
        spreads.weighted_mean + $champion_sd_multiplier * spreads.weighted_sd as threshold,
        spreads.max_composite,
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
    from candidates
    where composite >= max_composite - $tolerance
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
    from candidates
    where composite >= threshold - $tolerance and composite > weighted_mean + $tolerance
),

final as (
    select * from leaders
    union all
    select * from champions
)

select * from final
