-- Staging: every distinct text that the export's rating fields hold, read once. A real export holds a
-- few dozen distinct texts in millions of fields, so each text is trimmed and cast here once and the
-- fields are matched to their text in stg_ratings (trimming every field is most of staging's cost).
-- is_answered is false for a blank, `n/a` or `na` (any case) text: no rating. Validation judges
-- rating_text. (No WHERE here: DuckDB would push it below the DISTINCT and trim every field.)
-- grain: one row per distinct non-null rating field, as written in the export (untrimmed)
-- key: rating_field
-- params: $whitespace (the characters trimmed around a field)
with

fields as (
    select distinct rating_field,
    from (
        unpivot raw_ratings
        on columns(* exclude (source_row))
        into name attribute value rating_field
    )
),

trimmed as (
    select
        rating_field,
        trim(rating_field, $whitespace) as rating_text,
    from fields
),

final as (
    select
        rating_field,
        rating_text,
        rating_text <> '' and lower(rating_text) not in ('n/a', 'na') as is_answered,
        try_cast(rating_text as double) as rating_value,
    from trimmed
)

select * from final
