-- The rows the speeding screen sets aside: invalid_duration for each row whose duration field is blank or
-- not a plain decimal number, speeding for each row with a well-formed duration below min_seconds and for
-- every row of the same respondent (the same respondent_id, as int_evaluations reads it and duplicates
-- compare it), whatever else is wrong with the row that failed. invalid_duration stays with its row; a
-- row without a respondent id is judged alone. Validation judges each distinct duration field once
-- (expectations/screen_speeding.json) and binds the fields it rejected, per reason.
-- grain: one row per (well-formed export row, reason) set aside by the speeding screen
-- key: source_row, reason
-- params: $invalid_duration_fields, $speeding_fields (the duration fields, as written, that validation
--         rejected for each reason)
with

verdicts as (
    select
        unnest($invalid_duration_fields) as duration_field,
        'invalid_duration' as reason,
    union all
    select
        unnest($speeding_fields) as duration_field,
        'speeding' as reason,
),

failed_rows as (
    select
        raw_durations.source_row,
        verdicts.reason,
    from raw_durations
    inner join verdicts on coalesce(raw_durations.duration, '') = verdicts.duration_field
),

speeding_respondents as (
    select distinct int_evaluations.respondent_id,
    from int_evaluations
    semi join failed_rows
        on int_evaluations.source_row = failed_rows.source_row
        and failed_rows.reason = 'speeding'
    where int_evaluations.respondent_id is not null
),

final as (
    select
        failed_rows.source_row,
        failed_rows.reason,
    from failed_rows
    union
    select
        int_evaluations.source_row,
        'speeding' as reason,
    from int_evaluations
    semi join speeding_respondents on int_evaluations.respondent_id = speeding_respondents.respondent_id
)

select * from final
