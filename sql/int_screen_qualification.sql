-- The rows the qualification screen sets aside (not_qualified): each row whose qualification field
-- validation rejected (expectations/screen_qualification.json judges each distinct field once, and binds
-- the fields it rejected), and every row of the same respondent (a respondent is qualified or not: the
-- same respondent_id, as int_evaluations reads it and duplicates compare it), whatever else is wrong with
-- the row that failed. A row without a respondent id is judged alone.
-- grain: one row per well-formed export row set aside by the qualification screen
-- key: source_row
-- params: $not_qualified_fields (the qualification fields, as written, that validation rejected)
with

failed_rows as (
    select raw_qualifications.source_row,
    from raw_qualifications
    where coalesce(raw_qualifications.qualification, '') in (select unnest($not_qualified_fields))
),

failed_respondents as (
    select distinct int_evaluations.respondent_id,
    from int_evaluations
    semi join failed_rows on int_evaluations.source_row = failed_rows.source_row
    where int_evaluations.respondent_id is not null
),

screened_rows as (
    select failed_rows.source_row,
    from failed_rows
    union
    select int_evaluations.source_row,
    from int_evaluations
    semi join failed_respondents on int_evaluations.respondent_id = failed_respondents.respondent_id
),

final as (
    select
        source_row,
        'not_qualified' as reason,
    from screened_rows
)

select * from final
