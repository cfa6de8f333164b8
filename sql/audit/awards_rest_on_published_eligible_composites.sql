-- Check: every award's composite, weighted mean, SD and threshold follow from the published eligible
-- composites of its cell, and its cell has at least min_cros_for_awards of them.
-- grain: one row per award that does not follow from the published composites (none when it passes)
-- params: $tolerance, $min_cros_for_awards, $champion_sd_multiplier
with

eligible as (
    select
        segment,
        category,
        cro,
        n_evaluations,
        composite,
    from composite_scores
    where is_eligible
),

means as (
    select
        segment,
        category,
        count(*) as n_cros,
        sum(n_evaluations * composite) / sum(n_evaluations) as weighted_mean,
        sum(n_evaluations) as total_weight,
    from eligible
    group by segment, category
),

cells as (
    select
        means.segment,
        means.category,
        means.n_cros,
        means.weighted_mean,
        sqrt(sum(eligible.n_evaluations * (eligible.composite - means.weighted_mean) ** 2) / means.total_weight)
            as weighted_sd,
    from means
    inner join eligible on means.segment = eligible.segment and means.category = eligible.category
    group by means.segment, means.category, means.n_cros, means.weighted_mean, means.total_weight
),

final as (
    select
        awards.segment,
        awards.cro,
        awards.category as item,
    from awards
    left join eligible
        on awards.segment = eligible.segment
        and awards.category = eligible.category
        and awards.cro = eligible.cro
    left join cells on awards.segment = cells.segment and awards.category = cells.category
    where
        eligible.cro is null
        or cells.n_cros < $min_cros_for_awards
        or abs(awards.composite - eligible.composite) > $tolerance
        or abs(awards.weighted_mean - cells.weighted_mean) > $tolerance
        or abs(awards.weighted_sd - cells.weighted_sd) > $tolerance
        or abs(awards.threshold - (cells.weighted_mean + $champion_sd_multiplier * cells.weighted_sd)) > $tolerance
)

select * from final
