-- Staging: every answered rating field of the export, in long form, with its text trimmed and cast
-- leniently (by stg_rating_texts). Blank, `n/a` and `na` (any case) are no rating and leave no row.
-- grain: one row per (export row, attribute) with an answered field
-- key: source_row, attribute
with

unpivoted as (
    unpivot raw_ratings
    on columns(* exclude (source_row))
    into name attribute value rating_field
),

final as (
    select
        unpivoted.source_row,
        unpivoted.attribute,
        stg_rating_texts.rating_text,
        stg_rating_texts.rating_value,
    from unpivoted
    inner join stg_rating_texts on unpivoted.rating_field = stg_rating_texts.rating_field
    where stg_rating_texts.is_answered
)

select * from final
