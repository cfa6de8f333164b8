-- The distinct answered rating texts with the value each reads as: what validation judges once each
-- (expectations/rating_values.json), instead of every field of the export.
-- grain: one row per distinct trimmed rating text that is answered (not blank, n/a or na)
-- key: rating_text
with

final as (
    select distinct
        rating_text,
        rating_value
    from stg_rating_texts
    where is_answered
)

select * from final
