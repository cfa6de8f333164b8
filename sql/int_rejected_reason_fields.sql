-- The export columns behind each reason of each quarantined row, named as the header names them (after
-- `columns`; export_columns' names), in header order: missing_respondent_id -> respondent_id,
-- invalid_rd_spend -> rd_spend_musd, unknown_cro -> cro, invalid_last_engaged and outside_recency_window ->
-- last_engaged, invalid_rating -> the attribute columns whose rating validation found invalid, no_ratings
-- -> every attribute column, duplicate_evaluation -> respondent_id and cro, malformed_row -> none (the
-- row's shape is at fault, not a field). The attribute columns are unpivoted for the no_ratings rows only.
-- grain: one row per (quarantined export row, reason)
-- key: source_row, reason
-- reads: rejection_reasons (source_row, reason, reason_order, attributes: the invalid ratings' attribute
--        ids for invalid_rating), raw_ratings (source_row + one text column per attribute id),
--        export_columns (field, position, column_name)
with

reasons as (
    select distinct
        source_row,
        reason,
        reason_order,
    from rejection_reasons
),

contract_fields as (
    select
        contract_fields.reason,
        contract_fields.column_name,
    from (
        values
        ('missing_respondent_id', 'respondent_id'),
        ('invalid_rd_spend', 'rd_spend_musd'),
        ('unknown_cro', 'cro'),
        ('invalid_last_engaged', 'last_engaged'),
        ('outside_recency_window', 'last_engaged'),
        ('duplicate_evaluation', 'respondent_id'),
        ('duplicate_evaluation', 'cro')
    ) as contract_fields (reason, column_name)
),

unanswered_rows as (
    select raw_ratings.*,
    from raw_ratings
    semi join reasons on raw_ratings.source_row = reasons.source_row and reasons.reason = 'no_ratings'
),

unanswered_fields as (
    from unanswered_rows
    unpivot include nulls (rating_field for column_name in (columns(* exclude (source_row))))
),

-- each (row, reason, column) once, however often validation named it
causes as (
    select
        reasons.source_row,
        reasons.reason,
        contract_fields.column_name,
    from reasons
    inner join contract_fields on reasons.reason = contract_fields.reason
    union
    select
        source_row,
        reason,
        unnest(attributes) as column_name,
    from rejection_reasons
    where reason = 'invalid_rating'
    union
    select
        source_row,
        'no_ratings' as reason,
        column_name,
    from unanswered_fields
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
