-- Staging: every answered rating field of the export, in long form, trimmed and cast leniently.
-- Blank, `n/a` and `na` (any case) are no rating and leave no row; validation judges the text.
-- grain: one row per (export row, attribute) with a non-blank answer
-- key: source_row, attribute
-- reads: raw_ratings (source_row + one text column per attribute id)
-- params: $whitespace (the characters trimmed around a field)
with

unpivoted as (
    unpivot raw_ratings
    on columns(* exclude (source_row))
    into name attribute value rating_field
),

trimmed as (
    select
        source_row,
        attribute,
        trim(rating_field, $whitespace) as rating_text,
    from unpivoted
),

final as (
    select
        source_row,
        attribute,
        rating_text,
        try_cast(rating_text as double) as rating_value,
    from trimmed
    where rating_text <> '' and lower(rating_text) not in ('n/a', 'na')
)

select * from final
