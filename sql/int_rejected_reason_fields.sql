-- The export columns behind each reason of each quarantined row, named as the header names them (after
-- `columns`; export_columns' names), in header order: missing_respondent_id -> respondent_id,
-- invalid_rd_spend -> rd_spend_musd, unknown_cro -> cro, invalid_last_engaged and outside_recency_window ->
-- last_engaged, invalid_rating -> the attribute columns whose rating validation found invalid, no_ratings
-- -> every attribute column, duplicate_evaluation -> respondent_id and cro, not_qualified -> the
-- qualification screen's column, invalid_duration and speeding -> the speeding screen's column (also on a
-- row that has the reason from another row of its respondent), straight_lining -> the attribute columns
-- holding a valid rating (answered, not invalid), malformed_row -> none (the row's shape is at fault, not
-- a field). The attribute columns are unpivoted for the no_ratings and straight_lining rows only.
-- grain: one row per (quarantined export row, reason)
-- key: source_row, reason
-- params: $qualification_column, $duration_column (the screens' columns, null when not configured)
with

reasons as (
    select distinct
        source_row,
        reason,
        reason_order,
    from rejection_reasons
),

named_fields as (
    select
        named_fields.reason,
        named_fields.column_name,
    from (
        values
        ('missing_respondent_id', 'respondent_id'),
        ('invalid_rd_spend', 'rd_spend_musd'),
        ('unknown_cro', 'cro'),
        ('invalid_last_engaged', 'last_engaged'),
        ('outside_recency_window', 'last_engaged'),
        ('duplicate_evaluation', 'respondent_id'),
        ('duplicate_evaluation', 'cro'),
        ('not_qualified', $qualification_column),
        ('invalid_duration', $duration_column),
        ('speeding', $duration_column)
    ) as named_fields (reason, column_name)
),

rating_rows as (
    select raw_ratings.*,
    from raw_ratings
    semi join reasons
        on raw_ratings.source_row = reasons.source_row
        and reasons.reason in ('no_ratings', 'straight_lining')
),

rating_fields as (
    from rating_rows
    unpivot include nulls (rating_field for column_name in (columns(* exclude (source_row))))
),

invalid_fields as (
    select
        source_row,
        unnest(attributes) as column_name,
    from rejection_reasons
    where reason = 'invalid_rating'
),

valid_fields as (
    select
        rating_fields.source_row,
        rating_fields.column_name,
    from rating_fields
    inner join stg_rating_texts on rating_fields.rating_field = stg_rating_texts.rating_field
    anti join invalid_fields
        on rating_fields.source_row = invalid_fields.source_row
        and rating_fields.column_name = invalid_fields.column_name
    where stg_rating_texts.is_answered
),

-- each (row, reason, column) once, however often validation named it
causes as (
    select
        reasons.source_row,
        reasons.reason,
        named_fields.column_name,
    from reasons
    inner join named_fields on reasons.reason = named_fields.reason
    union
    select
        source_row,
        'invalid_rating' as reason,
        column_name,
    from invalid_fields
    union
    select
        rating_fields.source_row,
        'no_ratings' as reason,
        rating_fields.column_name,
    from rating_fields
    semi join reasons on rating_fields.source_row = reasons.source_row and reasons.reason = 'no_ratings'
    union
    select
        valid_fields.source_row,
        'straight_lining' as reason,
        valid_fields.column_name,
    from valid_fields
    semi join reasons on valid_fields.source_row = reasons.source_row and reasons.reason = 'straight_lining'
),

final as (
    select
        reasons.source_row,
        reasons.reason,
        reasons.reason_order,
        coalesce(
            list(export_columns.column_name order by export_columns.position)
            filter (where export_columns.column_name is not null),
            []::varchar[]
        ) as column_names,
    from reasons
    left join causes on reasons.source_row = causes.source_row and reasons.reason = causes.reason
    left join export_columns on causes.column_name = export_columns.column_name
    group by reasons.source_row, reasons.reason, reasons.reason_order
)

select * from final
