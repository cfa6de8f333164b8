-- Check: the per-CRO uncertainty figures are published on eligible composites only (null elsewhere).
-- grain: one row per composite not eligible that carries an uncertainty figure (none when it passes)
select
    composite_scores.segment,
    composite_scores.cro,
    composite_scores.category as item,
from composite_scores
where
    not composite_scores.is_eligible
    and (
        composite_scores.ci_low is not null
        or composite_scores.ci_high is not null
        or composite_scores.composite_shrunk is not null
        or composite_scores.p_leader is not null
        or composite_scores.p_champion is not null
        or composite_scores.rank_low is not null
        or composite_scores.rank_high is not null
        or composite_scores.is_co_leader is not null
        or composite_scores.composite_adjusted is not null
    )
