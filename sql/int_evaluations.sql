-- The export rows as validation judges them: each staged evaluation with the configured CRO its text
-- names (null when no name or alias matches), how many attributes it answered and the lowest and highest
-- value among those answers (null when none is a number; for the straight-lining screen:
-- int_equal_ratings).
-- grain: one row per well-formed export row
-- key: source_row
with

answers as (
    select
        source_row,
        count(*) as n_answered,
        min(rating_value) as min_rating_value,
        max(rating_value) as max_rating_value,
    from stg_ratings
    group by source_row
),

final as (
    select
        stg_evaluations.source_row,
        stg_evaluations.respondent_id,
        stg_evaluations.rd_spend_musd_text,
        stg_evaluations.rd_spend_musd,
        stg_evaluations.rd_spend_musd_exact,
        stg_evaluations.cro_text,
        stg_evaluations.cro_key,
        cro_aliases.cro,
        stg_evaluations.last_engaged_text,
        stg_evaluations.last_engaged_on,
        coalesce(answers.n_answered, 0) as n_answered,
        answers.min_rating_value,
        answers.max_rating_value,
    from stg_evaluations
    left join cro_aliases on stg_evaluations.cro_key = cro_aliases.cro_key
    left join answers on stg_evaluations.source_row = answers.source_row
)

select * from final
