-- Staging (only for a year whose YAML configures screens.speeding): every distinct text of the duration
-- column, read once; a missing cell is read as the empty text. duration_text is the field trimmed (null
-- when blank); duration_seconds its number, cast only where the text is a plain decimal number (digits,
-- optionally a point and more digits), so that speeding is judged on well-formed durations alone (as
-- stg_evaluations casts a date only from well-formed text). The rules are expectations
-- (expectations/screen_speeding.json); int_screen_speeding maps their verdicts back to the rows.
-- grain: one row per distinct duration field, as written in the export (untrimmed)
-- key: duration_field
-- params: $whitespace (the characters trimmed around a field)
with

fields as (
    select distinct coalesce(raw_durations.duration, '') as duration_field,
    from raw_durations
),

trimmed as (
    select
        duration_field,
        nullif(trim(duration_field, $whitespace), '') as duration_text,
    from fields
),

final as (
    select
        duration_field,
        duration_text,
        case
            when regexp_full_match(duration_text, '[0-9]+(\.[0-9]+)?')
                then try_cast(duration_text as double)
        end as duration_seconds,
    from trimmed
)

select * from final
